"""API overhead: end-to-end latency through the local API gateway minus the emulated model's own time.

Sequential requests over one keep-alive HTTP connection, after a warm-up. The emulator stamps every
successful reply with ``X-Amzn-Bedrock-Invocation-Latency`` (its time from request to rendered reply: the
configured latency plus the placeholder render); a botocore ``after-call`` hook on the default session
reads it from the handler's own InvokeModel call, so ``overhead = end-to-end - that header``. The same
hooks time the S3 PutObject calls, and wrappers time the gateway -> function hand-off and the handler, to
show where the overhead goes. Presigning is timed separately (it makes no request).
"""

from __future__ import annotations

import gc
import http.client
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3

from bedrock_emulator.config import EmulatorConfig
from bench.common import Goal, Report, endpoints, large_images, local_stack, log, percentile, summary, table
from imagegen.storage import make_s3_client
from local_stack.stack import LocalStack

NAME = "api_overhead"
LATENCY_MS = 200
WARMUP = 10
#: (image kind, measured requests)
RUNS: list[tuple[str, int]] = [("placeholder", 200), ("titan_sized", 60)]
GOAL_P99_MS = 50.0
LATENCY_HEADER = "x-amzn-bedrock-invocation-latency"


class _Probe:
    """Per-request timings, filled by hooks and wrappers (requests are sequential)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self._starts: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()
        self._gc_started = 0.0

    def gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        """Stop-the-world collections of this process (handler, moto and emulator share its heap)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.add("gc_ms", (time.perf_counter() - self._gc_started) * 1000)
            self._gc_started = 0.0

    def add(self, name: str, value: float) -> None:
        with self._lock:
            self.current[name] = self.current.get(name, 0.0) + value

    def before_call(self, model: Any, **_: Any) -> None:
        self._starts[(threading.get_ident(), model.name)] = time.perf_counter()

    def after_call(self, model: Any, http_response: Any, **_: Any) -> None:
        started = self._starts.pop((threading.get_ident(), model.name), None)
        if started is not None:
            self.add(f"call:{model.name}", (time.perf_counter() - started) * 1000)
        if model.name == "InvokeModel":
            header = http_response.headers.get(LATENCY_HEADER)
            if header is not None:
                self.add("emulator_ms", float(header))

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(name, (time.perf_counter() - started) * 1000)

        return wrapper


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "emulator_latency_ms": LATENCY_MS,
        "warmup_requests": WARMUP,
        "runs": [{"images": kind, "requests": n} for kind, n in RUNS],
        "request": "POST /Prod/generate-image {prompt (distinct per request)}, 1024x1024, 1 image; sequential, "
        "one keep-alive connection (http.client)",
        "overhead": f"end-to-end - emulator time ({LATENCY_HEADER} of the handler's InvokeModel reply)",
        "tracing": "off (the local stack sets POWERTOOLS_TRACE_DISABLED)",
    }
    probe = _Probe()
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call", probe.before_call, unique_id="bench-api-before")
    session.events.register("after-call", probe.after_call, unique_id="bench-api-after")
    runs: dict[str, Any] = {}
    gc.callbacks.append(probe.gc_callback)
    try:
        with local_stack(EmulatorConfig(latency_ms=LATENCY_MS)) as stack:
            assert stack.gateway is not None
            function = stack.gateway.function
            function.handler = probe.timed("handler_ms", function.handler)
            setattr(function, "invoke", probe.timed("invoke_ms", function.invoke))  # noqa: B010
            for kind, requests in RUNS:
                log(f"[{NAME}] {kind}: {WARMUP} warm-up + {requests} requests ...")
                if kind == "titan_sized":
                    with large_images(stack) as size:
                        report.parameters["titan_sized_png_bytes"] = size
                        samples = _requests(stack, probe, requests)
                else:
                    samples = _requests(stack, probe, requests)
                runs[kind] = _figures(samples)
            presign_us = _presign_cost_us()
    finally:
        gc.callbacks.remove(probe.gc_callback)
        session.events.unregister("before-call", unique_id="bench-api-before")
        session.events.unregister("after-call", unique_id="bench-api-after")

    report.figures = {"runs": runs, "presign_us_per_url": presign_us}
    parts = [
        ("end-to-end", "e2e_ms"),
        ("emulator (header)", "emulator_ms"),
        ("OVERHEAD = e2e - emulator", "overhead_ms"),
        ("OVERHEAD without the local gateway", "overhead_without_gateway_ms"),
        ("  gateway + HTTP (e2e - invoke)", "gateway_ms"),
        ("  runtime hand-off (invoke - handler)", "handoff_ms"),
        ("  InvokeModel beyond emulator", "bedrock_client_ms"),
        ("  S3 PutObject x2", "s3_put_ms"),
        ("  rest of handler", "handler_rest_ms"),
        ("  of which GC pauses (whole process)", "gc_ms"),
    ]
    for kind, fig in runs.items():
        report.add_table(
            table(
                f"API latency, {kind} PNGs, L = {LATENCY_MS} ms, n = {fig['n']} (ms)",
                ["part", "p50", "p90", "p99", "max", "mean"],
                [[label, *(fig[key][q] for q in ("p50", "p90", "p99", "max", "mean"))] for label, key in parts],
            )
        )
    report.note(
        f"presigning one URL costs {presign_us:.0f} us (inside 'rest of handler', with Powertools routing and "
        "logging, request validation, JSON and base64 decoding of the model reply)"
    )
    report.goals = [
        Goal("API overhead p99, placeholder PNGs", runs["placeholder"]["overhead_ms"]["p99"], GOAL_P99_MS, "<=", "ms"),
        Goal(
            "  same, without the local gateway's own time",
            runs["placeholder"]["overhead_without_gateway_ms"]["p99"],
            GOAL_P99_MS,
            "<=",
            "ms",
        ),
    ]
    if "titan_sized" in runs:
        report.figures["titan_sized_overhead_p99_ms"] = runs["titan_sized"]["overhead_ms"]["p99"]
    return report


