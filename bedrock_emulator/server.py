"""The HTTP face of the emulator: Bedrock Runtime's ``InvokeModel`` and the control plane on a local port.

An unmodified ``boto3.client("bedrock-runtime")`` talks to it once ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``
points here: ``POST /model/{modelId}/invoke`` with a JSON body, JSON replies, and failures as Bedrock sends
them (HTTP status, ``x-amzn-ErrorType`` header, ``{"message": ...}``), so botocore raises the same
``ClientError`` codes as against AWS. An unmodified ``boto3.client("bedrock")`` talks to the same port once
``AWS_ENDPOINT_URL_BEDROCK`` points here: ``GET /foundation-models/{modelIdentifier}`` (GetFoundationModel),
``GET /foundation-model-availability/{modelId}`` (GetFoundationModelAvailability), ``GET /foundation-models``
(ListFoundationModels), ``GET /list-foundation-model-agreement-offers/{modelId}?offerType=``
(ListFoundationModelAgreementOffers) and ``POST /create-foundation-model-agreement`` (CreateFoundationModelAgreement,
202). A request's region is its SigV4 credential scope's (``bedrock_emulator.sigv4``). Besides these it answers
``GET /_emulator/stats``, ``POST /_emulator/reset`` (zero the counters, restore the configured agreements) and
``POST /_emulator/fail-next`` (``{"code": "AccessDeniedException", "times": 1}``) for tests and soaks that run it
in another process (``bedrock_emulator.admin`` is their client).
What each request does is ``bedrock_emulator.backend``'s business.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self, cast
from urllib.parse import parse_qs, unquote, urlsplit

from bedrock_emulator.backend import Backend
from bedrock_emulator.config import DEFAULT_HOST, EmulatorConfig
from bedrock_emulator.errors import ERROR_NAMESPACE, BedrockApiError
from bedrock_emulator.sigv4 import request_region

__all__ = ["MAX_BODY_BYTES", "BedrockEmulator"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 25_000_000
_INVOKE_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")
_FOUNDATION_MODEL_PATH = re.compile(r"^/foundation-models/(?P<model>[^/]+)$")
_AVAILABILITY_PATH = re.compile(r"^/foundation-model-availability/(?P<model>[^/]+)$")
_OFFERS_PATH = re.compile(r"^/list-foundation-model-agreement-offers/(?P<model>[^/]+)$")
_CREATE_AGREEMENT_PATH = "/create-foundation-model-agreement"
_UNKNOWN_OPERATION = "UnknownOperationException:http://internal.amazon.com/coral/com.amazon.coral.service/"


class BedrockEmulator:
    """Bedrock Runtime's InvokeModel for the supported image models, and the control plane's reads of their
    lifecycle and their AWS Marketplace agreements, on a local HTTP port.

    ``start()`` serves on a daemon thread and returns once the socket listens; ``stop()`` shuts it down
    (also cutting short any emulated latency). ``clock`` (seconds, monotonic) drives the RPM window, so
    tests can move time by hand. The state lives in ``backend``; it outlives a stop and a restart.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        *,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self._stopping = threading.Event()
        self.backend = Backend(config, clock, wait=self._stopping.wait)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="bedrock-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in {"", "0.0.0.0"} else self.host  # noqa: S104 - display only
        return f"http://{host}:{self.port}"

    # ---- the backend's API --------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self.backend.config

    @property
    def clock(self) -> Callable[[], float]:
        return self.backend.clock

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (``bedrock_emulator.backend.STAT_NAMES``)."""
        return self.backend.stats

    def reset_stats(self) -> None:
        """Zero the counters (the RPM window and the fault RNG are left as they are)."""
        self.backend.reset_stats()

    def reset(self) -> None:
        """Zero the counters and restore the configured agreements."""
        self.backend.reset()

    def fail_next(self, code: str, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` InvokeModel requests with error ``code``, before any other check."""
        self.backend.fail_next(code, times, message)

    def invoke(self, model_id: str, raw_body: bytes, region: str | None = None) -> dict[str, Any]:
        """Handle one InvokeModel call without HTTP; raises ``BedrockApiError`` for every error reply."""
        return self.backend.invoke(model_id, raw_body, region)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A worker opens up to WORKER_CONCURRENCY connections at once; the default backlog of 5 drops the rest
    # until a SYN retransmit (about 1 s).
    request_queue_size = 64
    emulator: BedrockEmulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, *, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so their handler threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    server_version = "BedrockEmulator/1.0"
    _ROUTES: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/_emulator/stats"): "_admin_stats",
        ("POST", "/_emulator/reset"): "_admin_reset",
        ("POST", "/_emulator/fail-next"): "_admin_fail_next",
    }

    @property
    def emulator(self) -> BedrockEmulator:
        return cast("_Server", self.server).emulator

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms per reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cast("_Server", self.server).track(self.connection, alive=True)

    def finish(self) -> None:
        cast("_Server", self.server).track(self.connection, alive=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.emulator.verbose:
            super().log_message(format, *args)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        request_id = str(uuid.uuid4())
        try:
            raw = self._read_body()
        except BedrockApiError as error:
            self._send_error(error, request_id)
            return
        url = urlsplit(self.path)
        path = url.path
        route = self._ROUTES.get((method, path))
        if route is not None:
            getattr(self, route)(raw, request_id)
            return
        region = request_region(self.headers.get("Authorization"), url.query)
        if method == "GET" and self._control_plane(path, url.query, region, request_id):
            return
        if method == "POST" and path == _CREATE_AGREEMENT_PATH:
            try:
                reply = self.emulator.backend.create_foundation_model_agreement(raw, region)
            except BedrockApiError as error:
                self._send_error(error, request_id)
                return
            self._send_json(202, reply, request_id)
            return
        match = _INVOKE_PATH.match(path)
        if method != "POST" or match is None:
            message = {"message": f"Unknown operation: {method} {path}"}
            self._send_json(404, message, request_id, error_type=_UNKNOWN_OPERATION)
            return
        model_id = unquote(match["model"])
        started = time.monotonic()
        try:
            reply = self.emulator.backend.invoke(model_id, raw, region)
        except BedrockApiError as error:
            self._send_error(error, request_id)
            return
        except Exception:
            logger.exception("bedrock emulator: rendering failed for %s", model_id)
            self._send_error(BedrockApiError("InternalServerException"), request_id)
            return
        latency = str(round((time.monotonic() - started) * 1000))
        self._send_json(200, reply, request_id, extra={"X-Amzn-Bedrock-Invocation-Latency": latency})

    def _control_plane(self, path: str, query: str, region: str | None, request_id: str) -> bool:
        """Answer a control-plane read; False when ``path`` is none of them."""
        backend = self.emulator.backend
        model = _FOUNDATION_MODEL_PATH.match(path)
        available = _AVAILABILITY_PATH.match(path)
        offers = _OFFERS_PATH.match(path)
        # a presigned URL's X-Amz-* parameters are not the operation's
        wanted = {
            name: values
            for name, values in parse_qs(query, keep_blank_values=True).items()
            if not name.startswith("X-Amz-")
        }
        try:
            if path == "/foundation-models":
                reply = backend.list_foundation_models(region, wanted)
            elif model is not None:
                reply = backend.get_foundation_model(unquote(model["model"]), region)
            elif available is not None:
                reply = backend.get_foundation_model_availability(unquote(available["model"]), region)
            elif offers is not None:
                reply = backend.list_foundation_model_agreement_offers(unquote(offers["model"]), region, wanted)
            else:
                return False
        except BedrockApiError as error:
            self._send_error(error, request_id)
            return True
        self._send_json(200, reply, request_id)
        return True

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header else 0
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise BedrockApiError(
                "ValidationException", f"Malformed input request: the body must be 0 to {MAX_BODY_BYTES} bytes."
            )
        return self.rfile.read(length) if length else b""

    def _send_error(self, error: BedrockApiError, request_id: str) -> None:
        self._send_json(
            error.status, {"message": error.message}, request_id, error_type=f"{error.code}:{ERROR_NAMESPACE}"
        )

    def _send_json(
        self,
        status: int,
        payload: object,
        request_id: str,
        *,
        error_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", request_id)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # ---- admin --------------------------------------------------------------------------------

    def _admin_stats(self, _raw: bytes, request_id: str) -> None:
        self._send_json(200, self.emulator.stats, request_id)

    def _admin_reset(self, _raw: bytes, request_id: str) -> None:
        self.emulator.reset()
        self._send_json(200, self.emulator.stats, request_id)

    def _admin_fail_next(self, raw: bytes, request_id: str) -> None:
        try:
            body = json.loads(raw or b"{}")
            code, times = body["code"], int(body.get("times", 1))
            message = body.get("message")
            self.emulator.fail_next(str(code), times, None if message is None else str(message))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._send_json(400, {"message": f"expected {{'code': ..., 'times': n}}: {exc}"}, request_id)
            return
        self._send_json(200, {"queued": times, "code": code}, request_id)
