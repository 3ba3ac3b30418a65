"""``python -m bedrock_emulator``: run the emulator until Ctrl-C or SIGTERM.

The first line on stdout (flushed) is ``Bedrock emulator listening on http://HOST:PORT``; a parent that
starts it with ``--port 0`` reads the port from it. Then: the ``export`` line of both endpoint variables, the
config, the lifecycle (the table's date and the overrides) and the AWS Marketplace agreements. Flags override the
``BEDROCK_EMULATOR_*`` variables (``EmulatorConfig.from_env``); a flag not given is ``None``, so every default is
``bedrock_emulator.config``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import select
import signal
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType

from bedrock_emulator import LISTENING
from bedrock_emulator.config import (
    AGREEMENTS_SYNTAX,
    ALL_AGREEMENTS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    NO_AGREEMENTS,
    Agreements,
    EmulatorConfig,
)
from bedrock_emulator.lifecycle import OVERRIDE_SYNTAX, TABLE_DATE

__all__ = ["add_emulator_flags", "emulator_config", "main"]

#: Set by the local stack (``local_stack.processes.PARENT_PIPE_VARIABLE``) to the fd on which end of file means
#: that the stack which started the emulator is gone; unset, nothing but a signal stops it.
PARENT_PIPE_VARIABLE = "IMAGEGEN_PARENT_PIPE_FD"


def add_emulator_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags of the emulator's behaviour (one per ``EmulatorConfig`` field, each overriding its
    ``BEDROCK_EMULATOR_*`` variable; ``None`` when not given) to ``parser``: ``python -m bedrock_emulator`` and
    ``imagegen local`` both use them. ``emulator_config`` reads them back."""
    parser.add_argument("--latency-ms", type=int, help="emulated model time per request [BEDROCK_EMULATOR_LATENCY_MS]")
    parser.add_argument("--rpm", type=int, help="requests per minute, 0 = unlimited [BEDROCK_EMULATOR_RPM]")
    parser.add_argument("--fault-rate", type=float, help="share of faulty replies, 0..1 [BEDROCK_EMULATOR_FAULT_RATE]")
    parser.add_argument(
        "--blocked-words", help="comma-separated words the content filter blocks [BEDROCK_EMULATOR_BLOCKED_WORDS]"
    )
    parser.add_argument("--seed", type=int, help="seed of the fault RNG [BEDROCK_EMULATOR_SEED]")
    parser.add_argument(
        "--image-file",
        metavar="PATH",
        help="answer with this PNG's bytes instead of placeholders [BEDROCK_EMULATOR_IMAGE_FILE]",
    )
    parser.add_argument(
        "--lifecycle",
        metavar="OVERRIDES",
        help=f"override the model lifecycle table of {TABLE_DATE}: {OVERRIDE_SYNTAX}; STATE is ACTIVE, LEGACY, "
        "LEGACY_INACTIVE, EOL or NO_ACCESS, and a Legacy state may take its end-of-life date "
        "(LEGACY:2027-01-15) [BEDROCK_EMULATOR_LIFECYCLE]",
    )
    parser.add_argument(
        "--agreements",
        metavar="MODELS",
        help=f"the AWS Marketplace models whose agreement the account has: {AGREEMENTS_SYNTAX} (default "
        f"{ALL_AGREEMENTS}; {NO_AGREEMENTS} is a fresh account) [BEDROCK_EMULATOR_AGREEMENTS]",
    )


