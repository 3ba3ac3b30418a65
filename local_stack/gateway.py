"""A local API Gateway (REST API, Lambda proxy integration) in front of the real ``generate_image`` handler.

It enforces what API Gateway enforces before and around the integration: the resource and method (anything
else, HEAD and OPTIONS included: 403 ``Missing Authentication Token``), the API key (403 ``Forbidden``), a
well-formed ``Content-Length`` (400), the 10 MB payload limit (413), and the 29 s integration timeout (504).
A handler that raises becomes 502, as in AWS.

``python -m local_stack.gateway --port 0 --api-key KEY`` serves the handler in its own process (the local
stack starts it so); its first stdout line is ``ready <url of the stage>``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from local_stack.lambda_runtime import InvocationTimeout, LocalFunction, load_handler, serve_until_signalled

logger = logging.getLogger(__name__)

#: status, headers, body
HttpReply = tuple[int, dict[str, str], bytes]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
API_HANDLER = "generate_image.app:lambda_handler"


@dataclass(frozen=True)
class Route:
    """One method on one resource of the REST API, as template.yaml declares it (``{name}``: a path parameter)."""

    method: str
    resource: str
    api_key_required: bool = True

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method`` and ``path`` (without the stage) are this route, else ``None``."""
        if method != self.method:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.resource))
        found = re.fullmatch(pattern, path)
        return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


#: template.yaml's API: the page is public; everything it fetches needs the key.
ROUTES = (
    Route("POST", "/generate-image"),
    Route("POST", "/jobs"),
    Route("GET", "/jobs/{job_id}"),
    Route("GET", "/images"),
    Route("GET", "/", api_key_required=False),
)
#: The id API Gateway reports for the local API key (``requestContext.identity.apiKeyId``): a job's owner.
LOCAL_API_KEY_ID = "local-api-key-id"


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the page and the benchmarks open many connections at once; the default is 5


class BadRequest(Exception):
    """The request cannot be read (API Gateway answers 400 before any integration)."""


class LocalApiGateway:
    """Serves ``/{stage}{resource}`` on loopback and turns requests into REST proxy events."""

    def __init__(
        self,
        function: LocalFunction,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "Prod",
        routes: Sequence[Route] = ROUTES,
        integration_timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.function = function
        self.api_key = api_key
        self.stage = stage
        self.routes = tuple(routes)
        self.integration_timeout_seconds = integration_timeout_seconds
        self.max_payload_bytes = max_payload_bytes
        self._server = _GatewayServer((host, port), _handler_class(self))
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def stage_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    @property
    def url(self) -> str:
        """The URL of ``POST /generate-image``."""
        return f"{self.stage_url}/generate-image"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> HttpReply:
        """One HTTP exchange: returns status, headers and body."""
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        path = split.path if split.path != f"/{self.stage}" else f"/{self.stage}/"  # the stage root is "/"
        found = self._route(method, path)
        if found is None:
            return _json(403, {"message": "Missing Authentication Token"}, request_id)
        route, path_parameters = found
        lowered = {name.lower(): value for name, value in headers.items()}
        if route.api_key_required and lowered.get("x-api-key") != self.api_key:
            return _json(403, {"message": "Forbidden"}, request_id)
        if len(body) > self.max_payload_bytes:
            return _json(413, {"message": "Request Too Long"}, request_id)
        event = self._event(route, path, split.query, dict(headers), body, request_id=request_id)
        event["pathParameters"] = path_parameters or None
        try:
            result = self.function.invoke(event, timeout_seconds=self.integration_timeout_seconds)
        except InvocationTimeout:
            return _json(504, {"message": "Endpoint request timed out"}, request_id)
        except Exception:
            logger.exception("integration failed")
            return _json(502, {"message": "Internal server error"}, request_id)
        return _from_proxy_result(result, request_id)

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        if not path.startswith(f"/{self.stage}/"):
            return None
        for route in self.routes:
            parameters = route.match(method, path.removeprefix(f"/{self.stage}"))
            if parameters is not None:
                return route, parameters
        return None

    def _event(
        self, route: Route, path: str, query: str, headers: dict[str, str], body: bytes, *, request_id: str
    ) -> dict[str, Any]:
        params = dict(parse_qsl(query, keep_blank_values=True)) or None
        try:
            text, is_base64 = body.decode(), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        resource_path = path.removeprefix(f"/{self.stage}")
        headers = {**headers, "X-Forwarded-Proto": "http"}  # API Gateway says how the client connected
        return {
            "resource": route.resource,
            "path": resource_path,
            "httpMethod": route.method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": params,
            "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.resource,
                "httpMethod": route.method,
                "path": path,
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "accountId": "000000000000",
                "apiId": "local",
                "domainName": _host(headers) or self.host,
                "protocol": "HTTP/1.1",
                "identity": {
                    "sourceIp": "127.0.0.1",
                    "apiKey": self.api_key,
                    "apiKeyId": LOCAL_API_KEY_ID if route.api_key_required else None,
                    "userAgent": headers.get("User-Agent"),
                },
            },
            "body": text if body else None,
            "isBase64Encoded": is_base64,
        }


def _host(headers: Mapping[str, str]) -> str | None:
    return next((value for name, value in headers.items() if name.lower() == "host"), None)


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
            try:
                status, headers, body = self._exchange()
            except BadRequest as problem:
                self.close_connection = True  # the rest of the stream cannot be framed
                status, headers, body = _json(400, {"message": f"Bad Request: {problem}"}, str(uuid.uuid4()))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _exchange(self) -> HttpReply:
            length = self._content_length()
            if length > gateway.max_payload_bytes:
                remaining = length  # drain the body in chunks so the client sees the reply, not a reset
                while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 16))):
                    remaining -= len(chunk)
                return _json(413, {"message": "Request Too Long"}, str(uuid.uuid4()))
            raw = self._read_body(length)
            return gateway.handle(self.command, self.path, dict(self.headers.items()), raw)

        def _content_length(self) -> int:
            values = self.headers.get_all("Content-Length") or []
            if len(set(values)) > 1:
                raise BadRequest("conflicting Content-Length headers")
            if not values:
                return 0
            value = values[0].strip()
            if not value.isdigit() or not value.isascii():
                raise BadRequest("Content-Length must be a non-negative integer")
            return int(value)

        def _read_body(self, length: int) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked()
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            body = bytearray()
            while True:
                size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise BadRequest("malformed chunked body") from None
                if size == 0:
                    self.rfile.readline(1024)
                    return bytes(body)
                if len(body) + size > gateway.max_payload_bytes + 1:
                    raise BadRequest("chunked body over the payload limit")
                body += self.rfile.read(size)
                self.rfile.readline(1024)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("api-gateway: " + format, *args)

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API handler until SIGTERM/SIGINT (the environment configures the handler, as in Lambda)."""
    parser = argparse.ArgumentParser(prog="python -m local_stack.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--handler", default=API_HANDLER, help="module:function of the Lambda handler")
    args = parser.parse_args(argv)
    # One invocation at a time, like one Lambda container: Powertools' REST resolver keeps the current event on
    # a class attribute, so concurrent invocations in one process would read each other's.
    function = LocalFunction("imagegen-api", load_handler(args.handler), timeout_seconds=28, max_concurrency=1)
    gateway = LocalApiGateway(function, api_key=args.api_key, host=args.host, port=args.port).start()
    try:
        serve_until_signalled(f"ready {gateway.stage_url}")
    finally:
        gateway.stop()
        function.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
