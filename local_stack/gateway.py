"""A local API Gateway (REST API, Lambda proxy integration) in front of the real ``generate_image`` handler.

It enforces what API Gateway enforces before and around the integration: the resource and method
(anything else: 403 ``Missing Authentication Token``), the API key (403 ``Forbidden``), the 10 MB payload
limit (413), and the 29 s integration timeout (504). A handler that raises becomes 502, as in AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from local_stack.lambda_runtime import InvocationTimeout, LocalFunction

logger = logging.getLogger(__name__)

#: status, headers, body
HttpReply = tuple[int, dict[str, str], bytes]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0


class LocalApiGateway:
    """Serves ``POST /{stage}{resource}`` on loopback and turns requests into REST proxy events."""

    def __init__(
        self,
        function: LocalFunction,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "Prod",
        resource: str = "/generate-image",
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.function = function
        self.api_key = api_key
        self.stage = stage
        self.resource = resource
        self.integration_timeout_seconds = integration_timeout_seconds
        self.max_payload_bytes = max_payload_bytes
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}{self.resource}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> HttpReply:
        """One HTTP exchange: returns status, headers and body."""
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        if split.path != f"/{self.stage}{self.resource}" or method != "POST":
            return _json(403, {"message": "Missing Authentication Token"}, request_id)
        lowered = {name.lower(): value for name, value in headers.items()}
        if lowered.get("x-api-key") != self.api_key:
            return _json(403, {"message": "Forbidden"}, request_id)
        if len(body) > self.max_payload_bytes:
            return _json(413, {"message": "Request Too Long"}, request_id)
        event = self._event(method, split.path, split.query, headers, body, request_id=request_id)
        try:
            result = self.function.invoke(event, timeout_seconds=self.integration_timeout_seconds)
        except InvocationTimeout:
            return _json(504, {"message": "Endpoint request timed out"}, request_id)
        except Exception:
            logger.exception("integration failed")
            return _json(502, {"message": "Internal server error"}, request_id)
        return _from_proxy_result(result, request_id)

    def _event(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, *, request_id: str
    ) -> dict[str, Any]:
        params = dict(parse_qsl(query)) or None
        try:
            text, is_base64 = body.decode(), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        return {
            "resource": self.resource,
            "path": self.resource,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": params,
            "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": self.resource,
                "httpMethod": method,
                "path": path,
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "accountId": "000000000000",
                "apiId": "local",
                "protocol": "HTTP/1.1",
                "identity": {"sourceIp": "127.0.0.1", "apiKey": self.api_key, "userAgent": headers.get("User-Agent")},
            },
            "body": text if body else None,
            "isBase64Encoded": is_base64,
        }


def _json(status: int, payload: dict[str, Any], request_id: str) -> HttpReply:
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
    return status, headers, json.dumps(payload).encode()


def _from_proxy_result(result: Any, request_id: str) -> HttpReply:
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return _json(502, {"message": "Internal server error"}, request_id)
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(value) for value in values)
    headers["x-amzn-RequestId"] = request_id
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, data


def _handler_class(gateway: LocalApiGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every reply on a keep-alive connection.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > gateway.max_payload_bytes:
                remaining = length  # drain the body in chunks so the client sees the reply, not a reset
                while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                    remaining -= len(chunk)
                status, headers, body = _json(413, {"message": "Request Too Long"}, str(uuid.uuid4()))
            else:
                raw = self.rfile.read(length) if length else b""
                status, headers, body = gateway.handle(self.command, self.path, dict(self.headers.items()), raw)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("api-gateway: " + format, *args)

    return Handler
