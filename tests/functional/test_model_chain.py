"""The model chain through both handlers: failover when Bedrock says a model cannot be used, validation against
the serving model, one failed call per container and cool-down, and no model left (moto, a fake Bedrock)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest

from generate_image import app as api_app
from imagegen.chain import ModelChain
from imagegen.config import Settings
from imagegen.errors import ModelUnavailableError, TransientBedrockError
from imagegen.jobs import JobStore
from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
from imagegen.service import ImageService
from sqs_worker import app as worker_app
from tests.conftest import BUCKET
from tests.fakes import (
    FakeBedrock,
    FakeLambdaContext,
    api_event,
    client_error,
    make_service,
    stability_reply,
    titan_reply,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

TITAN, CORE = "amazon.titan-image-generator-v1", "stability.stable-image-core-v1:1"
EOL_MESSAGE = (
    "This model version has reached the end of its life. Please refer to the AWS documentation for more details."
)
LEGACY_MESSAGE = (
    "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in "
    "the last 15 days. Please upgrade to an active model on Amazon Bedrock"
)
#: Every answer Bedrock gives when the model itself cannot be used, with the reason the service logs.
UNAVAILABLE = {
    "end of life": client_error("ResourceNotFoundException", EOL_MESSAGE, 404),
    "Legacy, not used by this account recently": client_error("ResourceNotFoundException", LEGACY_MESSAGE, 404),
    "not found": client_error("ResourceNotFoundException", "Model not found", 404),
    "not offered in this region": client_error("ValidationException", "The provided model identifier is invalid.", 400),
    "access denied (model access not enabled in the account, or IAM)": client_error(
        "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403
    ),
}


def invoke_api(body: dict[str, Any], request_id: str = "req-1") -> tuple[int, dict[str, Any]]:
    response = api_app.lambda_handler(api_event(json.dumps(body), request_id=request_id), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def bedrock() -> FakeBedrock:
    return FakeBedrock(by_model={TITAN: titan_reply, CORE: stability_reply})


@pytest.fixture
def service(s3: S3Client, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> ImageService:
    """The default chain (Titan v1 in us-east-1, then Stable Image Core in us-west-2) behind the API handler,
    with the handler's own listener."""
    built = make_service(Settings(bucket_name=BUCKET), bedrock, s3)
    built.count = api_app.emf.count
    monkeypatch.setattr(api_app, "service", lambda: built)
    return built


def models_called(bedrock: FakeBedrock) -> list[str]:
    return [call["modelId"] for call in bedrock.calls]


def emf_metrics(output: str, name: str) -> list[dict[str, Any]]:
    return [record for line in output.splitlines() if line.startswith("{") and name in (record := json.loads(line))]


# ---- failover ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", UNAVAILABLE)
def test_the_api_fails_over_on_each_unavailable_model_answer(
    service: ImageService,
    bedrock: FakeBedrock,
    s3: S3Client,
    reason: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bedrock.by_model[TITAN] = UNAVAILABLE[reason]
    status, body = invoke_api({"prompt": "a lighthouse", "seed": 11})
    assert status == 200, body
    assert body["model"] == CORE
    assert models_called(bedrock) == [TITAN, CORE]  # the same request moved on at once
    sidecar = json.loads(
        s3.get_object(Bucket=BUCKET, Key=body["images"][0]["key"].replace(".png", ".json"))["Body"].read()
    )
    assert (sidecar["model"], sidecar["region"]) == (CORE, "us-west-2")
    # One warning naming model, region and Bedrock's reason; one metric with the model as a dimension.
    [warning] = [record for record in caplog.records if "marked unavailable" in record.getMessage()]
    assert (warning.model, warning.region, warning.reason) == (TITAN, "us-east-1", reason)  # type: ignore[attr-defined]
    [metric] = emf_metrics(capsys.readouterr().out, "ModelMarkedUnavailable")
    assert metric["model"] == TITAN
    assert ["model"] in metric["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    # The next request goes straight to the second model.
    status, body = invoke_api({"prompt": "another lighthouse"}, request_id="req-2")
    assert (status, body["model"]) == (200, CORE)
    assert models_called(bedrock) == [TITAN, CORE, CORE]


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (client_error("ValidationException", "This request has been blocked by our content filters."), 400,
         "ContentFiltered"),
        (client_error("ValidationException", "Malformed input request: #/seed: bad"), 502, "BedrockRejected"),
        (client_error("ThrottlingException", "Too many requests", 429), 429, "Throttled"),
        (client_error("ModelTimeoutException", "timed out", 408), 504, "ModelTimeout"),
        (client_error("ServiceUnavailableException", "unavailable", 503), 502, "BedrockUnavailable"),
    ],
)  # fmt: skip
def test_filters_bad_requests_throttling_and_timeouts_never_move_to_another_model(
    service: ImageService, bedrock: FakeBedrock, answer: Exception, status: int, code: str
) -> None:
    bedrock.by_model[TITAN] = answer
    got_status, body = invoke_api({"prompt": "a lighthouse"})
    assert (got_status, body["code"]) == (status, code)
    assert set(models_called(bedrock)) == {TITAN}
    assert service.chain.current().model_id == TITAN


