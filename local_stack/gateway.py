"""A local API Gateway (REST API, Lambda proxy integration) in front of the real ``generate_image`` handler.

HTTP is served by waitress, a production WSGI server (the gateway's own framing was hand-written and lenient):
Content-Length must be digits and agree with itself, chunk sizes hex digits, an unknown transfer coding is refused
(501, as RFC 9112 says), a truncated body is never dispatched, and a connection that sends nothing for
``read_timeout`` seconds, or has not sent a whole request within it, is closed. werkzeug reads the requests.

It enforces what API Gateway enforces before and around the integration: the routes of openapi.yaml (anything else,
HEAD and OPTIONS included: 403 ``Missing Authentication Token``), the API key (403 ``Forbidden``), the usage plan and
the stage throttle (429, ``local_stack.usage_plan``), the 10 MB payload limit (413), malformed requests (400), and
the 29 s integration timeout (504); a handler that raises becomes 502, as in AWS. Its own replies carry
``X-Content-Type-Options: nosniff``, as template.yaml's GatewayResponses make API Gateway's.

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
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import create_server
from waitress.task import ErrorTask
from werkzeug.wrappers import Request

from local_stack.config import API_READ_TIMEOUT_SECONDS, StackConfig
from local_stack.deployment import api_timeout_seconds
from local_stack.lambda_runtime import InvocationTimeout, LocalFunction, load_handler, serve_until_signalled
from local_stack.usage_plan import UsagePlan, UsagePlanLimiter

logger = logging.getLogger(__name__)

#: status, headers, body
HttpReply = tuple[int, dict[str, str], bytes]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
#: The largest body read whole (and answered 413 when over MAX_PAYLOAD_BYTES).
MAX_READ_BYTES = 64 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
API_HANDLER = "generate_image.app:lambda_handler"
OPENAPI = Path(__file__).resolve().parents[1] / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: What API Gateway adds to its own 4xx/5xx (template.yaml's GatewayResponses).
GATEWAY_HEADERS = {"X-Content-Type-Options": "nosniff"}


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


def routes_from_openapi(path: Path = OPENAPI) -> tuple[Route, ...]:
    """The API's routes as openapi.yaml describes them: an operation with ``security: []`` needs no key."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    default_security = document.get("security", [])
    return tuple(
        Route(method.upper(), resource, api_key_required=bool(operation.get("security", default_security)))
        for resource, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    )


#: The API's routes (tests/infra/test_openapi.py: the same as template.yaml's).
ROUTES = routes_from_openapi()
#: The id API Gateway reports for the local API key (``requestContext.identity.apiKeyId``): a job's owner.
LOCAL_API_KEY_ID = "local-api-key-id"


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
        read_timeout_seconds: float = API_READ_TIMEOUT_SECONDS,
        usage_plan: UsagePlan | None = None,
    ) -> None:
        self.function = function
        self.api_key = api_key
        self.stage = stage
        self.routes = tuple(routes)
        self.integration_timeout_seconds = integration_timeout_seconds
        self.max_payload_bytes = max_payload_bytes
        self.limiter = UsagePlanLimiter(usage_plan) if usage_plan else None
        # waitress reads bodies up to this size whole (to a temporary file past 512 KB), so that a client sending one
        # over the payload limit sees the 413 rather than a reset connection; beyond it, waitress cuts it off.
        self._server: Any = _serve(_wsgi_app(self), host, port, read_timeout_seconds, MAX_READ_BYTES)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"{self._server.effective_host}:{self._server.effective_port}"

    @property
    def stage_url(self) -> str:
        return f"http://{self.host}/{self.stage}"

    @property
    def url(self) -> str:
        """The URL of ``POST /generate-image``."""
        return f"{self.stage_url}/generate-image"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.run, name="api-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket; waitress's loop ends with an empty map."""
        for channel in list(self._server._map.values()):
            channel.close()
        self._server.task_dispatcher.shutdown(timeout=5)
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
        refusal = self.limiter.refusal(self.api_key if route.api_key_required else None) if self.limiter else None
        if refusal is not None:
            return _json(429, {"message": refusal}, request_id)
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
    """A reply of API Gateway itself."""
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id, **GATEWAY_HEADERS}
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


