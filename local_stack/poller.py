"""A local SQS event source mapping: Lambda's polling semantics in front of the real ``sqs_worker`` handler.

Each of ``max_concurrency`` pollers long-polls the queue, gathers up to ``batch_size`` messages or until the
batching window closes, invokes the function with an SQS event, then deletes the messages the response did
not list in ``batchItemFailures``. Failed messages stay in flight until their visibility timeout expires
(or the worker's own backoff), and the queue's redrive policy moves them to the DLQ after
``maxReceiveCount`` receives — SQS does that, not this poller. A handler error or timeout fails the whole
batch, as in Lambda.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from local_stack.lambda_runtime import LocalFunction

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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
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
        batching_window_seconds: float = 1.0,
        max_concurrency: int = 2,
        poll_wait_seconds: int = 2,
        region: str = "us-east-1",
        duplicate_delivery_rate: float = 0.0,
        rng: random.Random | None = None,
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
        self._threads: list[threading.Thread] = []

    def start(self) -> Self:
        for index in range(self.max_concurrency):
            thread = threading.Thread(target=self._run, name=f"poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.poll_wait_seconds + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._gather()
                if batch:
                    self._deliver(batch)
            except Exception:
                self.stats.add(errors=1)
                logger.exception("poller iteration failed")
                self._stop.wait(1)

    def _receive(self, limit: int, wait_seconds: int) -> list[MessageTypeDef]:
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
            self.stats.add(failed=len(batch), errors=1)
            return
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
