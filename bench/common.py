"""What every benchmark shares: statistics, tables, result files, and driving the local stack."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.render import render_placeholder
from local_stack.poller import QueuePoller
from local_stack.stack import LocalStack, StackConfig, StackEndpoints

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from local_stack.lambda_runtime import Handler

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# ---- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    """n, mean, min, p50, p90, p99, max of ``values``, rounded."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), digits),
        "min": round(min(values), digits),
        "p50": round(percentile(values, 50), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
    }


# ---- goals, tables, result files --------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """One target of the issue and how the run did against it."""

    name: str
    actual: float
    limit: float
    #: "<=" (actual must not exceed limit) or ">=".
    op: str
    unit: str = ""
    note: str = ""

    @property
    def met(self) -> bool:
        return self.actual <= self.limit if self.op == "<=" else self.actual >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "met": self.met}


def fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, right-aligned numbers."""
    cells = [[fmt(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = [title, "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row, raw in zip(cells, rows, strict=True):
        parts = [
            cell.rjust(w) if isinstance(value, int | float) and not isinstance(value, bool) else cell.ljust(w)
            for cell, w, value in zip(row, widths, raw, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def goals_table(goals: Sequence[Goal]) -> str:
    rows = [
        [g.name, g.actual, f"{g.op} {fmt(g.limit)}{(' ' + g.unit) if g.unit else ''}", "MET" if g.met else "MISSED"]
        for g in goals
    ]
    return table("Goals", ["goal", "actual", "target", "result"], rows)


def machine_info() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_1_5_15": [round(x, 2) for x in load],
    }


@dataclass
class Report:
    """What one benchmark produced; ``write()`` saves it as ``bench/results/<name>.json``."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    machine_at_start: dict[str, Any] = field(default_factory=machine_info)

    def add_table(self, text: str) -> None:
        self.tables.append(text)
        out(text + "\n")

    def note(self, text: str) -> None:
        self.notes.append(text)
        out(f"note: {text}")

    def write(self) -> Path:
        runtime = round(time.monotonic() - self.started, 1)
        if self.goals:
            self.add_table(goals_table(self.goals))
        machine = {**self.machine_at_start, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}
        payload = {
            "name": self.name,
            "machine": machine,
            "runtime_seconds": runtime,
            "parameters": self.parameters,
            "figures": self.figures,
            "goals": [goal.as_dict() for goal in self.goals],
            "notes": self.notes,
            "tables": self.tables,
        }
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        out(f"[{self.name}] {runtime:.1f} s, wrote {path.relative_to(ROOT)}")
        return path


# ---- the local stack --------------------------------------------------------------------------


def out(text: str) -> None:
    """Print to the real stdout, also while ``local_stack`` sends the handlers' stdout to /dev/null."""
    stream = sys.__stdout__ or sys.stdout
    print(text, file=stream, flush=True)


_SINK: Any = None


def quiet_logs() -> None:
    """The poller logs whole-batch failures with tracebacks (the baselines cause many on purpose); Powertools
    warns when an invocation adds no metric."""
    for name in ("local_stack", "botocore", "urllib3", "werkzeug"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("imagegen").setLevel(logging.ERROR)  # e.g. "could not delay retry of ..." warnings
    warnings.filterwarnings("ignore", message="No application metrics to publish")


@contextlib.contextmanager
def local_stack(emulator: EmulatorConfig | None = None, **overrides: Any) -> Iterator[LocalStack]:
    """An in-process local stack on free loopback ports, no state file, quiet handlers."""
    quiet_logs()
    config = StackConfig(
        api_port=0,
        aws_port=0,
        bedrock_port=0,
        state_file=None,
        log_level="ERROR",
        emulator=emulator or EmulatorConfig(),
        **overrides,
    )
    global _SINK  # noqa: PLW0603 - one /dev/null for the whole run, never closed (loggers keep it)
    if _SINK is None:
        _SINK = open(os.devnull, "w")  # noqa: SIM115, PTH123
    # The handlers print Powertools' metrics (EMF) and JSON logs to stdout, as in Lambda; not wanted here.
    with contextlib.redirect_stdout(_SINK), LocalStack(config) as stack:
        try:
            yield stack
        finally:
            # moto keeps its state per process, not per server: the next stack must start empty.
            reset_moto(endpoints(stack).aws_endpoint_url)


def reset_moto(aws_endpoint_url: str) -> None:
    import urllib.request

    url = f"{aws_endpoint_url}/moto-api/reset"  # the local moto server (http on loopback)
    request = urllib.request.Request(url, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        reply.read()


def endpoints(stack: LocalStack) -> StackEndpoints:
    assert stack.endpoints is not None, "the stack is not running"
    return stack.endpoints


def sqs_client() -> SQSClient:
    return boto3.client("sqs")


def s3_client() -> S3Client:
    return boto3.client("s3")


def send_messages(queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send ``bodies`` in batches of 10; returns the message ids in order."""
    sqs = sqs_client()
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        reply = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        if reply.get("Failed"):
            raise RuntimeError(f"send_message_batch failed: {reply['Failed']}")
        by_entry = {entry["Id"]: entry["MessageId"] for entry in reply["Successful"]}
        ids.extend(by_entry[str(i)] for i in range(len(chunk)))
    return ids


def queue_depth(queue_url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) messages of a queue."""
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", "0")),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", "0")),
        int(attributes.get("ApproximateNumberOfMessagesDelayed", "0")),
    )


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


