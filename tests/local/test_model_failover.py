"""The model chain against the Bedrock emulator's lifecycle, end to end on the local stack: the API and the queue
fail over on each unavailable-model answer, each container pays one failed call per cool-down, and with no usable
model the API answers 503 and the queue dead-letters with that reason after its retries."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import StackConfig, StackEndpoints
from local_stack.stack import LocalStack

TITAN, CORE = "amazon.titan-image-generator-v1", "stability.stable-image-core-v1:1"
DEFAULT_CHAIN = f"{TITAN}@us-east-1,{CORE}@us-west-2"


def start(tmp: Path, *, model_id: str = DEFAULT_CHAIN, lifecycle: str = "", **config: Any) -> LocalStack:
    settings = StackConfig(
        api_port=0, aws_port=0, bedrock_port=0, state_file=None, log_dir=tmp / "logs", model_id=model_id,
        batching_window_seconds=0.2, emulator=EmulatorConfig.from_env({}, lifecycle=lifecycle), **config,
    )  # fmt: skip
    return LocalStack(settings).start()


def post(endpoints: StackEndpoints, prompt: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        endpoints.api_url, data=json.dumps({"prompt": prompt}).encode(), method="POST",
        headers={"x-api-key": endpoints.api_key, "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(condition: Any, what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)  # polls other processes (moto, the worker), not our own code
    raise AssertionError(f"timed out waiting for {what}")


def queue_sidecar(endpoints: StackEndpoints, message_id: str) -> dict[str, Any] | None:
    s3 = endpoints.client("s3")
    key = f"generated_images/from_queue/{message_id}-0.json"
    if not s3.list_objects_v2(Bucket=endpoints.bucket, Prefix=key).get("KeyCount"):
        return None
    result: dict[str, Any] = json.loads(s3.get_object(Bucket=endpoints.bucket, Key=key)["Body"].read())
    return result


#: How the first entry is unusable -> the chain and lifecycle override that make the emulator answer so.
SCENARIOS = {
    "end of life": (DEFAULT_CHAIN, ""),  # today's table: Titan v1 is end of life
    "Legacy, not used recently": (DEFAULT_CHAIN, f"{TITAN}=LEGACY_INACTIVE"),
    "access not enabled": (DEFAULT_CHAIN, f"{TITAN}=NO_ACCESS"),
    "not offered in the region": (f"{TITAN}@eu-west-1,{CORE}@us-west-2", f"{TITAN}=ACTIVE"),
}


@pytest.fixture(params=list(SCENARIOS), scope="module")
def failing_primary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    chain, lifecycle = SCENARIOS[request.param]
    stack = start(tmp_path_factory.mktemp("failover"), model_id=chain, lifecycle=lifecycle)
    try:
        yield stack
    finally:
        stack.stop()


def test_api_and_queue_fail_over_and_each_container_pays_one_failed_call(failing_primary: LocalStack) -> None:
    endpoints, emulator = failing_primary.endpoints, failing_primary.emulator
    assert endpoints is not None and emulator is not None
    for index in range(3):
        status, body = post(endpoints, f"an api picture {index}")
        assert (status, body.get("model")) == (200, CORE), body
    sqs = endpoints.client("sqs")
    ids = [sqs.send_message(QueueUrl=endpoints.queue_url, MessageBody=f"a queue picture {i}")["MessageId"]
           for i in range(3)]  # fmt: skip
    sidecars = [wait_for(lambda m=m: queue_sidecar(endpoints, m), f"image of {m}") for m in ids]
    assert {(sidecar["model"], sidecar["region"]) for sidecar in sidecars} == {(CORE, "us-west-2")}
    stats = emulator.stats()
    assert stats["unavailable"] == 2  # one failed call in the API container, one in the worker's
    assert stats["succeeded"] == 6


def test_with_no_usable_model_the_api_says_503_and_the_queue_dead_letters_with_the_reason(tmp_path: Path) -> None:
    stack = start(tmp_path, lifecycle=f"{CORE}=NO_ACCESS", max_receive_count=2, retry_base_seconds=1)
    try:
        endpoints = stack.endpoints
        assert endpoints is not None
        status, body = post(endpoints, "a cat")
        assert (status, body["code"]) == (503, "NoModelAvailable")
        sqs = endpoints.client("sqs")
        message_id = sqs.send_message(QueueUrl=endpoints.queue_url, MessageBody="a queued cat")["MessageId"]

        def dead_letter() -> dict[str, str] | None:
            got = sqs.receive_message(QueueUrl=endpoints.dlq_url, MessageAttributeNames=["All"], VisibilityTimeout=0)
            for message in got.get("Messages", []):
                attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
                if attributes.get("source_message_id") == message_id:
                    return attributes
            return None

        letter = wait_for(dead_letter, "the dead letter")
        assert letter["error_code"] == "NoModelAvailable"
        assert letter["error_message"].startswith("gave up after 2 attempts: No image model is available")
        assert queue_sidecar(endpoints, message_id) is None
    finally:
        stack.stop()
