"""Runs in a fresh ``python -S`` process on the Lambda-like path (see ``bench.lambda_env``); standard library only.

``_child.py cold TARGET OUT``: import the handler module and build what it builds once per container, timed.
``_child.py memory TARGET OUT``: the same, then one invocation against the running local stack; peak RSS; then
the handler's public ``reset()`` (drops its per-container objects and the worker's record threads) before exit.

TARGET: ``api`` | ``worker`` | ``baseline_api`` | ``baseline_worker``. OUT: where to write the JSON result.
With ``-X importtime``, the import lines of the measured part are framed by marker lines on stderr.
"""

# What the Lambda runtime's bootstrap has imported before it imports the handler: these are not part of
# the handler's init time there either.
from __future__ import annotations

import decimal  # noqa: F401
import http.client  # noqa: F401
import json
import logging  # noqa: F401
import os
import resource
import socket  # noqa: F401
import sys
import time
import traceback  # noqa: F401
import uuid
import warnings  # noqa: F401

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing here would hide its cost from the handlers
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: What a handler imports on its first invocation instead of at init (Powertools' router and the API's jobs
#: modules; the worker's batch processor and asyncio): timed after init, in ``deferred_ms``, so that the figures
#: show where that cost went.
DEFERRED = {
    "api": ("aws_lambda_powertools.event_handler", "imagegen.jobs_service"),
    "worker": ("aws_lambda_powertools.utilities.batch",),
}
BEGIN, END = "----- bench: measured imports begin -----", "----- bench: measured imports end -----"
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


class Context:
    """The attributes of Lambda's context object that the handlers and Powertools read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def api_event(body: str) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    return {
        "resource": "/generate-image",
        "path": "/generate-image",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/generate-image",
            "httpMethod": "POST",
            "path": "/Prod/generate-image",
            "stage": "Prod",
            "requestId": request_id,
            "accountId": "000000000000",
            "apiId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def sqs_event(count: int) -> dict[str, Any]:
    records = []
    for index in range(count):
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench-receipt-handle",
                "body": f"a memory benchmark landscape number {index}",
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:imagegen-prompts",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def _import(name: str) -> Any:
    # __import__, not importlib.import_module: only the former goes through the import machinery that
    # ``-X importtime`` reports, so the handler module shows up with its imports nested under it.
    __import__(name)
    return sys.modules[name]


def load(target: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import the target's module and build its per-container objects; returns the handler."""
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    if target == "api":
        app = _import("generate_image.app")
        app.service()
        handler = app.lambda_handler
    elif target == "worker":
        app = _import("sqs_worker.app")
        app.worker()  # its record thread pool is made on the first invocation (and starts no thread before)
        handler = app.lambda_handler
    else:
        module = _import("baseline_handlers")
        handler = module.lambda_handler if target == "baseline_api" else module.worker_handler
    return handler


def maxrss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``VmHWM`` of the process's own address space: ``ru_maxrss`` also carries the RSS the parent had when it
    forked (Linux keeps the larger of the pre-exec and the new address space's peak), which here is the
    benchmark process with the whole local stack in it.
    """
    try:
        with open("/proc/self/status") as status:  # noqa: PTH123 - no pathlib before measuring
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    mode, target, out = sys.argv[1:4]
    result: dict[str, Any] = {"mode": mode, "target": target, "rss_before_import_mb": round(maxrss_mb(), 1)}
    os.write(2, (BEGIN + "\n").encode())
    started = time.perf_counter()
    handler = load(target)
    loaded = time.perf_counter()
    os.write(2, (END + "\n").encode())
    result["init_ms"] = round((loaded - started) * 1000, 2)
    result["rss_after_init_mb"] = round(maxrss_mb(), 1)
    if mode == "cold" and target in DEFERRED:
        result["modules"] = len(sys.modules)  # at the end of init
        deferred_started = time.perf_counter()
        for name in DEFERRED[target]:
            _import(name)
        result["deferred_ms"] = round((time.perf_counter() - deferred_started) * 1000, 2)
    if mode == "memory":
        os.environ["_X_AMZN_TRACE_ID"] = TRACE_HEADER
        if target in {"api", "baseline_api"}:
            event = api_event(json.dumps({"prompt": "a memory benchmark landscape", "seed": 5}))
        else:
            event = sqs_event(10)
        invoke_started = time.perf_counter()
        reply = handler(event, Context(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")))
        result["invoke_ms"] = round((time.perf_counter() - invoke_started) * 1000, 1)
        result["reply"] = {k: v for k, v in reply.items() if k != "body"}
        if isinstance(reply.get("body"), str):
            result["reply"]["body_chars"] = len(reply["body"])
        result["rss_peak_mb"] = round(maxrss_mb(), 1)
        if target in {"api", "worker"}:
            sys.modules[f"{'generate_image' if target == 'api' else 'sqs_worker'}.app"].reset()
    result.setdefault("modules", len(sys.modules))
    with open(out, "w") as handle:  # noqa: PTH123
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
