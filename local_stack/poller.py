"""A local SQS event source mapping: Lambda's polling semantics in front of the real ``sqs_worker`` handler.

Each of ``max_concurrency`` pollers long-polls the queue, gathers up to ``batch_size`` messages or until the
batching window closes, invokes the function with an SQS event, then deletes the messages the response did
not list in ``batchItemFailures``. Failed messages stay in flight until their visibility timeout expires
(or the worker's own backoff), and the queue's redrive policy moves them to the DLQ after
``maxReceiveCount`` receives — SQS does that, not this poller. A handler error or timeout fails the whole
batch, as in Lambda.

``python -m local_stack.poller --queue-url URL --queue-arn ARN`` runs it with the worker handler in its own
process (the local stack starts it so). Its first stdout line is ``ready <admin url>``: ``GET /stats``,
``POST /resume`` (after ``--paused``), ``POST /duplicate-rate`` (``{"rate": 0.5}``) for tests and benchmarks.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self, cast

import boto3

from local_stack.config import StackConfig
from local_stack.lambda_runtime import LocalFunction, load_handler, serve_until_signalled

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger(__name__)

#: SQS returns at most 10 messages per receive and long-polls at most 20 s.
MAX_RECEIVE = 10
MAX_WAIT_SECONDS = 20


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    deleted: int = 0
    failed: int = 0
    errors: int = 0
    duplicated: int = 0
    invocations: int = 0
    #: Wall-clock times (``time.time()``) of the first ReceiveMessage and of the latest invocation's return.
    first_receive_at: float = 0.0
    last_return_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def mark(self, name: str, *, first: bool = False) -> None:
        with self._lock:
            if not (first and getattr(self, name)):
                setattr(self, name, time.time())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: value for name, value in vars(self).items() if not name.startswith("_")}


class QueuePoller:
    """Feeds batches from one SQS queue to one function, like an event source mapping with
    ``ReportBatchItemFailures``."""

    def __init__(
        self,
        function: LocalFunction,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int = 10,
        batching_window_seconds: float = 0.0,
        max_concurrency: int = 2,
        poll_wait_seconds: int = 2,
        region: str = "us-east-1",
        duplicate_delivery_rate: float = 0.0,
        rng: random.Random | None = None,
        paused: bool = False,
    ) -> None:
        self.function = function
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch_size = batch_size
        self.batching_window_seconds = batching_window_seconds
        self.max_concurrency = max_concurrency
        # Shorter than SQS's 20 s maximum so that stop() returns quickly; still long polling.
        self.poll_wait_seconds = min(poll_wait_seconds, MAX_WAIT_SECONDS)
        self.region = region
        #: Share of batches delivered twice, as SQS's at-least-once delivery may do (for tests and soaks).
        self.duplicate_delivery_rate = duplicate_delivery_rate
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._running = threading.Event()
        if not paused:
            self._running.set()
        self._threads: list[threading.Thread] = []

    def start(self) -> Self:
        for index in range(self.max_concurrency):
            thread = threading.Thread(target=self._run, name=f"poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def resume(self) -> None:
        """Start polling (a poller made with ``paused=True`` waits for this)."""
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake paused threads so they see the stop
        for thread in self._threads:
            thread.join(timeout=self.poll_wait_seconds + 5)

    def _run(self) -> None:
        self._running.wait()
        while not self._stop.is_set():
            try:
                batch = self._gather()
                if batch:
                    self._deliver(batch)
            except Exception:
                if self._stop.is_set():
                    break  # stopping: moto may be gone already (the stack stops every service at once)
                self.stats.add(errors=1)
                logger.exception("poller iteration failed")
                self._stop.wait(1)

    def _receive(self, limit: int, wait_seconds: int) -> list[MessageTypeDef]:
        self.stats.mark("first_receive_at", first=True)
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(limit, MAX_RECEIVE),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _gather(self) -> list[MessageTypeDef]:
        """One batch: the first receive long-polls; later ones fill the batch until the window closes."""
        batch = self._receive(self.batch_size, self.poll_wait_seconds)
        if not batch:
            return []
        deadline = time.monotonic() + self.batching_window_seconds
        while len(batch) < self.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch.extend(self._receive(self.batch_size - len(batch), min(math.ceil(remaining), MAX_WAIT_SECONDS)))
        return batch

    def _deliver(self, batch: list[MessageTypeDef]) -> None:
        event = {"Records": [self._record(message) for message in batch]}
        self.stats.add(batches=1, records=len(batch))
        try:
            if self.duplicate_delivery_rate and self._rng.random() < self.duplicate_delivery_rate:
                self.stats.add(duplicated=len(batch))
                self.function.invoke(event)
            response = self.function.invoke(event)
            failed_ids = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:
            logger.exception("worker invocation failed; the whole batch will be retried")
            self.stats.add(failed=len(batch), errors=1, invocations=1)
            self.stats.mark("last_return_at")
            return
        self.stats.add(invocations=1)
        self.stats.mark("last_return_at")
        done = [message for message in batch if message["MessageId"] not in failed_ids]
        for start in range(0, len(done), MAX_RECEIVE):
            chunk = done[start : start + MAX_RECEIVE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.stats.add(deleted=len(done), failed=len(batch) - len(done))

    def _record(self, message: MessageTypeDef) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "dataType": value["DataType"],
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


# ---- the poller as a service --------------------------------------------------------------------------

WORKER_HANDLER = "sqs_worker.app:lambda_handler"


class _AdminServer(ThreadingHTTPServer):
    daemon_threads = True
    poller: QueuePoller


class _AdminHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._reply(200, self._poller.stats.snapshot())
        else:
            self._reply(404, {"message": f"unknown: GET {self.path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if self.path == "/resume":
            self._poller.resume()
            self._reply(200, {"running": True})
        elif self.path == "/duplicate-rate" and isinstance(body.get("rate"), int | float) and 0 <= body["rate"] <= 1:
            self._poller.duplicate_delivery_rate = float(body["rate"])
            self._reply(200, {"rate": self._poller.duplicate_delivery_rate})
        else:
            self._reply(400, {"message": f"unknown or malformed: POST {self.path}"})

    @property
    def _poller(self) -> QueuePoller:
        return cast("_AdminServer", self.server).poller

    def _reply(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("poller admin: " + format, *args)


def main(argv: Sequence[str] | None = None) -> int:
    """Poll the queue for the worker handler until SIGTERM/SIGINT (the environment configures the handler)."""
    parser = argparse.ArgumentParser(prog="python -m local_stack.poller", description=__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--region", default=StackConfig.region)
    parser.add_argument("--handler", default=WORKER_HANDLER, help="module:function of the Lambda handler")
    parser.add_argument("--batch-size", type=int, default=StackConfig.batch_size)
    parser.add_argument("--batching-window", type=float, default=StackConfig.batching_window_seconds)
    parser.add_argument("--max-concurrency", type=int, default=StackConfig.max_concurrency)
    parser.add_argument(
        "--timeout", type=float, default=StackConfig.worker_timeout_seconds, help="the function's timeout, seconds"
    )
    parser.add_argument("--duplicate-rate", type=float, default=StackConfig.duplicate_delivery_rate)
    parser.add_argument("--paused", action="store_true", help="wait for POST /resume before polling")
    parser.add_argument("--admin-host", default=StackConfig.host)
    parser.add_argument("--admin-port", type=int, default=0)
    args = parser.parse_args(argv)
    handler = load_handler(args.handler)
    function = LocalFunction(
        "imagegen-worker", handler, timeout_seconds=args.timeout, max_concurrency=args.max_concurrency
    )
    poller = QueuePoller(
        function,
        boto3.client("sqs", region_name=args.region),
        args.queue_url,
        args.queue_arn,
        batch_size=args.batch_size,
        batching_window_seconds=args.batching_window,
        max_concurrency=args.max_concurrency,
        region=args.region,
        duplicate_delivery_rate=args.duplicate_rate,
        paused=args.paused,
    ).start()
    admin = _AdminServer((args.admin_host, args.admin_port), _AdminHandler)
    admin.poller = poller
    threading.Thread(target=admin.serve_forever, name="poller-admin", daemon=True).start()
    host, port = admin.server_address[:2]
    try:
        serve_until_signalled(f"ready http://{host!s}:{port}")
    finally:
        poller.stop()
        admin.shutdown()
        admin.server_close()
        function.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
