"""A Stability "Inference error" on the queue (moto S3/SQS/DynamoDB, a fake Bedrock, the real QueueWorker): each
receive asks the model again within its attempts; a receive that still fails is retried later with backoff; the
last receive the queue allows dead-letters the job with its reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from imagegen.config import Settings
from imagegen.errors import ModelInferenceError
from imagegen.jobs import JobStatus, JobStore
from imagegen.queue import Outcome, QueueMessage, QueueWorker, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, Reply, make_service, stability_reply

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

CORE = "stability.stable-image-core-v1:1"
INFERENCE_ERROR: dict[str, Any] = {"finish_reasons": ["Inference error"]}
ATTEMPTS, RECEIVES = 2, 3


class Setup:
    """The prompt queue and its DLQ on moto, and a worker on a fake Bedrock serving Stable Image Core."""

    def __init__(self, s3: S3Client, jobs: JobStore, replies: list[Reply]) -> None:
        self.sqs: SQSClient = make_sqs_client()
        self.dlq_url = self.sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
        self.url = self.sqs.create_queue(QueueName="prompts")["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.bedrock = FakeBedrock(replies=replies)
        settings = Settings(bucket_name=BUCKET, model_id=CORE, bedrock_max_attempts=ATTEMPTS)
        service = make_service(settings, self.bedrock, s3)
        self.worker = QueueWorker(service, jobs, self.sqs, self.dlq_url, max_receive_count=RECEIVES)
        self.jobs = jobs
        self.visibility: list[int] = []
        self.sqs.meta.events.register(
            "provide-client-params.sqs.ChangeMessageVisibility",
            lambda params, **_: self.visibility.append(params["VisibilityTimeout"]),
        )

    def send(self, body: str) -> tuple[str, str]:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)
        [message] = self.sqs.receive_message(QueueUrl=self.url)["Messages"]
        return message["MessageId"], message["ReceiptHandle"]

    def dead_letters(self) -> list[dict[str, str]]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [
            {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
            for message in got.get("Messages", [])
        ]


def test_an_inference_error_that_persists_is_retried_then_dead_lettered_with_its_reason(
    s3: S3Client, jobs: JobStore
) -> None:
    setup = Setup(s3, jobs, [INFERENCE_ERROR])
    message_id, receipt = setup.send("a lighthouse at dusk")

    for receive in range(1, RECEIVES):  # every receive but the last: retried later, never dead-lettered
        with pytest.raises(ModelInferenceError):
            setup.worker.process(QueueMessage(message_id, "a lighthouse at dusk", receipt, receive, setup.arn))
        assert setup.dead_letters() == []
        job = setup.jobs.get(message_id)
        assert job is not None and job.last_error is not None
        assert (job.status, job.last_error.code) == (JobStatus.RUNNING, "ModelInferenceFailed")
    assert len(setup.visibility) == RECEIVES - 1  # each retry was pushed out with backoff
    assert setup.visibility == sorted(setup.visibility)

    last = setup.worker.process(QueueMessage(message_id, "a lighthouse at dusk", receipt, RECEIVES, setup.arn))

    assert last.outcome is Outcome.DEAD_LETTERED
    assert len(setup.bedrock.calls) == RECEIVES * ATTEMPTS  # each receive spent its attempts on the model
    [letter] = setup.dead_letters()
    assert letter["error_code"] == "ModelInferenceFailed"
    assert letter["error_message"] == (
        f"gave up after {RECEIVES} attempts: The model failed to make the image (an inference error)."
    )
    assert letter["error_detail"] == "finish_reasons: Inference error"
    assert (letter["job_id"], letter["source_message_id"]) == (message_id, message_id)
    job = setup.jobs.get(message_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error is not None and job.error.detail == "finish_reasons: Inference error"


def test_an_inference_error_that_clears_within_a_receive_makes_the_image(s3: S3Client, jobs: JobStore) -> None:
    setup = Setup(s3, jobs, [INFERENCE_ERROR, stability_reply])
    message_id, receipt = setup.send("a lighthouse at dusk")

    result = setup.worker.process(QueueMessage(message_id, "a lighthouse at dusk", receipt, 1, setup.arn))

    assert result.outcome is Outcome.GENERATED
    assert len(setup.bedrock.calls) == 2
    assert setup.dead_letters() == [] and setup.visibility == []
    job = setup.jobs.get(message_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED and len(job.images) == 1
