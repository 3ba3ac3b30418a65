"""Queue throughput: messages/s of the worker against the ideal C/L and the original one-at-a-time worker.

One local stack per emulator latency L (each service in a process of its own; the emulator serves a placeholder
PNG from a file, so the model costs no CPU). Each run replaces the worker service with a fresh one, paused
(``stack.restart_worker``: batch size 10, batching window 0, one invocation at a time, ``WORKER_CONCURRENCY`` C,
so C is the only parallelism), pre-loads the queue with one untimed warm-up batch and the timed messages, resumes
it, and times the return of the warm-up batch's invocation -> return of the invocation that stored the last image
(the worker service's own wall-clock marks; a fresh worker opens its connections in its first batch). Our worker
runs as ``bench.warm_worker`` (its clients built before polling starts); the baseline as
``bench.baseline_handlers:worker_handler`` (clients made at import). CPU per message is read per process
(worker, moto, emulator, this one) from ``/proc``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.chart import Series, line_chart
from bench.common import RESULTS_DIR, Goal, Report, log, table
from bench.stacks import (
    BASELINE_WORKER,
    BENCH_MODEL_ID,
    CACHED_PROMPTS,
    WARM_WORKER,
    QueueJob,
    cached_bodies,
    endpoints,
    image_file,
    images_under,
    list_keys,
    local_stack,
    run_queue_job,
    s3,
)
from imagegen.storage import QUEUE_FOLDER, images_folder

NAME = "queue_throughput"
LATENCY_MS = 500
BATCH_SIZE = 10
#: (label, worker concurrency or None for the baseline, messages).
#: C=1 and the baseline take ~0.55 s per message, so they get fewer messages to keep ``make bench`` under ~8 min;
#: their rate is steady (one record after the other), 6 batches are plenty.
MAIN_RUNS: list[tuple[str, int | None, int]] = [("ours C=10", 10, 200), ("ours C=1", 1, 60), ("baseline", None, 60)]
SWEEP: list[tuple[int, int]] = [(2, 60), (5, 100), (20, 100)]
#: The C=10 run again with a slower model: the per-batch overhead stays, its share shrinks.
SLOW_LATENCY_MS = 2000
SLOW_MESSAGES = 50
#: msg/s of the same runs on the in-process stack (moto, emulator, poller and worker in one process; 2026-11-27).
IN_PROCESS_2026_11_27 = {
    "ours C=10": 9.2,
    "ours C=1": 1.68,
    "baseline": 1.87,
    "ours C=2": 3.38,
    "ours C=5": 6.6,
    "ours C=20": 10.0,
    f"ours C=10, L={SLOW_LATENCY_MS} ms": 4.1,
}
PROCESSES = ("worker", "moto", "bedrock", "bench")


def ideal(concurrency: float, latency_s: float, batch_size: int = BATCH_SIZE) -> float:
    """Messages/s if every batch took exactly one model latency per record slot: C/L. With one invocation
    at a time, no more than ``batch_size`` records are ever in flight, so C above the batch size adds nothing."""
    return min(concurrency, batch_size) / latency_s


def run() -> Report:
    report = Report(NAME)
    latency = LATENCY_MS / 1000
    png = image_file("placeholder")
    report.parameters = {
        "model_id": BENCH_MODEL_ID,
        "emulator_latency_ms": LATENCY_MS,
        "emulator_image": f"a placeholder PNG from a file, {png.stat().st_size} bytes",
        "batch_size": BATCH_SIZE,
        "batching_window_seconds": 0,
        "poller_max_concurrency": 1,
        "main_runs": [{"label": label, "worker_concurrency": c, "messages": n} for label, c, n in MAIN_RUNS],
        "sweep": [{"worker_concurrency": c, "messages": n} for c, n in SWEEP],
        "bodies": f"JSON bodies cycling through {len(CACHED_PROMPTS)} fixed (prompt, seed) pairs, 1:1 (1024x1024)",
        "stack": "process per service (moto, bedrock, api, worker); a fresh worker service per run",
        "warmup": f"one untimed batch of {BATCH_SIZE} messages first in every run (the worker's first batch)",
        "in_process_stack_2026_11_27_msg_per_s": IN_PROCESS_2026_11_27,
    }
    plan: list[tuple[str, int | None, int, int]] = [
        *((label, c, n, LATENCY_MS) for label, c, n in MAIN_RUNS),
        *((f"ours C={c}", c, n, LATENCY_MS) for c, n in SWEEP),
        (f"ours C=10, L={SLOW_LATENCY_MS} ms", 10, SLOW_MESSAGES, SLOW_LATENCY_MS),
    ]
    runs: dict[str, dict[str, Any]] = {}
    for latency_ms in (LATENCY_MS, SLOW_LATENCY_MS):
        emulator = EmulatorConfig(latency_ms=latency_ms, image_file=png)
        with local_stack(f"{NAME}-{latency_ms}ms", emulator, batching_window_seconds=0.0, max_concurrency=1) as stack:
            bucket, client = endpoints(stack).bucket, s3(stack)
            for label, concurrency, messages, run_latency in plan:
                if run_latency != latency_ms:
                    continue
                log(f"[{NAME}] {label}: {messages} messages ...")
                prefix = "generated_images/baseline/" if concurrency is None else images_folder(folder=QUEUE_FOLDER)
                before = _pngs(list_keys(client, bucket, prefix), prefix, baseline=concurrency is None)
                job = run_queue_job(
                    stack,
                    cached_bodies(messages),
                    warmup=cached_bodies(BATCH_SIZE),
                    handler=BASELINE_WORKER if concurrency is None else WARM_WORKER,
                    env=None if concurrency is None else {"WORKER_CONCURRENCY": str(concurrency)},
                    max_concurrency=1,
                    batch_size=BATCH_SIZE,
                    window=0.0,
                    timeout=240,
                )
                stored = _pngs(list_keys(client, bucket, prefix), prefix, baseline=concurrency is None) - before
                stored -= BATCH_SIZE  # the warm-up batch's
                runs[label] = _figures(job, concurrency=concurrency, latency=latency_ms / 1000, stored=stored)
                runs[label]["in_process_messages_per_second"] = IN_PROCESS_2026_11_27.get(label, math.nan)
                log(f"[{NAME}] {label}: {runs[label]['messages_per_second']:.2f} msg/s in {job.seconds:.1f} s")
                if not job.completed:
                    report.note(f"{label}: not drained in time ({job.deleted}/{job.sent} deleted)")

    ours10, base = runs["ours C=10"], runs["baseline"]
    report.figures = {
        "runs": runs,
        "ours_c10_vs_baseline": round(ours10["messages_per_second"] / base["messages_per_second"], 2),
    }
    rows = [
        [
            label,
            "-" if fig["worker_concurrency"] is None else fig["worker_concurrency"],
            fig["latency_ms"],
            fig["messages"],
            fig["seconds"],
            fig["messages_per_second"],
            fig["in_process_messages_per_second"],
            fig["ideal_messages_per_second"],
            fig["share_of_ideal"],
            fig["batch_seconds_mean"],
            fig["batch_overhead_ms"],
            fig["warmup_batch_seconds"],
            fig["stored_images"],
        ]
        for label, fig in runs.items()
    ]
    report.add_table(
        table(
            f"Queue throughput (batch {BATCH_SIZE}, window 0, 1 concurrent invocation; ideal = min(C, batch)/L; "
            "old = the in-process stack, 2026-11-27)",
            [
                "run",
                "C",
                "L ms",
                "msgs",
                "seconds",
                "msg/s",
                "old msg/s",
                "ideal",
                "of ideal",
                "s/batch",
                "ovh ms/batch",
                "warm-up s",
                "images",
            ],
            rows,
        )
    )
    report.add_table(
        table(
            "CPU per message by process during the timed runs (ms; 2 cores = 2,000 ms of CPU per second)",
            ["run", *PROCESSES, "total", "CPU busy"],
            [
                [
                    label,
                    *(fig["cpu_ms_per_message"].get(p, math.nan) for p in PROCESSES),
                    fig["cpu_ms_per_message_total"],
                    fig["cpu_busy_share"],
                ]
                for label, fig in runs.items()
            ],
        )
    )
    report.goals = [
        Goal("C=10 throughput / ideal C/L", ours10["share_of_ideal"], 0.9, ">="),
        Goal("C=10 throughput / baseline", report.figures["ours_c10_vs_baseline"], 8.0, ">=", "x"),
    ]
    chart = draw_chart(runs, latency)
    report.figures["chart"] = str(chart.relative_to(RESULTS_DIR.parent.parent))
    return report


def _pngs(keys: list[str], prefix: str, *, baseline: bool) -> int:
    """Stored images: the baseline's ``baseline/{message id}/{uuid}.png``, or ours ``from_queue/{id}-0.png``."""
    return sum(key.endswith(".png") for key in keys) if baseline else len(images_under(keys, prefix, ".png"))


