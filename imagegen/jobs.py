"""Jobs: one DynamoDB record per prompt, whichever way it came, and the one truth of its status.

A job is made by ``POST /jobs`` (id: a UUID of our own), by ``POST /generate-image`` (id: the API Gateway
request id) or by a message sent straight to the queue (id: its SQS ``MessageId``). Its record (table
``JOBS_TABLE_NAME``, partition key ``pk`` = the job id) holds the status and everything a client reads
(``GET /jobs/{job_id}``), and the worker's bookkeeping: the *lease* a delivery holds while it works
(``lease_owner``, ``lease_until``), the images already stored, and whether a dead letter was sent.

Every write is conditional, so that a status never goes backwards (``TRANSITIONS``), only the lease holder
records an attempt's results, and a dead letter is recorded once. Records expire through the table's TTL
(``expires_at``) after ``RETENTION_SECONDS``, longer than a message can live in the queue (4 days) or the
dead-letter queue (14 days).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import ImageGenError, InvalidRequestError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from imagegen.storage import StoredImage

#: How long a job record is kept: longer than the dead-letter queue keeps a message (14 days).
RETENTION_SECONDS = 15 * 24 * 3600
#: How long an Idempotency-Key maps to its job.
IDEMPOTENCY_SECONDS = 24 * 3600
IDEMPOTENCY_PREFIX = "idempotency#"
#: Job ids are UUIDs: API Gateway request ids, SQS message ids and our own are all of this form.
_JOB_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: An Idempotency-Key: 1-255 visible ASCII characters.
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


#: The only moves a status may make; anything else (backwards, or out of an ending) is refused by the table.
#: ``None`` is "no record yet": POST /jobs creates a queued record, a delivery a running one, and a synchronous
#: request records itself once, ended.
TRANSITIONS: dict[JobStatus | None, frozenset[JobStatus]] = {
    None: frozenset(JobStatus),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def may_transition(old: JobStatus | None, new: JobStatus) -> bool:
    """Whether a record in status ``old`` (``None``: no record) may be written with status ``new``."""
    return new in TRANSITIONS[old]


def _from_statuses(new: JobStatus) -> tuple[bool, list[JobStatus]]:
    """(whether ``new`` may create the record, the statuses it may replace): ``TRANSITIONS`` read backwards."""
    return may_transition(None, new), [old for old in JobStatus if may_transition(old, new)]


class DeadLetter(enum.StrEnum):
    PENDING = "pending"  # recorded, its send not yet confirmed
    SENT = "sent"


@dataclass(frozen=True, slots=True)
class JobImage:
    """One stored image of a job, by its index in the request (0 … numberOfImages - 1)."""

    index: int
    key: str
    seed: int
    width: int
    height: int
    model: str = ""

    def to_item(self) -> dict[str, Any]:
        return {"index": self.index, "key": self.key, "seed": self.seed, "width": self.width,
                "height": self.height, "model": self.model}  # fmt: skip

    @classmethod
    def from_stored(cls, image: StoredImage) -> JobImage:
        return cls(image.index, image.key, image.seed, image.width, image.height, str(image.sidecar.get("model", "")))

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobImage:
        return cls(int(item["index"]), str(item["key"]), int(item["seed"]), int(item.get("width", 0)),
                   int(item.get("height", 0)), str(item.get("model", "")))  # fmt: skip


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job (or one of its images) failed: the error code of the dead letter, and a public message."""

    code: str
    message: str
    index: int | None = None  # the image, for a per-image failure
    #: What AWS said (logged and sent as the dead letter's ``error_detail``; never shown to clients).
    detail: str = ""

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.index is not None:
            item["index"] = self.index
        if self.detail:
            item["detail"] = self.detail[:1024]
        return item

    @classmethod
    def of(cls, error: ImageGenError, index: int | None = None, *, gave_up_after: int = 0) -> JobError:
        """The code and public reason of ``error`` (an invalid request's reason names field and rule);
        ``gave_up_after``: a transient error given up after that many attempts says so."""
        reason = str(error) if isinstance(error, InvalidRequestError) else error.public_message
        if gave_up_after and error.transient:
            reason = f"gave up after {gave_up_after} attempts: {reason}"
        return cls(error.code, reason, index, error.detail)

    def public(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.index is not None:
            shown["index"] = self.index
        return shown

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> JobError | None:
        if not item:
            return None
        index = item.get("index")
        return cls(str(item.get("code", "")), str(item.get("message", "")), None if index is None else int(index),
                   str(item.get("detail", "")))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Job:
    """A job record as read from the table."""

    job_id: str
    status: JobStatus
    source: str = "queue"
    owner: str = "queue"
    created_at: str = ""
    updated_at: str = ""
    model: str = ""
    region: str = ""
    images: tuple[JobImage, ...] = ()
    failures: tuple[JobError, ...] = ()
    error: JobError | None = None
    last_error: JobError | None = None
    attempts: int = 0
    request_sha256: str = ""
    lease_owner: str = ""
    lease_until: float = 0.0
    dead_letter: DeadLetter | None = None
    message_id: str = ""

    @classmethod
    def from_item(cls, raw: Mapping[str, Any]) -> Job:
        item = _deserialize(raw)
        dead_letter = item.get("dead_letter")
        return cls(
            job_id=str(item["pk"]),
            status=JobStatus(item["status"]),
            source=str(item.get("source", "queue")),
            owner=str(item.get("owner", "queue")),
            created_at=str(item.get("created_at", "")),
            updated_at=str(item.get("updated_at", "")),
            model=str(item.get("model", "")),
            region=str(item.get("region", "")),
            images=tuple(sorted(map(JobImage.from_item, item.get("images", [])), key=lambda image: image.index)),
            failures=tuple(error for error in map(JobError.from_item, item.get("failures", [])) if error),
            error=JobError.from_item(item.get("error")),
            last_error=JobError.from_item(item.get("last_error")),
            attempts=int(item.get("attempts", 0)),
            request_sha256=str(item.get("request_sha256", "")),
            lease_owner=str(item.get("lease_owner", "")),
            lease_until=float(item.get("lease_until", 0)),
            dead_letter=DeadLetter(dead_letter) if dead_letter else None,
            message_id=str(item.get("message_id", "")),
        )

    def leased(self, now: float) -> bool:
        return bool(self.lease_owner) and self.lease_until > now


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim found: ``job`` is the record after the write when ``claimed``, else the record as it is
    (``None`` when the claim was refused for a record that does not exist, which cannot happen)."""

    claimed: bool
    job: Job | None
    #: The record belongs to another request (same id, another body): the caller must not touch it.
    foreign: bool = False


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one attempt (a delivery, a synchronous request) records when it lets go of the lease."""

    images: Sequence[JobImage] = ()
    failures: Sequence[JobError] = ()
    model: str = ""
    region: str = ""
    #: The new status: RUNNING (it will be retried), SUCCEEDED or FAILED.
    status: JobStatus = JobStatus.RUNNING
    error: JobError | None = None
    last_error: JobError | None = None
    #: Keep the lease (a failed queue job holds it until its dead letter is sent).
    keep_lease: bool = False
    dead_letter: DeadLetter | None = None


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments of the job records (the local stack and the tests; template.yaml declares the same key
    and the TTL on ``expires_at``)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


#: The TTL attribute (UpdateTimeToLive after CreateTable).
TTL_ATTRIBUTE = "expires_at"


def parse_job_id(raw: str | None) -> str:
    """A job id from a URL: a UUID; anything else is a 400 on ``job_id``."""
    if raw is None or not _JOB_ID.fullmatch(raw):
        raise InvalidRequestError("job_id", "must be a job id: a UUID such as 0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01")
    return raw.lower()


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID.fullmatch(value))