class _Parser(HTTPRequestParser):
    """waitress's parser, and one rule it lacks: RFC 9112 forbids applying chunked twice (``chunked, chunked``), which
    it would read as chunked once."""

    def parse_header(self, header_plus: bytes) -> None:
        codings = [
            coding.strip(b" \t").lower()
            for line in header_plus.split(b"\r\n")[1:]
            if line.lower().startswith(b"transfer-encoding:")
            for coding in line.split(b":", 1)[1].split(b",")
        ]
        if codings.count(b"chunked") > 1:
            raise ParsingError("Transfer-Encoding applies chunked more than once")
        super().parse_header(header_plus)


class _Channel(HTTPChannel):
    """Notes when a request starts arriving, so that a request trickling in forever can be cut off."""

    parser_class = _Parser
    error_task_class: type[ErrorTask]
    request_started = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        return bool(super().received(data))


class _ErrorTask(ErrorTask):
    """waitress's answer to a request it cannot read (400, 413, 431, 501, …), as API Gateway's JSON."""

    def execute(self) -> None:
        error = cast("Any", self.request).error
        message = "Request Too Long" if error.code == 413 else f"{error.reason}: {error.body}"
        body = json.dumps({"message": message}).encode()
        self.status = f"{error.code} {error.reason}"
        cast("list[tuple[str, str]]", self.response_headers).extend(
            [("Content-Type", "application/json"), *GATEWAY_HEADERS.items()]
        )
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


_Channel.error_task_class = _ErrorTask


def _serve(app: Any, host: str, port: int, read_timeout: float, max_body: int) -> Any:
    """A waitress server for ``app``, with a read timeout for the headers and the body of each request. (Typed Any:
    types-waitress lacks the attributes used here.)"""
    server: Any = create_server(
        app, host=host, port=port, threads=16, channel_timeout=int(read_timeout), cleanup_interval=1,
        max_request_body_size=max_body, ident="", expose_tracebacks=False,
    )  # fmt: skip
    server.channel_class = _Channel
    idle_only = server.maintenance

    def maintenance(now: int) -> None:
        idle_only(now)  # closes channels idle for read_timeout
        for channel in list(server.active_channels.values()):
            partial = channel.request is not None and not channel.request.completed
            if partial and now - getattr(channel, "request_started", now) > read_timeout:
                channel.will_close = True  # a request still arriving after read_timeout

    server.maintenance = maintenance
    return server


def _wsgi_app(gateway: LocalApiGateway) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        headers = dict(request.headers.items())
        status, reply_headers, body = gateway.handle(
            request.method, environ.get("REQUEST_URI") or request.full_path, headers, request.get_data(cache=False)
        )
        start_response(f"{status} {HTTPStatus(status).phrase}", [*reply_headers.items(),
                                                                 ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API handler until SIGTERM/SIGINT (the environment configures the handler, as in Lambda)."""
    parser = argparse.ArgumentParser(prog="python -m local_stack.gateway", description=__doc__)
    parser.add_argument("--host", default=StackConfig.host)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--handler", default=API_HANDLER, help="module:function of the Lambda handler")
    parser.add_argument("--rate", type=float, default=0, help="usage plan: requests per second (0: no usage plan)")
    parser.add_argument("--burst", type=int, default=0, help="usage plan: burst")
    parser.add_argument("--quota", type=int, default=0, help="usage plan: requests per day")
    parser.add_argument(
        "--read-timeout", type=float, default=API_READ_TIMEOUT_SECONDS, help="seconds to receive a request"
    )
    args = parser.parse_args(argv)
    # One invocation at a time, like one Lambda container: Powertools' REST resolver keeps the current event on
    # a class attribute, so concurrent invocations in one process would read each other's.
    timeout = api_timeout_seconds()  # template.yaml's
    function = LocalFunction("imagegen-api", load_handler(args.handler), timeout_seconds=timeout, max_concurrency=1)
    plan = UsagePlan(args.rate, args.burst, args.quota) if args.rate > 0 else None
    gateway = LocalApiGateway(function, api_key=args.api_key, host=args.host, port=args.port, usage_plan=plan,
                              read_timeout_seconds=args.read_timeout).start()  # fmt: skip
    try:
        serve_until_signalled(f"ready {gateway.stage_url}")
    finally:
        gateway.stop()
        function.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
