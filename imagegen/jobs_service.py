"""What the API does with jobs: submit one to the queue (``POST /jobs``), run a synchronous request as one
(``POST /generate-image``), and show one (``GET /jobs/{job_id}``).

Submitting validates the request against the serving model first (a bad body is a 400 and nothing is queued),
then writes the queued record, then sends the request to the prompt queue with the job id as a message attribute;
the worker does the work. With an ``Idempotency-Key``, the same key and body within 24 hours is the same job: every
step is idempotent, so a retry after any failure completes what the first request started, and never sends a
second message once the first is known sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import (
    ConfigurationError,
    IdempotencyKeyMismatchError,
    ImageGenError,
    JobNotFoundError,
    StorageError,
)
from imagegen.jobs import AttemptRecord, Job, JobError, JobImage, JobStatus, JobStore, body_digest, canonical_body
from imagegen.queue import JOB_ID_ATTRIBUTE
from imagegen.service import GenerationResult, ImageService, PreparedRequest

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    #: False when an Idempotency-Key found an earlier submission.
    created: bool


class JobService:
    """The API's side of jobs; the worker's side is ``imagegen.queue.QueueWorker``."""

    def __init__(
        self,
        service: ImageService,
        jobs: JobStore | None,
        sqs: SQSClient | None = None,
        queue_url: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.jobs = jobs
        self.sqs = sqs
        self.queue_url = queue_url
        self._clock = clock

    # ---- POST /jobs ---------------------------------------------------------------------------------

    def submit(self, payload: object, *, owner: str, idempotency_key: str | None = None) -> Submitted:
        """Validate, record and queue one job. Raises ``InvalidRequestError`` (nothing queued),
        ``IdempotencyKeyMismatchError``, or ``StorageError`` when DynamoDB or SQS is unavailable (retry with the
        same key: nothing is done twice)."""
        jobs = self._store()
        if self.sqs is None or not self.queue_url:
            raise ConfigurationError("The service is misconfigured.", detail="PROMPT_QUEUE_URL is not set")
        self.service.prepare(payload)  # a bad request is a 400 before anything is written or sent
        body = canonical_body(payload)
        digest = body_digest(body)
        now = self._clock()
        job_id = str(uuid.uuid4())
        created = True
        if idempotency_key is not None:
            earlier = jobs.reserve_idempotency_key(owner=owner, key=idempotency_key, request_sha256=digest,
                                                   job_id=job_id, now=now)  # fmt: skip
            if earlier is not None:
                earlier_job, earlier_digest = earlier
                if earlier_digest != digest:
                    raise IdempotencyKeyMismatchError(
                        "This Idempotency-Key was used with another request body in the last 24 hours.",
                        detail=f"key of job {earlier_job}",
                    )
                job_id, created = earlier_job, False
        if not jobs.create_queued(job_id, owner=owner, request_sha256=digest, now=now):
            # A retry of a submission: send only if the first one never noted its message (it may have failed
            # before or after sending; a second message for one job is harmless, the worker runs a job once).
            job = jobs.get(job_id)
            if job is not None and (job.message_id or job.status is not JobStatus.QUEUED):
                return Submitted(job, created=False)
        message_id = self._send(body, job_id)
        if idempotency_key is not None:  # only a retry with the key reads it (without one, a retry is a new job)
            try:
                jobs.set_message_id(job_id, message_id)
            except StorageError as error:  # sent all the same
                logger.warning("could not note the message of job %s: %s", job_id, error.detail)
        job = Job(job_id, JobStatus.QUEUED, source="api", owner=owner, message_id=message_id)
        return Submitted(job, created)

    def _send(self, body: str, job_id: str) -> str:
        assert self.sqs is not None
        try:
            reply = self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=body,
                MessageAttributes={JOB_ID_ATTRIBUTE: {"DataType": "String", "StringValue": job_id}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("The job queue is temporarily unavailable.", detail=str(exc)) from exc
        return reply["MessageId"]

    # ---- POST /generate-image -----------------------------------------------------------------------

    def run(self, prepared: PreparedRequest, *, request_id: str, owner: str, request_sha256: str) -> GenerationResult:
        """Generate synchronously, recorded once it ends as a job whose id is the request id. Every image made is kept;
        raises the first image's error only when none was made. The record is bookkeeping here: when DynamoDB fails,
        the request still succeeds (logged and counted as ``JobRecordFailed``)."""
        started = self._clock()
        try:
            result = self.service.generate_images(prepared, stem=request_id, source="api")
        except ImageGenError as error:
            self._record(request_id, owner, request_sha256, started,
                         AttemptRecord(status=JobStatus.FAILED, error=JobError.of(error)))  # fmt: skip
            raise
        first = result.first_error()
        failures = [JobError.of(failure.error, failure.index) for failure in result.failures]
        ending = (
            AttemptRecord(images=[JobImage.from_stored(image) for image in result.images], failures=failures,
                          model=result.model_id, region=result.region, status=JobStatus.SUCCEEDED)
            if result.images or first is None
            else AttemptRecord(failures=failures, status=JobStatus.FAILED, error=JobError.of(first))
        )  # fmt: skip
        self._record(request_id, owner, request_sha256, started, ending)
        if not result.images and first is not None:
            raise first
        return result

    def _record(self, job_id: str, owner: str, digest: str, started: float, ending: AttemptRecord) -> None:
        self._quietly(lambda jobs: jobs.create_ended(job_id, owner=owner, request_sha256=digest, attempt=ending,
                                                     started=started, now=self._clock()))  # fmt: skip

    def _quietly(self, write: Callable[[JobStore], bool]) -> bool:
        if self.jobs is None:
            return False
        try:
            return write(self.jobs)
        except StorageError as error:
            logger.warning("job record write failed: %s", error.detail)
            self.service.count("JobRecordFailed")
            return False

    # ---- GET /jobs/{job_id} -------------------------------------------------------------------------

    def view(self, job_id: str) -> dict[str, Any]:
        """What a client sees of a job, with fresh presigned URLs; ``JobNotFoundError`` for an unknown id."""
        job = self._store().get(job_id)
        if job is None:
            raise JobNotFoundError(
                f"No job {job_id}. A message sent straight to the queue has a job once the worker receives it "
                "(seconds); records are kept for 15 days."
            )
        return job_view(job, self.service)

    def _store(self) -> JobStore:
        if self.jobs is None:
            raise ConfigurationError("The service is misconfigured.", detail="JOBS_TABLE_NAME is not set")
        return self.jobs


def job_view(job: Job, service: ImageService) -> dict[str, Any]:
    """A job as ``GET /jobs/{job_id}`` shows it (docs/api.md)."""
    store = service.store
    return {
        "job_id": job.job_id,
        "status": job.status.value,
        "source": job.source,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "model": job.model or None,
        "region": job.region or None,
        "images": [
            {
                "index": image.index,
                "key": image.key,
                "url": store.stored(image.key, image.seed).url,
                "seed": image.seed,
                "width": image.width,
                "height": image.height,
            }
            for image in job.images
        ],
        "failures": [failure.public() for failure in job.failures],
        "error": job.error.public() if job.error else None,
        "last_error": job.last_error.public() if job.last_error and not job.status.ended else None,
        "attempts": job.attempts,
    }
