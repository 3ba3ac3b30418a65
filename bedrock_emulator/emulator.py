"""A local stand-in for Bedrock Runtime's ``InvokeModel`` on the image models this service supports.

An unmodified ``boto3.client("bedrock-runtime")`` talks to it once ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``
points here: ``POST /model/{modelId}/invoke`` with a JSON body, JSON replies, and failures as Bedrock
sends them (HTTP status, ``x-amzn-ErrorType`` header, ``{"message": ...}``), so botocore raises the same
``ClientError`` codes as against AWS. Images come from ``bedrock_emulator.render``: deterministic
placeholders, NOT a generative model.

Each request goes through, in order: model id -> wire-body validation (per model family; the limits are
read from the adapters in ``imagegen.models``, never written twice) -> blocked words (content filter)
-> requests-per-minute quota -> fault injection -> latency (the emulated model time) -> render.

Run it: ``python -m bedrock_emulator --port 4567 --latency-ms 500 --rpm 60``; the
``BEDROCK_EMULATOR_*`` variables (see ``EmulatorConfig.from_env``) set the defaults of the flags.
Besides InvokeModel it answers ``GET /_emulator/stats``, ``POST /_emulator/reset`` and
``POST /_emulator/fail-next`` (``{"code": "AccessDeniedException", "times": 1}``) for tests and soaks
that run it in another process.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, ClassVar, Self, cast
from urllib.parse import unquote, urlsplit

from bedrock_emulator.render import render_placeholder
from imagegen.config import env_int
from imagegen.errors import ConfigurationError
from imagegen.models import NovaCanvasAdapter, StabilityAdapter, TitanImageAdapter, adapter_for
from imagegen.models.amazon import QUALITIES, AmazonImageAdapter
from imagegen.models.stability import ASPECT_RATIOS

__all__ = [
    "CONTENT_FILTER_MESSAGE",
    "ERROR_STATUS",
    "INVALID_MODEL_MESSAGE",
    "STABILITY_SIZES",
    "THROTTLING_MESSAGE",
    "BedrockApiError",
    "BedrockEmulator",
    "EmulatorConfig",
    "main",
]

logger = logging.getLogger(__name__)

#: HTTP status of each error code Bedrock Runtime's InvokeModel can answer with.
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"

INVALID_MODEL_MESSAGE = "The provided model identifier is invalid."
CONTENT_FILTER_MESSAGE = (
    "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request."
)
THROTTLING_MESSAGE = "Too many requests, please wait before trying again."
_DEFAULT_MESSAGES = {
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
    "ResourceNotFoundException": "The requested resource could not be found.",
    "ThrottlingException": THROTTLING_MESSAGE,
    "ModelNotReadyException": "The model is not ready to serve inference requests. Try again later.",
    "ModelErrorException": "The model encountered an error while processing the request.",
    "ServiceQuotaExceededException": "Your request exceeds the service quota for your account.",
    "ValidationException": "The request is invalid.",
}
#: What ``fault_rate`` draws from, in equal shares.
FAULT_CODES = ("ModelTimeoutException", "ServiceUnavailableException")

#: Output size per Stability aspect ratio: about one megapixel, both sides multiples of 64.
STABILITY_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768), "9:16": (768, 1344),
    "21:9": (1536, 640), "9:21": (640, 1536),
    "3:2": (1216, 832), "2:3": (832, 1216),
    "5:4": (1152, 896), "4:5": (896, 1152),
}  # fmt: skip
_STABILITY_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

#: Seeds used when the body has none: Titan's and Nova Canvas's documented defaults; for Stability a
#: seed of 0 means "random", which the emulator replaces by a seed derived from the prompt.
DEFAULT_SEEDS: dict[type[AmazonImageAdapter], int] = {TitanImageAdapter: 42, NovaCanvasAdapter: 12}
#: Nova Canvas's optional ``textToImageParams.style`` presets.
NOVA_STYLES = (
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
)
_MAX_BODY_BYTES = 25_000_000
_QUOTA_WINDOW_SECONDS = 60.0
_STAT_NAMES = ("requests", "images", "succeeded", "throttled", "faults", "filtered", "invalid")


class BedrockApiError(Exception):
    """An error reply: ``code`` goes to ``x-amzn-ErrorType``, ``message`` to the JSON body."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or _DEFAULT_MESSAGES.get(code, code))
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(code, code)

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 400)


