"""Cost: Bedrock calls per stored image under transient faults, our worker vs the original's whole-batch retry.

The emulator fails a share of valid requests (``fault_rate``) with ModelTimeoutException or
ServiceUnavailableException, from a seeded RNG; each worker gets a fresh stack (each service in a process of
its own) with the same seed. The same pre-loaded messages go through a fresh worker service (batch 10, one
invocation at a time; the baseline as ``bench.baseline_handlers:worker_handler``) until the queue is empty.
Calls = the emulator's ``requests`` (its admin counters); images = distinct messages with a stored image.

Fault arithmetic: when every call fails independently with probability p, any retry scheme needs
1 / (1 - p) calls per image on average (1.111 for p = 0.1); regenerating finished work adds to that.
"""

from __future__ import annotations

import random
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.common import Goal, Report, log, percentile, table
from bench.stacks import (
    BASELINE_WORKER,
    BENCH_MODEL_ID,
    CACHED_PROMPTS,
    cached_bodies,
    endpoints,
    image_file,
    images_under,
    job_records,
    list_keys,
    local_stack,
    queue_depth,
    run_queue_job,
    s3,
    sqs,
)
from imagegen.jobs import JobStatus
from imagegen.storage import QUEUE_FOLDER, images_folder

NAME = "cost"
MESSAGES = 200
FAULT_RATE = 0.1
SEED = 20240601
LATENCY_MS = 20
VISIBILITY_SECONDS = 8
#: One invocation at a time, as in the in-process runs (2026-11-27), so that the fault sequence meets the
#: messages in the same order for both workers.
POLLERS = 1
TIMEOUT_SECONDS = 240


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "model_id": BENCH_MODEL_ID,
        "messages": MESSAGES,
        "fault_rate": FAULT_RATE,
        "fault_seed": SEED,
        "emulator_latency_ms": LATENCY_MS,
        "batch_size": 10,
        "poller_max_concurrency": POLLERS,
        "queue_visibility_timeout_seconds": VISIBILITY_SECONDS,
        "retry_base_seconds": 1,
        "max_receive_count": 5,
        "bodies": f"JSON bodies cycling through {len(CACHED_PROMPTS)} fixed (prompt, seed) pairs",
        "ours": "sqs_worker (botocore standard retries, 3 attempts; partial batch response; idempotent per message)",
        "baseline": "bench.baseline_handlers.worker_handler (boto3 default = legacy retries, 5 attempts; raises "
        "on the first failure, so the whole batch is redelivered and regenerated)",
    }
    runs = {"ours": _run(baseline=False), "baseline": _run(baseline=True)}
    expected = 1 / (1 - FAULT_RATE)
    report.figures = {"runs": runs, "expected_calls_per_image_independent_faults": round(expected, 3)}
    report.add_table(
        table(
            f"Bedrock calls per stored image, {MESSAGES} messages, fault rate {FAULT_RATE:g} (seed {SEED})",
            ["worker", "calls", "faults", "images", "calls/image", "objects written", "dead-lettered", "seconds"],
            [
                [
                    name,
                    fig["bedrock_calls"],
                    fig["faults"],
                    fig["images"],
                    fig["calls_per_image"],
                    fig["objects_written"],
                    fig["dead_lettered"],
                    fig["seconds"],
                ]
                for name, fig in runs.items()
            ],
        )
    )
    report.note(
        f"with independent faults at p = {FAULT_RATE:g}, the floor for any retry scheme is 1/(1-p) = "
        f"{expected:.3f} calls per image; the goal 1 + p = {1 + FAULT_RATE:.3f} is below it"
    )
    spread = simulate_seeds()
    report.figures["ours_over_seeds"] = spread
    report.note(
        f"the emulator draws its faults from one seeded RNG, so with one call per image (ours) the count is a "
        f"function of the seed: over {spread['seeds']} seeds, calls/image has mean {spread['mean']}, "
        f"p5 {spread['p5']}, p95 {spread['p95']}; "
        f"{spread['share_meeting_goal']:.0%} of seeds meet <= {1 + FAULT_RATE:g}"
    )
    ours, base = runs["ours"], runs["baseline"]
    report.goals = [
        Goal("ours: Bedrock calls per image", ours["calls_per_image"], 1 + FAULT_RATE, "<="),
        Goal(
            "(added) ours: calls per image vs 1/(1-p) + 3 %", ours["calls_per_image"], round(expected * 1.03, 3), "<="
        ),
        Goal("ours: every message ended in an image", ours["images"], MESSAGES, ">="),
    ]
    report.figures["baseline_vs_ours_calls_per_image"] = round(base["calls_per_image"] / ours["calls_per_image"], 2)
    return report


def simulate_seeds(seeds: int = 2000) -> dict[str, Any]:
    """Calls per image of a worker that never regenerates, for many emulator seeds: the emulator draws one
    number per valid request (fault or not) and one more to pick a fault's code, from ``Random(seed)``."""
    ratios = []
    for seed in range(seeds):
        rng = random.Random(seed)  # noqa: S311 - replays the emulator's fault RNG
        calls = successes = 0
        while successes < MESSAGES:
            calls += 1
            if rng.random() < FAULT_RATE:
                rng.random()
            else:
                successes += 1
        ratios.append(calls / MESSAGES)
    return {
        "seeds": seeds,
        "mean": round(sum(ratios) / seeds, 3),
        "p5": round(percentile(ratios, 5), 3),
        "p95": round(percentile(ratios, 95), 3),
        "share_meeting_goal": round(sum(r <= 1 + FAULT_RATE for r in ratios) / seeds, 3),
    }


def _run(*, baseline: bool) -> dict[str, Any]:
    name = "baseline" if baseline else "ours"
    log(f"[{NAME}] {name}: {MESSAGES} messages ...")
    emulator = EmulatorConfig(
        latency_ms=LATENCY_MS, fault_rate=FAULT_RATE, seed=SEED, image_file=image_file("placeholder")
    )
    with local_stack(
        f"{NAME}-{name}", emulator, retry_base_seconds=1, max_concurrency=POLLERS, batching_window_seconds=0.0
    ) as stack:
        ep = endpoints(stack)
        sqs(stack).set_queue_attributes(
            QueueUrl=ep.queue_url, Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)}
        )
        job = run_queue_job(
            stack,
            cached_bodies(MESSAGES),
            handler=BASELINE_WORKER if baseline else None,
            max_concurrency=POLLERS,
            timeout=TIMEOUT_SECONDS,
            until_empty=True,
        )
        client = s3(stack)
        if baseline:
            keys = [k for k in list_keys(client, ep.bucket, "generated_images/baseline/") if k.endswith(".png")]
            images = len({key.split("/")[2] for key in keys})
            written = len(keys)
        else:
            folder = images_folder(ep.key_prefix, QUEUE_FOLDER)
            images = sum(len(job.images) for job in job_records(stack) if job.status is JobStatus.SUCCEEDED)
            written = len(images_under(list_keys(client, ep.bucket, folder), folder, ".png"))
        dead = queue_depth(sqs(stack), ep.dlq_url)[0]
    stats = job.emulator
    result = {
        "bedrock_calls": stats["requests"],
        "succeeded": stats["succeeded"],
        "faults": stats["faults"],
        "images": images,
        "objects_written": written,
        "regenerated": written - images,
        "dead_lettered": dead,
        "calls_per_image": round(stats["requests"] / images, 3) if images else float("nan"),
        "seconds": round(job.seconds, 1),
        "drained": job.completed,
        "invocations": job.invocations,
        "failed_records_reported": job.failed_records,
    }
    log(f"[{NAME}] {name}: {result}")
    return result
