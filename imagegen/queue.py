"""Queue semantics shared by every consumer of the prompt queue.

A message body is a plain-text prompt (as ``aws sqs send-message --message-body "a cat"`` sends it) or a
JSON object with ``prompt`` and the API's options. Each message ends in exactly one place:

* generated: PNG(s) and sidecar(s) under ``generated_images/from_queue/{message_id}-{i}``;
* dead-lettered: sent to the DLQ, once, with ``error_code`` / ``error_message`` — a permanent failure at
  once, a transient one on the last receive the queue allows (``max_receive_count``).

Every ending happens while holding the message's *claim* (an S3 conditional write, ``ImageStore.claim``), so
concurrent deliveries of one message never both call the model nor end it twice; the ending is then recorded
once, explicitly, in the message's *outcome* (``ImageStore.write_outcome``, create-only). A redelivery of an
ended message is answered from its outcome, with no Bedrock call and no second dead letter.

A transient failure raises (so the caller reports a batch item failure), after pushing the message's
visibility out with exponential backoff so a throttled model is not hammered. A delivery that finds the claim
held by another never changes the message's visibility and never dead-letters it for that reason; on the last
allowed receive it waits (within its time) for the holder to record the ending, so the redrive policy cannot
move a message that is about to be generated.
"""

from __future__ import annotations

