"""Queue semantics shared by every consumer of the prompt queue.

A message body is a plain-text prompt (as ``aws sqs send-message --message-body "a cat"`` sends it) or a JSON
object with ``prompt`` and the API's options. Every message is a *job* (``imagegen.jobs``): its id is the
``job_id`` message attribute when ``POST /jobs`` sent it, else its SQS ``MessageId``. Each job ends in exactly one
place, once:

* succeeded: at least one image (PNG + sidecar) under ``generated_images/from_queue/{job_id}-{i}``;
* failed: no image, and the message sent to the DLQ once, with ``error_code`` / ``error_message`` — a permanent
  failure at once, a transient one on the last receive the queue allows (``max_receive_count``); a body too large to
  fit beside its reason goes to S3, and the letter carries a pointer to it (``imagegen.dead_letters``).

A delivery works on a job only while it holds the job's *lease* (``JobStore.claim``, a conditional write), so
concurrent deliveries of one message never both call the model nor end it twice, and it records what it made when
it lets go. A redelivery of an ended job is answered from its record, with no Bedrock call and no second dead letter;
a redelivery of an unfinished one makes only the images still missing (after looking in S3 for those an earlier
attempt stored but could not record).

A transient failure raises (so the caller reports a batch item failure), after pushing the message's visibility
out with exponential backoff so a throttled model is not hammered. A delivery that finds the lease held by another
never changes the message's visibility and never dead-letters it for that reason; on the last allowed receive it
waits (within its time) for the holder to end the job, so the redrive policy cannot move a message that is about to
be generated.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.config import DEFAULT_CLAIM_TTL_SECONDS, DEFAULT_RETRY_BASE_SECONDS
from imagegen.dead_letters import PAYLOAD_SIZE_ATTRIBUTE, fit_dead_letter
from imagegen.errors import DeliveryInProgressError, ImageGenError, InvalidRequestError, StorageError
from imagegen.jobs import (
    AttemptRecord,
    DeadLetter,
    Job,
    JobError,
    JobImage,
    JobStatus,
    JobStore,
    body_digest,
    is_job_id,
)
from imagegen.request import parse_json_body, parse_request
from imagegen.service import GenerationResult, ImageFailure, ImageService
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


#: The message attribute that carries a job id (POST /jobs); without it, the job id is the message id.
JOB_ID_ATTRIBUTE = "job_id"


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """The parts of an SQS record the worker needs."""

    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1
    source_queue_arn: str = ""
    #: The ``job_id`` message attribute (POST /jobs), if any.
    job_id: str = ""
    #: When it was sent (``SentTimestamp``, seconds), the job's ``created_at`` when the worker makes its record.
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class MessageResult:
    outcome: Outcome
    generation: GenerationResult | None = None
    error: ImageGenError | None = None
    job_id: str = ""


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
        jobs: JobStore,
        sqs: SQSClient,
        dead_letter_queue_url: str,
        *,
        retry_base_seconds: int = DEFAULT_RETRY_BASE_SECONDS,
        max_receive_count: int = 0,
        claim_ttl_seconds: int = DEFAULT_CLAIM_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
        pause: Callable[[float], object] = time.sleep,
    ) -> None:
        self.service = service
        self.jobs = jobs
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.retry_base_seconds = retry_base_seconds
        #: The queue's redrive ``maxReceiveCount`` (0: unknown, leave the last word to the redrive policy).
        self.max_receive_count = max_receive_count
        #: How long a lease blocks other deliveries: at least the function timeout (Lambda's maximum: 900 s).
        self.claim_ttl_seconds = claim_ttl_seconds
        self._clock = clock
        self._pause = pause
        self._queue_urls: dict[str, str] = {}

    def process(self, message: QueueMessage, *, deadline: float | None = None) -> MessageResult:
        """Generate or dead-letter ``message``'s job (or answer from its record); raise to retry it later.

        ``deadline`` (``time.time()``) bounds how long the last allowed receive waits for another delivery."""
        job_id = message.job_id.lower() if is_job_id(message.job_id) else message.message_id
        result = self._attempt(message, job_id)
        if result is _FOREIGN and job_id != message.message_id:
            # The job_id attribute names another request's job (same id, another body): this message is a job of
            # its own, under its message id.
            logger.warning("message %s names job %s of another request", message.message_id, job_id)
            job_id = message.message_id
            result = self._attempt(message, job_id)
        if isinstance(result, MessageResult):
            return result
        return self._held_by_another(message, job_id, deadline)

    def _attempt(self, message: QueueMessage, job_id: str) -> MessageResult | object:
        """Work on the job if its lease is free: a result; ``_HELD`` while another delivery holds it."""
        lease = f"{message.message_id}/{uuid.uuid4()}"
        claim = self.jobs.claim(
            job_id,
            lease_owner=lease,
            lease_seconds=self.claim_ttl_seconds,
            now=self._clock(),
            created_at=message.sent_at,
            request_sha256=body_digest(message.body),
        )
        if claim.foreign:
            return _FOREIGN
        if claim.claimed and claim.job is not None:
            try:
                return self._work(message, claim.job, lease)
            except BaseException:
                with contextlib.suppress(ImageGenError):  # best effort: the lease expires anyway
                    self.jobs.release(job_id, lease_owner=lease)
                raise
        ended = self._ended(message, claim.job)
        return ended if ended is not None else _HELD

    def _work(self, message: QueueMessage, job: Job, lease: str) -> MessageResult:
        """Holding the lease: make the job's missing images, then record the attempt."""
        done = {image.index for image in job.images} | {failure.index for failure in job.failures}
        try:
            prepared = self.service.prepare(payload_from_body(message.body), seed_key=job.job_id)
            wanted = [index for index in range(prepared.image_count) if index not in done]
            result = self.service.generate_images(
                prepared,
                stem=job.job_id,
                source=job.source,  # "api" for a job submitted with POST /jobs: the gallery says so too
                folder=QUEUE_FOLDER,
                indexes=wanted,
                recover=job.attempts > 1,
                cautious=job.last_error is not None and job.last_error.code == "Throttled",
            )
        except ImageGenError as error:  # nothing was made: the request, the chain or storage failed as a whole
            if error.transient and not self._last_attempt(message):
                self._record(job, lease, AttemptRecord(images=job.images, failures=job.failures,
                                                       last_error=_job_error(error)))  # fmt: skip
                self._delay_retry(message)
                raise
            if job.images:  # an earlier attempt made some: the job succeeded with those
                missing = [i for i in range(_requested(message.body)) if i not in done]
                failures = [*job.failures, *(_job_error(error, message, index) for index in missing)]
                return self._succeed(message, job, lease, GenerationResult(job.model, job.job_id, []), failures)
            self._fail(message, job, lease, _job_error(error, message))
            return MessageResult(Outcome.DEAD_LETTERED, error=error, job_id=job.job_id)
        pending = [failure for failure in result.failures if failure.error.transient]
        final = [_failure(failure) for failure in result.failures if not failure.error.transient]
        if pending and not self._last_attempt(message):
            images = [*job.images, *map(JobImage.from_stored, result.images)]
            self._record(job, lease, AttemptRecord(images=images, failures=[*job.failures, *final],
                                                   model=result.model_id, region=result.region,
                                                   last_error=_job_error(pending[0].error)))  # fmt: skip
            self._delay_retry(message)
            raise pending[0].error
        final += [_failure(failure, message) for failure in pending]  # the last receive: they are given up
        if job.images or result.images:
            return self._succeed(message, job, lease, result, [*job.failures, *final])
        first = result.failures[0] if result.failures else None
        reason = _failure(first, message) if first else job.failures[0] if job.failures else None
        assert reason is not None, "an attempt that made no image has a failure"
        self._fail(message, job, lease, reason)
        return MessageResult(Outcome.DEAD_LETTERED, error=first.error if first else None, job_id=job.job_id)

    def _succeed(
        self, message: QueueMessage, job: Job, lease: str, result: GenerationResult, failures: list[JobError]
    ) -> MessageResult:
        images = [*job.images, *map(JobImage.from_stored, result.images)]
        record = AttemptRecord(images=images, failures=failures, model=result.model_id or job.model,
                               region=result.region or job.region, status=JobStatus.SUCCEEDED)  # fmt: skip
        self._record(job, lease, record)
        return MessageResult(Outcome.GENERATED, result, job_id=job.job_id)

    def _record(self, job: Job, lease: str, record: AttemptRecord) -> None:
        if not self.jobs.record(job.job_id, lease_owner=lease, attempt=record, now=self._clock()):
            # Our lease ran out and another delivery took the job: it finds what we stored (recover) and ends it.
            raise DeliveryInProgressError(
                "Another delivery of this message took it over.", detail=f"lease of {job.job_id} lost"
            )

    def _ended(self, message: QueueMessage, job: Job | None) -> MessageResult | None:
        """The job's recorded ending, if any. A dead letter whose send was never confirmed is sent again, but only
        by a delivery that takes the lease: its sender is gone."""
        if job is None or not job.status.ended:
            return None
        if job.status is JobStatus.SUCCEEDED:
            images = [self.service.store.stored(image.key, image.seed, index=image.index, width=image.width,
                                                height=image.height) for image in job.images]  # fmt: skip
            generation = GenerationResult(job.model, job.job_id, images, reused=True, region=job.region)
            return MessageResult(Outcome.ALREADY_DONE, generation, job_id=job.job_id)
        if job.dead_letter is not DeadLetter.PENDING:
            return MessageResult(Outcome.ALREADY_DONE, job_id=job.job_id)  # dead-lettered before: nothing to do
        lease = f"{message.message_id}/{uuid.uuid4()}"
        taken = self.jobs.claim_dead_letter(job.job_id, lease_owner=lease, lease_seconds=self.claim_ttl_seconds,
                                            now=self._clock())  # fmt: skip
        if taken is None:
            return None  # its sender still holds the lease
        assert taken.error is not None
        self._send_dead_letter(message, taken, lease, taken.error)
        return MessageResult(Outcome.DEAD_LETTERED, job_id=job.job_id)

    def _held_by_another(self, message: QueueMessage, job_id: str, deadline: float | None) -> MessageResult:
        """Another delivery holds the lease. Leave the visibility as it is (shortening it only brings the message
        back sooner, spending receives). On the last allowed receive, wait (until ``deadline``) for the holder's
        ending, or take the lease if the holder lets go: failing now would let the redrive policy move the message
        without its reason, or while it is being made."""
        if self._last_attempt(message) and deadline is not None:
            while self._clock() < deadline:
                self._pause(min(1.0, max(deadline - self._clock(), 0.0)))
                ended = self._ended(message, self.jobs.get(job_id))
                if ended is not None:
                    return ended
                # The holder may have given up (a transient failure releases the lease): then this, the last
                # delivery, ends the job itself.
                result = self._attempt(message, job_id)
                if isinstance(result, MessageResult):
                    return result
        raise DeliveryInProgressError(
            "Another delivery of this message is being processed.", detail=f"job {job_id} is leased"
        )

    def _last_attempt(self, message: QueueMessage) -> bool:
        return bool(self.max_receive_count) and message.receive_count >= self.max_receive_count

    def _fail(self, message: QueueMessage, job: Job, lease: str, reason: JobError) -> None:
        """End the job as failed and send the message to the DLQ with its reason, once: the ending is recorded
        first (keeping the lease), so a second attempt finds it; the send is then confirmed. Raises if the send
        fails (the lease is let go), so nothing is lost: the retry sends it."""
        record = AttemptRecord(images=job.images, failures=job.failures, status=JobStatus.FAILED, error=reason,
                               keep_lease=True, dead_letter=DeadLetter.PENDING)  # fmt: skip
        self._record(job, lease, record)
        self._send_dead_letter(message, job, lease, reason)

    def _send_dead_letter(self, message: QueueMessage, job: Job, lease: str, reason: JobError) -> None:
        """Send the dead letter of ``job`` (holding its lease), then record it sent."""
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            "error_code": _text(reason.code),
            "error_message": _text(reason.message),
            "error_detail": _text(reason.detail or reason.message),
            "source_message_id": _text(message.message_id),
            "job_id": _text(job.job_id),
            "receive_count": {"DataType": "Number", "StringValue": str(message.receive_count)},
        }
        if message.source_queue_arn:
            attributes["source_queue_arn"] = _text(message.source_queue_arn)
        try:
            body, attributes = fit_dead_letter(
                message.body or "(empty)",
                attributes,
                job_id=job.job_id,
                store=self.service.store,
                limit=self.service.settings.dead_letter_max_message_bytes,
                text=_text,
            )
            try:
                self.sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=body,
                                      MessageAttributes=attributes)  # fmt: skip
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _REJECTED_CONTENT:
                    raise
                # The reason must never block the dead letter: send the bare minimum SQS cannot refuse (and the
                # pointer's size attribute, without which the Extended Client would not follow the pointer).
                logger.warning("DLQ refused the attributes of %s (%s); sending the code only", job.job_id, exc)
                minimal = {key: attributes[key] for key in _MINIMAL_ATTRIBUTES if key in attributes}
                self.sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=body, MessageAttributes=minimal)
        except BaseException:
            with contextlib.suppress(ImageGenError):  # let a retry take the lease and send it
                self.jobs.release(job.job_id, lease_owner=lease)
            raise
        try:
            self.jobs.dead_letter_sent(job.job_id, lease_owner=lease, now=self._clock())
        except StorageError as error:
            # Sent, but not recorded: report success all the same, so the message is deleted and no redelivery
            # sends it again (the record stays "pending", which only a redelivery reads).
            logger.warning("dead letter of %s sent but not recorded: %s", job.job_id, error.detail)

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


