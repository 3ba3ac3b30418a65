"""Running each local service in a process of its own: start, wait until it says it is ready, keep its
output in a log file (and on the terminal with ``verbose``), stop it.

A service announces readiness with its first line on stdout, which carries its URL (it may have picked a
free port). Everything after that line, and all of stderr, goes to ``<log_dir>/<name>.log``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

#: The ready line of our own services: ``ready http://127.0.0.1:1234``.
READY_LINE = re.compile(r"^ready (?P<url>\S+)$")
STOP_TIMEOUT_SECONDS = 10.0


class ServiceError(RuntimeError):
    """A service did not start; the message names it and quotes the end of its log."""


class ServiceProcess:
    """One service: ``python -m <module> <args>`` with its own environment and log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        verbose: bool = False,
        ready: re.Pattern[str] = READY_LINE,
    ) -> None:
        self.name = name
        self.argv = [sys.executable, *argv]
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.verbose = verbose
        self.ready = ready
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._pumps: list[threading.Thread] = []
        self._log: IO[str] | None = None
        self._ready = threading.Event()

    def start(self) -> ServiceProcess:
        """Spawn the process; ``wait_ready`` learns its URL."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w", encoding="utf-8", buffering=1)  # this run only
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C in the terminal reaches the stack, which stops us in order
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._pump(self._process.stdout)
        self._pump(self._process.stderr)
        return self

    def wait_ready(self, timeout: float) -> str:
        """Block until the ready line arrives (returns the URL); ``ServiceError`` if the process exits first."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):  # wakes early when the line arrives; checks the process meanwhile
            if process.poll() is not None:
                raise ServiceError(f"{self.name} exited with status {process.returncode}{self._tail()}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name} did not start within {timeout:g} s{self._tail()}")
        return self.url

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pump in self._pumps:
            pump.join(timeout=STOP_TIMEOUT_SECONDS)
        self._pumps = []
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _pump(self, stream: IO[str]) -> None:
        thread = threading.Thread(target=self._copy, args=(stream,), name=f"{self.name}-log", daemon=True)
        thread.start()
        self._pumps.append(thread)

    def _copy(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            if not self._ready.is_set() and stream is self._stdout():
                match = self.ready.match(line.strip())
                if match:
                    self.url = match["url"]
                    self._ready.set()
            self._write(line)

    def _stdout(self) -> IO[str] | None:
        return self._process.stdout if self._process is not None else None

    def _write(self, line: str) -> None:
        log = self._log
        if log is not None and not log.closed:
            with contextlib.suppress(ValueError):  # closed by stop() meanwhile
                log.write(line)
        if self.verbose:
            sys.stderr.write(f"[{self.name}] {line}")

    def _tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"; last lines of {self.log_path}:\n" + "\n".join(text) if text else f" (see {self.log_path})"


def python_module(module: str, *args: str) -> list[str]:
    """``-m module args`` for ``ServiceProcess``: unbuffered, so log lines arrive as they are written."""
    return ["-u", "-m", module, *args]


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without anything that would send a service to real AWS, plus ``extra``."""
    dropped = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    return {**env, **extra}
