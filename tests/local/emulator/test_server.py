"""The emulator's HTTP server: status codes, ``x-amzn-ErrorType``, boto3's ``ClientError`` codes, unknown
operations, concurrency, keep-alive.

What each request does (validation, quota, faults, content filter, stats) is tested without sockets in
tests/unit/emulator/; here, that it reaches boto3 intact.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.errors import (
    CONTENT_FILTER_MESSAGE,
    ERROR_STATUS,
    INVALID_MODEL_MESSAGE,
    THROTTLING_MESSAGE,
    UNRESOLVED_MODEL_MESSAGE,
)
from bedrock_emulator.server import BedrockEmulator
from imagegen.bedrock import classify_client_error
from imagegen.errors import ContentFilteredError, ThrottledError
from tests.emulator_bodies import NOVA, SD35, TITAN, nova, raw, stability, titan
from tests.local.emulator.client import StartEmulator, error_code, http, invoke, invoke_error, make_client

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- validation as boto3 sees it --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body", "problem"),
    [
        (TITAN, titan(numberOfImages=6), "#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5"),
        (NOVA, nova(width=330, height=320), "#/imageGenerationConfig/width: 330 is not a multiple of 16"),
        (SD35, stability(cfg_scale=7), "#: extraneous key [cfg_scale] is not permitted"),
    ],
)
def test_malformed_bodies_reach_boto3_as_validation_exceptions(
    client: BedrockRuntimeClient, model_id: str, body: Any, problem: str
) -> None:
    error = invoke_error(client, model_id, body)
    assert error_code(error) == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith("ValidationException:")
    message = error.response["Error"]["Message"]
    assert message.startswith("Malformed input request: #")
    assert message.endswith(", please reformat your input and try again.")
    assert problem in message


def test_a_body_that_is_not_json_is_a_validation_error(shared_emulator: BedrockEmulator) -> None:
    status, headers, payload = http(f"{shared_emulator.url}/model/{TITAN}/invoke", "POST", b"{not json")
    assert status == 400
    assert headers["x-amzn-errortype"].startswith("ValidationException:")
    assert "not valid JSON" in payload["message"]


@pytest.mark.parametrize(
    "model_id", ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1", "us.acme.no-such-model-v9:0"]
)
def test_a_well_shaped_unknown_model_id_cannot_be_resolved_like_bedrock_says(
    client: BedrockRuntimeClient, model_id: str
) -> None:
    error = invoke_error(client, model_id, titan())
    assert error_code(error) == "ResourceNotFoundException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error.response["Error"]["Message"] == UNRESOLVED_MODEL_MESSAGE


@pytest.mark.parametrize("model_id", ["nova-canvas", "x", "Amazon.Nova Canvas"])
def test_an_unknown_model_id_is_rejected_like_bedrock_does(client: BedrockRuntimeClient, model_id: str) -> None:
    error = invoke_error(client, model_id, titan())
    assert error_code(error) == "ValidationException"
    assert error.response["Error"]["Message"] == INVALID_MODEL_MESSAGE


def test_the_model_id_is_url_decoded(shared_emulator: BedrockEmulator) -> None:
    body = json.dumps(nova()).encode()
    status, _, payload = http(f"{shared_emulator.url}/model/amazon.nova-canvas-v1%3A0/invoke", "POST", body)
    assert status == 200
    assert len(payload["images"]) == 1


# ---- errors as botocore sees them -------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), sorted(ERROR_STATUS.items()))
def test_every_error_code_reaches_boto3_as_a_client_error(
    shared_emulator: BedrockEmulator, client: BedrockRuntimeClient, code: str, status: int
) -> None:
    shared_emulator.fail_next(code, message=f"forced {code}")
    error = invoke_error(client, NOVA, nova())
    assert error_code(error) == code
    assert error.response["Error"]["Message"] == f"forced {code}"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert uuid.UUID(error.response["ResponseMetadata"]["RequestId"])
    assert invoke(client, NOVA, nova())["images"]  # only the next request failed


def test_successful_replies_carry_a_request_id(client: BedrockRuntimeClient) -> None:
    response = client.invoke_model(modelId=TITAN, body=json.dumps(titan()))
    assert uuid.UUID(response["ResponseMetadata"]["RequestId"])
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/model/{TITAN}/invoke"),
        ("POST", f"/model/{TITAN}/invoke-with-response-stream"),
        ("POST", "/model/a/b/invoke"),
        ("POST", "/"),
        ("DELETE", "/_emulator/stats"),
    ],
)
def test_anything_but_invoke_model_is_an_unknown_operation(
    shared_emulator: BedrockEmulator, method: str, path: str
) -> None:
    status, headers, payload = http(shared_emulator.url + path, method, b"{}" if method == "POST" else None)
    assert status == 404
    assert headers["x-amzn-errortype"].startswith("UnknownOperationException:")
    assert uuid.UUID(headers["x-amzn-requestid"])
    assert "Unknown operation" in payload["message"]


def test_other_bedrock_operations_fail_with_a_client_error(client: BedrockRuntimeClient) -> None:
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert error_code(caught.value) == "UnknownOperationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---- content filter, quota, faults, latency ---------------------------------------------------


def test_the_content_filter_reaches_boto3_as_content_filtered(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(blocked_words=("gory", " Blood Bath ")))
    error = invoke_error(make_client(), NOVA, nova("calm lake", text_params={"negativeText": "no gory parts"}))
    assert error_code(error) == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["Error"]["Message"] == CONTENT_FILTER_MESSAGE
    assert isinstance(classify_client_error(error), ContentFilteredError)
    assert emulator.stats["filtered"] == 1


def test_the_quota_reaches_boto3_as_throttling(start_emulator: StartEmulator) -> None:
    clock = FakeClock()
    emulator = start_emulator(EmulatorConfig(rpm=1), clock=clock)
    client = make_client()
    invoke(client, TITAN, titan())
    error = invoke_error(client, TITAN, titan())
    assert error_code(error) == "ThrottlingException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Error"]["Message"] == THROTTLING_MESSAGE
    assert isinstance(classify_client_error(error), ThrottledError)
    clock.now += 60  # the emulator's clock, not the test's: no sleeping
    invoke(client, TITAN, titan())
    assert emulator.stats["throttled"] == 1


def test_injected_faults_reach_boto3_with_their_status(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(fault_rate=1.0, seed=1))
    client = make_client()
    for _ in range(6):
        error = invoke_error(client, TITAN, titan())
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == ERROR_STATUS[error_code(error)]
    assert emulator.stats["faults"] == 6


def test_latency_is_added_to_successful_requests(start_emulator: StartEmulator) -> None:
    start_emulator(EmulatorConfig(latency_ms=150))
    client = make_client()
    started = time.perf_counter()
    response = client.invoke_model(modelId=TITAN, body=json.dumps(titan()))
    assert time.perf_counter() - started >= 0.15
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-invocation-latency"]) >= 150


def test_concurrent_requests_are_served_and_counted(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    client = make_client()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: invoke(client, TITAN, titan(seed=i % 4)), range(24)))
    assert all(len(reply["images"]) == 1 for reply in replies)
    assert emulator.stats["requests"] == emulator.stats["succeeded"] == 24


# ---- connections ------------------------------------------------------------------------------


def test_connections_are_kept_alive_and_dropped_when_the_emulator_stops(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    connection = HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        sockets = []
        for seed in range(3):
            connection.request("POST", f"/model/{TITAN}/invoke", raw(titan(seed=seed)))
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") is None  # no "close"
            assert json.loads(response.read())["images"]
            sockets.append(connection.sock)
        assert sockets[0] is not None
        assert all(sock is sockets[0] for sock in sockets)  # one TCP connection for the three requests
        assert emulator.stats["requests"] == 3

        emulator.stop()
        assert sockets[0].recv(1) == b""  # the idle connection was shut down with the server
    finally:
        connection.close()


def test_an_oversized_body_is_refused_and_the_connection_closed(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    connection = HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        connection.putrequest("POST", f"/model/{TITAN}/invoke")
        connection.putheader("Content-Length", "25000001")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400
        assert response.getheader("x-amzn-ErrorType", "").startswith("ValidationException:")
        assert "the body must be 0 to 25000000 bytes" in json.loads(response.read())["message"]
        assert connection.sock is not None
        assert connection.sock.recv(1) == b""  # the emulator closed the connection: the body was never read
    finally:
        connection.close()
    assert emulator.stats["requests"] == 0