def _requests(stack: LocalStack, probe: _Probe, count: int) -> list[dict[str, float]]:
    ep = endpoints(stack)
    url = urlsplit(ep.api_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"x-api-key": ep.api_key, "Content-Type": "application/json"}
    samples = []
    try:
        for index in range(WARMUP + count):
            body = json.dumps({"prompt": f"an overhead benchmark landscape {time.time_ns()} {index}"})
            probe.current = {}
            started = time.perf_counter()
            connection.request("POST", url.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            e2e = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"request {index}: {response.status} {payload[:300]!r}")
            if index >= WARMUP:
                samples.append({"e2e_ms": e2e, **probe.current})
    finally:
        connection.close()
    return samples


def _figures(samples: list[dict[str, float]]) -> dict[str, Any]:
    derived: dict[str, list[float]] = {key: [] for key in ("e2e_ms", "emulator_ms", "overhead_ms",
                                                          "overhead_without_gateway_ms", "gateway_ms", "handoff_ms",
                                                          "bedrock_client_ms", "s3_put_ms", "handler_rest_ms",
                                                          "gc_ms")}  # fmt: skip
    for s in samples:
        invoke_call = s.get("call:InvokeModel", 0.0)
        puts = s.get("call:PutObject", 0.0)
        values = {
            "e2e_ms": s["e2e_ms"],
            "emulator_ms": s["emulator_ms"],
            "overhead_ms": s["e2e_ms"] - s["emulator_ms"],
            "overhead_without_gateway_ms": s["invoke_ms"] - s["emulator_ms"],
            "gateway_ms": s["e2e_ms"] - s["invoke_ms"],
            "handoff_ms": s["invoke_ms"] - s["handler_ms"],
            "bedrock_client_ms": invoke_call - s["emulator_ms"],
            "s3_put_ms": puts,
            "handler_rest_ms": s["handler_ms"] - invoke_call - puts,
            "gc_ms": s.get("gc_ms", 0.0),
        }
        for key, value in values.items():
            derived[key].append(value)
    figures: dict[str, Any] = {key: summary(values) for key, values in derived.items()}
    figures["n"] = len(samples)
    worst = max(samples, key=lambda s: s["e2e_ms"] - s["emulator_ms"])
    figures["worst_request"] = {k: round(v, 1) for k, v in worst.items()}
    figures["overhead_p99_ms"] = round(percentile(derived["overhead_ms"], 99), 1)
    return figures


def _presign_cost_us(count: int = 2000) -> float:
    s3 = make_s3_client()
    s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "warm"}, ExpiresIn=3600)
    started = time.perf_counter()
    for index in range(count):
        s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": f"k/{index}.png"}, ExpiresIn=3600)
    return round((time.perf_counter() - started) / count * 1e6, 1)