#: A few fixed (prompt, seed) pairs: the emulator caches its placeholder renders per (prompt, seed, size),
#: so after ``warm_renders`` the emulated model costs its configured latency and none of our CPU, as a
#: remote Bedrock would. Without this, rendering (~50 ms of CPU per 1024x1024 image) competes with the
#: system under test on this 2-core machine.
CACHED_PROMPTS = [(f"benchmark landscape number {i}", 1000 + i) for i in range(10)]


def warm_renders(width: int = 1024, height: int = 1024) -> None:
    for prompt, seed in CACHED_PROMPTS:
        render_placeholder(prompt, seed, width, height, "PNG")


def cached_bodies(count: int) -> list[str]:
    """JSON message bodies that cycle through ``CACHED_PROMPTS``."""
    return [
        json.dumps(
            {"prompt": CACHED_PROMPTS[i % len(CACHED_PROMPTS)][0], "seed": CACHED_PROMPTS[i % len(CACHED_PROMPTS)][1]}
        )
        for i in range(count)
    ]


class OperationTimer:
    """Wall time of every AWS call made by clients created while it is installed (botocore events on the
    default session), summed per operation name."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._starts: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()
        self._session: Any = None

    def install(self) -> OperationTimer:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._session = boto3.DEFAULT_SESSION
        self._session.events.register("before-call", self._before, unique_id="bench-op-before")
        self._session.events.register("after-call", self._after, unique_id="bench-op-after")
        return self

    def uninstall(self) -> None:
        if self._session is not None:
            self._session.events.unregister("before-call", unique_id="bench-op-before")
            self._session.events.unregister("after-call", unique_id="bench-op-after")
            self._session = None

    def reset(self) -> None:
        with self._lock:
            self.totals, self.counts = {}, {}

    def _before(self, model: Any, **_: Any) -> None:
        self._starts[(threading.get_ident(), model.name)] = time.monotonic()

    def _after(self, model: Any, **_: Any) -> None:
        started = self._starts.pop((threading.get_ident(), model.name), None)
        if started is None:
            return
        with self._lock:
            self.totals[model.name] = self.totals.get(model.name, 0.0) + time.monotonic() - started
            self.counts[model.name] = self.counts.get(model.name, 0) + 1

    def per_call_ms(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                name: {"calls": self.counts[name], "mean_ms": round(1000 * total / self.counts[name], 1)}
                for name, total in sorted(self.totals.items())
            }


def realistic_png(seed: int = 7) -> bytes:
    """A 1024x1024 PNG of about 1.5 MB, the size Titan's images have (the placeholders are ~70 kB): the
    placeholder with 3 bits of grain, which PNG cannot compress away."""
    import io
    import random

    from PIL import Image, ImageChops

    base = Image.open(io.BytesIO(render_placeholder("a realistic-size image", seed, 1024, 1024))).convert("RGB")
    noise = bytes(b & 7 for b in random.Random(seed).randbytes(1024 * 1024 * 3))  # noqa: S311
    out = io.BytesIO()
    ImageChops.add(base, Image.frombytes("RGB", (1024, 1024), noise)).save(out, "PNG")
    return out.getvalue()


@contextlib.contextmanager
def large_images(stack: LocalStack) -> Iterator[int]:
    """Make the stack's emulator answer every request with a ~1.5 MB PNG (see ``realistic_png``) instead of
    rendering a placeholder; yields the PNG's size. Replaces the emulator's renderer on this instance only."""
    import base64

    assert stack.emulator is not None
    png = realistic_png()
    encoded = base64.b64encode(png).decode()

    def render(job: Any) -> dict[str, Any]:
        return {"images": [encoded] * int(job.count), "error": None}

    setattr(stack.emulator, "_render", render)  # noqa: B010 - an instance override of a private method
    try:
        yield len(png)
    finally:
        delattr(stack.emulator, "_render")


def reset_worker(concurrency: int | None = None) -> None:
    """Forget the worker's cached clients and thread pool (one "container"), optionally with a new
    ``WORKER_CONCURRENCY``."""
    from sqs_worker import app as worker_app

    if concurrency is not None:
        os.environ["WORKER_CONCURRENCY"] = str(concurrency)
    worker_app.reset()


@dataclass
class QueueJob:
    """The outcome of one drained queue load."""

    sent: int
    deleted: int
    seconds: float
    batches: int
    failed_records: int
    invocations: int
    completed: bool
    first_receive: float
    last_return: float
    emulator: dict[str, int]
    #: CPU time of this whole process (worker, poller, moto, emulator) during the run.
    cpu_seconds: float

    @property
    def throughput(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else math.nan


class _HandlerTimer:
    """Wraps a handler to record when each invocation returned."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.returns: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return self.handler(event, context)
        finally:
            with self._lock:
                self.returns.append(time.monotonic())


