"""No image Bedrock returned is thrown away (moto S3, SQS and DynamoDB, a fake Bedrock, the real QueueWorker): a
job whose calls partly fail keeps what it got and retries only the rest, within a bound on Bedrock calls; and a
fault at each write step of a queue job neither loses the job nor makes an image twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from imagegen.config import Settings
from imagegen.errors import ImageGenError, StorageError
from imagegen.index import make_dynamodb_client
from imagegen.index import table_definition as index_table
from imagegen.jobs import DeadLetter, Job, JobStatus, JobStore
from imagegen.queue import Outcome, QueueMessage, QueueWorker, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, client_error, make_service, stability_reply
from tests.faults import Faults

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

STABILITY = "stability.stable-image-core-v1:1"
INDEX = "imagegen-test-index"
JOB = "7d9b2c40-1e2f-4a3b-8c4d-5e6f7a8b9c0d"


@dataclass
class Setup:
    s3: S3Client
    jobs: JobStore
    sqs: SQSClient
    dlq_url: str
    bedrock: FakeBedrock
    worker: QueueWorker
    clock: list[float]

    def deliver(self, body: str, receive_count: int = 1) -> QueueMessage:
        return QueueMessage(JOB, body, receive_count=receive_count)

    def job(self) -> Job:
        job = self.jobs.get(JOB)
        assert job is not None
        return job

    def pngs(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return sorted(item["Key"] for item in listing if item["Key"].endswith(".png"))

    def gallery(self) -> list[str]:
        items = self.worker.service.index._dynamodb.scan(TableName=INDEX)["Items"]  # type: ignore[union-attr]
        return sorted(json.loads(item["doc"]["S"])["key"] for item in items)

    def dead_letters(self) -> list[dict[str, str]]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [{name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
                for message in got.get("Messages", [])]  # fmt: skip


@pytest.fixture
def setup(s3: S3Client, jobs: JobStore) -> Iterator[Setup]:
    make_dynamodb_client().create_table(**index_table(INDEX))
    sqs = make_sqs_client()
    dlq_url = sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
    bedrock = FakeBedrock(replies=[stability_reply])
    service = make_service(Settings(bucket_name=BUCKET, model_id=STABILITY, images_table_name=INDEX), bedrock, s3)
    clock = [1_800_000_000.0]
    worker = QueueWorker(service, jobs, sqs, dlq_url, max_receive_count=5, claim_ttl_seconds=300,
                         clock=lambda: clock[0], pause=lambda _: None)  # fmt: skip
    yield Setup(s3, jobs, sqs, dlq_url, bedrock, worker, clock)


FIVE = json.dumps({"prompt": "five owls", "numberOfImages": 5, "seed": 100})


def failing_seeds(*seeds: int, error: Exception | None = None) -> Any:
    """Stability replies, except for the calls with these seeds (transient by default)."""

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        if body["seed"] in seeds:
            raise error or client_error("ThrottlingException", "slow down", 429)
        return stability_reply(body)

    return reply


# ---- images kept, only the missing ones retried -------------------------------------------------------


def test_a_five_image_job_with_one_failed_call_costs_six_calls_and_stores_five_images(setup: Setup) -> None:
    setup.bedrock.replies = [failing_seeds(102)]
    with pytest.raises(ImageGenError) as caught:
        setup.worker.process(setup.deliver(FIVE))
    assert caught.value.code == "Throttled"
    job = setup.job()
    assert (job.status, [image.index for image in job.images]) == (JobStatus.RUNNING, [0, 1, 3, 4])
    assert job.last_error is not None and job.last_error.code == "Throttled"
    assert len(setup.pngs()) == 4  # kept, not thrown away
    setup.bedrock.replies = [stability_reply]
    assert setup.worker.process(setup.deliver(FIVE, receive_count=2)).outcome is Outcome.GENERATED
    assert len(setup.bedrock.calls) == 6  # images asked (5) + retries of the failed one (1)
    assert [call["decoded_body"]["seed"] for call in setup.bedrock.calls[5:]] == [102]  # only the missing one
    job = setup.job()
    assert (job.status, [image.index for image in job.images], job.failures) == (JobStatus.SUCCEEDED,
                                                                                 [0, 1, 2, 3, 4], ())  # fmt: skip
    assert [image.seed for image in job.images] == [100, 101, 102, 103, 104]
    assert setup.pngs() == [f"generated_images/from_queue/{JOB}-{index}.png" for index in range(5)]
    assert setup.gallery() == setup.pngs()


def test_an_image_that_fails_for_good_is_listed_and_the_job_succeeds_with_the_rest(setup: Setup) -> None:
    filtered = {"images": [], "seeds": [101], "finish_reasons": ["Filter reason: output"]}
    setup.bedrock.replies = [lambda body: filtered if body["seed"] == 101 else stability_reply(body)]
    result = setup.worker.process(setup.deliver(FIVE))
    assert result.outcome is Outcome.GENERATED
    job = setup.job()
    assert [image.index for image in job.images] == [0, 2, 3, 4]
    assert [(failure.index, failure.code) for failure in job.failures] == [(1, "ContentFiltered")]
    assert len(setup.bedrock.calls) == 5
    assert setup.dead_letters() == []  # it ended as images: never also a dead letter
    # A redelivery does nothing more: the job has ended.
    assert setup.worker.process(setup.deliver(FIVE, receive_count=2)).outcome is Outcome.ALREADY_DONE
    assert len(setup.bedrock.calls) == 5


def test_under_steady_throttling_a_job_probes_with_one_call_and_is_dead_lettered_with_its_reason(
    setup: Setup,
) -> None:
    setup.bedrock.replies = [client_error("ThrottlingException", "slow down", 429)]
    for receive in range(1, 5):
        with pytest.raises(ImageGenError):
            setup.worker.process(setup.deliver(FIVE, receive_count=receive))
    result = setup.worker.process(setup.deliver(FIVE, receive_count=5))  # the last receive the queue allows
    assert result.outcome is Outcome.DEAD_LETTERED
    # 5 calls on the first receive, then one probe per receive (not 5 calls x 5 receives = 25).
    assert len(setup.bedrock.calls) == 5 + 4
    [letter] = setup.dead_letters()
    assert (letter["error_code"], letter["job_id"]) == ("Throttled", JOB)
    job = setup.job()
    assert (job.status, job.error.code if job.error else None, job.attempts) == (JobStatus.FAILED, "Throttled", 5)


def test_on_the_last_receive_a_job_with_some_images_succeeds_with_them_and_lists_the_rest(setup: Setup) -> None:
    setup.bedrock.replies = [failing_seeds(103, 104)]
    with pytest.raises(ImageGenError):
        setup.worker.process(setup.deliver(FIVE, receive_count=4))
    assert setup.worker.process(setup.deliver(FIVE, receive_count=5)).outcome is Outcome.GENERATED
    job = setup.job()
    assert (job.status, [image.index for image in job.images]) == (JobStatus.SUCCEEDED, [0, 1, 2])
    assert [(f.index, f.code) for f in job.failures] == [(3, "Throttled"), (4, "Throttled")]
    assert job.failures[0].message.startswith("gave up after 5 attempts")
    assert setup.dead_letters() == []
    assert len(setup.bedrock.calls) == 5 + 1  # the last receive probed once, and was throttled again


# ---- a fault at each write step of a queue job ---------------------------------------------------------

ONE = "an owl"


def _expire_lease(setup: Setup) -> None:
    setup.clock[0] += 301  # the crashed delivery's lease runs out; SQS delivers the message again


def test_the_claim_write_fails_no_model_call_and_the_retry_makes_the_image(setup: Setup) -> None:
    Faults(setup.jobs.dynamodb).fail("UpdateItem")
    with pytest.raises(StorageError):
        setup.worker.process(setup.deliver(ONE))
    assert setup.bedrock.calls == []
    assert setup.worker.process(setup.deliver(ONE, 2)).outcome is Outcome.GENERATED
    assert (len(setup.bedrock.calls), setup.pngs()) == (1, [f"generated_images/from_queue/{JOB}-0.png"])


@pytest.mark.parametrize("suffix", [".png", ".json"])
def test_an_image_write_fails_and_the_retry_stores_it_once(setup: Setup, suffix: str) -> None:
    # botocore's own retries are spent: the image the model made is lost, and the retry pays for it again.
    Faults(setup.s3).fail("PutObject", match=lambda params: params["Key"].endswith(suffix))
    with pytest.raises(StorageError):
        setup.worker.process(setup.deliver(ONE))
    assert setup.worker.process(setup.deliver(ONE, 2)).outcome is Outcome.GENERATED
    assert len(setup.bedrock.calls) == 2
    assert setup.pngs() == [f"generated_images/from_queue/{JOB}-0.png"]
    assert setup.gallery() == setup.pngs()


def test_a_failed_gallery_write_never_fails_the_job(setup: Setup) -> None:
    Faults(setup.worker.service.index._dynamodb).fail("PutItem")  # type: ignore[union-attr]
    assert setup.worker.process(setup.deliver(ONE)).outcome is Outcome.GENERATED
    assert setup.job().status is JobStatus.SUCCEEDED
    assert setup.gallery() == []  # imagegen reindex rebuilds it


def test_the_ending_write_fails_after_the_images_are_stored_and_the_retry_does_not_make_them_again(
    setup: Setup,
) -> None:
    faults = Faults(setup.jobs.dynamodb)
    faults.fail("UpdateItem", match=lambda params: "#status = :status" in params["UpdateExpression"])
    with pytest.raises(StorageError):
        setup.worker.process(setup.deliver(FIVE))
    assert len(setup.pngs()) == 5 and setup.job().status is JobStatus.RUNNING and setup.job().images == ()
    _expire_lease(setup)
    assert setup.worker.process(setup.deliver(FIVE, 2)).outcome is Outcome.GENERATED
    assert len(setup.bedrock.calls) == 5  # no second Bedrock call: the images were found in S3
    job = setup.job()
    assert (job.status, [image.index for image in job.images]) == (JobStatus.SUCCEEDED, [0, 1, 2, 3, 4])
    assert [image.seed for image in job.images] == [100, 101, 102, 103, 104]
    assert setup.gallery() == setup.pngs()  # one gallery item per image, not two


def test_the_dead_letter_send_fails_and_the_retry_sends_it_once(setup: Setup) -> None:
    Faults(setup.sqs).fail("SendMessage")
    too_long = "p" * 10_001
    with pytest.raises(Exception, match="injected fault"):
        setup.worker.process(setup.deliver(too_long))
    assert setup.worker.process(setup.deliver(too_long, 2)).outcome is Outcome.DEAD_LETTERED
    assert setup.worker.process(setup.deliver(too_long, 3)).outcome is Outcome.ALREADY_DONE
    assert [letter["error_code"] for letter in setup.dead_letters()] == ["InvalidRequest"]
    assert setup.job().dead_letter is DeadLetter.SENT


def test_the_dead_letter_is_sent_but_not_recorded_and_it_is_not_sent_again(setup: Setup) -> None:
    Faults(setup.jobs.dynamodb).fail("UpdateItem", match=lambda params: ":sent" in json.dumps(params))
    result = setup.worker.process(setup.deliver("p" * 10_001))
    assert result.outcome is Outcome.DEAD_LETTERED  # reported done, so SQS deletes it: no redelivery resends
    assert len(setup.dead_letters()) == 1
    job = setup.job()
    assert (job.status, job.dead_letter) == (JobStatus.FAILED, DeadLetter.PENDING)


def test_a_crash_between_the_dead_letter_send_and_its_record_sends_it_twice_with_the_same_ids(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a DLQ consumer sees in the one window that cannot be closed (docs/api.md): two identical letters."""

    def crash(*_: Any, **__: Any) -> bool:
        raise KeyboardInterrupt  # the process dies: nothing after the send runs

    monkeypatch.setattr(setup.jobs, "dead_letter_sent", crash)
    with pytest.raises(KeyboardInterrupt):
        setup.worker.process(setup.deliver("p" * 10_001))
    monkeypatch.undo()
    _expire_lease(setup)
    assert setup.worker.process(setup.deliver("p" * 10_001, 2)).outcome is Outcome.DEAD_LETTERED
    letters = sorted(setup.dead_letters(), key=lambda letter: letter["receive_count"])
    assert len(letters) == 2
    # The same job_id, source_message_id, code and reason (deduplicate by job_id); receive_count tells them apart.
    assert [letter.pop("receive_count") for letter in letters] == ["1", "2"]
    assert letters[0] == letters[1]
    assert letters[0]["job_id"] == JOB
    assert setup.job().dead_letter is DeadLetter.SENT
