"""Both handlers as their containers build them (``app.service()`` / ``app.worker()`` from the environment): each
Bedrock call that answers is one ``BedrockLatency`` EMF metric with the model as its dimension; a failed call is
none (moto, a fake Bedrock in place of the per-region clients)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from generate_image import app as api_app
from imagegen import service as service_module
from imagegen.emf import BEDROCK_LATENCY
from imagegen.queue import make_sqs_client
from sqs_worker import app as worker_app
from tests.conftest import BUCKET, JOBS_TABLE
from tests.fakes import FakeBedrock, FakeLambdaContext, api_event, client_error, stability_reply, titan_reply

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from imagegen.jobs import JobStore

TITAN, CORE = "amazon.titan-image-generator-v1", "stability.stable-image-core-v1:1"
UNAVAILABLE = client_error("ResourceNotFoundException", "Model not found", 404)
THROTTLED = client_error("ThrottlingException", "Too many requests", 429)


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    """The fake answers for every region's client; both handlers' per-container objects built afresh."""
    fake = FakeBedrock(by_model={TITAN: titan_reply, CORE: stability_reply})
    monkeypatch.setattr(service_module, "make_bedrock_client", lambda region, **_: fake)
    monkeypatch.setenv("BUCKET_NAME", BUCKET)
    monkeypatch.setenv("MODEL_ID", f"{TITAN}@us-east-1,{CORE}@us-west-2")
    api_app.reset()
    worker_app.reset()
    yield fake
    api_app.reset()
    worker_app.reset()


def latencies(output: str) -> list[dict[str, Any]]:
    """The BedrockLatency EMF records printed on stdout."""
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [record for record in records if BEDROCK_LATENCY in record]


def assert_one_latency_for(record: dict[str, Any], model_id: str, elapsed_ms: float) -> None:
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ImageGen"
    assert directive["Dimensions"] == [["model"]]
    assert directive["Metrics"] == [{"Name": BEDROCK_LATENCY, "Unit": "Milliseconds"}]
    assert record["model"] == model_id
    [milliseconds] = record[BEDROCK_LATENCY]
    assert 0 <= milliseconds <= elapsed_ms  # within the invocation that made the call


def invoke_api(prompt: str) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = api_app.lambda_handler(api_event(json.dumps({"prompt": prompt})), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]), (time.perf_counter() - started) * 1000


def test_the_api_records_the_latency_of_the_call_that_answered_by_model(
    bedrock: FakeBedrock, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    bedrock.by_model[TITAN] = UNAVAILABLE  # a failed call, then the next model of the chain answers
    status, body, elapsed_ms = invoke_api("a lighthouse")
    assert (status, body["model"]) == (200, CORE), body
    assert [call["modelId"] for call in bedrock.calls] == [TITAN, CORE]
    [record] = latencies(capsys.readouterr().out)
    assert_one_latency_for(record, CORE, elapsed_ms)


def test_the_api_records_no_latency_for_a_call_that_failed(
    bedrock: FakeBedrock, s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    bedrock.by_model[TITAN] = THROTTLED
    status, body, _ = invoke_api("a lighthouse")
    assert (status, body["code"]) == (429, "Throttled")
    assert len(bedrock.calls) == 1
    assert latencies(capsys.readouterr().out) == []


@pytest.fixture
def queue(bedrock: FakeBedrock, jobs: JobStore, monkeypatch: pytest.MonkeyPatch) -> str:
    """The prompt queue (its dead-letter queue and the jobs table configured as the worker needs them)."""
    sqs = make_sqs_client()
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"])
    monkeypatch.setenv("JOBS_TABLE_NAME", JOBS_TABLE)
    return sqs.create_queue(QueueName="prompts")["QueueUrl"]


def handle_one(queue_url: str, prompt: str) -> tuple[list[str], float]:
    """Send ``prompt``, receive it and hand it to the worker handler; the failed ids and the elapsed ms."""
    sqs = make_sqs_client()
    sqs.send_message(QueueUrl=queue_url, MessageBody=prompt)
    [message] = sqs.receive_message(QueueUrl=queue_url, MessageSystemAttributeNames=["All"])["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
              "attributes": message.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": message["MD5OfBody"],
              "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "eu-west-1"}  # fmt: skip
    started = time.perf_counter()
    response = worker_app.lambda_handler({"Records": [record]}, FakeLambdaContext(function_name="SqsWorker"))
    failed = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    return failed, (time.perf_counter() - started) * 1000


def test_the_worker_records_the_latency_of_the_call_that_answered_by_model(
    bedrock: FakeBedrock, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failed, elapsed_ms = handle_one(queue, "a cat in space")
    assert failed == []
    assert [call["modelId"] for call in bedrock.calls] == [TITAN]
    [record] = latencies(capsys.readouterr().out)
    assert_one_latency_for(record, TITAN, elapsed_ms)


def test_the_worker_records_no_latency_for_a_call_that_failed(
    bedrock: FakeBedrock, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bedrock.by_model[TITAN] = THROTTLED
    failed, _ = handle_one(queue, "a cat in space")
    assert len(failed) == 1  # back to the queue, to be retried
    assert len(bedrock.calls) == 1
    assert latencies(capsys.readouterr().out) == []
