"""Jobs end to end on the local stack: every jobs route over HTTP, a message sent with the AWS CLI followed by its
MessageId, a dead-lettered message's job failed with the dead letter's code, and a model slower than API Gateway's
29 s (the synchronous request is a 504, the job succeeds)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import StackEndpoints
from local_stack.stack import LocalStack, StackConfig
from tests.local.local_stack_support import THROTTLED, dead_letters, get, job_ended, post, send, wait_until
from tests.tools import tool_spec, uv

STABILITY = "stability.stable-image-core-v1:1@us-west-2"


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture: the stack sets the environment its handlers need."""


def _stack(directory: Any, **overrides: Any) -> LocalStack:
    return LocalStack(StackConfig(api_port=0, aws_port=0, bedrock_port=0, state_file=None, log_dir=directory / "logs",
                                  batching_window_seconds=0.2, retry_base_seconds=1, model_id=STABILITY,
                                  **overrides))  # fmt: skip


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    emulator = EmulatorConfig.from_env({}, blocked_words=("forbidden",))
    with _stack(tmp_path_factory.mktemp("jobs"), emulator=emulator) as running:
        assert running.endpoints is not None
        yield running.endpoints


def submit(endpoints: StackEndpoints, body: object, key: str | None = None) -> tuple[int, dict[str, Any], Any]:
    headers = {"x-api-key": endpoints.api_key, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{endpoints.stage_url}/jobs", data=json.dumps(body).encode(), headers=headers,
                                     method="POST")  # fmt: skip
    for _ in range(40):  # the usage plan's throttle is waited out, as a client should
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read()), reply.headers
        except urllib.error.HTTPError as error:
            answer = (error.code, json.loads(error.read()), error.headers)
        if answer[:2] != (429, THROTTLED):
            return answer
        time.sleep(0.25)
    return answer


def test_a_job_is_accepted_at_once_and_followed_to_its_images(endpoints: StackEndpoints) -> None:
    status, body, headers = submit(endpoints, {"prompt": "a lighthouse at dawn", "numberOfImages": 2, "seed": 3})
    assert status == 202
    assert body["status"] == "queued"
    assert headers["Location"] == body["status_url"] == f"{endpoints.stage_url}/jobs/{body['job_id']}"
    job = job_ended(endpoints, body["job_id"])
    assert (job["status"], job["source"], job["attempts"], job["error"]) == ("succeeded", "api", 1, None)
    assert [(image["index"], image["seed"]) for image in job["images"]] == [(0, 3), (1, 4)]
    with urllib.request.urlopen(job["images"][1]["url"], timeout=30) as image:  # the presigned URL works
        assert image.read().startswith(b"\x89PNG")


def test_a_retried_submission_with_its_key_is_the_same_job(endpoints: StackEndpoints) -> None:
    first = submit(endpoints, {"prompt": "a red tram"}, key="retry-1")
    again = submit(endpoints, {"prompt": "a red tram"}, key="retry-1")
    other = submit(endpoints, {"prompt": "a blue tram"}, key="retry-1")
    assert (first[0], again[0], other[0]) == (202, 202, 422)
    assert first[1]["job_id"] == again[1]["job_id"]
    assert other[1]["code"] == "IdempotencyKeyMismatch"


def test_a_bad_body_queues_nothing(endpoints: StackEndpoints) -> None:
    status, body, _ = submit(endpoints, {"prompt": "x" * 10_001})
    assert (status, body["field"]) == (400, "prompt")


def test_unknown_and_malformed_job_ids(endpoints: StackEndpoints) -> None:
    assert get(f"{endpoints.stage_url}/jobs/0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01")[0] == 404
    status, body = get(f"{endpoints.stage_url}/jobs/not-a-job")
    assert (status, body["field"]) == (400, "job_id")
    assert get(f"{endpoints.stage_url}/jobs/0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01", key="wrong")[0] == 403


def test_a_message_sent_with_the_aws_cli_is_followed_by_the_message_id_it_prints(endpoints: StackEndpoints) -> None:
    aws = [uv(), "tool", "run", "--from", tool_spec("AWSCLI"), "aws"]
    result = subprocess.run(
        [*aws, "--endpoint-url", endpoints.aws_endpoint_url, "--region", endpoints.region, "--output", "json",
         "sqs", "send-message", "--queue-url", endpoints.queue_url, "--message-body", "an owl, from the AWS CLI"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    message_id = json.loads(result.stdout)["MessageId"]
    job = job_ended(endpoints, message_id)
    assert (job["job_id"], job["status"], job["source"]) == (message_id, "succeeded", "queue")


def test_a_dead_lettered_message_is_a_failed_job_with_the_dead_letters_code(endpoints: StackEndpoints) -> None:
    message_id = send(endpoints, "a forbidden picture")
    job = job_ended(endpoints, message_id)
    letter = wait_until(lambda: dead_letters(endpoints).get(message_id), what="the dead letter")
    assert (job["status"], job["error"]["code"]) == ("failed", letter["error_code"]) == ("failed", "ContentFiltered")
    assert letter["job_id"] == message_id
    assert job["error"]["message"] == letter["error_message"]


def test_the_synchronous_request_is_a_job_too(endpoints: StackEndpoints) -> None:
    status, reply = post(endpoints.api_url, json.dumps({"prompt": "a wren"}))
    assert status == 200
    status, job = get(f"{endpoints.stage_url}/jobs/{reply['job_id']}")
    keys = [image["key"] for image in reply["images"]]
    assert (status, job["status"], [image["key"] for image in job["images"]]) == (200, "succeeded", keys)


def test_a_model_slower_than_api_gateways_limit_is_a_504_synchronously_and_a_job_that_succeeds(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    slow = EmulatorConfig(latency_ms=35_000)
    with _stack(tmp_path_factory.mktemp("slow"), emulator=slow) as running:
        ep = running.endpoints
        assert ep is not None
        status, body, _ = submit(ep, {"prompt": "a slow glacier"})
        assert status == 202
        sync_status, sync_body = post(ep.api_url, json.dumps({"prompt": "a slow glacier"}))
        assert sync_status == 504, sync_body  # API Gateway gives up at 29 s
        job = job_ended(ep, body["job_id"], timeout=60)
        assert (job["status"], len(job["images"])) == ("succeeded", 1)
