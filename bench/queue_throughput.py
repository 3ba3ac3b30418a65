"""Queue throughput: messages/s of the worker against the ideal C/L and the original one-at-a-time worker.

One stack (emulator latency L), one poller at a time with batch size 10, batching window 0 and one
concurrent invocation, so the worker's ``WORKER_CONCURRENCY`` C is the only parallelism. Each run
pre-loads the queue while no poller runs, then starts a fresh poller and times first ReceiveMessage ->
return of the invocation that stored the last image.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.chart import Series, line_chart
from bench.common import (
    CACHED_PROMPTS,
    RESULTS_DIR,
    Goal,
    OperationTimer,
    QueueJob,
    Report,
    cached_bodies,
    endpoints,
    list_keys,
    load_baseline,
    local_stack,
    log,
    reset_worker,
    run_queue_job,
    table,
    warm_renders,
)

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


def ideal(concurrency: float, latency_s: float, batch_size: int = BATCH_SIZE) -> float:
    """Messages/s if every batch took exactly one model latency per record slot: C/L. With one invocation
    at a time, no more than ``batch_size`` records are ever in flight, so C above the batch size adds nothing."""
    return min(concurrency, batch_size) / latency_s


def run() -> Report:
    report = Report(NAME)
    latency = LATENCY_MS / 1000
    report.parameters = {
        "emulator_latency_ms": LATENCY_MS,
        "batch_size": BATCH_SIZE,
        "batching_window_seconds": 0,
        "poller_max_concurrency": 1,
        "main_runs": [{"label": label, "worker_concurrency": c, "messages": n} for label, c, n in MAIN_RUNS],
        "sweep": [{"worker_concurrency": c, "messages": n} for c, n in SWEEP],
        "bodies": f"JSON bodies cycling through {len(CACHED_PROMPTS)} fixed (prompt, seed) pairs, 1024x1024",
    }
    warm_renders()
    runs: dict[str, dict[str, Any]] = {}
    timer = OperationTimer().install()
    try:
        with local_stack(
            EmulatorConfig(latency_ms=LATENCY_MS), batching_window_seconds=0.0, max_concurrency=1
        ) as stack:
            bucket = endpoints(stack).bucket
            baseline = load_baseline()
            plan: list[tuple[str, int | None, int, int]] = [
                *((label, c, n, LATENCY_MS) for label, c, n in MAIN_RUNS),
                *((f"ours C={c}", c, n, LATENCY_MS) for c, n in SWEEP),
                (f"ours C=10, L={SLOW_LATENCY_MS} ms", 10, SLOW_MESSAGES, SLOW_LATENCY_MS),
            ]
            assert stack.emulator is not None
            for label, concurrency, messages, latency_ms in plan:
                stack.emulator.config = dataclasses.replace(stack.emulator.config, latency_ms=latency_ms)
                warmup = min(BATCH_SIZE, concurrency or 1)
                log(f"[{NAME}] {label}: {warmup} warm-up + {messages} messages ...")
                handler = baseline.worker_handler if concurrency is None else None
                reset_worker(concurrency)
                # One untimed batch first: a fresh "container" makes its clients and connections then.
                warm = run_queue_job(stack, cached_bodies(warmup), handler=handler, timeout=60)
                timer.reset()
                before = len(list_keys(bucket, "generated_images/"))
                job = run_queue_job(stack, cached_bodies(messages), handler=handler, timeout=240)
                stored = len(list_keys(bucket, "generated_images/")) - before
                if concurrency is not None:
                    stored //= 2  # PNG + sidecar
                runs[label] = _figures(
                    job,
                    concurrency=concurrency,
                    latency=latency_ms / 1000,
                    stored=stored,
                    calls=timer.per_call_ms(),
                    warm=warm,
                )
                log(f"[{NAME}] {label}: {runs[label]['messages_per_second']:.2f} msg/s in {job.seconds:.1f} s")
                if not job.completed:
                    report.note(f"{label}: not drained in time ({job.deleted}/{job.sent} deleted)")
    finally:
        timer.uninstall()

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
            fig["ideal_messages_per_second"],
            fig["share_of_ideal"],
            fig["batch_seconds_mean"],
            fig["batch_overhead_ms"],
            fig["cpu_ms_per_message"],
            fig["stored_images"],
        ]
        for label, fig in runs.items()
    ]
    report.add_table(
        table(
            f"Queue throughput (batch {BATCH_SIZE}, window 0, 1 concurrent invocation; ideal = min(C, batch)/L)",
            [
                "run",
                "C",
                "L ms",
                "msgs",
                "seconds",
                "msg/s",
                "ideal",
                "of ideal",
                "s/batch",
                "ovh ms/batch",
                "CPU ms/msg",
                "images",
            ],
            rows,
        )
    )
    ops = ["GetObject", "InvokeModel", "PutObject", "DeleteMessageBatch"]
    report.add_table(
        table(
            "Mean wall time of each AWS call during the timed runs (ms; moto and the emulator share this process)",
            ["run", *ops],
            [
                [label, *(fig["aws_calls"].get(op, {}).get("mean_ms", math.nan) for op in ops)]
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


def _figures(
    job: QueueJob,
    *,
    concurrency: int | None,
    latency: float,
    stored: int,
    calls: dict[str, dict[str, float]],
    warm: QueueJob,
) -> dict[str, Any]:
    c = 1 if concurrency is None else concurrency
    best = ideal(c, latency)
    batch = job.seconds / job.batches if job.batches else math.nan
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
        "batch_seconds_mean": round(batch, 3),
        #: Per batch, time beyond what the records' model calls need at this concurrency.
        "batch_overhead_ms": round(1000 * (batch - latency * math.ceil(min(job.sent, BATCH_SIZE) / c)), 1),
        "bedrock_requests": job.emulator["requests"],
        "failed_records": job.failed_records,
        "completed": job.completed,
        "cpu_ms_per_message": round(1000 * job.cpu_seconds / job.sent, 1),
        "aws_calls": calls,
        "warmup_batch_seconds": round(warm.seconds, 3),
    }


def draw_chart(runs: dict[str, dict[str, Any]], latency: float) -> Path:
    """Throughput against worker concurrency, with the ideal line and the baseline, as a PNG."""
    ours = sorted(
        (fig["worker_concurrency"], fig["messages_per_second"])
        for label, fig in runs.items()
        if fig["worker_concurrency"] is not None and fig["latency_ms"] == LATENCY_MS
    )
    base = runs["baseline"]["messages_per_second"]
    xs = [float(c) for c, _ in ours]
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
            Series("our worker, measured", xs, [t for _, t in ours], "tab:blue", markers=True, annotate=True),
            Series(
                f"original one-at-a-time worker ({base:.2f} msg/s)", [0.0, max(xs)], [base, base], "tab:red", "dotted"
            ),
        ],
        title=f"Queue throughput vs WORKER_CONCURRENCY (batch {BATCH_SIZE}, window 0, 1 invocation at a time)",
        xlabel="WORKER_CONCURRENCY C",
        ylabel="messages / s",
    )
