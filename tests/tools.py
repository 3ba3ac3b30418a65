"""Where the tests find the developer tools the Makefile installs."""

from __future__ import annotations

import os
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
