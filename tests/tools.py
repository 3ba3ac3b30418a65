"""Where the tests find the developer tools the Makefile installs."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def uv() -> str:
    """The uv the Makefile uses: ``$UV`` (exported by make), else on PATH, else where ``pip install --user``
    puts it. A machine whose PATH lacks ``~/.local/bin`` still finds it."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(Path.home() / ".local" / "bin" / "uv")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv is required: run the tests with `make test`, which installs it")


def tool_spec(name: str) -> str:
    """A pinned tool from the Makefile (``CHECKOV_SPEC := checkov==3.3.30`` -> ``checkov==3.3.30``): the tests run
    the versions `make lint` runs."""
    match = re.search(rf"^{name}_SPEC := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    if match is None:
        pytest.fail(f"the Makefile pins no {name}_SPEC")
    return match[1]
