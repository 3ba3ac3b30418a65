"""Bedrock calls: error classification, and botocore's bounded retries over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from imagegen.bedrock import classify_client_error, invoke_model, make_bedrock_client
from imagegen.errors import (
    ContentFilteredError,
    ModelAccessDeniedError,
    ModelNotFoundError,
    ModelResponseError,
    ModelTimeoutError,
    PermanentBedrockError,
    ThrottledError,
    TransientBedrockError,
)
from tests.fakes import client_error

CONTENT_FILTER_MESSAGE = "This request has been blocked by our content filters. Please adjust your text prompt."


@pytest.mark.parametrize(
    ("code", "message", "status", "error_type", "transient"),
    [
        ("ThrottlingException", "Too many requests", 429, ThrottledError, True),
        ("ServiceQuotaExceededException", "quota", 400, ThrottledError, True),
        ("ModelTimeoutException", "timeout", 408, ModelTimeoutError, True),
        ("ServiceUnavailableException", "down", 503, TransientBedrockError, True),
        ("InternalServerException", "oops", 500, TransientBedrockError, True),
        ("ModelNotReadyException", "warming", 429, TransientBedrockError, True),
        ("ValidationException", CONTENT_FILTER_MESSAGE, 400, ContentFilteredError, False),
        ("ValidationException", "Malformed input request: width", 400, PermanentBedrockError, False),
        ("AccessDeniedException", "You don't have access", 403, ModelAccessDeniedError, False),
        ("ResourceNotFoundException", "no such model", 404, ModelNotFoundError, False),
        ("SomethingNewException", "?", 502, TransientBedrockError, True),
        ("SomethingElseException", "?", 400, PermanentBedrockError, False),
    ],
)
def test_client_errors_are_classified(
    code: str, message: str, status: int, error_type: type[Exception], transient: bool
) -> None:
    error = classify_client_error(client_error(code, message, status))
    assert type(error) is error_type
    assert error.transient is transient
    assert error.aws_code == code
    assert message not in error.public_message  # AWS text is never shown to clients
    assert message in error.detail


class _ScriptedBedrock(BaseHTTPRequestHandler):
    """Answers InvokeModel like Bedrock does: JSON body, error code in ``x-amzn-ErrorType``."""

    script: ClassVar[list[tuple[int, str | None, dict[str, Any]]]] = []
    requests: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, body))
        status, error_type, payload = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if error_type:
            self.send_header("x-amzn-ErrorType", f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bedrock_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_ScriptedBedrock]]:
    _ScriptedBedrock.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedBedrock)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{server.server_port}")
    yield _ScriptedBedrock
    server.shutdown()
    server.server_close()


def test_endpoint_variable_redirects_the_client_and_the_body_is_sent_as_json(
    bedrock_server: type[_ScriptedBedrock],
) -> None:
    bedrock_server.script = [(200, None, {"images": ["x"], "error": None})]
    client = make_bedrock_client("us-east-1", max_attempts=1, read_timeout_seconds=5)
    reply = invoke_model(client, "amazon.titan-image-generator-v1", {"taskType": "TEXT_IMAGE"})
    assert reply == {"images": ["x"], "error": None}
    assert bedrock_server.requests == [("/model/amazon.titan-image-generator-v1/invoke", {"taskType": "TEXT_IMAGE"})]


def test_throttling_is_retried_a_bounded_number_of_times_then_raised(
    bedrock_server: type[_ScriptedBedrock],
) -> None:
    bedrock_server.script = [(429, "ThrottlingException", {"message": "Too many requests, please wait."})]
    client = make_bedrock_client("us-east-1", max_attempts=2, read_timeout_seconds=5)
    with pytest.raises(ThrottledError) as caught:
        invoke_model(client, "amazon.titan-image-generator-v1", {})
    assert len(bedrock_server.requests) == 2
    assert caught.value.retry_after_seconds > 0


def test_a_transient_failure_followed_by_success_returns_the_image(bedrock_server: type[_ScriptedBedrock]) -> None:
    bedrock_server.script = [
        (503, "ServiceUnavailableException", {"message": "unavailable"}),
        (200, None, {"images": ["ok"]}),
    ]
    client = make_bedrock_client("us-east-1", max_attempts=3, read_timeout_seconds=5)
    assert invoke_model(client, "m", {}) == {"images": ["ok"]}
    assert len(bedrock_server.requests) == 2


def test_content_filter_is_not_retried(bedrock_server: type[_ScriptedBedrock]) -> None:
    bedrock_server.script = [(400, "ValidationException", {"message": CONTENT_FILTER_MESSAGE})]
    client = make_bedrock_client("us-east-1", max_attempts=3, read_timeout_seconds=5)
    with pytest.raises(ContentFilteredError):
        invoke_model(client, "m", {})
    assert len(bedrock_server.requests) == 1


def test_a_reply_that_is_not_json_is_a_model_response_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NotJson:
        def invoke_model(self, **_: Any) -> dict[str, Any]:
            import io

            return {"body": io.BytesIO(b"<html>")}

    with pytest.raises(ModelResponseError):
        invoke_model(NotJson(), "m", {})  # type: ignore[arg-type]
