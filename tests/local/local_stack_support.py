"""Helpers of the end-to-end tests on the local stack: polling, HTTP requests to the local API gateway, the
queue's images and dead letters, and the ``imagegen`` CLI run against a stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from local_stack.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_until(condition: Callable[[], T | None], timeout: float = 30.0, what: str = "condition") -> T:
    """Poll an asynchronous system until ``condition`` returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def post(url: str, body: bytes | str | None, key: str | None = "local-api-key") -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data if data is not None else b"", headers=headers, method="POST")
    return _send(request)


#: The usage plan's throttle answer: a client waits a token (5 a second) and tries again.
THROTTLED = {"message": "Too Many Requests"}


def _send(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    """One request, waiting out the usage plan's throttle (as clients should: the stack emulates the plan)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read() or b"{}")
        if (status, body) != (429, THROTTLED) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.25)


def png_keys(endpoints: Any, fragment: str) -> list[str]:
    listing = endpoints.client("s3").list_objects_v2(Bucket=endpoints.bucket, Prefix="generated_images/")
    return [obj["Key"] for obj in listing.get("Contents", []) if fragment in obj["Key"] and obj["Key"].endswith(".png")]


def get(url: str, key: str | None = "local-api-key") -> tuple[int, dict[str, Any]]:
    return _send(urllib.request.Request(url, headers={"x-api-key": key} if key else {}))


def job_ended(endpoints: Any, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The job once its record says it ended (GET /jobs/{job_id}, as clients follow it)."""

    def ended() -> dict[str, Any] | None:
        time.sleep(0.15)  # polls at most 5 a second, within the usage plan's rate (not synchronisation)
        status, job = get(f"{endpoints.stage_url}/jobs/{job_id}")
        return job if status == 200 and job["status"] in ("succeeded", "failed") else None

    return wait_until(ended, timeout, what=f"the end of job {job_id}")


def queue_image(endpoints: Any, message_id: str) -> str:
    """The key of the first image of a queue message's job, once the job succeeded."""
    job = job_ended(endpoints, message_id)
    assert job["status"] == "succeeded", job
    key: str = job["images"][0]["key"]
    return key


def send(endpoints: Any, body: str) -> str:
    message_id: str = endpoints.client("sqs").send_message(QueueUrl=endpoints.queue_url, MessageBody=body)["MessageId"]
    return message_id


def dead_letters(endpoints: Any) -> dict[str, dict[str, str]]:
    """DLQ messages by source message id (peeked, not consumed)."""
    found: dict[str, dict[str, str]] = {}
    got = endpoints.client("sqs").receive_message(
        QueueUrl=endpoints.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    )
    for message in got.get("Messages", []):
        attributes = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
        found[attributes.get("source_message_id", message["MessageId"])] = {"body": message["Body"], **attributes}
    return found


def cli(stack: LocalStack, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    state = str(stack.config.state_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQS_", "IMAGEGEN_"))}
    return subprocess.run(
        [sys.executable, "-m", "imagegen_cli", "--state-file", state, *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False,
    )  # fmt: skip


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the progress lines ("generating", "waiting for ...")."""
    return [line for line in result.stderr.splitlines() if line.startswith("imagegen:")]