def parse_idempotency_key(raw: str | None) -> str | None:
    """The ``Idempotency-Key`` header: absent, or 1-255 visible ASCII characters (a 400 naming it otherwise)."""
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidRequestError("Idempotency-Key", "must be 1-255 visible ASCII characters (no spaces)")
    return raw


def canonical_body(payload: object) -> str:
    """The request as the queue carries it: compact JSON, keys sorted (the same request, the same text)."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass
class JobStore:
    """Reads and writes job records in one table; every write is conditional (see the module docstring)."""

    dynamodb: DynamoDBClient
    table_name: str
    retention_seconds: int = RETENTION_SECONDS
    _serializer: TypeSerializer = field(default_factory=TypeSerializer, repr=False)

    # ---- reads --------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The record (strongly consistent: a job just submitted is found), or ``None``."""
        reply = self._call("get_item", TableName=self.table_name, Key=self._key(job_id), ConsistentRead=True)
        item = reply.get("Item")
        return Job.from_item(item) if item else None

    # ---- POST /jobs ---------------------------------------------------------------------------------

    def create_queued(self, job_id: str, *, owner: str, request_sha256: str, now: float) -> bool:
        """Create the queued record of a submitted job; ``False`` when it exists already (a retried submit)."""
        creates, _ = _from_statuses(JobStatus.QUEUED)
        assert creates
        item = {
            "pk": job_id, "status": JobStatus.QUEUED.value, "source": "api", "owner": owner,
            "created_at": iso(now), "updated_at": iso(now), "expires_at": int(now + self.retention_seconds),
            "request_sha256": request_sha256, "attempts": 0,
        }  # fmt: skip
        return self._write("put_item", Item=self._serialize(item), ConditionExpression="attribute_not_exists(pk)")

    def create_ended(
        self, job_id: str, *, owner: str, request_sha256: str, attempt: AttemptRecord, started: float, now: float
    ) -> bool:
        """Record a synchronous request once, as it ended (one writer, one write); ``False`` if the id exists."""
        creates, _ = _from_statuses(attempt.status)
        assert creates and attempt.status.ended
        item: dict[str, Any] = {
            "pk": job_id, "status": attempt.status.value, "source": "api", "owner": owner,
            "created_at": iso(started), "updated_at": iso(now), "expires_at": int(now + self.retention_seconds),
            "request_sha256": request_sha256, "attempts": 1,
            "images": [image.to_item() for image in sorted(attempt.images, key=lambda image: image.index)],
            "failures": [failure.to_item() for failure in attempt.failures],
        }  # fmt: skip
        for name, value in (("model", attempt.model), ("region", attempt.region)):
            if value:
                item[name] = value
        if attempt.error is not None:
            item["error"] = attempt.error.to_item()
        return self._write("put_item", Item=self._serialize(item), ConditionExpression="attribute_not_exists(pk)")

    def set_message_id(self, job_id: str, message_id: str) -> None:
        """Note the SQS message that carries a submitted job (a retried submit sends again only without it)."""
        self._write("update_item", Key=self._key(job_id), UpdateExpression="SET message_id = :m",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues=self._serialize({":m": message_id}))  # fmt: skip

    def reserve_idempotency_key(
        self, *, owner: str, key: str, request_sha256: str, job_id: str, now: float
    ) -> tuple[str, str] | None:
        """Map ``(owner, key)`` to ``job_id`` for 24 h. ``None`` when it was free; else the ``(job id, request
        digest)`` it already maps to."""
        pk = IDEMPOTENCY_PREFIX + hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()
        item = {"pk": pk, "job_id": job_id, "request_sha256": request_sha256,
                "expires_at": int(now + IDEMPOTENCY_SECONDS)}  # fmt: skip
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=self._serialize(item),
                # TTL deletes late (up to days): an expired reservation is free even while it is still there.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues=self._serialize({":now": int(now)}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise _unavailable(exc) from exc
            old = _deserialize(exc.response.get("Item") or {})  # type: ignore[arg-type]
            if not old:  # the item vanished between the check and now: take it
                return self.reserve_idempotency_key(owner=owner, key=key, request_sha256=request_sha256,
                                                    job_id=job_id, now=now)  # fmt: skip
            return str(old["job_id"]), str(old["request_sha256"])
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return None

    # ---- the lease: one delivery (or synchronous request) at a time works on a job -------------------

    def claim(
        self,
        job_id: str,
        *,
        lease_owner: str,
        lease_seconds: float,
        now: float,
        source: str = "queue",
        owner: str = "queue",
        created_at: float | None = None,
        request_sha256: str = "",
    ) -> Claim:
        """Take the job's lease and make it running (creating the record if it has none). Refused while another
        holds an unexpired lease, once the job has ended, or when the record is another request's."""
        creates, sources = _from_statuses(JobStatus.RUNNING)
        condition = (
            f"({'attribute_not_exists(pk) OR ' if creates else ''}#status IN ({_placeholders('s', sources)}))"
            " AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            " AND (attribute_not_exists(request_sha256) OR request_sha256 = :digest)"
        )
        values = {
            **{f":s{i}": status.value for i, status in enumerate(sources)},
            ":now": _number(now), ":digest": request_sha256, ":running": JobStatus.RUNNING.value,
            ":me": lease_owner, ":until": _number(now + lease_seconds), ":zero": 0, ":one": 1,
            ":source": source, ":owner": owner, ":created": iso(created_at if created_at is not None else now),
            ":updated": iso(now), ":expires": int(now + self.retention_seconds),
        }  # fmt: skip
        update = (
            "SET #status = :running, lease_owner = :me, lease_until = :until,"
            " attempts = if_not_exists(attempts, :zero) + :one, #source = if_not_exists(#source, :source),"
            " #owner = if_not_exists(#owner, :owner), created_at = if_not_exists(created_at, :created),"
            " updated_at = :updated, expires_at = if_not_exists(expires_at, :expires),"
            " request_sha256 = if_not_exists(request_sha256, :digest)"
        )
        try:
            reply = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", "#source": "source", "#owner": "owner"},
                ExpressionAttributeValues=self._serialize(values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise _unavailable(exc) from exc
            raw: Mapping[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            current = Job.from_item(raw) if raw else None
            foreign = bool(current and current.request_sha256 and current.request_sha256 != request_sha256)
            return Claim(claimed=False, job=current, foreign=foreign)
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return Claim(claimed=True, job=Job.from_item(reply["Attributes"]))

    def claim_dead_letter(self, job_id: str, *, lease_owner: str, lease_seconds: float, now: float) -> Job | None:
        """Take the lease of a failed job whose dead letter was never confirmed sent (its sender is gone), to
        send it; ``None`` when refused."""
        values = {":failed": JobStatus.FAILED.value, ":pending": DeadLetter.PENDING.value, ":now": _number(now),
                  ":me": lease_owner, ":until": _number(now + lease_seconds)}  # fmt: skip
        try:
            reply = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(job_id),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression="#status = :failed AND dead_letter = :pending"
                " AND (attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=self._serialize(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return Job.from_item(reply["Attributes"])

    def record(self, job_id: str, *, lease_owner: str, attempt: AttemptRecord, now: float) -> bool:
        """Record an attempt's results and let go of the lease (or keep it, for a dead letter about to be sent).
        Only the lease holder may; ``False`` when it no longer holds it."""
        _, sources = _from_statuses(attempt.status)  # never creates: only a lease holder's record is replaced
        values: dict[str, Any] = {
            **{f":from{i}": status.value for i, status in enumerate(sources)},
            ":me": lease_owner,
            ":status": attempt.status.value,
            ":updated_at": iso(now),
            ":images": [image.to_item() for image in sorted(attempt.images, key=lambda image: image.index)],
            ":failures": [failure.to_item() for failure in attempt.failures],
        }
        if attempt.model:
            values[":model"] = attempt.model
        if attempt.region:
            values[":region"] = attempt.region
        for name, error in (("error", attempt.error), ("last_error", attempt.last_error)):
            if error is not None:
                values[f":{name}"] = error.to_item()
        if attempt.dead_letter is not None:
            values[":dead_letter"] = attempt.dead_letter.value
        sets = [name[1:] for name in values if not name.startswith((":from", ":me"))]
        removes = [name for name in ("error", "last_error") if f":{name}" not in values]
        if not attempt.keep_lease:
            removes += ["lease_owner", "lease_until"]
        # Every attribute by placeholder: several of these names (status, region, error) are reserved words.
        update = "SET " + ", ".join(f"#{name} = :{name}" for name in sets)
        if removes:
            update += " REMOVE " + ", ".join(f"#{name}" for name in removes)
        return self._write(
            "update_item",
            Key=self._key(job_id),
            UpdateExpression=update,
            ConditionExpression=f"#lease_owner = :me AND #status IN ({_placeholders('from', sources)})",
            ExpressionAttributeNames={f"#{name}": name for name in {*sets, *removes, "lease_owner"}},
            ExpressionAttributeValues=self._serialize(values),
        )

    def release(self, job_id: str, *, lease_owner: str) -> bool:
        """Let go of the lease without recording anything (an attempt that crashed, a send that failed)."""
        return self._write(
            "update_item",
            Key=self._key(job_id),
            UpdateExpression="REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me",
            ExpressionAttributeValues=self._serialize({":me": lease_owner}),
        )

    def dead_letter_sent(self, job_id: str, *, lease_owner: str, now: float) -> bool:
        """The dead letter went out: record it and let go of the lease."""
        values = {":me": lease_owner, ":sent": DeadLetter.SENT.value, ":pending": DeadLetter.PENDING.value,
                  ":updated": iso(now)}  # fmt: skip
        return self._write(
            "update_item",
            Key=self._key(job_id),
            UpdateExpression="SET dead_letter = :sent, updated_at = :updated REMOVE lease_owner, lease_until",
            ConditionExpression="lease_owner = :me AND dead_letter = :pending",
            ExpressionAttributeValues=self._serialize(values),
        )

    # ---- plumbing -----------------------------------------------------------------------------------

    def _key(self, job_id: str) -> dict[str, Any]:
        return {"pk": {"S": job_id}}

    def _serialize(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self._serializer.serialize(_decimals(value)) for name, value in values.items()}

    def _write(self, operation: str, **kwargs: Any) -> bool:
        """A conditional write: ``False`` when its condition does not hold."""
        try:
            getattr(self.dynamodb, operation)(TableName=self.table_name, **kwargs)
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise _unavailable(exc) from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return True

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.dynamodb, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc) from exc


def _placeholders(prefix: str, statuses: Sequence[JobStatus]) -> str:
    return ", ".join(f":{prefix}{i}" for i in range(len(statuses)))


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _unavailable(exc: Exception) -> StorageError:
    return StorageError("The job records are temporarily unavailable.", detail=str(exc))


def _number(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def _decimals(value: Any) -> Any:
    """Floats as ``Decimal`` (DynamoDB's serializer refuses floats), in nested values too."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        return {key: _decimals(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(item) for item in value]
    return value


_deserializer = TypeDeserializer()


def _deserialize(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in raw.items()}


def _plain(value: Any) -> Any:
    """DynamoDB's ``Decimal`` numbers as int or float, in nested values too."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