import enum
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import DeliveryInProgressError, ImageGenError, InvalidRequestError
from imagegen.request import parse_json_body
from imagegen.service import GenerationResult, ImageService
from imagegen.storage import QUEUE_FOLDER, ImageStore

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
    """A JSON object body is a full request; any other body is the prompt itself (a byte-order mark ignored)."""
    text = body.removeprefix("\ufeff")
    if text.lstrip().startswith("{"):
        try:
            return parse_json_body(text)
        except InvalidRequestError as error:
            if error.field == "body":
                rule = error.rule.replace("must be valid JSON", "is not valid JSON")
                raise InvalidRequestError("body", f"looks like JSON but {rule}") from None
            raise
    return {"prompt": text}


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
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], object] = time.sleep,
    ) -> None:
        self.service = service
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.retry_base_seconds = retry_base_seconds
        #: The queue's redrive ``maxReceiveCount`` (0: unknown, leave the last word to the redrive policy).
        self.max_receive_count = max_receive_count
        #: How long a claim blocks other deliveries: at least the function timeout (Lambda's maximum: 900 s).
        self.claim_ttl_seconds = claim_ttl_seconds
        self._clock = clock
        self._pause = pause
        self._queue_urls: dict[str, str] = {}

    @property
    def store(self) -> ImageStore:
        return self.service.store

    def process(self, message: QueueMessage, *, deadline: float | None = None) -> MessageResult:
        """Generate or dead-letter ``message`` (or answer from its recorded ending); raise to retry it later.

        ``deadline`` (``time.time()``) bounds how long the last allowed receive waits for another delivery."""
        ended = self._ended(message)
        if ended is not None:
            return ended
        result = self._with_claim(message)
        return result if result is not None else self._held_by_another(message, deadline)

    def _with_claim(self, message: QueueMessage) -> MessageResult | None:
        """Process ``message`` holding its claim; ``None`` when another delivery holds it."""
        owner = f"{message.message_id}/{uuid.uuid4()}"
        etag = self.store.claim(stem=message.message_id, owner=owner, ttl_seconds=self.claim_ttl_seconds,
                                folder=QUEUE_FOLDER)  # fmt: skip
        if etag is None:
            return None
        try:
            return self._process_claimed(message)
        finally:
            self.store.release(stem=message.message_id, etag=etag, folder=QUEUE_FOLDER)

    def _process_claimed(self, message: QueueMessage) -> MessageResult:
        ended = self._ended(message, resend=True)  # another delivery may have ended it meanwhile
        if ended is not None:
            return ended
        try:
            prepared = self.service.prepare(payload_from_body(message.body))
            result = self.service.generate(prepared, request_id=message.message_id, source="queue", folder=QUEUE_FOLDER)
        except ImageGenError as error:
            if error.transient and not self._last_attempt(message):
                self._delay_retry(message)
                raise
            # Permanent, or transient on the last receive SQS allows: dead-letter it ourselves, with the
            # reason, rather than let the redrive policy move it there without one.
            self.dead_letter(message, error)
            return MessageResult(Outcome.DEAD_LETTERED, error=error)
        record = {
            "outcome": Outcome.GENERATED.value,
            "images": [{"key": image.key, "seed": image.seed} for image in result.images],
            "model": result.model_id,
            "region": result.region,
            "at": self._clock(),
        }
        self.store.write_outcome(stem=message.message_id, record=record, folder=QUEUE_FOLDER)
        return MessageResult(Outcome.GENERATED, result)

    def _ended(self, message: QueueMessage, *, resend: bool = False) -> MessageResult | None:
        """The recorded ending, if any. A dead letter whose send was never confirmed is sent again, but only by
        a delivery holding the claim (``resend``): its sender is gone."""
        found = self.store.read_outcome(stem=message.message_id, folder=QUEUE_FOLDER)
        if found is None:
            return None
        record, etag = found
        if record.get("outcome") == Outcome.GENERATED.value:
            images = self.store.stored(record.get("images", []))
            generation = GenerationResult(str(record.get("model", "")), message.message_id, images, reused=True,
                                          region=str(record.get("region", "")))  # fmt: skip
            return MessageResult(Outcome.ALREADY_DONE, generation)
        if record.get("sent"):
            return MessageResult(Outcome.ALREADY_DONE)  # dead-lettered before: nothing more to do
        if not resend:
            return None  # its send was never confirmed: whoever takes the claim sends it
        self._send_dead_letter(message, record)
        self.store.write_outcome(stem=message.message_id, record={**record, "sent": True}, folder=QUEUE_FOLDER,
                                 replace_etag=etag)  # fmt: skip
        return MessageResult(Outcome.DEAD_LETTERED)

    def _held_by_another(self, message: QueueMessage, deadline: float | None) -> MessageResult:
        """Another delivery holds the claim. Leave the visibility as it is (shortening it only brings the message
        back sooner, spending receives). On the last allowed receive, wait (until ``deadline``) for the holder's
        ending, or take the claim if the holder lets go: failing now would let the redrive policy move the message
        without its reason, or while it is being made."""
        if self._last_attempt(message) and deadline is not None:
            while self._clock() < deadline:
                self._pause(min(1.0, max(deadline - self._clock(), 0.0)))
                ended = self._ended(message)
                if ended is not None:
                    return ended
                # The holder may have given up (a transient failure releases the claim): then this, the last
                # delivery, ends the message itself.
                result = self._with_claim(message)
                if result is not None:
                    return result
        raise DeliveryInProgressError(
            "Another delivery of this message is being processed.", detail=f"claim held for {message.message_id}"
        )

    def _last_attempt(self, message: QueueMessage) -> bool:
        return bool(self.max_receive_count) and message.receive_count >= self.max_receive_count

    def dead_letter(self, message: QueueMessage, error: ImageGenError) -> None:
        """Send ``message`` to the DLQ with its reason, once: the outcome is recorded first (create-only), so a
        second attempt finds the first. Raises if the send fails, so nothing is lost (a retry sends it)."""
        reason = str(error) if isinstance(error, InvalidRequestError) else error.public_message
        if error.transient:
            reason = f"gave up after {message.receive_count} attempts: {reason}"
        record = {
            "outcome": Outcome.DEAD_LETTERED.value,
            "error_code": error.code,
            "error_message": reason,
            "error_detail": error.detail,
            "receive_count": message.receive_count,
            "sent": False,
            "at": self._clock(),
        }
        etag = self.store.write_outcome(stem=message.message_id, record=record, folder=QUEUE_FOLDER)
        if etag is None:
            return  # ended by another delivery meanwhile
        self._send_dead_letter(message, record)
        self.store.write_outcome(stem=message.message_id, record={**record, "sent": True}, folder=QUEUE_FOLDER,
                                 replace_etag=etag)  # fmt: skip

    def _send_dead_letter(self, message: QueueMessage, record: Mapping[str, Any]) -> None:
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "error_code": _text(str(record.get("error_code", ""))),
            "error_message": _text(str(record.get("error_message", ""))),
            "error_detail": _text(str(record.get("error_detail", ""))),
            "source_message_id": _text(message.message_id),
            "receive_count": {"DataType": "Number", "StringValue": str(int(record.get("receive_count", 1)))},
        }
        if message.source_queue_arn:
            attributes["source_queue_arn"] = _text(message.source_queue_arn)
        body = message.body or "(empty)"
        try:
            self.sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=body, MessageAttributes=attributes)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _REJECTED_CONTENT:
                raise
            # The reason must never block the dead letter: send the bare minimum SQS cannot refuse.
            logger.warning("DLQ refused the attributes of %s (%s); sending the code only", message.message_id, exc)
            minimal = {key: attributes[key] for key in ("error_code", "source_message_id")}
            self.sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=body, MessageAttributes=minimal)

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


#: SQS error codes for a message or attribute it will not take, whatever the retries.
_REJECTED_CONTENT = {"InvalidMessageContents", "InvalidParameterValue", "InvalidAttributeValue"}


#: Characters SQS accepts in message bodies and attribute values (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
#: #x10000-#x10FFFF): https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
def _sqs_char(char: str) -> str:
    ok = char in "\t\n\r" or " " <= char <= "\ud7ff" or "\ue000" <= char <= "\ufffd" or char >= "\U00010000"
    return char if ok else "\ufffd"


def _text(value: str) -> MessageAttributeValueTypeDef:
    """A string attribute SQS accepts: characters outside its set become U+FFFD; at most 1,024 characters."""
    clean = "".join(map(_sqs_char, (value or "-")[:MAX_ATTRIBUTE_CHARS]))
    return {"DataType": "String", "StringValue": clean}