def replace_poller(
    stack: LocalStack, *, max_concurrency: int, batch_size: int, window: float, duplicate_rate: float = 0.0
) -> tuple[QueuePoller, list[float]]:
    """Stop the stack's poller and start an equivalent one; returns it and the times of its ReceiveMessage
    calls (filled as they happen)."""
    assert stack.poller is not None
    old = stack.poller
    old.stop()
    receives: list[float] = []
    sqs = boto3.client("sqs", region_name=old.region)
    sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: receives.append(time.monotonic()))
    poller = QueuePoller(
        old.function,
        sqs,
        old.queue_url,
        old.queue_arn,
        batch_size=batch_size,
        batching_window_seconds=window,
        max_concurrency=max_concurrency,
        region=old.region,
        duplicate_delivery_rate=duplicate_rate,
    )
    stack.poller = poller
    return poller, receives


def run_queue_job(
    stack: LocalStack,
    bodies: Sequence[str],
    *,
    handler: Handler | None = None,
    poller_concurrency: int = 1,
    batch_size: int = 10,
    window: float = 0.0,
    timeout: float = 300.0,
    until_empty: bool = False,
) -> QueueJob:
    """Pre-load ``bodies`` while no poller runs, start a fresh poller, and wait until every message was
    deleted (or, with ``until_empty``, until the queue is empty: redrive moves some to the DLQ)."""
    assert stack.emulator is not None and stack.poller is not None
    ep = endpoints(stack)
    poller, receives = replace_poller(stack, max_concurrency=poller_concurrency, batch_size=batch_size, window=window)
    function = poller.function
    original = function.handler
    timer = _HandlerTimer(handler or original)
    function.handler = timer
    stack.emulator.reset_stats()
    send_messages(ep.queue_url, bodies)
    cpu_before = time.process_time()
    try:
        poller.start()
        if until_empty:
            done = wait_until(lambda: sum(queue_depth(ep.queue_url)) == 0, timeout, interval=0.5)
        else:
            done = wait_until(lambda: poller.stats.snapshot()["deleted"] >= len(bodies), timeout)
        poller.stop()
    finally:
        function.handler = original
    stats = poller.stats.snapshot()
    first = receives[0] if receives else math.nan
    last = max(timer.returns) if timer.returns else math.nan
    return QueueJob(
        sent=len(bodies),
        deleted=stats["deleted"],
        seconds=last - first,
        batches=stats["batches"],
        failed_records=stats["failed"],
        invocations=len(timer.returns),
        completed=done,
        first_receive=first,
        last_return=last,
        emulator=stack.emulator.stats,
        cpu_seconds=time.process_time() - cpu_before,
    )


def load_baseline() -> Any:
    """``bench.baseline_handlers`` (re)imported now, so that its module-level clients see this stack."""
    import importlib

    from bench import baseline_handlers

    return importlib.reload(baseline_handlers)


def list_keys(bucket: str, prefix: str) -> list[str]:
    s3 = s3_client()
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def env_for_child(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, **(extra or {})}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
