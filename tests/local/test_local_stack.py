"""End to end on the local stack: real HTTP through the local API gateway, real SQS through moto, the real
handlers, the Bedrock emulator, each in a process of its own. Also the `imagegen` CLI and the AWS CLI, as users
drive it."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from bedrock_emulator.config import EmulatorConfig
from local_stack.stack import LocalStack, StackConfig
from tests.tools import tool_spec, uv

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture: the stack sets the environment its handlers need."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        api_port=0,
        aws_port=0,
        bedrock_port=0,
        state_file=directory / "stack.json",
        log_dir=directory / "logs",
        batching_window_seconds=0.2,
        retry_base_seconds=1,
        # Titan v1 is end of life in today's lifecycle table; these tests keep the original system's model
        # serving (the failover has its own tests, tests/local/test_model_failover.py).
        emulator=EmulatorConfig.from_env(
            {}, blocked_words=("forbidden",), lifecycle="amazon.titan-image-generator-v1=ACTIVE"
        ),
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def endpoints(stack: LocalStack) -> Any:
    assert stack.endpoints is not None
    return stack.endpoints


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
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def png_keys(endpoints: Any, fragment: str) -> list[str]:
    listing = endpoints.client("s3").list_objects_v2(Bucket=endpoints.bucket, Prefix="generated_images/")
    return [obj["Key"] for obj in listing.get("Contents", []) if fragment in obj["Key"] and obj["Key"].endswith(".png")]


def queue_image(endpoints: Any, message_id: str) -> str:
    key = f"generated_images/from_queue/{message_id}-0.json"
    wait_until(lambda: _exists(endpoints, key), what=f"image of {message_id}")
    return key.replace(".json", ".png")


def _exists(endpoints: Any, key: str) -> bool:
    try:
        endpoints.client("s3").head_object(Bucket=endpoints.bucket, Key=key)
    except endpoints.client("s3").exceptions.ClientError:
        return False
    return True


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


# ---- API --------------------------------------------------------------------------------------


def test_api_generates_an_image_that_can_be_downloaded(stack: LocalStack, endpoints: Any) -> None:
    status, body = post(endpoints.api_url, json.dumps({"prompt": "a lighthouse at dusk", "seed": 3}))
    assert status == 200, body
    [image] = body["images"]
    assert image["seed"] == 3
    with urllib.request.urlopen(image["url"], timeout=10) as response:
        png = Image.open(io.BytesIO(response.read()))
    assert (png.format, png.size) == ("PNG", (1024, 1024))
    assert image["s3_uri"] == f"s3://{endpoints.bucket}/generated_images/{body['request_id']}-0.png"


@pytest.mark.parametrize(("key", "path"), [(None, ""), ("wrong-key", ""), ("local-api-key", "-typo")])
def test_missing_or_wrong_key_and_unknown_paths_are_403(endpoints: Any, key: str | None, path: str) -> None:
    status, body = post(endpoints.api_url + path, '{"prompt": "a cat"}', key=key)
    assert status == 403
    assert body == {"message": "Forbidden" if not path else "Missing Authentication Token"}


@pytest.mark.parametrize(
    ("body", "field"),
    [(None, "body"), ("{", "body"), ("[]", "body"), ('{"prompt": " "}', "prompt"), ('{"prompt": "a", "x": 1}', "x")],
)
def test_malformed_input_is_a_400_and_never_reaches_bedrock(
    stack: LocalStack, endpoints: Any, body: str | None, field: str
) -> None:
    assert stack.emulator is not None
    before = stack.emulator.stats()["requests"]
    status, payload = post(endpoints.api_url, body)
    assert (status, payload["field"]) == (400, field)
    assert stack.emulator.stats()["requests"] == before


def test_payload_over_10_mb_is_413(endpoints: Any) -> None:
    status, body = post(endpoints.api_url, b"x" * (10 * 1024 * 1024 + 1))
    assert (status, body) == (413, {"message": "Request Too Long"})


def test_content_filtered_prompt_is_a_400_saying_so(endpoints: Any) -> None:
    status, body = post(endpoints.api_url, '{"prompt": "something forbidden"}')
    assert (status, body["code"], body["field"]) == (400, "ContentFiltered", "prompt")
    assert "content filter" in body["message"]


# ---- queue ------------------------------------------------------------------------------------


def test_plain_text_message_becomes_an_image(endpoints: Any) -> None:
    message_id = send(endpoints, "a cat in space")
    key = queue_image(endpoints, message_id)
    png = Image.open(io.BytesIO(endpoints.client("s3").get_object(Bucket=endpoints.bucket, Key=key)["Body"].read()))
    assert png.format == "PNG"


def test_permanently_bad_messages_land_in_the_dlq_with_their_reason(endpoints: Any) -> None:
    too_long = send(endpoints, "p" * 513)
    filtered = send(endpoints, "a forbidden picture")

    def both_dead_lettered() -> dict[str, dict[str, str]] | None:
        found = dead_letters(endpoints)
        return found if {too_long, filtered} <= found.keys() else None

    letters = wait_until(both_dead_lettered, what="two dead letters")
    assert letters[too_long]["error_code"] == "InvalidRequest"
    assert letters[too_long]["error_message"].startswith("prompt: must be at most 512 characters")
    assert letters[filtered]["error_code"] == "ContentFiltered"
    assert letters[filtered]["body"] == "a forbidden picture"
    assert png_keys(endpoints, too_long) == png_keys(endpoints, filtered) == []


def test_a_throttled_message_is_retried_later_and_completed(stack: LocalStack, endpoints: Any) -> None:
    assert stack.emulator is not None and stack.poller is not None
    faults_before = stack.emulator.stats()["faults"]  # forced errors count as faults
    failed_before = stack.poller.stats()["failed"]
    stack.emulator.fail_next("ThrottlingException", times=3)  # every attempt of the first invocation
    message_id = send(endpoints, "a throttled hummingbird")
    queue_image(endpoints, message_id)
    assert stack.emulator.stats()["faults"] - faults_before == 3
    assert stack.poller.stats()["failed"] - failed_before == 1
    assert message_id not in dead_letters(endpoints)


def test_a_duplicate_delivery_produces_one_image_and_one_bedrock_call(stack: LocalStack, endpoints: Any) -> None:
    assert stack.emulator is not None and stack.poller is not None
    before = stack.emulator.stats()["requests"]
    duplicated_before = stack.poller.stats()["duplicated"]
    stack.poller.set_duplicate_rate(1.0)
    try:
        message_id = send(endpoints, "a twice-delivered owl")
        queue_image(endpoints, message_id)
        wait_until(lambda: stack.poller and stack.poller.stats()["deleted"], what="deletion")
    finally:
        stack.poller.set_duplicate_rate(0.0)
    assert stack.poller.stats()["duplicated"] - duplicated_before >= 1
    assert stack.emulator.stats()["requests"] - before == 1
    assert png_keys(endpoints, message_id) == [f"generated_images/from_queue/{message_id}-0.png"]


def test_the_aws_cli_sends_a_prompt_as_users_do(endpoints: Any) -> None:
    aws = [uv(), "tool", "run", "--from", tool_spec("AWSCLI"), "aws"]
    result = subprocess.run(
        [*aws, "--endpoint-url", endpoints.aws_endpoint_url, "--region", endpoints.region, "--output", "json",
         "sqs", "send-message", "--queue-url", endpoints.queue_url, "--message-body", "a cat in space, from the CLI"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    message_id = json.loads(result.stdout)["MessageId"]
    queue_image(endpoints, message_id)


# ---- the imagegen CLI -------------------------------------------------------------------------


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


def test_cli_generate_saves_the_image(stack: LocalStack, tmp_path: Path) -> None:
    result = cli(stack, "generate", "a red bicycle", "--seed", "5", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [path] = result.stdout.split()
    assert Image.open(path).format == "PNG"


def test_cli_enqueue_waits_for_the_image(stack: LocalStack, tmp_path: Path) -> None:
    result = cli(stack, "enqueue", "a blue boat", "--wait", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = result.stdout.splitlines()[-1]
    assert Image.open(path).format == "PNG"


def test_cli_enqueue_reports_a_rejected_prompt(stack: LocalStack, tmp_path: Path) -> None:
    result = cli(stack, "enqueue", "a forbidden thing", "--wait", "--timeout", "30", cwd=tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        "imagegen: the worker rejected the prompt: "
        "The prompt was blocked by the model's content filter. Rephrase it and try again. [ContentFiltered]"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "a cat", "--api-key", "wrong"], "imagegen: the API refused the request (403 Forbidden)"),
        (["generate", "", "--seed", "1"], "imagegen: rejected (400): prompt: must not be empty or blank"),
        (
            ["generate", "a cat", "--api-url", "http://127.0.0.1:9/x", "--api-key", "k"],
            "imagegen: cannot reach the API",
        ),
    ],
)
def test_cli_failures_are_one_clear_line(stack: LocalStack, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli(stack, *args, cwd=tmp_path)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith(message)
    assert "Traceback" not in result.stderr


def test_cli_without_a_target_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQS_", "IMAGEGEN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "imagegen_cli", "--state-file", str(tmp_path / "none.json"), "enqueue", "a cat"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "imagegen: no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`"
    )


def test_imagegen_local_serves_then_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen_cli", "--state-file", str(state), "local",
         "--api-port", "0", "--aws-port", "0", "--bedrock-port", "0", "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("starting moto, the Bedrock emulator, the API and the queue")
        running = process.stdout.readline()  # blocks until every service is up
        assert running.startswith("imagegen local stack is running after "), (
            process.stderr.read() if process.stderr else ""
        )
        endpoints = json.loads(state.read_text())
        assert {"api_url", "api_key", "queue_url", "dlq_url", "bucket", "aws_endpoint_url"} <= endpoints.keys()
        status, body = post(endpoints["api_url"], '{"prompt": "a cat"}', key=endpoints["api_key"])
        assert status == 200, body
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert not state.exists()
    # Every service stopped with it: nothing listens on their ports any more.
    for url in (endpoints["api_url"], endpoints["aws_endpoint_url"], endpoints["bedrock_endpoint_url"]):
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(url, timeout=5)


# ---- services in processes of their own -------------------------------------------------------


def test_each_service_runs_in_a_process_of_its_own(stack: LocalStack) -> None:
    pids = {name: service.pid for name, service in stack.services.items()}
    assert sorted(pids) == ["api", "bedrock", "moto", "worker"]
    assert len(set(pids.values())) == 4
    assert os.getpid() not in pids.values()
    assert all(service.running for service in stack.services.values())


def test_the_handlers_logs_go_to_their_service_log_not_the_terminal(stack: LocalStack, endpoints: Any) -> None:
    status, body = post(endpoints.api_url, json.dumps({"prompt": "a logged lighthouse", "seed": 4}))
    assert status == 200, body
    api_log = Path(endpoints.log_dir) / "api.log"

    def stored_line() -> dict[str, Any] | None:
        for line in api_log.read_text().splitlines():
            if line.startswith("{") and body["request_id"] in line:
                record: dict[str, Any] = json.loads(line)
                if record.get("message") == "images stored":
                    return record
        return None

    record = wait_until(stored_line, what="the handler's JSON log line in api.log")
    assert record["service"] == "imagegen-api"
    assert (Path(endpoints.log_dir) / "worker.log").exists()


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"POST /Prod/generate-image HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "Bad Request"),
        (b"POST /Prod/generate-image HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "Bad Request"),
        (b"POST /Prod/generate-image HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
         400, "Bad Request"),
        (b"HEAD /Prod/generate-image HTTP/1.1\r\nHost: x\r\n\r\n", 403, None),
        (b"OPTIONS /Prod/generate-image HTTP/1.1\r\nHost: x\r\n\r\n", 403, "Missing Authentication Token"),
    ],
)  # fmt: skip
def test_the_gateway_answers_malformed_requests_as_api_gateway_does(
    endpoints: Any, request_bytes: bytes, status: int, message: str | None
) -> None:
    host, port = endpoints.api_url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request_bytes)
        reply = connection.makefile("rb")
        status_line = reply.readline().decode()
        headers: dict[str, str] = {}
        while (line := reply.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        body = reply.read(int(headers.get("content-length", "0"))) if request_bytes[:4] != b"HEAD" else b""
    assert status_line.split()[1] == str(status)
    if message is not None:
        assert json.loads(body)["message"].startswith(message)
