"""The queue Lambda through ``lambda_handler`` with moto SQS/S3 and a fake Bedrock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from imagegen.config import Settings
from imagegen.errors import DeliveryInProgressError, InvalidRequestError, TransientBedrockError
from imagegen.jobs import JobStore
from imagegen.queue import (
    Outcome,
    QueueMessage,
    QueueWorker,
    backoff_seconds,
    make_sqs_client,
    payload_from_body,
)
from sqs_worker import app
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, FakeLambdaContext, client_error, make_service, titan_reply
from tests.tools import ROOT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

CONTENT_FILTER = "This request has been blocked by our content filters."


def scripted_model(body: dict[str, Any]) -> dict[str, Any]:
    """Throttles prompts containing THROTTLE, filters FORBIDDEN, otherwise draws."""
    text = body["textToImageParams"]["text"]
    if "THROTTLE" in text:
        raise client_error("ThrottlingException", "Too many requests", 429)
    if "FORBIDDEN" in text:
        raise client_error("ValidationException", CONTENT_FILTER, 400)
    return titan_reply(body)


@dataclass
class QueueEnv:
    sqs: SQSClient
    s3: S3Client
    bedrock: FakeBedrock
    queue_url: str
    queue_arn: str
    dlq_url: str
    visibility_changes: list[dict[str, Any]]

    def deliver(self, *bodies: str) -> dict[str, Any]:
        """Send ``bodies`` to the queue and receive them back as a Lambda SQS event."""
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        messages: list[Any] = []
        while len(messages) < len(bodies):
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            )
            messages.extend(got.get("Messages", []))
        return {"Records": [self.record(message) for message in messages]}

    def record(self, message: Any) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "eu-west-1",
        }

    def dead_letters(self) -> list[Any]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return got.get("Messages", [])

    def pngs(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET)
        return sorted(obj["Key"] for obj in listing.get("Contents", []) if obj["Key"].endswith(".png"))

    def calls_for(self, prompt: str) -> int:
        return sum(call["decoded_body"]["textToImageParams"]["text"] == prompt for call in self.bedrock.calls)


@pytest.fixture
def env(s3: S3Client, jobs: JobStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[QueueEnv]:
    sqs = make_sqs_client()
    dlq_url = sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="prompts", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bedrock = FakeBedrock(replies=[scripted_model])
    changes: list[dict[str, Any]] = []
    sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibility", lambda params, **_: changes.append(dict(params))
    )
    worker = QueueWorker(make_service(Settings(bucket_name=BUCKET), bedrock, s3), jobs, sqs, dlq_url)
    monkeypatch.setattr(app, "worker", lambda: worker)
    yield QueueEnv(sqs, s3, bedrock, queue_url, queue_arn, dlq_url, changes)


def handle(event: dict[str, Any]) -> list[str]:
    response = app.lambda_handler(event, FakeLambdaContext(function_name="SqsWorker"))
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_mixed_batch_ends_each_message_exactly_once(env: QueueEnv) -> None:
    too_long = "p" * 513
    event = env.deliver(
        "a cat in space",
        json.dumps({"prompt": "a dog on the moon", "seed": 42}),
        "THROTTLE a bird",
        too_long,
        "FORBIDDEN thing",
    )
    ids = {record["body"]: record["messageId"] for record in event["Records"]}

    failures = handle(event)

    # Only the throttled message goes back to the queue, with its visibility pushed out.
    assert failures == [ids["THROTTLE a bird"]]
    [change] = env.visibility_changes
    assert change["QueueUrl"] == env.queue_url
    assert 30 <= change["VisibilityTimeout"] <= 36
    # Two images, keyed by message id.
    cat, dog = ids["a cat in space"], ids[json.dumps({"prompt": "a dog on the moon", "seed": 42})]
    assert env.pngs() == sorted(
        [f"generated_images/from_queue/{cat}-0.png", f"generated_images/from_queue/{dog}-0.png"]
    )
    dog_sidecar = env.s3.get_object(Bucket=BUCKET, Key=f"generated_images/from_queue/{dog}-0.json")
    assert json.loads(dog_sidecar["Body"].read())["seed"] == 42
    # Permanent failures are in the DLQ at once, with their reasons.
    reasons = {
        message["Body"]: (
            message["MessageAttributes"]["error_code"]["StringValue"],
            message["MessageAttributes"]["error_message"]["StringValue"],
            message["MessageAttributes"]["source_message_id"]["StringValue"],
        )
        for message in env.dead_letters()
    }
    assert reasons == {
        too_long: (
            "InvalidRequest",
            "prompt: must be at most 512 characters for Titan Image Generator model amazon.titan-image-generator-v1 "
            "(got 513)",
            ids[too_long],
        ),
        "FORBIDDEN thing": (
            "ContentFiltered",
            "The prompt was blocked by the model's content filter. Rephrase it and try again.",
            ids["FORBIDDEN thing"],
        ),
    }
    # Bedrock: once per valid prompt, never for the invalid one.
    assert len(env.bedrock.calls) == 4
    assert env.calls_for(too_long) == 0
    assert env.calls_for("a cat in space") == 1


def test_redelivered_finished_message_makes_no_bedrock_call_and_no_second_image(env: QueueEnv) -> None:
    event = env.deliver("a cat in space")
    assert handle(event) == []
    assert handle(event) == []  # the same delivery again, as SQS may do
    assert len(env.bedrock.calls) == 1
    assert len(env.pngs()) == 1


def test_throttled_message_succeeds_when_retried(env: QueueEnv) -> None:
    event = env.deliver("a bird")
    env.bedrock.replies = [client_error("ThrottlingException", "slow down", 429), titan_reply]
    assert handle(event) == [event["Records"][0]["messageId"]]
    assert handle(event) == []
    assert len(env.pngs()) == 1
    assert env.dead_letters() == []


def test_records_of_a_batch_run_concurrently(env: QueueEnv) -> None:
    # A warm container: its model has answered before. (In a cold one, the first call to a model that has not
    # answered yet probes it alone; see tests/functional/test_model_chain.py.)
    chain = app.worker().service.chain
    chain.succeeded(chain.acquire())
    # Each model call waits until all ten are in flight: a sequential worker would break the barrier.
    barrier = threading.Barrier(10, timeout=10)

    def all_at_once(body: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()
        return titan_reply(body)

    env.bedrock.replies = [all_at_once]
    event = env.deliver(*(f"prompt {index}" for index in range(10)))
    assert handle(event) == []
    assert len(env.pngs()) == 10


def test_a_failed_dead_letter_send_is_reported_so_nothing_is_lost(
    env: QueueEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.worker(), "dead_letter_queue_url", env.queue_url.replace("prompts", "missing"))
    event = env.deliver("")
    assert handle(event) == [event["Records"][0]["messageId"]]


def test_an_unexpected_error_is_retried_not_dropped(env: QueueEnv) -> None:
    env.bedrock.replies = [RuntimeError("bug")]
    event = env.deliver("a cat")
    assert handle(event) == [event["Records"][0]["messageId"]]
    assert env.dead_letters() == []


@pytest.mark.parametrize(
    ("body", "payload"),
    [
        ("a cat in space", {"prompt": "a cat in space"}),
        ('{"prompt": "a cat", "seed": 1}', {"prompt": "a cat", "seed": 1}),
        ('  {"prompt": "x"}', {"prompt": "x"}),
        ("[1, 2]", {"prompt": "[1, 2]"}),
    ],
)
def test_message_body_is_a_prompt_or_a_json_request(body: str, payload: dict[str, Any]) -> None:
    assert payload_from_body(body) == payload


def test_a_broken_json_body_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        payload_from_body('{"prompt": "x"')


@pytest.mark.parametrize(("receive_count", "low", "high"), [(1, 30, 36), (2, 60, 72), (3, 120, 144), (10, 900, 900)])
def test_backoff_grows_exponentially_and_is_capped(receive_count: int, low: int, high: int) -> None:
    assert low <= backoff_seconds(receive_count, 30) <= high


def test_a_transient_failure_on_the_last_allowed_receive_is_dead_lettered_with_its_reason(
    env: QueueEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.worker(), "max_receive_count", 1)  # so the first receive is the last one
    env.bedrock.replies = [client_error("ThrottlingException", "slow down", 429)]
    event = env.deliver("a bird")
    assert handle(event) == []
    [letter] = env.dead_letters()
    attributes = {name: value["StringValue"] for name, value in letter["MessageAttributes"].items()}
    assert attributes["error_code"] == "Throttled"
    assert (
        attributes["error_message"] == "gave up after 1 attempts: Too many image requests right now. Try again shortly."
    )
    assert env.visibility_changes == []


def test_concurrent_duplicate_deliveries_call_the_model_once(env: QueueEnv) -> None:
    # SQS may hand the same message to two consumers at once: only the claim holder calls the model.
    worker = app.worker()
    entered, finish = threading.Event(), threading.Event()

    def slow_model(body: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        assert finish.wait(10)
        return titan_reply(body)

    env.bedrock.replies = [slow_model]
    message = QueueMessage(message_id="dup-1", body="a cat in space")
    outcomes: list[Outcome] = []
    first = threading.Thread(target=lambda: outcomes.append(worker.process(message).outcome))
    first.start()
    assert entered.wait(10)
    with pytest.raises(DeliveryInProgressError):
        worker.process(message)  # the duplicate, while the first holds the claim
    finish.set()
    first.join(10)
    assert outcomes == [Outcome.GENERATED]
    assert worker.process(message).outcome is Outcome.ALREADY_DONE
    assert len(env.bedrock.calls) == 1
    assert env.pngs() == ["generated_images/from_queue/dup-1-0.png"]


def test_a_failed_generation_releases_the_claim_for_the_retry(env: QueueEnv) -> None:
    worker = app.worker()
    env.bedrock.replies = [client_error("ServiceUnavailableException", "down", 503), titan_reply]
    message = QueueMessage(message_id="retry-1", body="a cat")
    with pytest.raises(TransientBedrockError):
        worker.process(message)
    assert worker.process(message).outcome is Outcome.GENERATED


def test_the_sample_batch_event_stores_an_image_per_record(env: QueueEnv) -> None:
    event = json.loads((ROOT / "events" / "sqs_batch.json").read_text())
    assert handle(event) == []
    ids = [record["messageId"] for record in event["Records"]]
    assert env.pngs() == sorted(f"generated_images/from_queue/{message_id}-0.png" for message_id in ids)
    dog = json.loads(
        env.s3.get_object(Bucket=BUCKET, Key=f"generated_images/from_queue/{ids[1]}-0.json")["Body"].read()
    )
    assert (dog["prompt"], dog["seed"], dog["source"]) == ("a dog on the moon", 42, "queue")