def test_with_no_usable_model_the_api_answers_503_no_model_available(
    service: ImageService, bedrock: FakeBedrock
) -> None:
    access_denied = next(answer for reason, answer in UNAVAILABLE.items() if reason.startswith("access denied"))
    bedrock.by_model = {TITAN: UNAVAILABLE["end of life"], CORE: access_denied}
    status, body = invoke_api({"prompt": "a lighthouse"}, request_id="req-none")
    assert status == 503
    assert body["code"] == "NoModelAvailable"
    assert body["request_id"] == "req-none"
    assert body["message"] == "No image model is available right now. Try again later."
    # Without a Bedrock call until a cool-down ends.
    status, _ = invoke_api({"prompt": "again"})
    assert status == 503
    assert models_called(bedrock) == [TITAN, CORE]


# ---- validation against the serving model --------------------------------------------------------


def test_the_request_is_validated_against_the_model_that_serves_it(service: ImageService, bedrock: FakeBedrock) -> None:
    long_prompt = {"prompt": "p" * 600}  # over Titan's 512, under Stability's 10,000
    status, body = invoke_api(long_prompt)
    assert (status, body["field"]) == (400, "prompt")
    assert "Titan Image Generator model amazon.titan-image-generator-v1" in body["message"]
    assert bedrock.calls == []
    bedrock.by_model[TITAN] = UNAVAILABLE["end of life"]
    status, body = invoke_api({"prompt": "a cat", "quality": "premium"})  # valid for Titan, not for Stability
    assert (status, body["field"]) == (400, "quality")
    assert body["message"] == f"quality: is not supported by Stability AI model {CORE}"
    status, body = invoke_api(long_prompt)
    assert (status, body["model"]) == (200, CORE)


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1152, 768), {"aspect_ratio": "3:2"}), ((1024, 768), {"field": "width", "model": CORE})],
)
def test_a_size_maps_to_another_family_only_when_exact(
    service: ImageService, bedrock: FakeBedrock, size: tuple[int, int], expected: dict[str, str]
) -> None:
    bedrock.by_model[TITAN] = UNAVAILABLE["end of life"]
    service.chain.mark_unavailable(service.chain.entries[0], ModelUnavailableError("gone", reason="end of life"))
    status, body = invoke_api({"prompt": "a boat", "width": size[0], "height": size[1]})
    if "aspect_ratio" in expected:
        assert status == 200, body
        assert bedrock.calls[-1]["decoded_body"]["aspect_ratio"] == expected["aspect_ratio"]
    else:
        assert (status, body["field"]) == (400, expected["field"])
        assert expected["model"] in body["message"]


def test_three_images_from_a_one_image_model_are_three_concurrent_calls(
    service: ImageService, bedrock: FakeBedrock, s3: S3Client
) -> None:
    barrier = threading.Barrier(3, timeout=10)  # all three calls in flight at once, or the barrier breaks

    def together(body: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()
        return stability_reply(body)

    bedrock.by_model = {TITAN: UNAVAILABLE["end of life"], CORE: together}
    service.chain.mark_unavailable(service.chain.entries[0], ModelUnavailableError("gone", reason="end of life"))
    status, body = invoke_api({"prompt": "three foxes", "seed": 70, "numberOfImages": 3})
    assert status == 200, body
    assert [image["seed"] for image in body["images"]] == [70, 71, 72]
    assert sorted(call["decoded_body"]["seed"] for call in bedrock.calls) == [70, 71, 72]
    stored = [s3.get_object(Bucket=BUCKET, Key=image["key"])["Body"].read() for image in body["images"]]
    assert len(stored) == 3


# ---- the queue ---------------------------------------------------------------------------------


@pytest.fixture
def queue(s3: S3Client) -> Iterator[tuple[str, str, str]]:
    sqs = make_sqs_client()
    dlq_url = sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="prompts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield queue_url, queue_arn, dlq_url


def _worker(s3: S3Client, jobs: JobStore, bedrock: FakeBedrock, dlq_url: str, **kwargs: Any) -> QueueWorker:
    service = make_service(Settings(bucket_name=BUCKET), bedrock, s3)
    return QueueWorker(service, jobs, make_sqs_client(), dlq_url, **kwargs)


def _records(queue_url: str, queue_arn: str, bodies: list[str]) -> dict[str, Any]:
    sqs = make_sqs_client()
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    messages: list[Any] = []
    while len(messages) < len(bodies):
        messages += sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return {
        "Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
             "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "eu-west-1"}
            for m in messages
        ]
    }  # fmt: skip