def _figures(job: QueueJob, *, concurrency: int | None, latency: float, stored: int) -> dict[str, Any]:
    c = 1 if concurrency is None else concurrency
    best = ideal(c, latency)
    batch = job.seconds / job.batches if job.batches else math.nan
    cpu = {name: round(1000 * seconds / job.sent, 1) for name, seconds in job.cpu_seconds.items()}
    total_cpu = sum(seconds for seconds in job.cpu_seconds.values() if not math.isnan(seconds))
    return {
        "latency_ms": round(latency * 1000),
        "worker_concurrency": concurrency,
        "messages": job.sent,
        "deleted": job.deleted,
        "stored_images": stored,
        "seconds": round(job.seconds, 2),
        "messages_per_second": round(job.throughput, 2),
        "ideal_messages_per_second": round(best, 2),
        "share_of_ideal": round(job.throughput / best, 3),
        "batches": job.batches,
        "invocations": job.invocations,
        "batch_seconds_mean": round(batch, 3),
        #: Per batch, time beyond what the records' model calls need at this concurrency.
        "batch_overhead_ms": round(1000 * (batch - latency * math.ceil(min(job.sent, BATCH_SIZE) / c)), 1),
        "bedrock_requests_with_warmup": job.emulator["requests"],
        "warmup_batch_seconds": round(job.warmup_seconds, 3),
        "failed_records": job.failed_records,
        "completed": job.completed,
        "cpu_ms_per_message": cpu,
        "cpu_ms_per_message_total": round(1000 * total_cpu / job.sent, 1),
        #: Share of the machine's CPU (all cores) the stack and this process used during the run.
        "cpu_busy_share": round(total_cpu / (job.seconds * (os.cpu_count() or 1)), 3) if job.seconds > 0 else math.nan,
    }


