"""Driving the local stack from the benchmarks, as a client does: over the services' endpoints and admin routes.

Each service of ``local_stack.LocalStack`` runs in a process of its own (``moto``, ``bedrock``, ``api``,
``worker``); a benchmark starts one stack per emulator configuration (the emulator reads its configuration at
start), on free loopback ports, without a state file, with the service logs in ``.local/bench-logs/<name>/``.
Every stack serves ``BENCH_MODEL_ID``, a model Bedrock serves today (one image per call, 1:1 = 1024x1024).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bedrock_emulator.admin import EmulatorAdmin
from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.render import render_placeholder
from bench.common import ROOT, wait_until
from imagegen.jobs import Job, is_job_id
from local_stack.stack import LocalStack, PollerAdmin, StackConfig, StackEndpoints

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

#: The model every benchmark stack serves (not the default chain, whose first entry is Titan v1: end of life).
BENCH_MODEL_ID = "stability.stable-image-core-v1:1@us-west-2"
BENCH_MODEL, _, BENCH_MODEL_REGION = BENCH_MODEL_ID.partition("@")
LOG_ROOT = ROOT / ".local" / "bench-logs"
IMAGE_DIR = ROOT / ".local" / "bench-images"
#: The queue worker with its clients built at import (``bench.warm_worker``), and the original-style one.
WARM_WORKER = "bench.warm_worker:lambda_handler"
BASELINE_WORKER = "bench.baseline_handlers:worker_handler"


@contextlib.contextmanager
def local_stack(name: str, emulator: EmulatorConfig | None = None, **overrides: Any) -> Iterator[LocalStack]:
    """A local stack on free loopback ports, no state file, quiet handlers, logs in ``LOG_ROOT/<name>``, and no usage
    plan (the benchmarks measure the service, not API Gateway's throttle: 5 requests a second would be the figure)."""
    settings: dict[str, Any] = {
        "usage_plan": None,
        "api_port": 0,
        "aws_port": 0,
        "bedrock_port": 0,
        "state_file": None,
        "log_level": "ERROR",
        "model_id": BENCH_MODEL_ID,
        "log_dir": LOG_ROOT / name,
        "emulator": emulator or EmulatorConfig(),
        **overrides,
    }
    with LocalStack(StackConfig(**settings)) as stack:
        yield stack


def endpoints(stack: LocalStack) -> StackEndpoints:
    assert stack.endpoints is not None, "the stack is not running"
    return stack.endpoints


def emulator(stack: LocalStack) -> EmulatorAdmin:
    assert stack.emulator is not None, "the stack is not running"
    return stack.emulator


def poller(stack: LocalStack) -> PollerAdmin:
    assert stack.poller is not None, "the stack is not running"
    return stack.poller


def sqs(stack: LocalStack) -> SQSClient:
    client: SQSClient = endpoints(stack).client("sqs")
    return client


def s3(stack: LocalStack) -> S3Client:
    client: S3Client = endpoints(stack).client("s3")
    return client


def service_cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU time (user + system) each service process has used so far, and this process's ("bench").

    Read from ``/proc/<pid>/stat``; NaN where that is not readable (not Linux)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    result: dict[str, float] = {}
    for name, service in stack.services.items():
        try:
            fields = Path(f"/proc/{service.pid}/stat").read_text().rpartition(")")[2].split()
            result[name] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            result[name] = math.nan
    result["bench"] = time.process_time()
    return result


# ---- images the emulator serves ---------------------------------------------------------------------


def image_file(kind: str) -> Path:
    """A PNG for ``EmulatorConfig(image_file=...)``, written once: ``placeholder`` (an emulator placeholder,
    ~90 kB) or ``titan_sized`` (~1.5 MB, see ``realistic_png``). Served as is, it costs the emulator no CPU
    per request (a remote Bedrock costs us none either)."""
    path = IMAGE_DIR / f"{kind}.png"
    if not path.exists():
        if kind == "placeholder":
            data = render_placeholder("benchmark landscape", 1000, 1024, 1024, "PNG")
        elif kind == "titan_sized":
            data = realistic_png()
        else:
            raise ValueError(f"unknown image kind {kind!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def realistic_png(seed: int = 7) -> bytes:
    """A 1024x1024 PNG of about 1.5 MB, the size Titan's images have (the placeholders are 70-90 kB): the
    placeholder with 3 bits of grain, which PNG cannot compress away."""
    from PIL import Image, ImageChops

    base = Image.open(io.BytesIO(render_placeholder("a realistic-size image", seed, 1024, 1024))).convert("RGB")
    noise = bytes(b & 7 for b in random.Random(seed).randbytes(1024 * 1024 * 3))  # noqa: S311
    out = io.BytesIO()
    ImageChops.add(base, Image.frombytes("RGB", (1024, 1024), noise)).save(out, "PNG")
    return out.getvalue()


# ---- queues and the bucket ------------------------------------------------------------------------


#: A few fixed (prompt, seed) pairs, so that our worker and the baseline send byte-identical requests.
CACHED_PROMPTS = [(f"benchmark landscape number {i}", 1000 + i) for i in range(10)]


def cached_bodies(count: int) -> list[str]:
    """JSON message bodies that cycle through ``CACHED_PROMPTS``."""
    pairs = [CACHED_PROMPTS[i % len(CACHED_PROMPTS)] for i in range(count)]
    return [json.dumps({"prompt": prompt, "seed": seed}) for prompt, seed in pairs]


def send_messages(client: SQSClient, queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send ``bodies`` in batches of 10; returns the message ids in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        reply = client.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        if reply.get("Failed"):
            raise RuntimeError(f"send_message_batch failed: {reply['Failed']}")
        by_entry = {entry["Id"]: entry["MessageId"] for entry in reply["Successful"]}
        ids.extend(by_entry[str(i)] for i in range(len(chunk)))
    return ids


def queue_depth(client: SQSClient, queue_url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed) messages of a queue."""
    attributes = client.get_queue_attributes(
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


def list_keys(client: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def job_records(stack: LocalStack) -> list[Job]:
    """Every job record of the stack (one Scan, paged): how each job stands, as the API reports it."""
    ep = endpoints(stack)
    client = ep.client("dynamodb")
    jobs: list[Job] = []
    for page in client.get_paginator("scan").paginate(TableName=ep.jobs_table):
        jobs.extend(Job.from_item(item) for item in page.get("Items", []) if is_job_id(item["pk"]["S"]))
    return jobs


def images_under(keys: Sequence[str], prefix: str, suffix: str) -> list[str]:
    """The keys directly under ``prefix`` ending in ``suffix``: images (``.png``) or their sidecars (``.json``)."""
    return [key for key in keys if key.startswith(prefix) and "/" not in key[len(prefix) :] and key.endswith(suffix)]


@dataclass
class QueueJob:
    """The outcome of one drained queue load, from the worker service's and the emulator's counters."""

    #: Messages timed (the warm-up batch excluded).
    sent: int
    deleted: int
    #: First ReceiveMessage (or, after a warm-up batch, its invocation's return) -> return of the last invocation,
    #: from the worker service's wall-clock marks.
    seconds: float
    batches: int
    failed_records: int
    invocations: int
    completed: bool
    #: The emulator's counters for the whole job (warm-up included).
    emulator: dict[str, int]
    #: CPU seconds per service process (and "bench") during the timed part.
    cpu_seconds: dict[str, float]
    #: First ReceiveMessage -> return of the warm-up batch's invocation (NaN without one).
    warmup_seconds: float = math.nan

    @property
    def throughput(self) -> float:
        return self.deleted / self.seconds if self.seconds > 0 else math.nan


def run_queue_job(
    stack: LocalStack,
    bodies: Sequence[str],
    *,
    warmup: Sequence[str] = (),
    handler: str | None = None,
    env: Mapping[str, str] | None = None,
    max_concurrency: int = 1,
    batch_size: int = 10,
    window: float = 0.0,
    timeout: float = 300.0,
    until_empty: bool = False,
) -> QueueJob:
    """Start a fresh worker service, paused (``handler``: ``module:function``, default the stack's own), pre-load
    ``warmup`` + ``bodies``, resume it and wait until every message was deleted (or, with ``until_empty``, until
    the queue is empty: redrive moves some to the DLQ).

    ``warmup``, one full batch (``batch_size`` messages, one invocation at a time), is the worker's first batch
    and is not timed: a fresh worker opens its connections then (``batch_size`` at once to the emulator, whose
    listen backlog is shorter, so some wait for a SYN retransmit) and botocore does its first-call work."""
    if warmup and (len(warmup) != batch_size or max_concurrency != 1 or until_empty):
        raise ValueError("a warm-up is one full batch, with one invocation at a time, on a job that deletes all")
    ep = endpoints(stack)
    admin = stack.restart_worker(
        paused=True,
        handler=handler,
        env=env,
        max_concurrency=max_concurrency,
        batch_size=batch_size,
        batching_window_seconds=window,
    )
    client = sqs(stack)
    emulator(stack).reset_stats()
    send_messages(client, ep.queue_url, [*warmup, *bodies])
    cpu_before = service_cpu_seconds(stack)
    admin.resume()
    start_at = warmup_seconds = math.nan
    if warmup:
        # The next invocation returns at least one model latency after the first: polling at 20 Hz sees the first.
        wait_until(lambda: admin.stats()["invocations"] >= 1, timeout, interval=0.05)
        first = admin.stats()
        cpu_before = service_cpu_seconds(stack)
        if first["invocations"] != 1:
            raise RuntimeError(f"missed the end of the warm-up batch: {first}")
        start_at = first["last_return_at"]
        warmup_seconds = first["last_return_at"] - first["first_receive_at"]
    total = len(warmup) + len(bodies)
    if until_empty:
        done = wait_until(lambda: sum(queue_depth(client, ep.queue_url)) == 0, timeout, interval=0.5)
    else:
        done = wait_until(lambda: admin.stats()["deleted"] >= total, timeout, interval=0.2)
    cpu_after = service_cpu_seconds(stack)
    stats = admin.stats()
    if not warmup:
        start_at = stats["first_receive_at"]
    skipped = 1 if warmup else 0
    return QueueJob(
        sent=len(bodies),
        deleted=stats["deleted"] - len(warmup),
        seconds=stats["last_return_at"] - start_at,
        batches=stats["batches"] - skipped,
        failed_records=stats["failed"],
        invocations=stats["invocations"] - skipped,
        completed=done,
        emulator=emulator(stack).stats(),
        cpu_seconds={name: cpu_after[name] - cpu_before.get(name, math.nan) for name in cpu_after},
        warmup_seconds=warmup_seconds,
    )
