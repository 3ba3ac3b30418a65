"""The jobs routes through the API handler (moto S3, SQS and DynamoDB, a fake Bedrock): POST /jobs queues a
validated request once, Idempotency-Key, GET /jobs/{job_id}, the synchronous request as a job, ownership, images
kept when others fail, and a fault at each write step of a submission."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from generate_image import app
from imagegen.config import Settings
from imagegen.jobs import JobStatus, JobStore
from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
from imagegen.service import ImageService
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, FakeLambdaContext, api_event, client_error, make_service, stability_reply
from tests.faults import Faults

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REQUEST_ID = "5f0c3e5a-8d0e-4c43-9a43-2f7d1f1f0a11"
STABILITY = "stability.stable-image-core-v1:1"
STAGE = "https://abcdef1234.execute-api.eu-west-1.amazonaws.com/Prod"


@dataclass
class Api:
    service: ImageService
    jobs: JobStore
    sqs: SQSClient
    queue_url: str
    bedrock: FakeBedrock

    def messages(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"], VisibilityTimeout=0)  # fmt: skip
        return [dict(message) for message in got.get("Messages", [])]

    def records(self) -> list[dict[str, Any]]:
        return self.jobs.dynamodb.scan(TableName=self.jobs.table_name)["Items"]

    def worker(self) -> QueueWorker:
        return QueueWorker(self.service, self.jobs, self.sqs, "unused-dlq")


@pytest.fixture
def api(s3: S3Client, jobs: JobStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    sqs = make_sqs_client()
    queue_url = sqs.create_queue(QueueName="imagegen-prompts")["QueueUrl"]
    bedrock = FakeBedrock(replies=[stability_reply])
    service = make_service(Settings(bucket_name=BUCKET, model_id=STABILITY), bedrock, s3)
    monkeypatch.setattr(app, "service", lambda: service)
    monkeypatch.setattr(app, "_job_clients", lambda: (jobs, sqs, queue_url))
    yield Api(service, jobs, sqs, queue_url, bedrock)


def call(method: str, path: str, body: object = None, **options: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    resource = "/jobs/{job_id}" if path.startswith("/jobs/") else path
    event = api_event(text, path=path, method=method, resource=resource, **options)
    response = app.lambda_handler(event, FakeLambdaContext())
    headers = dict(response.get("headers") or {})
    headers.update({name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], json.loads(response["body"]), headers


def submit(body: object, key: str | None = None, **options: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return call("POST", "/jobs", body, headers=headers, **options)


# ---- POST /jobs ------------------------------------------------------------------------------------------


def test_a_job_is_recorded_queued_and_sent_once_and_answered_at_once(api: Api) -> None:
    status, body, headers = submit({"seed": 3, "prompt": "an owl"})
    assert status == 202
    job_id = body["job_id"]
    assert body == {"job_id": job_id, "status": "queued", "status_url": f"{STAGE}/jobs/{job_id}"}
    assert headers["Location"] == body["status_url"]
    [message] = api.messages()
    assert message["Body"] == '{"prompt":"an owl","seed":3}'  # the request, canonical
    assert message["MessageAttributes"]["job_id"]["StringValue"] == job_id
    assert api.bedrock.calls == []  # the worker does the work
    status, job, _ = call("GET", f"/jobs/{job_id}")
    assert status == 200
    assert job == {"job_id": job_id, "status": "queued", "source": "api", "created_at": job["created_at"],
                   "updated_at": job["updated_at"], "model": None, "region": None, "images": [], "failures": [],
                   "error": None, "last_error": None, "attempts": 0}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [("", "body"), ("[1]", "body"), ('{"prompt": ""}', "prompt"), ('{"prompt": "x", "width": 5, "height": 7}', "width"),
     ('{"prompt": "x", "quality": "premium"}', "quality"), ('{"prompt": "' + "p" * 10_001 + '"}', "prompt")],
)  # fmt: skip
def test_a_bad_body_is_a_400_and_nothing_is_queued_or_recorded(api: Api, body: str, field: str) -> None:
    status, reply, _ = submit(body)
    assert (status, reply["code"], reply["field"]) == (400, "InvalidRequest", field)
    assert api.messages() == []
    assert api.records() == []


def test_the_same_idempotency_key_and_body_is_the_same_job_and_one_message(api: Api) -> None:
    first = submit({"prompt": "an owl", "seed": 3}, key="order-7")
    again = submit({"seed": 3, "prompt": "an owl"}, key="order-7")  # the same request, keys in another order
    assert first[0] == again[0] == 202
    assert first[1]["job_id"] == again[1]["job_id"]
    assert len(api.messages()) == 1


def test_the_same_idempotency_key_with_another_body_is_a_422(api: Api) -> None:
    submit({"prompt": "an owl"}, key="order-7")
    status, body, _ = submit({"prompt": "a hawk"}, key="order-7")
    assert (status, body["code"], body["field"]) == (422, "IdempotencyKeyMismatch", "Idempotency-Key")
    assert len(api.messages()) == 1


def test_idempotency_keys_belong_to_their_api_key(api: Api) -> None:
    one = submit({"prompt": "an owl"}, key="order-7", api_key_id="team-a")
    other = submit({"prompt": "a hawk"}, key="order-7", api_key_id="team-b")
    assert (one[0], other[0]) == (202, 202)
    assert one[1]["job_id"] != other[1]["job_id"]
    owners = {record["pk"]["S"]: record["owner"]["S"] for record in api.records() if "owner" in record}
    assert owners == {one[1]["job_id"]: "team-a", other[1]["job_id"]: "team-b"}


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_idempotency_key_is_a_400_naming_the_header(api: Api, key: str) -> None:
    status, body, _ = submit({"prompt": "an owl"}, key=key)
    assert (status, body["field"]) == (400, "Idempotency-Key")
    assert api.messages() == []


# ---- GET /jobs/{job_id} ---------------------------------------------------------------------------------


def test_an_unknown_job_is_a_404_and_a_malformed_id_a_400(api: Api) -> None:
    status, body, _ = call("GET", "/jobs/0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01")
    assert (status, body["code"]) == (404, "NotFound")
    for bad in ("abc", "0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a0g", "idempotency%23abc"):
        status, body, _ = call("GET", f"/jobs/{bad}")
        assert (status, body["code"], body["field"]) == (400, "InvalidRequest", "job_id"), bad


def test_a_submitted_job_succeeds_through_the_worker_and_keeps_its_owner(api: Api) -> None:
    _, body, _ = submit({"prompt": "an owl", "numberOfImages": 2, "seed": 5}, api_key_id="team-a")
    [message] = api.messages()
    attribute = message["MessageAttributes"]["job_id"]["StringValue"]
    result = api.worker().process(QueueMessage(message["MessageId"], message["Body"], job_id=attribute))
    assert result.outcome.value == "generated"
    status, job, _ = call("GET", f"/jobs/{body['job_id']}")
    assert status == 200
    assert (job["status"], job["source"], job["attempts"], job["model"]) == ("succeeded", "api", 1, STABILITY)
    assert [(image["index"], image["seed"]) for image in job["images"]] == [(0, 5), (1, 6)]
    assert [image["key"] for image in job["images"]] == [
        f"generated_images/from_queue/{body['job_id']}-{index}.png" for index in range(2)
    ]
    assert all(image["url"].startswith("https://") and image["width"] == 4 for image in job["images"])
    [record] = [r for r in api.records() if r["pk"]["S"] == body["job_id"]]
    assert record["owner"]["S"] == "team-a"


def test_a_message_sent_straight_to_the_queue_is_a_job_under_its_message_id(api: Api) -> None:
    message_id = api.sqs.send_message(QueueUrl=api.queue_url, MessageBody="a cat in space")["MessageId"]
    assert api.worker().process(QueueMessage(message_id, "a cat in space")).outcome.value == "generated"
    status, job, _ = call("GET", f"/jobs/{message_id}")
    assert (status, job["status"], job["source"], len(job["images"])) == (200, "succeeded", "queue", 1)


# ---- POST /generate-image is a job too ------------------------------------------------------------------


def test_a_synchronous_request_is_a_job_with_the_same_images(api: Api) -> None:
    status, reply, _ = call("POST", "/generate-image", {"prompt": "an owl", "seed": 9}, request_id=REQUEST_ID)
    assert status == 200
    assert reply["job_id"] == reply["request_id"] == REQUEST_ID
    status, job, _ = call("GET", f"/jobs/{REQUEST_ID}")
    assert (status, job["status"], job["source"], job["attempts"]) == (200, "succeeded", "api", 1)
    assert [image["key"] for image in job["images"]] == [image["key"] for image in reply["images"]]
    [record] = api.records()
    assert record["owner"]["S"] == "key-id-1"


def test_a_synchronous_request_keeps_the_images_made_when_others_fail(api: Api) -> None:
    def third_fails(body: dict[str, Any]) -> dict[str, Any]:
        if body["seed"] == 12:
            raise client_error("ServiceUnavailableException", "down", 503)
        return stability_reply(body)

    api.bedrock.replies = [third_fails]
    status, reply, _ = call("POST", "/generate-image", {"prompt": "owls", "seed": 10, "numberOfImages": 5},
                            request_id=REQUEST_ID)  # fmt: skip
    assert status == 200
    assert [image["index"] for image in reply["images"]] == [0, 1, 3, 4]
    assert reply["failures"] == [{"index": 2, "code": "BedrockUnavailable",
                                  "message": "The image model is temporarily unavailable."}]  # fmt: skip
    assert len(api.bedrock.calls) == 5
    _, job, _ = call("GET", f"/jobs/{REQUEST_ID}")
    assert (job["status"], [i["index"] for i in job["images"]], job["failures"]) == (
        "succeeded", [0, 1, 3, 4], reply["failures"])  # fmt: skip


def test_a_synchronous_request_that_made_no_image_is_a_failed_job(api: Api) -> None:
    api.bedrock.replies = [client_error("ThrottlingException", "slow down", 429)]
    status, reply, _ = call("POST", "/generate-image", {"prompt": "an owl"}, request_id=REQUEST_ID)
    assert (status, reply["code"]) == (429, "Throttled")
    _, job, _ = call("GET", f"/jobs/{REQUEST_ID}")
    assert (job["status"], job["error"]["code"], job["images"]) == ("failed", "Throttled", [])


def test_a_synchronous_request_succeeds_when_the_job_records_are_down(api: Api) -> None:
    counted: list[str] = []
    api.service.count = lambda name, **_: counted.append(name)
    faults = Faults(api.jobs.dynamodb)
    faults.fail("PutItem")  # its one record, written once it ended
    status, reply, _ = call("POST", "/generate-image", {"prompt": "an owl"}, request_id=REQUEST_ID)
    assert status == 200 and len(reply["images"]) == 1
    assert faults.calls == ["PutItem"] and counted == ["JobRecordFailed"]
    assert call("GET", f"/jobs/{REQUEST_ID}")[0] == 404


def test_a_synchronous_request_is_one_write_once_it_ended(api: Api) -> None:
    faults = Faults(api.jobs.dynamodb)
    status, _, _ = call("POST", "/generate-image", {"prompt": "an owl"}, request_id=REQUEST_ID)
    assert (status, faults.calls) == (200, ["PutItem"])


# ---- a fault at each write step of a submission: a retry with the same key completes it, one message --------

SUBMIT_STEPS = [("jobs", "PutItem", 0), ("jobs", "PutItem", 1), ("sqs", "SendMessage", 0), ("jobs", "UpdateItem", 0)]


@pytest.mark.parametrize(
    ("client", "operation", "skip"),
    SUBMIT_STEPS,
    ids=["reserve the key", "create the record", "send the message", "note the message"],
)
def test_a_fault_at_any_write_step_of_a_submission_loses_nothing_and_sends_once(
    api: Api, client: str, operation: str, skip: int
) -> None:
    faults = Faults(api.jobs.dynamodb if client == "jobs" else api.sqs)
    seen = [0]

    def nth(_: dict[str, Any]) -> bool:
        seen[0] += 1
        return seen[0] == skip + 1

    faults.fail(operation, match=nth)
    first_status, first, _ = submit({"prompt": "an owl"}, key="order-9")
    if operation == "UpdateItem":  # the message went out; only noting it failed: the submission stands
        assert first_status == 202
    else:
        assert (first_status, first["code"]) == (502, "StorageUnavailable")
    status, body, _ = submit({"prompt": "an owl"}, key="order-9")
    assert status == 202
    messages = api.messages()
    assert {message["MessageAttributes"]["job_id"]["StringValue"] for message in messages} == {body["job_id"]}
    assert [r["pk"]["S"] for r in api.records() if not r["pk"]["S"].startswith("idempotency#")] == [body["job_id"]]
    _, job, _ = call("GET", f"/jobs/{body['job_id']}")
    assert job["status"] == JobStatus.QUEUED.value
    if first_status == 202:
        # The first message went out but could not be noted, so the retry cannot know it did: it sends again.
        assert first["job_id"] == body["job_id"]
        assert len(messages) == 2
    else:
        assert len(messages) == 1
    # Either way the job runs once: one model call, one image.
    worker = api.worker()
    for message in messages:
        worker.process(QueueMessage(message["MessageId"], message["Body"], job_id=body["job_id"]))
    _, job, _ = call("GET", f"/jobs/{body['job_id']}")
    assert (job["status"], len(job["images"]), len(api.bedrock.calls)) == ("succeeded", 1, 1)


def test_a_submission_costs_two_requests_without_a_key_and_four_with_one(api: Api) -> None:
    table, queue = Faults(api.jobs.dynamodb), Faults(api.sqs)
    submit({"prompt": "an owl"})
    assert (table.calls, queue.calls) == (["PutItem"], ["SendMessage"])  # the record, the message
    submit({"prompt": "a hawk"}, key="order-8")
    # + the key's reservation, and noting the message id that a retry with the key reads
    assert (table.calls[1:], queue.calls[1:]) == (["PutItem", "PutItem", "UpdateItem"], ["SendMessage"])
