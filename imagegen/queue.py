"""Queue semantics shared by every consumer of the prompt queue.

A message body is a plain-text prompt (as ``aws sqs send-message --message-body "a cat"`` sends it) or a
JSON object with ``prompt`` and the API's options. Each message ends in exactly one of three ways:

* generated: PNG(s) and sidecar(s) under ``generated_images/from_queue/{message_id}-{i}``, with the model
  called only while holding the message's claim (see ``ImageStore.claim``);
* already done: a redelivery of a message whose images exist, answered with no Bedrock call;
* dead-lettered: a permanent failure, sent to the DLQ at once with ``error_code`` / ``error_message``.

A transient failure raises (so the caller reports a batch item failure), after pushing the message's
visibility out with exponential backoff so a throttled model is not hammered. On the last receive the
queue allows (``max_receive_count``), a transient failure is dead-lettered with its reason too.
"""

from __future__ import annotations

import enum
import json
import logging
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import DeliveryInProgressError, ImageGenError, InvalidRequestError
from imagegen.service import GenerationResult, ImageService, PreparedRequest
from imagegen.storage import QUEUE_FOLDER

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

logger = logging.getLogger(__name__)

#: SQS caps a message's visibility timeout at 12 hours; we never back off longer than 15 minutes.
MAX_BACKOFF_SECONDS = 900
MAX_ATTRIBUTE_CHARS = 1024


class Outcome(enum.Enum):
    GENERATED = "generated"
    ALREADY_DONE = "already_done"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """The parts of an SQS record the worker needs."""

    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1
    source_queue_arn: str = ""


@dataclass(frozen=True, slots=True)
class MessageResult:
    outcome: Outcome
    generation: GenerationResult | None = None
    error: ImageGenError | None = None


def payload_from_body(body: str) -> object:
    """A JSON object body is a full request; any other body is the prompt itself."""
    if body.lstrip().startswith("{"):
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError("body", f"looks like JSON but is not valid JSON ({exc.msg})") from None
    return {"prompt": body}


def make_sqs_client() -> SQSClient:
    return boto3.client("sqs", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))


def backoff_seconds(receive_count: int, base_seconds: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with up to 20 % jitter: base, 2*base, 4*base, ... capped at 15 minutes."""
    delay = min(base_seconds * 2 ** max(receive_count - 1, 0), MAX_BACKOFF_SECONDS)
    jitter = (rng or random.Random()).uniform(0, 0.2 * delay)  # noqa: S311 - jitter, not security
    return int(min(delay + jitter, MAX_BACKOFF_SECONDS))


class QueueWorker:
    """Processes one queue message at a time; safe to call from several threads at once."""

    def __init__(
        self,
        service: ImageService,
        sqs: SQSClient,
        dead_letter_queue_url: str,
        *,
        retry_base_seconds: int = 30,
        max_receive_count: int = 0,
        claim_ttl_seconds: int = 900,
    ) -> None:
        self.service = service
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.retry_base_seconds = retry_base_seconds
        #: The queue's redrive ``maxReceiveCount`` (0: unknown, leave the last word to the redrive policy).
        self.max_receive_count = max_receive_count
        #: How long a claim blocks other deliveries: at least the function timeout (Lambda's maximum: 900 s).
        self.claim_ttl_seconds = claim_ttl_seconds
        self._queue_urls: dict[str, str] = {}

    def process(self, message: QueueMessage) -> MessageResult:
        """Generate, skip or dead-letter ``message``; raise when it should be retried later."""
        try:
            prepared = self.service.prepare(payload_from_body(message.body))
            done = self.service.store.find_complete(
                stem=message.message_id, count=prepared.image_count, folder=QUEUE_FOLDER
            )
            if done is not None:
                return MessageResult(
                    Outcome.ALREADY_DONE,
                    GenerationResult("", message.message_id, done, reused=True),
                )
            return MessageResult(Outcome.GENERATED, self._generate_claimed(message, prepared))
        except ImageGenError as error:
            if error.transient and not self._last_attempt(message):
                self._delay_retry(message)
                raise
            # Permanent, or transient on the last receive SQS allows: dead-letter it ourselves, with the
            # reason, rather than let the redrive policy move it there without one.
            self.dead_letter(message, error)
            return MessageResult(Outcome.DEAD_LETTERED, error=error)

    def _generate_claimed(self, message: QueueMessage, prepared: PreparedRequest) -> GenerationResult:
        """Call the model only while holding the message's claim, so concurrent duplicates pay once."""
        store = self.service.store
        owner = f"{message.message_id}/{uuid.uuid4()}"
        etag = store.claim(
            stem=message.message_id, owner=owner, ttl_seconds=self.claim_ttl_seconds, folder=QUEUE_FOLDER
        )
        if etag is None:
            raise DeliveryInProgressError(
                "Another delivery of this message is being processed.", detail=f"claim held for {message.message_id}"
            )
        try:
            return self.service.generate(prepared, request_id=message.message_id, source="queue", folder=QUEUE_FOLDER)
        except BaseException:
            store.release(stem=message.message_id, etag=etag, folder=QUEUE_FOLDER)
            raise

    def _last_attempt(self, message: QueueMessage) -> bool:
        return bool(self.max_receive_count) and message.receive_count >= self.max_receive_count

    def dead_letter(self, message: QueueMessage, error: ImageGenError) -> None:
        """Send ``message`` to the DLQ with its reason. Raises if that fails, so nothing is lost."""
        reason = str(error) if isinstance(error, InvalidRequestError) else error.public_message
        if error.transient:
            reason = f"gave up after {message.receive_count} attempts: {reason}"
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "error_code": _text(error.code),
            "error_message": _text(reason),
            "error_detail": _text(error.detail),
            "source_message_id": _text(message.message_id),
            "receive_count": {"DataType": "Number", "StringValue": str(message.receive_count)},
        }
        if message.source_queue_arn:
            attributes["source_queue_arn"] = _text(message.source_queue_arn)
        self.sqs.send_message(
            QueueUrl=self.dead_letter_queue_url, MessageBody=message.body or "(empty)", MessageAttributes=attributes
        )

    def _delay_retry(self, message: QueueMessage) -> None:
        """Best effort: if this fails, the queue's own visibility timeout still brings the message back."""
        if not (message.receipt_handle and message.source_queue_arn):
            return
        delay = backoff_seconds(message.receive_count, self.retry_base_seconds)
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self._queue_url(message.source_queue_arn),
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=delay,
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not delay retry of %s: %s", message.message_id, exc)

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self._queue_urls[queue_arn] = url
        return self._queue_urls[queue_arn]


def _text(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": (value or "-")[:MAX_ATTRIBUTE_CHARS]}
