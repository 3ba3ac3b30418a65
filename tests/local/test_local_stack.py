"""End to end on the local stack: real HTTP through the local API gateway, real SQS through moto, the real
handlers, the Bedrock emulator, each in a process of its own. Also the `imagegen` CLI and the AWS CLI, as users
drive it (`imagegen` without this stack: test_local_command.py; the helpers: local_stack_support.py)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import local_client
from local_stack.deployment import WORKER_ENVIRONMENT, api_function, function_settings
from local_stack.stack import LocalStack, StackConfig
from tests.local.local_stack_support import (
    cli,
    dead_letters,
    error_lines,
    png_keys,
    post,
    queue_image,
    send,
    wait_until,
)
from tests.tools import tool_spec, uv


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture: the stack sets the environment its handlers need."""


#: The one AWS Marketplace agreement of the stack's account.
AGREED = "stability.stable-image-core-v1:1"


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
            {},
            blocked_words=("forbidden",),
            lifecycle="amazon.titan-image-generator-v1=ACTIVE",
            agreements=AGREED,  # Titan, serving here, needs none; the emulator process must get this setting
        ),
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def endpoints(stack: LocalStack) -> Any:
    assert stack.endpoints is not None
    return stack.endpoints


# ---- API --------------------------------------------------------------------------------------


def process_settings(pid: int | None) -> dict[str, str]:
    """The function settings (and Powertools variables) in a running process's environment."""
    assert pid is not None
    pairs = (entry.split("=", 1) for entry in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry)
    settings = function_settings()
    return {name: value for name, value in pairs if name in settings or name.startswith("POWERTOOLS_")}


@pytest.mark.parametrize(
    ("service", "deployed"), [("api", lambda: api_function().environment), ("worker", lambda: WORKER_ENVIRONMENT)]
)
def test_each_function_runs_with_the_environment_its_deployment_gives_it(
    stack: LocalStack, service: str, deployed: Any
) -> None:
    settings = process_settings(stack.services[service].pid)
    assert set(settings) == set(deployed())
    if service == "api":
        assert (settings["BEDROCK_MAX_ATTEMPTS"], settings["BEDROCK_READ_TIMEOUT_SECONDS"]) == ("1", "22")
        assert settings["POWERTOOLS_SERVICE_NAME"] == "imagegen-api"
    else:
        assert settings["POWERTOOLS_SERVICE_NAME"] == "imagegen-worker"


def test_the_emulator_runs_with_the_configured_agreements(endpoints: Any) -> None:
    bedrock = local_client("bedrock", endpoints.bedrock_endpoint_url, "us-west-2")
    statuses = {
        model_id: bedrock.get_foundation_model_availability(modelId=model_id)["agreementAvailability"]["status"]
        for model_id in (AGREED, "stability.stable-image-ultra-v1:1")
    }
    assert statuses == {AGREED: "AVAILABLE", "stability.stable-image-ultra-v1:1": "NOT_AVAILABLE"}


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
    job_id = result.stdout.split()[2]  # "sent message <id> to ..."
    assert error_lines(result) == [
        f"imagegen: job {job_id} failed: "
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
