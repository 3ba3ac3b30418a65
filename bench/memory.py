"""Memory: peak RSS of each handler's process after import + one invocation against the local stack.

Each run is a fresh ``python -S`` process on the Lambda-like path (``bench.lambda_env``), running the
handler itself and talking to a local stack's moto and Bedrock emulator (each in a process of its own) through
the standard endpoint variables. API: one 1024x1024 generate; worker: one batch of 10 records (concurrency 10).
One stack per image kind: the emulator serves a placeholder PNG (~90 kB) or a Titan-sized PNG (~1.5 MB) from a
file (``bench.stacks.image_file``). Peak RSS is ``VmHWM`` of the child.
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.common import Report, log, table
from bench.lambda_env import LambdaDir, api_env, baseline_env, worker_env
from bench.stacks import BENCH_MODEL_ID, endpoints, image_file, local_stack
from local_stack.stack import LocalStack

NAME = "memory"
RUNS = 2
TARGETS = {
    "api": api_env,
    "worker": worker_env,
    "baseline_api": baseline_env,
    "baseline_worker": baseline_env,
}
TIMEOUT_SECONDS = 120


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "runs_per_target": RUNS,
        "api_request": "one POST /generate-image, 1024x1024, 1 image",
        "worker_event": "one SQS batch of 10 plain-text records, WORKER_CONCURRENCY=10",
        "images": {"placeholder": "an emulator placeholder PNG", "titan_sized": "a ~1.5 MB PNG"},
        "model_id": BENCH_MODEL_ID,
        "python_path": "Lambda-like, bundle without .pyc",
        "rss": "VmHWM of the child (its own address space), MiB; includes the interpreter (~10 MB at start)",
    }
    figures: dict[str, Any] = {}
    with LambdaDir() as lam:
        for kind in ("placeholder", "titan_sized"):
            path = image_file(kind)
            report.parameters[f"{kind}_png_bytes"] = path.stat().st_size
            with local_stack(f"{NAME}-{kind}", EmulatorConfig(image_file=path)) as stack:
                figures[kind] = _measure_all(lam, stack)
    report.figures = figures
    rows = []
    for images, by_target in figures.items():
        for target, fig in by_target.items():
            rows.append(
                [
                    images,
                    target,
                    fig["rss_before_import_mb"],
                    fig["rss_after_init_mb"],
                    fig["rss_peak_mb"],
                    fig["invoke_ms"],
                    fig["ok"],
                ]
            )
    report.add_table(
        table(
            "Peak RSS (MB; max of runs) after import + init, and after one invocation",
            ["images", "handler", "at start", "after init", "peak", "invoke ms", "ok"],
            rows,
        )
    )
    suggestions = {}
    for target in ("api", "worker"):
        peak = max(figures[images][target]["rss_peak_mb"] for images in figures)
        suggestions[target] = {
            "peak_rss_mb": peak,
            "peak_plus_50pct_rounded_to_64mb": int(max(128, 64 * math.ceil(peak * 1.5 / 64))),
        }
    report.figures["memory_size"] = suggestions
    report.add_table(
        table(
            "MemorySize floor by memory alone: peak + 50 %, rounded up to 64 MB (template.yaml and infra: 512 MB)",
            ["function", "peak MB", "floor MB"],
            [[t, s["peak_rss_mb"], s["peak_plus_50pct_rounded_to_64mb"]] for t, s in suggestions.items()],
        )
    )
    return report


def _measure_all(lam: LambdaDir, stack: LocalStack) -> dict[str, Any]:
    ep = endpoints(stack)
    overrides = {
        "AWS_ENDPOINT_URL": ep.aws_endpoint_url,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": ep.bedrock_endpoint_url,
        "BUCKET_NAME": ep.bucket,
        "IMAGES_TABLE_NAME": ep.images_table,
        "JOBS_TABLE_NAME": ep.jobs_table,
        "DEAD_LETTER_QUEUE_URL": ep.dlq_url,
        "AWS_REGION": ep.region,
        "AWS_DEFAULT_REGION": ep.region,
    }
    out = lam.root / "memory.json"
    by_target: dict[str, Any] = {}
    for target, function_env in TARGETS.items():
        results = []
        for _ in range(RUNS):
            completed = subprocess.run(  # noqa: S603 - our own interpreter and scripts
                lam.command("memory", target, str(out)),
                env=lam.env(function_env(**overrides)),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
            )
            if completed.returncode:
                raise RuntimeError(f"memory child {target} failed:\n{completed.stderr[-4000:]}")
            results.append(json.loads(out.read_text()))
        reply = results[-1]["reply"]
        ok = reply.get("statusCode", 200) == 200 and not reply.get("batchItemFailures")
        by_target[target] = {
            "rss_before_import_mb": max(r["rss_before_import_mb"] for r in results),
            "rss_after_init_mb": max(r["rss_after_init_mb"] for r in results),
            "rss_peak_mb": max(r["rss_peak_mb"] for r in results),
            "invoke_ms": min(r["invoke_ms"] for r in results),
            "ok": ok,
            "reply": reply,
            "runs": results,
        }
        log(f"[{NAME}] {target}: peak {by_target[target]['rss_peak_mb']} MB")
    return by_target
