"""A dead letter never loses its reason to the DLQ's size limit (moto S3, SQS and DynamoDB, a fake Bedrock, the real
QueueWorker).

SQS holds the body *and* the message attributes against a queue's MaximumMessageSize; moto counts only the body. So
the DLQ here is wrapped in SQS's rule (``StrictSizeLimit``, written apart from the worker's ``message_size``): a
letter over the limit is refused with ``InvalidParameterValue``, as SQS refuses it, which would send the worker to its
fallback for refused attributes, and lose the reason. A letter whose body does not fit beside its reason goes with
its body in S3 and the SQS Extended Client's pointer to it (docs/api.md, "Queue messages").
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from imagegen.config import Settings
from imagegen.dead_letters import dead_letter_body_key, message_size
from imagegen.errors import ConfigurationError, StorageError
from imagegen.jobs import DeadLetter, Job, JobStatus, JobStore
from imagegen.queue import Outcome, QueueMessage, QueueWorker, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, client_error, make_service
from tests.faults import Faults

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

LIMIT = 262_144  # the DLQ's MaximumMessageSize (Terraform's default) and the worker's setting
SOURCE_ARN = "arn:aws:sqs:eu-west-1:123456789012:imagegen-prompts"
REASONS = {"error_code", "error_message", "error_detail", "source_message_id", "job_id", "receive_count",
           "source_queue_arn"}  # fmt: skip
# What the SQS Extended Client writes and reads (awslabs/amazon-sqs-java-extended-client-lib,
# amazon-sqs-python-extended-client-lib), spelt out here rather than imported from the code under test.
POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"


# ---- SQS's size rule, by hand ----------------------------------------------------------------------------------


def _attr(data_type: str, value: str | bytes) -> MessageAttributeValueTypeDef:
    if isinstance(value, bytes):
        return {"DataType": data_type, "BinaryValue": value}
    return {"DataType": data_type, "StringValue": value}


@pytest.mark.parametrize(
    ("body", "attributes", "expected"),
    [
        ("hello", {}, 5),
        ("hello", {"error_code": _attr("String", "Bad")}, 5 + 10 + 6 + 3),
        ("café", {}, 3 + 2),  # é: 2 bytes in UTF-8
        ("日本", {"名前": _attr("String", "値")}, 6 + 6 + 6 + 3),  # 3 bytes each
        ("🦉", {"owl": _attr("String", "🦉🦉")}, 4 + 3 + 6 + 8),  # 4 bytes each
        ("x", {"receive_count": _attr("Number", "12")}, 1 + 13 + 6 + 2),
        ("x", {"ExtendedPayloadSize": _attr("Number", "262144")}, 1 + 19 + 6 + 6),
        ("x", {"n": _attr("Number.int", "-75")}, 1 + 1 + 10 + 3),  # a custom type label counts too
        ("x", {"blob": _attr("Binary", b"\x00\xff\x10")}, 1 + 4 + 6 + 3),  # a Binary value's own bytes
        ("a\ud800b", {}, 1 + 3 + 1),  # an unpaired surrogate: SQS stores U+FFFD, 3 bytes
        (
            "p" * 1000,
            {
                "error_code": _attr("String", "InvalidRequest"),
                "job_id": _attr("String", "é" * 36),
                "receive_count": _attr("Number", "5"),
            },
            1000 + (10 + 6 + 14) + (6 + 6 + 72) + (13 + 6 + 1),
        ),
    ],
    ids=[
        "ascii-body",
        "ascii-attribute",
        "two-byte",
        "three-byte",
        "four-byte",
        "number",
        "payload-size",
        "custom-type",
        "binary",
        "surrogate",
        "a-letter",
    ],
)
def test_message_size_counts_the_utf8_bytes_of_the_body_and_of_each_attributes_name_type_and_value(
    body: str, attributes: dict[str, Any], expected: int
) -> None:
    assert message_size(body, attributes) == expected


# ---- the setting -------------------------------------------------------------------------------------------------


def test_the_limit_defaults_to_256_kib_and_takes_what_sqs_allows() -> None:
    assert Settings.from_env({"BUCKET_NAME": BUCKET}).dead_letter_max_message_bytes == 262_144
    for value in ("1024", "1048576", " 65536 "):
        settings = Settings.from_env({"BUCKET_NAME": BUCKET, "DEAD_LETTER_MAX_MESSAGE_BYTES": value})
        assert settings.dead_letter_max_message_bytes == int(value)


@pytest.mark.parametrize("value", ["1023", "1048577", "0", "256KiB"])
def test_a_limit_sqs_does_not_allow_is_a_configuration_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"BUCKET_NAME": BUCKET, "DEAD_LETTER_MAX_MESSAGE_BYTES": value})
    assert "DEAD_LETTER_MAX_MESSAGE_BYTES" in (caught.value.detail or "")


def test_the_body_object_is_in_the_workers_folder_and_out_of_the_apis_reach() -> None:
    key = dead_letter_body_key("candidate", "7d9b2c40-1e2f-4a3b-8c4d-5e6f7a8b9c0d")
    assert key == "candidate/generated_images/from_queue/dead-letter-bodies/7d9b2c40-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
    # The API role reads only *.png; imagegen reindex reads *.json as sidecars.
    assert not key.endswith((".png", ".json"))
    assert dead_letter_body_key("", "j").startswith("generated_images/from_queue/")


# ---- the worker against SQS's rule -------------------------------------------------------------------------------


def sqs_size(body: str, attributes: Mapping[str, Any]) -> int:
    """SQS's rule, written apart from ``message_size``: body, then name, type and value of every attribute."""
    parts = [body]
    for name, value in attributes.items():
        parts += [name, value["DataType"], value.get("StringValue", "")]
    return sum(len(part.encode()) for part in parts) + sum(len(v.get("BinaryValue", b"")) for v in attributes.values())


