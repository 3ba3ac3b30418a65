"""What every ``imagegen`` command shares: one-line errors, progress, and the running local stack."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from local_stack.config import StackEndpoints

DEFAULT_OUT = Path("out")
DEFAULT_STATE_FILE = Path(os.environ.get("IMAGEGEN_STATE_FILE", ".local/stack.json"))


class CliError(Exception):
    """A problem to report in one line."""


@contextmanager
def progress(label: str) -> Iterator[None]:
    """A spinner with elapsed seconds on a terminal; one line otherwise."""
    start = time.monotonic()
    done = threading.Event()
    interactive = sys.stderr.isatty()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                return
            sys.stderr.write(f"\r{frame} {label} {time.monotonic() - start:5.1f}s")
            sys.stderr.flush()

    thread = threading.Thread(target=spin, daemon=True) if interactive else None
    if thread:
        thread.start()
    else:
        print(f"{label}", file=sys.stderr)
    try:
        yield
    finally:
        done.set()
        if thread:
            thread.join()
            sys.stderr.write(f"\r{label} {time.monotonic() - start:5.1f}s\n")


def aws_reason(exc: Exception) -> str:
    """An AWS error as ``Code: message``."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)


def local_endpoints(state_file: Path) -> StackEndpoints | None:
    """The running local stack's endpoints, if one runs (and the ``local`` extra is installed)."""
    if not state_file.exists():
        return None
    try:
        from local_stack.config import load_endpoints
    except ImportError:
        return None
    return load_endpoints(state_file)
