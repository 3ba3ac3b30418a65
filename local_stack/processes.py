"""Running each local service in a process of its own: start, wait until it says it is ready, keep its
output in a log file (and on the terminal with ``verbose``), stop it; and, on both sides, waiting for the
signal to stop (``StopSignals``).

A service announces readiness with its first line on stdout, which carries its URL (it may have picked a
free port). Everything after that line, and all of stderr, goes to ``<log_dir>/<name>.log``.

A service outlives no stack: its stdin is a pipe whose write end only the stack holds, and it stops at end of
file there (``PARENT_PIPE_VARIABLE``), which is how it learns that the stack has gone, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Self

#: The ready line of our own services: ``ready http://127.0.0.1:1234``.
READY_LINE = re.compile(r"^ready (?P<url>\S+)$")
#: How long a service may take to stop after SIGTERM before it is killed (``imagegen local`` promises to be
#: gone within 10 s of a signal; in-flight work is lost either way, moto keeps its state in memory).
STOP_TIMEOUT_SECONDS = 5.0
#: Names, in a service's environment, the file descriptor on which end of file means that the stack which
#: started it is gone (``ServiceProcess`` sets it to 0: stdin). ``bedrock_emulator.cli`` reads it too.
PARENT_PIPE_VARIABLE = "IMAGEGEN_PARENT_PIPE_FD"
#: Why ``StopSignals.wait`` returned when the parent's pipe closed.
PARENT_GONE = "the parent process is gone"


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
        self._kill_at: float | None = None  # when SIGTERM was sent: the end of the grace period

    def start(self) -> ServiceProcess:
        """Spawn the process; ``wait_ready`` learns its URL."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w", encoding="utf-8", buffering=1)  # this run only
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            self.argv,
            env={**self.env, PARENT_PIPE_VARIABLE: "0"},
            stdin=subprocess.PIPE,  # we hold its only write end (close_fds): end of file there = we are gone
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

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` waits); the grace period starts now. Safe to call twice."""
        if self._process is not None:
            self._terminate(self._process)

    def stop(self) -> None:
        """SIGTERM (unless ``terminate`` sent it), then SIGKILL when the grace period is over; safe to call
        twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                kill_at = self._terminate(process)
                try:
                    process.wait(timeout=max(0.0, kill_at - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        self._kill_at = None
        for pump in self._pumps:
            pump.join(timeout=STOP_TIMEOUT_SECONDS)
        self._pumps = []
        if self._log is not None:
            self._log.close()
            self._log = None

    def _terminate(self, process: subprocess.Popen[str]) -> float:
        """Send SIGTERM once; returns when the grace period ends."""
        if self._kill_at is None:
            self._kill_at = time.monotonic() + STOP_TIMEOUT_SECONDS
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        return self._kill_at

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


def child_environment(
    extra: Mapping[str, str], dropped: Collection[str] = (), dropped_prefixes: tuple[str, ...] = ()
) -> dict[str, str]:
    """This process's environment without anything that would send a service to real AWS and without the
    ``dropped`` names and prefixes (a function's settings come from its deployment, not from the shell), plus
    ``extra``."""
    prefixes = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_", *dropped_prefixes)
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes) and name not in dropped}
    return {**env, **extra}


def stop_all(services: Iterable[ServiceProcess]) -> None:
    """Stop services together: SIGTERM to each first, then wait for each (SIGKILL once its grace period is
    over), so that stopping takes as long as the slowest, not the sum."""
    services = list(services)
    for service in services:
        service.terminate()
    for service in services:
        service.stop()


def parent_pipe_fd() -> int | None:
    """The file descriptor ``PARENT_PIPE_VARIABLE`` names, if it is set (a service the stack started)."""
    value = os.environ.get(PARENT_PIPE_VARIABLE, "")
    return int(value) if value.isdigit() else None


class StopSignals:
    """Waits until SIGTERM or SIGINT arrives (to this process or to its process group), or until the parent's
    pipe closes, without any lock in a signal handler.

    Why not ``threading.Event.set()`` as the handler: Python runs a handler in the main thread between two of
    its bytecodes, so when the main thread is inside ``Event.wait()`` holding the Event's lock (it takes it
    again when it wakes up), a handler that takes the same lock never returns: a second signal then deadlocks
    the process. Here the C-level handler writes the signal's number to a non-blocking pipe
    (``signal.set_wakeup_fd``), the Python-level handler only assigns an attribute, and ``wait()`` sleeps in
    ``select`` on that pipe.

    ``parent_fd`` is watched too: end of file on it means that the parent died, however (SIGKILL included).
    With ``interrupt`` set, the first signal also raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C
    does by default, to cut short work that is not waiting (starting the stack, the demo's requests); later
    ones only wake ``wait()``, so they cannot cut stopping short. ``restore_handlers=False`` leaves the
    handlers in place after the ``with`` block, so that further signals are ignored (a service cleaning up).

    Main thread only; use it as a context manager.
    """

    def __init__(
        self,
        signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT),
        *,
        parent_fd: int | None = None,
        interrupt: bool = False,
        restore_handlers: bool = True,
    ) -> None:
        self.signals = frozenset(signals)
        self.parent_fd = parent_fd
        self.interrupt = interrupt
        self.restore_handlers = restore_handlers
        #: Why ``wait`` returned: the signal's name, or ``PARENT_GONE``; ``None`` while not stopped.
        self.reason: str | None = None
        self._caught = 0  # written by the handler: the first stop signal's number
        self._interrupted = False
        self._pipe: tuple[int, int] | None = None
        self._previous_wakeup_fd = -1
        self._previous_handlers: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __enter__(self) -> Self:
        if self.parent_fd is not None:
            try:
                os.fstat(self.parent_fd)
            except OSError:  # not open: nothing to watch
                self.parent_fd = None
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)  # the C handler must never block
        self._pipe = (read_fd, write_fd)
        try:
            self._previous_wakeup_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
            for signum in self.signals:  # last: with ``interrupt``, a signal may raise from here on
                self._previous_handlers[signum] = signal.signal(signum, self._handle)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.restore_handlers:
            for signum, handler in self._previous_handlers.items():
                if handler is not None:  # None: not installed from Python, cannot be put back
                    signal.signal(signum, handler)
        self._previous_handlers = {}
        if self._pipe is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)  # before closing: the fd number could be reused
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until a stop signal arrives or the parent is gone, and say why (``"SIGTERM"``, ``"SIGINT"``,
        ``PARENT_GONE``); or until ``timeout`` seconds have passed: ``None``. Once stopped, returns at once."""
        assert self._pipe is not None, "StopSignals.wait outside its with block"
        wakeup_fd = self._pipe[0]
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.reason is None:
            if self._caught:
                self.reason = signal.Signals(self._caught).name
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            watched = [wakeup_fd] if self.parent_fd is None else [wakeup_fd, self.parent_fd]
            readable, _, _ = select.select(watched, [], [], remaining)
            if wakeup_fd in readable:
                self._read_wakeup_fd(wakeup_fd)
            if self.parent_fd is not None and self.parent_fd in readable:
                self._read_parent_fd(self.parent_fd)
        return self.reason

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # Assignments only: the main thread, interrupted here, may hold any lock.
        if not self._caught:
            self._caught = signum
        if self.interrupt and not self._interrupted:
            self._interrupted = True
            raise KeyboardInterrupt

    def _read_wakeup_fd(self, fd: int) -> None:
        with contextlib.suppress(BlockingIOError):
            while data := os.read(fd, 512):
                stops = [number for number in data if number in self.signals]
                if stops and self.reason is None:
                    self.reason = signal.Signals(stops[0]).name

    def _read_parent_fd(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # unreadable: stop watching it rather than spin
            self.parent_fd = None
            return
        if not data and self.reason is None:
            self.reason = PARENT_GONE