@dataclass
class StrictSizeLimit:
    """Wraps ``sqs.send_message`` in SQS's size rule, which moto lacks: over the queue's MaximumMessageSize, body and
    attributes together, the message is refused (``InvalidParameterValue``, SQS's code). Records what it let through
    (``sent``: body, attributes, size) and the sizes it refused."""

    sqs: SQSClient
    sent: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_send = self.sqs.send_message

        def send_message(**kwargs: Any) -> Any:
            reply = self.sqs.get_queue_attributes(QueueUrl=kwargs["QueueUrl"], AttributeNames=["MaximumMessageSize"])
            limit = int(reply["Attributes"]["MaximumMessageSize"])
            attributes = kwargs.get("MessageAttributes", {})
            size = sqs_size(kwargs["MessageBody"], attributes)
            if size > limit:
                self.refused.append(size)
                raise client_error(
                    "InvalidParameterValue",
                    f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.",
                )
            self.sent.append((kwargs["MessageBody"], attributes, size))
            return real_send(**kwargs)

        monkeypatch.setattr(self.sqs, "send_message", send_message)


@dataclass
class Setup:
    s3: S3Client
    jobs: JobStore
    sqs: SQSClient
    dlq_url: str
    strict: StrictSizeLimit
    worker: QueueWorker
    clock: list[float]

    def deliver(self, body: str, job_id: str, receive_count: int = 1) -> QueueMessage:
        return QueueMessage(job_id, body, f"handle-{receive_count}", receive_count, SOURCE_ARN)

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        assert job is not None
        return job

    def letters(self) -> list[tuple[str, dict[str, str]]]:
        """Every dead letter on the DLQ: its body and its attributes' values."""
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [
            (
                message["Body"],
                {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()},
            )
            for message in got.get("Messages", [])
        ]

    def body_objects(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="generated_images/from_queue/dead-letter-bodies/")
        return [item["Key"] for item in listing.get("Contents", [])]

    def follow(self, body: str, attributes: Mapping[str, str]) -> str:
        """What the SQS Extended Client does on receiving a letter: a letter with ExtendedPayloadSize carries the
        JSON pointer ``[class, {"s3BucketName": …, "s3Key": …}]``; the body is the S3 object it names."""
        assert SIZE_ATTRIBUTE in attributes
        pointer = json.loads(body)
        assert isinstance(pointer, list) and len(pointer) == 2 and pointer[0] == POINTER_CLASS
        assert set(pointer[1]) == {"s3BucketName", "s3Key"}
        stored = self.s3.get_object(Bucket=pointer[1]["s3BucketName"], Key=pointer[1]["s3Key"])["Body"].read()
        assert int(attributes[SIZE_ATTRIBUTE]) == len(stored)
        return stored.decode("utf-8")