# ---- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulator misbehaves. Every field defaults to "like a healthy, idle Bedrock"."""

    #: Emulated model time added to every successful request, in milliseconds.
    latency_ms: int = 0
    #: Accepted requests per sliding 60-second window; 0 = unlimited.
    rpm: int = 0
    #: Share (0..1) of valid requests answered with ModelTimeoutException or ServiceUnavailableException.
    fault_rate: float = 0.0
    #: Words (or phrases) that trip the content filter, matched case-insensitively as whole words.
    blocked_words: tuple[str, ...] = ()
    #: Seed of the fault-injection RNG; ``None`` seeds it from the OS.
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int) or self.latency_ms < 0:
            raise ValueError(f"latency_ms must be a non-negative integer, got {self.latency_ms!r}")
        if isinstance(self.rpm, bool) or not isinstance(self.rpm, int) or self.rpm < 0:
            raise ValueError(f"rpm must be a non-negative integer (0 = unlimited), got {self.rpm!r}")
        if not isinstance(self.fault_rate, int | float) or not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be a number between 0 and 1, got {self.fault_rate!r}")
        words = tuple(word.strip().lower() for word in self.blocked_words if word.strip())
        object.__setattr__(self, "blocked_words", words)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmulatorConfig:
        """Read ``BEDROCK_EMULATOR_*`` from ``env`` (default ``os.environ``); a bad value raises ``ValueError``."""
        env = os.environ if env is None else env
        latency = env_int(env, "BEDROCK_EMULATOR_LATENCY_MS", 0, 0, 3_600_000)
        rpm = env_int(env, "BEDROCK_EMULATOR_RPM", 0, 0, 1_000_000)  # 0 = unlimited
        fault_rate = _env_fault_rate(env, "BEDROCK_EMULATOR_FAULT_RATE")
        raw_seed = env.get("BEDROCK_EMULATOR_SEED", "").strip()
        try:
            seed = int(raw_seed) if raw_seed else None
        except ValueError:
            raise ValueError(f"BEDROCK_EMULATOR_SEED must be an integer, got {raw_seed!r}") from None
        words = tuple(env.get("BEDROCK_EMULATOR_BLOCKED_WORDS", "").split(","))
        return cls(latency_ms=latency, rpm=rpm, fault_rate=fault_rate, blocked_words=words, seed=seed)