def draw_chart(runs: dict[str, dict[str, Any]], latency: float) -> Path:
    """Throughput against worker concurrency, with the ideal line, the baseline and the in-process stack's
    figures, as a PNG."""
    ours = sorted(
        (fig["worker_concurrency"], fig["messages_per_second"], fig["in_process_messages_per_second"])
        for label, fig in runs.items()
        if fig["worker_concurrency"] is not None and fig["latency_ms"] == LATENCY_MS
    )
    base = runs["baseline"]["messages_per_second"]
    xs = [float(c) for c, _, _ in ours]
    grid = [x / 4 for x in range(4, 4 * int(max(xs)) + 1)]
    return line_chart(
        RESULTS_DIR / f"{NAME}.png",
        [
            Series(
                f"ideal min(C, {BATCH_SIZE}) / L  (L = {LATENCY_MS} ms)",
                grid,
                [ideal(c, latency) for c in grid],
                "grey",
                "dashed",
            ),
            Series(
                "our worker, process per service (now)",
                xs,
                [t for _, t, _ in ours],
                "tab:blue",
                markers=True,
                annotate=True,
            ),
            Series(
                "our worker, all in one process (2026-11-27)",
                xs,
                [old for _, _, old in ours],
                "tab:green",
                "dotted",
                markers=True,
            ),
            Series(
                f"original one-at-a-time worker ({base:.2f} msg/s)", [0.0, max(xs)], [base, base], "tab:red", "dotted"
            ),
        ],
        title=f"Queue throughput vs WORKER_CONCURRENCY (batch {BATCH_SIZE}, window 0, 1 invocation at a time)",
        xlabel="WORKER_CONCURRENCY C",
        ylabel="messages / s",
    )