def emulator_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> EmulatorConfig:
    """The config from the flags ``add_emulator_flags`` added, over the ``BEDROCK_EMULATOR_*`` variables of
    ``env`` (default ``os.environ``); ``ValueError`` naming the flag and variable of a bad value."""
    return EmulatorConfig.from_env(
        env,
        latency_ms=args.latency_ms,
        rpm=args.rpm,
        fault_rate=args.fault_rate,
        blocked_words=args.blocked_words,
        seed=args.seed,
        image_file=args.image_file,
        lifecycle=args.lifecycle,
        agreements=args.agreements,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bedrock_emulator",
        description="Local Bedrock emulator for the image models: Runtime's InvokeModel (placeholder images) and "
        "the control plane's GetFoundationModel, GetFoundationModelAvailability, ListFoundationModels and the AWS "
        "Marketplace agreements. Flags override the BEDROCK_EMULATOR_* environment variables.",
    )
    parser.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"port to listen on, 0 = any free port (default {DEFAULT_PORT})")
    add_emulator_flags(parser)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; returns the exit status."""
    from bedrock_emulator.server import BedrockEmulator  # not needed to add the flags to another parser

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = emulator_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    host = DEFAULT_HOST if args.host is None else args.host
    port = DEFAULT_PORT if args.port is None else args.port
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        with (
            _stop_signals() as wait_for_stop,
            BedrockEmulator(config, host=host, port=port, verbose=args.verbose) as emulator,
        ):
            print(f"{LISTENING} {emulator.url}", flush=True)
            print(
                f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={emulator.url} AWS_ENDPOINT_URL_BEDROCK={emulator.url}",
                flush=True,
            )
            print(f"  {_describe(config)}", flush=True)
            overrides = ", ".join(map(str, config.lifecycle)) or "none"
            print(f"  lifecycle: the table of {TABLE_DATE}; overrides: {overrides}", flush=True)
            print(f"  agreements: {_describe_agreements(config.agreements)}", flush=True)
            wait_for_stop()
        with contextlib.suppress(OSError):  # a parent that is gone no longer reads our stderr
            print("Bedrock emulator stopped", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _stop_signals() -> Iterator[Callable[[], None]]:
    """Yields a function that blocks until SIGINT or SIGTERM, or end of file on the fd ``PARENT_PIPE_VARIABLE``
    names; restores the previous handlers on exit (further signals are ignored until then, while the server
    stops). No lock in the handler: a handler runs in the main thread, which may hold that very lock (an
    ``Event.set()`` handler deadlocks ``Event.wait()``). The C-level handler writes the signal's number to a
    non-blocking pipe (``signal.set_wakeup_fd``), which the main thread watches with ``select``. A small copy
    of ``local_stack.processes.StopSignals``: the emulator does not depend on the local stack."""
    stops = (signal.SIGINT, signal.SIGTERM)
    caught: list[int] = []  # the Python-level handler only appends (no lock)
    read_fd, write_fd = os.pipe()
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    watched = [read_fd]
    parent = os.environ.get(PARENT_PIPE_VARIABLE, "")
    if parent.isdigit():
        with contextlib.suppress(OSError):  # not open: nothing to watch
            os.fstat(int(parent))
            watched.append(int(parent))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    def wait() -> None:
        while not caught:
            readable, _, _ = select.select(watched, [], [])
            for fd in readable:
                if fd == read_fd:
                    with contextlib.suppress(BlockingIOError):
                        while data := os.read(read_fd, 512):
                            caught.extend(number for number in data if number in stops)
                    continue
                try:
                    data = os.read(fd, 4096)
                except OSError:  # unreadable: stop watching it
                    watched.remove(fd)
                    continue
                if not data:  # end of file: the parent is gone
                    return

    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, on_signal) for signum in stops}
    try:
        yield wait
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: not installed from Python, cannot be put back
                signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(read_fd)
        os.close(write_fd)


def _describe(config: EmulatorConfig) -> str:
    parts = [
        f"{field.name}={value!r}" if field.name != "image_file" else f"image_file={str(value)!r}"
        for field in dataclasses.fields(config)
        if field.name not in {"lifecycle", "agreements"}
        and (value := getattr(config, field.name)) not in (0, 0.0, (), None)
    ]
    return "config: " + (", ".join(parts) or "defaults (no latency, no quota, no faults, no blocked words)")


def _describe_agreements(agreements: Agreements) -> str:
    if agreements == ALL_AGREEMENTS:
        return "every AWS Marketplace model's (all)"
    return ", ".join(agreements) if agreements else "none (a fresh account: CreateFoundationModelAgreement first)"