#: What ``_attempt`` returns when it cannot work on the job: another delivery holds it, or it is another
#: request's.
_HELD, _FOREIGN = object(), object()


def _job_error(error: ImageGenError, message: QueueMessage | None = None, index: int | None = None) -> JobError:
    return JobError.of(error, index, gave_up_after=message.receive_count if message else 0)


def _failure(failure: ImageFailure, message: QueueMessage | None = None) -> JobError:
    return _job_error(failure.error, message, failure.index)


def _requested(body: str) -> int:
    """How many images a message asks for (1 when its body cannot say)."""
    try:
        return parse_request(payload_from_body(body)).number_of_images or 1
    except InvalidRequestError:
        return 1


#: SQS error codes for a message or attribute it will not take, whatever the retries.
_REJECTED_CONTENT = {"InvalidMessageContents", "InvalidParameterValue", "InvalidAttributeValue"}

#: What the fallback for refused attributes keeps: the code, the ids, and the pointer's size attribute if any.
_MINIMAL_ATTRIBUTES = ("error_code", "source_message_id", "job_id", PAYLOAD_SIZE_ATTRIBUTE)


#: Characters SQS accepts in message bodies and attribute values (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
#: #x10000-#x10FFFF): https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
def _sqs_char(char: str) -> str:
    ok = char in "\t\n\r" or " " <= char <= "\ud7ff" or "\ue000" <= char <= "\ufffd" or char >= "\U00010000"
    return char if ok else "\ufffd"


def _text(value: str) -> MessageAttributeValueTypeDef:
    """A string attribute SQS accepts: characters outside its set become U+FFFD; at most 1,024 characters."""
    clean = "".join(map(_sqs_char, (value or "-")[:MAX_ATTRIBUTE_CHARS]))
    return {"DataType": "String", "StringValue": clean}
