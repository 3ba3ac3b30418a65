"""Stopping the local stack: `imagegen local` and `imagegen demo` stop on SIGTERM and SIGINT, sent to them or to
their process group, within 10 s, and their services with them; the services of a SIGKILLed stack stop on their
own (the pipe they watch closes). The waiting primitives survive a flood of signals, and a signal at any line of
their code: the ``Event.set()`` handler they replace deadlocked when a signal arrived while the main thread held
the Event's lock (flooded, it also recursed until it crashed)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest

from local_stack.processes import PARENT_GONE, StopSignals
from tests.local.local_stack_support import ROOT, wait_until

#: What the stack promises: gone, with its services, this long after the signal.
STOP_WITHIN = 10.0
START_WITHIN = 90.0
SERVICES = 4  # moto, bedrock, api, worker


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture, as test_local_command.py does: `imagegen local` sets the
    environment its handlers need."""


# ---- helpers: the process tree, as /proc shows it ----------------------------------------------------------


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, ``None`` if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after "pid (comm)", which may hold spaces
    return int(fields[1]), fields[0], fields[19]


def _children(pid: int) -> dict[int, str]:
    """The live children of ``pid``: their pid and start time (which tells a reused pid apart)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] == pid and stat[1] != "Z":
            found[int(entry.name)] = stat[2]
    return found


def _gone(pid: int, start_time: str) -> bool:
    """The process has exited (a zombie has exited too: whoever adopted it may not reap it)."""
    stat = _stat(pid)
    return stat is None or stat[1] == "Z" or stat[2] != start_time


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _read_lines_until(stream: IO[bytes] | None, prefix: str, timeout: float) -> list[str]:
    """Lines of ``stream`` (a child's pipe) up to the first that starts with ``prefix``, bounded: no readline
    that could block past the deadline. Reads whole chunks: call it once per pipe and stage."""
    assert stream is not None
    fd, buffer, lines = stream.fileno(), b"", []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines.append(line.decode(errors="replace"))
            if lines[-1].startswith(prefix):
                return lines
    raise AssertionError(f"no line starting with {prefix!r} within {timeout:g} s; got {lines}")


@dataclass
class Stack:
    """A running `imagegen local` or `imagegen demo` and what it started."""

    process: subprocess.Popen[bytes]
    stderr: Path
    services: dict[int, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)

    def started(self, ports: list[int]) -> Stack:
        """The stack has said it runs: its services are its children by now."""
        self.services = _children(self.process.pid)
        self.ports = ports
        assert len(self.services) == SERVICES, self.services
        return self

    def signal(self, signum: int, *, to_group: bool = False) -> float:
        """Send ``signum`` to the stack (or to its process group); returns when, for the deadline."""
        sent = time.monotonic()
        if to_group:
            os.killpg(self.process.pid, signum)
        else:
            os.kill(self.process.pid, signum)
        return sent

    def wait_gone(self, since: float) -> None:
        """Every service has exited and every port is free, within ``STOP_WITHIN`` of ``since``."""
        remaining = max(0.1, since + STOP_WITHIN - time.monotonic())
        wait_until(
            lambda: all(_gone(pid, start) for pid, start in self.services.items()),
            timeout=remaining,
            what=f"the services {sorted(self.services)} to exit",
        )
        remaining = max(0.1, since + STOP_WITHIN - time.monotonic())
        wait_until(lambda: all(map(_port_free, self.ports)), timeout=remaining, what=f"ports {self.ports} to close")


@contextlib.contextmanager
def _launch(tmp_path: Path, command: str, *args: str) -> Iterator[Stack]:
    """`python -m imagegen_cli COMMAND ARGS` in a session of its own (its process group is only itself, as under
    a supervisor); whatever happens, nothing it started outlives the test."""
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "imagegen_cli", "--state-file", str(tmp_path / "stack.json"), command,
             "--log-dir", str(tmp_path / "logs"), *args],
            stdout=subprocess.PIPE, stderr=stderr_file, cwd=tmp_path, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    stack = Stack(process, stderr)
    try:
        yield stack
    finally:
        services = {**_children(process.pid), **stack.services}
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid, start_time in services.items():  # a failed test must not leave services behind
            if not _gone(pid, start_time):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
def imagegen_local(tmp_path: Path) -> Iterator[Stack]:
    """`imagegen local` on free ports, running: its services and their ports."""
    with _launch(tmp_path, "local", "--api-port", "0", "--aws-port", "0", "--bedrock-port", "0") as stack:
        _read_lines_until(stack.process.stdout, "imagegen local stack is running", START_WITHIN)
        endpoints = json.loads((tmp_path / "stack.json").read_text())
        urls = ("api_url", "aws_endpoint_url", "bedrock_endpoint_url", "worker_admin_url")
        ports = [port for name in urls if (port := urlsplit(endpoints[name]).port) is not None]
        assert len(ports) == len(urls)
        yield stack.started(ports)


# ---- imagegen local ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-to-group", "SIGINT-to-group"],
)
def test_imagegen_local_stops_with_its_services_on_a_signal(
    imagegen_local: Stack, tmp_path: Path, signum: int, to_group: bool
) -> None:
    sent = imagegen_local.signal(signum, to_group=to_group)
    assert imagegen_local.process.wait(timeout=STOP_WITHIN) == 0, imagegen_local.stderr.read_text()
    imagegen_local.wait_gone(sent)
    assert not (tmp_path / "stack.json").exists()


def test_a_second_signal_while_stopping_changes_nothing(imagegen_local: Stack) -> None:
    """Impatient Ctrl-C, or a supervisor that sends SIGTERM to the process and then to its group: the stack still
    stops cleanly (the old handler could deadlock on exactly this)."""
    sent = imagegen_local.signal(signal.SIGINT)
    _read_lines_until(imagegen_local.process.stdout, "stopping", STOP_WITHIN)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ProcessLookupError):
            imagegen_local.signal(signum, to_group=True)
    assert imagegen_local.process.wait(timeout=STOP_WITHIN) == 0, imagegen_local.stderr.read_text()
    imagegen_local.wait_gone(sent)


def test_the_services_of_a_killed_stack_stop_on_their_own(imagegen_local: Stack) -> None:
    """SIGKILL leaves the stack no time to stop anything: each service sees the pipe from it close."""
    killed = imagegen_local.signal(signal.SIGKILL)
    imagegen_local.process.wait(timeout=STOP_WITHIN)
    imagegen_local.wait_gone(killed)


# ---- imagegen demo -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_imagegen_demo_stops_with_its_services_mid_run(tmp_path: Path, signum: int) -> None:
    """Interrupted while its first request waits for the (slow) emulator: exit status 130, nothing left."""
    with _launch(tmp_path, "demo", "--latency-ms", "60000", "--out", str(tmp_path / "out")) as demo:
        _read_lines_until(demo.process.stdout, "model ", START_WITHIN)  # the stack is up; the requests begin
        demo.started(ports=[])
        sent = demo.signal(signum)
        assert demo.process.wait(timeout=STOP_WITHIN) == 130, demo.stderr.read_text()
        assert "imagegen: interrupted" in demo.stderr.read_text()
        demo.wait_gone(sent)
        assert not (tmp_path / "out").exists()


# ---- the waiting primitives --------------------------------------------------------------------------------

#: A child process that waits for a stop signal ``iterations`` times in a row with the primitive under test,
#: while the test floods it with SIGTERM; it says "done" (on stderr) if every wait returned.
_FLOOD_CHILD = """
import os, signal
signal.signal(signal.SIGTERM, lambda *_: None)  # between two waits
{setup}
os.write(2, b"go\\n")
for _ in range({iterations}):
    {wait}
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the flood may go on until the test has read "done"
os.write(2, b"done\\n")
"""
_PRIMITIVES = {  # what the services, `imagegen local` and the emulator wait with
    "serve_until_signalled": (
        "from local_stack.lambda_runtime import serve_until_signalled",
        "serve_until_signalled('ready')",
    ),
    "StopSignals": ("from local_stack.processes import StopSignals", "with StopSignals() as stop: stop.wait()"),
    "emulator": ("from bedrock_emulator.cli import _stop_signals", "with _stop_signals() as wait: wait()"),
}
FLOOD_ITERATIONS = 3_000  # the Event-based waits died or hung within about a second (1000-3000 waits)


@pytest.mark.parametrize("primitive", list(_PRIMITIVES))
def test_the_wait_survives_a_flood_of_signals(primitive: str) -> None:
    """The Event-based wait deadlocks (or, flooded, recurses until it crashes) within a few thousand
    iterations; these must return every time."""
    setup, wait = _PRIMITIVES[primitive]
    code = _FLOOD_CHILD.format(setup=setup, wait=wait, iterations=FLOOD_ITERATIONS)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    flooding = threading.Event()

    def flood() -> None:
        while not flooding.is_set() and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)

    sender = threading.Thread(target=flood, daemon=True)
    try:
        assert process.stderr is not None
        _read_lines_until(process.stderr, "go", 30)  # its handler is in place: the flood cannot kill it
        sender.start()
        try:
            _read_lines_until(process.stderr, "done", 60)
        except AssertionError as error:
            state = "still waiting" if process.poll() is None else f"exited with status {process.returncode}"
            pytest.fail(f"{primitive} {state} under a flood of SIGTERM: {error}")
    finally:
        flooding.set()
        if process.poll() is None:
            process.kill()
        process.wait()
        sender.join(timeout=10)


#: The same waits, with a signal raised at every line of the code they run (the primitive's, threading's,
#: contextlib's), once per line and wait: as if one arrived at that very point. Deterministic: the
#: ``Event.set()`` handler deadlocks on its first wait, since it runs while the main thread holds the Event's lock.
_SIGNAL_AT_EVERY_LINE = """
import os, signal, sys
signal.signal(signal.SIGTERM, lambda *_: None)  # between two waits
{setup}
WATCHED = ("threading.py", "contextlib.py", "local_stack/processes.py", "local_stack/lambda_runtime.py",
           "bedrock_emulator/cli.py")
seen = set()

def trace(frame, event, arg):
    if not frame.f_code.co_filename.endswith(WATCHED):
        return None
    where = (frame.f_code.co_filename, frame.f_lineno)
    if event == "line" and where not in seen:
        seen.add(where)
        signal.raise_signal(signal.SIGTERM)
    return trace

for _ in range(3):
    seen.clear()
    sys.settrace(trace)
    {wait}
    sys.settrace(None)
os.write(2, b"done %d lines\\n" % len(seen))
"""


@pytest.mark.parametrize("primitive", list(_PRIMITIVES))
def test_the_wait_survives_a_signal_at_any_line(primitive: str) -> None:
    """Deterministic where the flood is not: the Event-based waits deadlock on their first wait."""
    setup, wait = _PRIMITIVES[primitive]
    try:
        result = subprocess.run(
            [sys.executable, "-c", _SIGNAL_AT_EVERY_LINE.format(setup=setup, wait=wait)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30, check=False,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{primitive} deadlocked: a signal arrived while it held a lock its handler takes")
    assert result.stderr.startswith(b"done "), result.stderr.decode()[-2000:]
    assert int(result.stderr.split()[1]) > 10  # the trace did reach the primitive's code


# ---- StopSignals in this process ---------------------------------------------------------------------------


def test_stop_signals_says_why_it_returned() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert stop.wait(timeout=0.01) is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(timeout=STOP_WITHIN) == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)  # a later one changes nothing
        assert stop.wait(timeout=0) == "SIGTERM"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # put back


def test_stop_signals_returns_when_the_parent_pipe_closes() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with StopSignals(parent_fd=read_fd) as stop:
            os.write(write_fd, b"anything but the end")
            assert stop.wait(timeout=0.05) is None
            os.close(write_fd)
            assert stop.wait(timeout=STOP_WITHIN) == PARENT_GONE
    finally:
        os.close(read_fd)
        with contextlib.suppress(OSError):
            os.close(write_fd)


def test_stop_signals_can_interrupt_work_once() -> None:
    """``interrupt``: the first signal raises KeyboardInterrupt (to cut a start short), the next ones do not (so
    they cannot cut stopping short)."""
    with StopSignals(interrupt=True) as stop:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(lambda: False, timeout=STOP_WITHIN, what="KeyboardInterrupt")
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(timeout=STOP_WITHIN) == "SIGTERM"