def test_a_cold_worker_pays_one_failed_call_for_an_end_of_life_primary(
    s3: S3Client, jobs: JobStore, bedrock: FakeBedrock, queue: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url, queue_arn, dlq_url = queue
    worker = _worker(s3, jobs, bedrock, dlq_url)

    def end_of_life_once_the_others_wait(body: dict[str, Any]) -> dict[str, Any]:
        # The probe answers only when the nine other records of the batch are waiting for it: without one probe
        # at a time they would all be calling the model themselves, and this would time out.
        deadline = time.monotonic() + 10
        while worker.service.chain.waiting < 9:
            assert time.monotonic() < deadline, f"{worker.service.chain.waiting} records wait for the probe, not 9"
        raise UNAVAILABLE["end of life"]

    bedrock.by_model[TITAN] = end_of_life_once_the_others_wait
    monkeypatch.setattr(worker_app, "worker", lambda: worker)
    event = _records(queue_url, queue_arn, [f"prompt {index}" for index in range(10)])
    response = worker_app.lambda_handler(event, FakeLambdaContext(function_name="worker"))
    assert response["batchItemFailures"] == []
    assert models_called(bedrock).count(TITAN) == 1  # ten concurrent records, one failed call
    assert models_called(bedrock).count(CORE) == 10


def test_the_cool_down_ends_with_one_more_try_of_the_primary(s3: S3Client, bedrock: FakeBedrock) -> None:
    now = [0.0]
    settings = Settings(bucket_name=BUCKET, model_cooldown_seconds=900)
    chain = ModelChain(settings.models, cooldown_seconds=900, clock=lambda: now[0])
    service = ImageService(settings, bedrock=cast("BedrockRuntimeClient", bedrock), s3=s3, chain=chain)
    bedrock.by_model[TITAN] = UNAVAILABLE["end of life"]
    for index, moment in enumerate((0.0, 899.0, 900.0, 901.0)):
        now[0] = moment
        result = service.generate(service.prepare({"prompt": "a cat"}), request_id=f"r{index}")
        assert result.model_id == CORE
    assert models_called(bedrock) == [TITAN, CORE, CORE, TITAN, CORE, CORE]


def test_no_usable_model_on_the_queue_is_retried_then_dead_lettered_with_that_reason(
    s3: S3Client, jobs: JobStore, bedrock: FakeBedrock, queue: tuple[str, str, str]
) -> None:
    queue_url, queue_arn, dlq_url = queue
    bedrock.by_model = {TITAN: UNAVAILABLE["end of life"], CORE: UNAVAILABLE["not offered in this region"]}
    worker = _worker(s3, jobs, bedrock, dlq_url, max_receive_count=3)
    [record] = _records(queue_url, queue_arn, ["a cat in space"])["Records"]
    message = QueueMessage(record["messageId"], record["body"], record["receiptHandle"], 1, queue_arn)
    with pytest.raises(TransientBedrockError) as caught:  # retried later, with backoff
        worker.process(message)
    assert caught.value.code == "NoModelAvailable"
    assert make_sqs_client().receive_message(QueueUrl=dlq_url).get("Messages", []) == []
    last = QueueMessage(record["messageId"], record["body"], record["receiptHandle"], 3, queue_arn)
    assert worker.process(last).outcome.value == "dead_lettered"
    [letter] = make_sqs_client().receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"]
    attributes = {name: value["StringValue"] for name, value in letter["MessageAttributes"].items()}
    assert attributes["error_code"] == "NoModelAvailable"
    assert attributes["error_message"] == (
        "gave up after 3 attempts: No image model is available right now. Try again later."
    )
    assert models_called(bedrock) == [TITAN, CORE]  # the second delivery made no call: both are cooling down
