"""Just enough of the Lambda runtime to call a handler: a context object, a timeout, loading by name, and a
service process's life (ready line, stop on a signal)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from local_stack.processes import PARENT_GONE, STOP_TIMEOUT_SECONDS, StopSignals, parent_pipe_fd

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class InvocationTimeout(Exception):
    """The handler did not return within its timeout."""


@dataclass
class LocalLambdaContext:
    """Mirrors the attributes of ``awslambdaric``'s context that Powertools reads."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """Runs a handler like Lambda does: one event at a time per call, with a hard timeout."""

    def __init__(self, name: str, handler: Handler, *, timeout_seconds: float, max_concurrency: int = 10) -> None:
        self.name = name
        self.handler = handler
        self.timeout_seconds = timeout_seconds
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=name)

    def invoke(self, event: dict[str, Any], timeout_seconds: float | None = None) -> dict[str, Any]:
        """Return the handler's result; raise ``InvocationTimeout`` or the handler's own exception."""
        timeout = timeout_seconds or self.timeout_seconds
        context = LocalLambdaContext(function_name=self.name, timeout_seconds=timeout)
        future = self._pool.submit(self.handler, event, context)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            # Like a Lambda timeout, the caller gives up; the thread finishes on its own.
            raise InvocationTimeout(f"{self.name} timed out after {timeout:g} s") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def load_handler(spec: str) -> Handler:
    """The handler ``module:function`` names, imported now (after the environment is set, as Lambda does)."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"a handler is module:function, got {spec!r}")
    handler: Handler = getattr(importlib.import_module(module_name), function_name)
    return handler


def serve_until_signalled(ready_line: str) -> None:
    """Print the ready line (the local stack reads it), then block until SIGTERM or SIGINT, or until the stack
    that started this service is gone (end of file on the pipe ``IMAGEGEN_PARENT_PIPE_FD`` names), whichever
    comes first. Further SIGTERMs and SIGINTs are then ignored while the caller cleans up: the stack kills a
    service that takes longer than ``STOP_TIMEOUT_SECONDS``, and an orphan exits by itself after as long."""
    with StopSignals(parent_fd=parent_pipe_fd(), restore_handlers=False) as stop:
        print(ready_line, flush=True)
        if stop.wait() == PARENT_GONE:
            # Nobody is left to SIGKILL this process should its cleanup hang: it does so itself.
            watchdog = threading.Timer(STOP_TIMEOUT_SECONDS, os._exit, (1,))
            watchdog.daemon = True
            watchdog.start()
            with contextlib.suppress(OSError):  # whoever read our stderr is gone too
                print(f"stopping: {PARENT_GONE}", file=sys.stderr, flush=True)
