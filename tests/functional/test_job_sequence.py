"""docs/ARCHITECTURE.md draws a job's life as a sequence diagram; this runs the same path (POST /jobs with an
Idempotency-Key, the worker, GET /jobs/{job_id}) on moto and a fake Bedrock, and checks that the requests the API
function and the worker make, in order, are the ones the diagram draws."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from imagegen.config import Settings
from imagegen.index import make_dynamodb_client
from imagegen.index import table_definition as index_table
from imagegen.jobs import JobStore
from imagegen.jobs_service import JobService
from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, make_service, stability_reply
from tests.tools import ROOT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The participants whose requests are this project's code (the others are AWS services answering).
OUR_CODE = {"API", "Worker"}
OPERATION = re.compile(r"\b(PutItem|UpdateItem|GetItem|SendMessage|PutObject|GetObject|InvokeModel)\b")


def drawn_requests() -> list[str]:
    """``participant:Operation`` for each request arrow of our code in the diagram, in order."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    diagram = text.split("```mermaid\nsequenceDiagram\n", 1)[1].split("```", 1)[0]
    requests = []
    for line in diagram.splitlines():
        arrow = re.match(r"\s*(\w+)->>(\w+):\s*(.*)", line)  # a solid arrow: a request ("-->>" are replies)
        if arrow and arrow.group(1) in OUR_CODE:
            operation = OPERATION.search(arrow.group(3))
            assert operation, f"a request of our code that names no operation: {line.strip()}"
            requests.append(f"{arrow.group(1)}:{operation.group(1)}")
    return requests


def test_the_sequence_diagram_is_the_requests_the_code_makes(s3: S3Client, jobs: JobStore) -> None:
    made: list[str] = []
    who = ["API"]

    def record(model: Any, **_: Any) -> None:
        made.append(f"{who[0]}:{model.name}")

    dynamodb = make_dynamodb_client()
    dynamodb.create_table(**index_table("index"))
    sqs = make_sqs_client()
    queue_url = sqs.create_queue(QueueName="prompts")["QueueUrl"]

    def model(body: dict[str, Any]) -> dict[str, Any]:
        made.append(f"{who[0]}:InvokeModel")
        return stability_reply(body)

    bedrock = FakeBedrock(replies=[model])
    settings = Settings(bucket_name=BUCKET, model_id="stability.stable-image-core-v1:1", images_table_name="index")
    service = make_service(settings, bedrock, s3)
    assert service.index is not None
    for client in (s3, jobs.dynamodb, service.index._dynamodb, sqs):
        client.meta.events.register("before-call", record)  # sent requests (presigning emits no before-call)

    api = JobService(service, jobs, sqs, queue_url)
    job = api.submit({"prompt": "an owl"}, owner="key-1", idempotency_key="order-1").job
    [message] = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
    made.remove("API:ReceiveMessage")  # the event source mapping's, not the worker's: drawn as Queue->>Worker
    who[0] = "Worker"
    worker = QueueWorker(service, jobs, sqs, "unused-dlq")
    assert worker.process(QueueMessage(message["MessageId"], message["Body"], job_id=job.job_id)).outcome.value == (
        "generated"
    )
    who[0] = "API"
    assert api.view(job.job_id)["status"] == "succeeded"
    assert made == drawn_requests()