def make_setup(
    s3: S3Client, jobs: JobStore, monkeypatch: pytest.MonkeyPatch, limit: int, bedrock: FakeBedrock
) -> Setup:
    sqs = make_sqs_client()
    dlq_url = sqs.create_queue(QueueName="prompts-dlq", Attributes={"MaximumMessageSize": str(limit)})["QueueUrl"]
    strict = StrictSizeLimit(sqs)
    strict.install(monkeypatch)
    service = make_service(Settings(bucket_name=BUCKET, dead_letter_max_message_bytes=limit), bedrock, s3)
    clock = [1_800_000_000.0]
    worker = QueueWorker(service, jobs, sqs, dlq_url, max_receive_count=5, claim_ttl_seconds=300,
                         clock=lambda: clock[0], pause=lambda _: None)  # fmt: skip
    return Setup(s3, jobs, sqs, dlq_url, strict, worker, clock)


@pytest.fixture
def setup(s3: S3Client, jobs: JobStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    yield make_setup(s3, jobs, monkeypatch, LIMIT, FakeBedrock())


def new_job() -> str:
    return str(uuid.uuid4())


def assert_reason(letter: Mapping[str, str], job: Job, receive_count: int = 1) -> None:
    """The letter carries the job's whole reason, as recorded, and its ids."""
    assert job.error is not None
    assert set(letter) >= REASONS
    assert (letter["error_code"], letter["error_message"]) == (job.error.code, job.error.message)
    assert letter["error_detail"] == (job.error.detail or job.error.message)
    assert (letter["job_id"], letter["source_message_id"]) == (job.job_id, job.job_id)
    assert (letter["receive_count"], letter["source_queue_arn"]) == (str(receive_count), SOURCE_ARN)


# A prompt far over every model's limit: dead-lettered at once as InvalidRequest, before any Bedrock call.
BODIES_AT_THE_LIMIT = {
    "ascii": "p" * LIMIT,
    "multi-byte": "é" * (LIMIT // 2),  # LIMIT bytes in half as many characters: moto would take it inline
    "mixed": "🦉" * (LIMIT // 8) + "a cat in space " * (LIMIT // 30) + "x" * (LIMIT // 2 - LIMIT // 30 * 15),
}


@pytest.mark.parametrize("kind", sorted(BODIES_AT_THE_LIMIT))
def test_a_body_at_the_limit_goes_to_s3_and_the_letter_keeps_its_reason_and_a_pointer_to_it(
    setup: Setup, kind: str
) -> None:
    body = BODIES_AT_THE_LIMIT[kind]
    assert len(body.encode()) == LIMIT  # the largest body the prompt queue takes
    job_id = new_job()
    assert setup.worker.process(setup.deliver(body, job_id)).outcome is Outcome.DEAD_LETTERED
    assert setup.strict.refused == []  # sized before sending: the fallback for refused attributes is never reached
    [(sent_body, attributes)] = setup.letters()
    assert_reason(attributes, setup.job(job_id))
    assert attributes[SIZE_ATTRIBUTE] == str(LIMIT)
    assert json.loads(sent_body) == [POINTER_CLASS, {"s3BucketName": BUCKET, "s3Key": dead_letter_body_key("", job_id)}]
    assert setup.follow(sent_body, attributes) == body  # the exact original body
    [(_, _, size)] = setup.strict.sent
    assert size < 2048


def _inline_attributes_size(setup: Setup) -> int:
    """What the reason attributes of an InvalidRequest letter for a ~256 KiB prompt weigh (a probe job's letter)."""
    assert setup.worker.process(setup.deliver("p" * 200_000, new_job())).outcome is Outcome.DEAD_LETTERED
    [(body, _, size)] = setup.strict.sent
    assert body == "p" * 200_000  # inline
    setup.strict.sent.clear()
    setup.sqs.purge_queue(QueueUrl=setup.dlq_url)
    return size - len(body)


@pytest.mark.parametrize(("over", "offloaded"), [(-1, False), (0, False), (1, True)])
def test_a_letter_up_to_the_limit_goes_inline_and_one_byte_over_goes_to_s3(
    setup: Setup, over: int, offloaded: bool
) -> None:
    body = "p" * (LIMIT - _inline_attributes_size(setup) + over)
    job_id = new_job()
    assert setup.worker.process(setup.deliver(body, job_id)).outcome is Outcome.DEAD_LETTERED
    assert setup.strict.refused == []
    [(sent_body, attributes)] = setup.letters()
    assert_reason(attributes, setup.job(job_id))
    if offloaded:
        assert sqs_size(body, {k: v for k, v in setup.strict.sent[0][1].items() if k != SIZE_ATTRIBUTE}) == LIMIT + 1
        assert setup.follow(sent_body, attributes) == body
        assert setup.body_objects() == [dead_letter_body_key("", job_id)]
    else:
        assert setup.strict.sent[0][2] == LIMIT + over  # body and reason weigh exactly this: the probe was right
        assert (sent_body, SIZE_ATTRIBUTE in attributes) == (body, False)
        assert setup.body_objects() == []


def test_a_failed_s3_write_is_retried_and_ends_in_one_letter_with_its_reason(setup: Setup) -> None:
    body, job_id = "q" * LIMIT, new_job()
    Faults(setup.s3).fail("PutObject")  # S3 is down, botocore's retries spent
    with pytest.raises(StorageError):
        setup.worker.process(setup.deliver(body, job_id))  # raised: the message stays on the queue
    assert (setup.letters(), setup.strict.sent, setup.strict.refused) == ([], [], [])  # nothing sent without it
    job = setup.job(job_id)
    assert (job.status, job.dead_letter) == (JobStatus.FAILED, DeadLetter.PENDING)
    assert setup.worker.process(setup.deliver(body, job_id, 2)).outcome is Outcome.DEAD_LETTERED
    assert setup.worker.process(setup.deliver(body, job_id, 3)).outcome is Outcome.ALREADY_DONE
    [(sent_body, attributes)] = setup.letters()
    assert_reason(attributes, setup.job(job_id), receive_count=2)
    assert setup.follow(sent_body, attributes) == body
    assert setup.job(job_id).dead_letter is DeadLetter.SENT


def test_a_resent_letter_points_at_the_same_object(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between the send and its record sends the letter twice (docs/api.md): both point at one object."""
    body, job_id = "r" * LIMIT, new_job()

    def crash(*_: Any, **__: Any) -> bool:
        raise KeyboardInterrupt  # the process dies after the send

    with monkeypatch.context() as patch:
        patch.setattr(setup.jobs, "dead_letter_sent", crash)
        with pytest.raises(KeyboardInterrupt):
            setup.worker.process(setup.deliver(body, job_id))
    setup.clock[0] += 301  # the lease runs out; SQS delivers the message again
    assert setup.worker.process(setup.deliver(body, job_id, 2)).outcome is Outcome.DEAD_LETTERED
    letters = setup.letters()
    assert len(letters) == 2
    assert letters[0][0] == letters[1][0]  # the same pointer
    assert setup.body_objects() == [dead_letter_body_key("", job_id)]  # overwritten, not a second object
    assert {setup.follow(*letter) for letter in letters} == {body}


def test_when_sqs_refuses_the_reason_the_fallback_keeps_the_pointer(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = setup.sqs.send_message  # the strict size rule

    def picky_send(**kwargs: Any) -> Any:  # SQS refuses the reason's text for some other cause
        if "error_message" in kwargs["MessageAttributes"]:
            raise client_error("InvalidParameterValue", "attribute refused", 400)
        return checked(**kwargs)

    monkeypatch.setattr(setup.sqs, "send_message", picky_send)
    body, job_id = "s" * LIMIT, new_job()
    assert setup.worker.process(setup.deliver(body, job_id)).outcome is Outcome.DEAD_LETTERED
    [(sent_body, attributes)] = setup.letters()
    assert attributes == {"error_code": "InvalidRequest", "source_message_id": job_id, "job_id": job_id,
                          SIZE_ATTRIBUTE: str(LIMIT)}  # fmt: skip
    assert setup.follow(sent_body, attributes) == body


# ---- SQS's smallest limit: the reason itself may not fit -----------------------------------------------------------

SMALLEST = 1_024
LONG_REJECTION = "The model rejected this: " + "é" * 3000  # a Bedrock ValidationException's message, 6 KB


@pytest.mark.parametrize(
    ("body", "offloaded"),
    [
        ("a cat", False),  # the reason is what is too large: the body stays inline (a pointer would be larger)
        ('{"prompt": "a cat"' + " " * 1000 + "}", True),  # both: the body goes to S3 and the reason is shortened
    ],
    ids=["short-body", "long-body"],
)
def test_at_the_smallest_limit_the_reason_is_shortened_never_dropped(
    s3: S3Client, jobs: JobStore, monkeypatch: pytest.MonkeyPatch, body: str, offloaded: bool
) -> None:
    bedrock = FakeBedrock(replies=[client_error("ValidationException", LONG_REJECTION)])
    setup = make_setup(s3, jobs, monkeypatch, SMALLEST, bedrock)
    job_id = new_job()
    assert setup.worker.process(setup.deliver(body, job_id)).outcome is Outcome.DEAD_LETTERED
    assert setup.strict.refused == []
    [(sent_body, attributes)] = setup.letters()
    [(_, _, size)] = setup.strict.sent
    assert SMALLEST - 4 < size <= SMALLEST  # filled up to the limit (less a cut multi-byte character)
    job = setup.job(job_id)
    assert job.error is not None and job.error.code == "BedrockRejected"
    assert set(attributes) >= REASONS
    assert (attributes["error_code"], attributes["error_message"]) == (job.error.code, job.error.message)
    detail = attributes["error_detail"]
    assert detail.endswith("…") and job.error.detail.startswith(detail.removesuffix("…"))
    assert len(detail) > 100
    if offloaded:
        assert setup.follow(sent_body, attributes) == body
    else:
        assert (sent_body, SIZE_ATTRIBUTE in attributes) == (body, False)


def test_without_the_size_check_sqs_would_refuse_the_letter_and_lose_the_reason(setup: Setup) -> None:
    """The strict wrapper does refuse what real SQS refuses (so the tests above could fail): the letter of a body at
    the limit, sent as it is, with its reason."""
    reason = {"error_code": _attr("String", "InvalidRequest"), "job_id": _attr("String", new_job())}
    with pytest.raises(ClientError) as caught:
        setup.sqs.send_message(QueueUrl=setup.dlq_url, MessageBody="p" * LIMIT, MessageAttributes=reason)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert setup.strict.refused == [LIMIT + sqs_size("", reason)]
    setup.sqs.send_message(QueueUrl=setup.dlq_url, MessageBody="p" * LIMIT)  # the body alone fits
    assert [len(body) for body, _ in setup.letters()] == [LIMIT]