def _env_fault_rate(env: Mapping[str, str], name: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{name} must be a number between 0 and 1, got {raw!r}")
    return value


# ---- wire-format validation -------------------------------------------------------------------


class _Malformed(BedrockApiError):
    """A ValidationException worded like Bedrock's JSON-schema errors, naming the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            "ValidationException",
            f"Malformed input request: {path}: {problem}, please reformat your input and try again.",
        )
        self.path = path


def _json_type(value: object) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _show(value: float) -> str:
    return json.dumps(value)


class _Fields:
    """Typed access to one JSON object of the body; every failure names its JSON path."""

    def __init__(self, value: object, path: str, *, required: Sequence[str], allowed: Sequence[str]) -> None:
        if not isinstance(value, dict):
            raise _Malformed(path, f"expected type: JSONObject, found: {_json_type(value)}")
        self.values: dict[str, Any] = value
        self.path = path
        for key in required:
            if key not in value:
                raise _Malformed(path, f"required key [{key}] not found")
        for key in value:
            if key not in required and key not in allowed:
                raise _Malformed(path, f"extraneous key [{key}] is not permitted")

    def child(self, key: str) -> str:
        return f"{self.path}/{key}" if self.path != "#" else f"#/{key}"

    def string(self, key: str, *, min_length: int, max_length: int) -> str | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if not isinstance(value, str):
            raise _Malformed(path, f"expected type: String, found: {_json_type(value)}")
        if len(value) < min_length:
            raise _Malformed(path, f"expected minLength: {min_length}, actual: {len(value)}")
        if len(value) > max_length:
            raise _Malformed(path, f"expected maxLength: {max_length}, actual: {len(value)}")
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if not isinstance(value, str):
            raise _Malformed(path, f"expected type: String, found: {_json_type(value)}")
        if value not in choices:
            raise _Malformed(path, f"{value} is not a valid enum value")
        return value

    def integer(self, key: str, low: int, high: int) -> int | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Malformed(path, f"expected type: Integer, found: {_json_type(value)}")
        self._bounds(path, value, low, high)
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise _Malformed(path, f"expected type: Number, found: {_json_type(value)}")
        self._bounds(path, value, low, high)
        return float(value)

    @staticmethod
    def _bounds(path: str, value: float, low: float, high: float) -> None:
        if value < low:
            raise _Malformed(path, f"{_show(value)} is not greater or equal to {_show(low)}")
        if value > high:
            raise _Malformed(path, f"{_show(value)} is not less or equal to {_show(high)}")


@dataclass(frozen=True, slots=True)
class _Job:
    """A validated request: what to render and how to shape the reply."""

    prompt: str
    negative_prompt: str | None
    seed: int
    count: int
    width: int
    height: int
    fmt: str
    stability: bool


def _amazon_job(body: object, adapter: type[AmazonImageAdapter]) -> _Job:
    """Titan Image Generator and Nova Canvas: ``taskType`` / ``textToImageParams`` / ``imageGenerationConfig``."""
    root = _Fields(body, "#", required=("taskType", "textToImageParams"), allowed=("imageGenerationConfig",))
    root.choice("taskType", ("TEXT_IMAGE",))
    is_nova = issubclass(adapter, NovaCanvasAdapter)
    text_params = _Fields(
        root.values["textToImageParams"],
        "#/textToImageParams",
        required=("text",),
        allowed=("negativeText", "style") if is_nova else ("negativeText",),
    )
    prompt = text_params.string("text", min_length=1, max_length=adapter.max_prompt_chars)
    negative = text_params.string("negativeText", min_length=1, max_length=adapter.max_prompt_chars)
    text_params.choice("style", NOVA_STYLES)

    config = _Fields(
        root.values.get("imageGenerationConfig", {}),
        "#/imageGenerationConfig",
        required=(),
        allowed=("numberOfImages", "quality", "cfgScale", "width", "height", "seed"),
    )
    count = config.integer("numberOfImages", 1, adapter.max_images)
    config.choice("quality", QUALITIES)
    config.number("cfgScale", adapter.min_cfg_scale, adapter.max_cfg_scale)
    seed = config.integer("seed", 0, adapter.max_seed)
    if is_nova:
        nova = cast("type[NovaCanvasAdapter]", adapter)
        low, high = nova.min_side, nova.max_side
    else:  # any side outside the table's range is a range error; a pair missing from it is checked below
        low = min(min(size) for size in TitanImageAdapter.sizes)
        high = max(max(size) for size in TitanImageAdapter.sizes)
    width = config.integer("width", low, high)
    height = config.integer("height", low, high)
    width = adapter.default_size[0] if width is None else width
    height = adapter.default_size[1] if height is None else height
    if is_nova:
        _check_nova_size(nova, width, height)
    elif (width, height) not in TitanImageAdapter.sizes:
        raise _Malformed(
            "#/imageGenerationConfig", f"width x height {width}x{height} is not one of the supported image sizes"
        )
    assert prompt is not None  # required above
    return _Job(
        prompt=prompt,
        negative_prompt=negative,
        seed=DEFAULT_SEEDS[adapter] if seed is None else seed,
        count=1 if count is None else count,
        width=width,
        height=height,
        fmt="PNG",
        stability=False,
    )


def _check_nova_size(nova: type[NovaCanvasAdapter], width: int, height: int) -> None:
    for key, side in (("width", width), ("height", height)):
        if side % nova.side_step:
            raise _Malformed(f"#/imageGenerationConfig/{key}", f"{side} is not a multiple of {nova.side_step}")
    if max(width, height) > nova.max_aspect_ratio * min(width, height):
        raise _Malformed(
            "#/imageGenerationConfig",
            f"aspect ratio {width}:{height} (width:height) must be between 1:{nova.max_aspect_ratio} "
            f"and {nova.max_aspect_ratio}:1",
        )
    if width * height >= nova.max_pixels:
        raise _Malformed(
            "#/imageGenerationConfig",
            f"width x height {width}x{height} = {width * height} pixels must be less than {nova.max_pixels}",
        )


def _stability_job(body: object) -> _Job:
    """Stability AI: ``prompt``, ``negative_prompt``, ``aspect_ratio``, ``seed``, ``output_format``, ``mode``."""
    root = _Fields(
        body,
        "#",
        required=("prompt",),
        allowed=("negative_prompt", "aspect_ratio", "seed", "output_format", "mode"),
    )
    prompt = root.string("prompt", min_length=1, max_length=StabilityAdapter.max_prompt_chars)
    negative = root.string("negative_prompt", min_length=0, max_length=StabilityAdapter.max_prompt_chars)
    ratios = [f"{w}:{h}" for w, h in ASPECT_RATIOS]
    ratio = root.choice("aspect_ratio", ratios) or "1:1"
    seed = root.integer("seed", 0, StabilityAdapter.max_seed) or 0
    output_format = root.choice("output_format", tuple(_STABILITY_FORMATS)) or "png"
    root.choice("mode", ("text-to-image",))
    assert prompt is not None  # required above
    if seed == 0:  # "0 = random": a seed derived from the prompt keeps replies reproducible
        digest = hashlib.sha256(prompt.encode()).digest()
        seed = 1 + int.from_bytes(digest[:8], "big") % StabilityAdapter.max_seed
    width, height = STABILITY_SIZES[ratio]
    return _Job(
        prompt=prompt,
        negative_prompt=negative or None,
        seed=seed,
        count=1,
        width=width,
        height=height,
        fmt=_STABILITY_FORMATS[output_format],
        stability=True,
    )


def _parse_body(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise BedrockApiError(
            "ValidationException",
            f"Malformed input request: #: the body is not valid JSON ({reason}), "
            "please reformat your input and try again.",
        ) from None


# ---- the emulator -----------------------------------------------------------------------------


class BedrockEmulator:
    """Bedrock Runtime's InvokeModel for the supported image models, on a local HTTP port.

    ``start()`` serves on a daemon thread and returns once the socket listens; ``stop()`` shuts it
    down. ``clock`` (seconds, monotonic) drives the RPM window, so tests can move time by hand.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        *,
        verbose: bool = False,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.clock = clock
        self.verbose = verbose
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(_STAT_NAMES, 0)
        self._window: collections.deque[float] = collections.deque()
        self._rng = random.Random(self.config.seed)  # noqa: S311 - fault injection, not crypto
        self._forced: collections.deque[BedrockApiError] = collections.deque()
        self._blocked = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(word) for word in self.config.blocked_words) + r")(?!\w)",
                re.IGNORECASE,
            )
            if self.config.blocked_words
            else None
        )
        self._stopping = threading.Event()
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

    # ---- observation and control --------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters: requests, images, succeeded, throttled, faults, filtered, invalid."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        """Zero the counters (the RPM window and the fault RNG are left as they are)."""
        with self._lock:
            self._stats = dict.fromkeys(_STAT_NAMES, 0)

    def fail_next(self, code: str, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` InvokeModel requests with error ``code``, before any other check."""
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown error code {code!r}; expected one of {', '.join(ERROR_STATUS)}")
        with self._lock:
            self._forced.extend(BedrockApiError(code, message) for _ in range(times))

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._stats[name] += amount

    # ---- InvokeModel --------------------------------------------------------------------------

    def invoke(self, model_id: str, raw_body: bytes) -> dict[str, Any]:
        """Handle one InvokeModel call; raises ``BedrockApiError`` for every error reply."""
        self._count("requests")
        with self._lock:
            forced = self._forced.popleft() if self._forced else None
        if forced is not None:
            self._count("faults")
            raise forced
        try:
            job = self._validate(model_id, raw_body)
        except BedrockApiError:
            self._count("invalid")
            raise
        if self._blocked is not None and any(
            self._blocked.search(text) for text in (job.prompt, job.negative_prompt) if text
        ):
            self._count("filtered")
            raise BedrockApiError("ValidationException", CONTENT_FILTER_MESSAGE)
        self._take_quota()
        self._maybe_fault()
        if self.config.latency_ms:
            self._stopping.wait(self.config.latency_ms / 1000)
        reply = self._render(job)
        with self._lock:
            self._stats["images"] += job.count
            self._stats["succeeded"] += 1
        return reply

    def _validate(self, model_id: str, raw_body: bytes) -> _Job:
        try:
            adapter = type(adapter_for(model_id))
        except ConfigurationError:
            raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE) from None
        body = _parse_body(raw_body)
        if issubclass(adapter, StabilityAdapter):
            return _stability_job(body)
        return _amazon_job(body, cast("type[AmazonImageAdapter]", adapter))

    def _take_quota(self) -> None:
        if not self.config.rpm:
            return
        with self._lock:
            now = self.clock()
            while self._window and self._window[0] <= now - _QUOTA_WINDOW_SECONDS:
                self._window.popleft()
            if len(self._window) >= self.config.rpm:
                self._stats["throttled"] += 1
                raise BedrockApiError("ThrottlingException", THROTTLING_MESSAGE)
            self._window.append(now)

    def _maybe_fault(self) -> None:
        if not self.config.fault_rate:
            return
        with self._lock:
            if self._rng.random() >= self.config.fault_rate:
                return
            code = FAULT_CODES[0] if self._rng.random() < 0.5 else FAULT_CODES[1]
            self._stats["faults"] += 1
        raise BedrockApiError(code)

    @staticmethod
    def _render(job: _Job) -> dict[str, Any]:
        images = [
            base64.b64encode(render_placeholder(job.prompt, job.seed + index, job.width, job.height, job.fmt)).decode()
            for index in range(job.count)
        ]
        if job.stability:
            return {"seeds": [job.seed], "finish_reasons": [None], "images": images}
        return {"images": images, "error": None}


# ---- HTTP -------------------------------------------------------------------------------------

_INVOKE_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
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
        path = urlsplit(self.path).path
        route = self._ROUTES.get((method, path))
        if route is not None:
            getattr(self, route)(raw, request_id)
            return
        match = _INVOKE_PATH.match(path)
        if method != "POST" or match is None:
            self._send_json(
                404,
                {"message": f"Unknown operation: {method} {path}"},
                request_id,
                error_type="UnknownOperationException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            )
            return
        model_id = unquote(match["model"])
        started = time.monotonic()
        try:
            reply = self.emulator.invoke(model_id, raw)
        except BedrockApiError as error:
            self._send_error(error, request_id)
            return
        except Exception:
            logger.exception("bedrock emulator: rendering failed for %s", model_id)
            self._send_error(BedrockApiError("InternalServerException"), request_id)
            return
        latency = str(round((time.monotonic() - started) * 1000))
        self._send_json(200, reply, request_id, extra={"X-Amzn-Bedrock-Invocation-Latency": latency})

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header else 0
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY_BYTES:
            self.close_connection = True
            raise BedrockApiError(
                "ValidationException", f"Malformed input request: the body must be 0 to {_MAX_BODY_BYTES} bytes."
            )
        return self.rfile.read(length) if length else b""

    def _send_error(self, error: BedrockApiError, request_id: str) -> None:
        self._send_json(
            error.status, {"message": error.message}, request_id, error_type=f"{error.code}:{_ERROR_NAMESPACE}"
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
        self.emulator.reset_stats()
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


# ---- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bedrock_emulator",
        description="Local Bedrock Runtime InvokeModel emulator for the image models (placeholder images). "
        "Flags override the BEDROCK_EMULATOR_* environment variables.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4567, help="port to listen on, 0 = any free port (default 4567)")
    parser.add_argument("--latency-ms", type=int, help="emulated model time per request [BEDROCK_EMULATOR_LATENCY_MS]")
    parser.add_argument("--rpm", type=int, help="requests per minute, 0 = unlimited [BEDROCK_EMULATOR_RPM]")
    parser.add_argument("--fault-rate", type=float, help="share of faulty replies, 0..1 [BEDROCK_EMULATOR_FAULT_RATE]")
    parser.add_argument("--blocked-words", help="comma-separated words the content filter blocks")
    parser.add_argument("--seed", type=int, help="seed of the fault RNG [BEDROCK_EMULATOR_SEED]")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = EmulatorConfig.from_env()
        overrides: dict[str, Any] = {
            "latency_ms": args.latency_ms,
            "rpm": args.rpm,
            "fault_rate": args.fault_rate,
            "seed": args.seed,
            "blocked_words": None if args.blocked_words is None else tuple(args.blocked_words.split(",")),
        }
        config = dataclasses.replace(config, **{key: value for key, value in overrides.items() if value is not None})
    except ValueError as exc:
        parser.error(str(exc))
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    done = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with BedrockEmulator(config, host=args.host, port=args.port, verbose=args.verbose) as emulator:
            print(f"Bedrock emulator listening on {emulator.url}", flush=True)
            print(f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={emulator.url}", flush=True)
            print(f"  {_describe(config)}", flush=True)
            while not done.wait(0.5):
                pass
            print("Bedrock emulator stopped", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _describe(config: EmulatorConfig) -> str:
    parts: Iterator[str] = (
        f"{name}={value!r}" for name, value in dataclasses.asdict(config).items() if value not in (0, 0.0, (), None)
    )
    return "config: " + (", ".join(parts) or "defaults (no latency, no quota, no faults, no blocked words)")


if __name__ == "__main__":
    raise SystemExit(main())
