"""Cold start: import + per-container init of each handler in fresh processes, against the original's handler.

Every run is a new ``python -S`` process on a Lambda-like path (``bench.lambda_env``) with the function's
environment as in Lambda (``LAMBDA_TASK_ROOT`` set; Lambda's active tracing runs outside the process, the handlers
carry no tracing SDK). The child times ``import`` of the handler module plus ``app.service()`` / ``app.worker()``
(the handlers' public per-container builders; the worker's record thread pool is made on the first invocation and
costs microseconds); for the baseline, the import of ``baseline_handlers`` (which makes its two clients at import).
What a handler imports on its first invocation instead (the API's router, the worker's batch processor) is not in
these figures. Every function calls ``BENCH_MODEL_ID`` (``bench.stacks``), as the local-stack benchmarks do; no
stack runs here. Targets are interleaved round by round so that load from elsewhere on the machine hits them
alike; the first round is discarded.

The goal is judged with bytecode on both sides (``bundle_with_pyc``), as the Makefile's bundles ship it; the
variant without bytecode for the bundle is kept for reference.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import defaultdict
from typing import Any

from bench.common import Goal, Report, log, percentile, summary, table
from bench.lambda_env import LambdaDir, api_env, baseline_env, worker_env
from bench.stacks import BENCH_MODEL_ID

NAME = "cold_start"
#: (variant key, bundle compiled to .pyc?, measured runs per target); the bundle is compiled in place, so the
#: variant without bytecode runs first.
VARIANTS: list[tuple[str, bool, int]] = [("lambda_bundle_without_pyc", False, 6), ("bundle_with_pyc", True, 15)]
#: The variant the goal is judged on: bytecode on both sides, as the bundles ship it.
GOAL_VARIANT = "bundle_with_pyc"
TARGETS = {
    "api": ("api", api_env()),
    "worker": ("worker", worker_env()),
    "baseline": ("baseline_api", baseline_env()),
}
GOAL_RATIO = 1.15
TIMEOUT_SECONDS = 60

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "variants": [{"name": v, "bundle_pyc": pyc, "runs_per_target": n} for v, pyc, n in VARIANTS],
        "warmup_rounds_discarded": 1,
        "targets": {
            "api": "import generate_image.app; app.service()",
            "worker": "import sqs_worker.app; app.worker()",
            "baseline": "import baseline_handlers (boto3 + bedrock-runtime and s3 clients at import)",
        },
        "model_id": BENCH_MODEL_ID,
        "goal_variant": GOAL_VARIANT,
        "python_path": "Lambda-like: bundle deps copied from the venv, runtime-provided boto3 & co precompiled",
        "measured": "in the child: perf_counter around import + init (after the stdlib modules Lambda's "
        "bootstrap imports); 'deferred' = then the import of what the handler loads on its first invocation "
        "(_child.DEFERRED), not in init; 'process' = parent-measured wall time of the whole child process",
    }
    with LambdaDir() as lam:
        report.parameters["bundled"] = lam.bundled
        report.parameters["runtime_provided"] = lam.runtime
        figures: dict[str, Any] = {}
        for variant, precompiled, runs in VARIANTS:
            if precompiled:
                figures["importtime"] = {target: _importtime(lam, target) for target in TARGETS}
                lam.compile_bundle()
                figures["importtime_with_pyc"] = {target: _importtime(lam, target) for target in TARGETS}
            log(f"[{NAME}] {variant}: {runs} + 1 runs per target ...")
            figures[variant] = _variant_figures(_measure(lam, runs))
    report.figures = figures

    rows = []
    for variant, _, _ in VARIANTS:
        for target in TARGETS:
            fig = figures[variant][target]
            rows.append(
                [
                    variant,
                    target,
                    fig["init_ms"]["n"],
                    fig["init_ms"]["p50"],
                    fig["init_ms"]["p90"],
                    fig["init_ms"]["min"],
                    fig["ratio_p50_vs_baseline"],
                    fig["deferred_ms"]["p50"],
                    fig["process_ms"]["p50"],
                    fig["modules"],
                ]
            )
    report.add_table(
        table(
            "Cold start: import + init in a fresh process (ms)",
            ["variant", "handler", "n", "p50", "p90", "min", "p50/baseline", "deferred p50", "process p50", "modules"],
            rows,
        )
    )
    for target in ("api", "worker"):
        imports = figures["importtime"][target]
        with_pyc = {d["module"]: d["cumulative_ms"] for d in figures["importtime_with_pyc"][target]["all_direct"]}
        report.add_table(
            table(
                f"Heaviest imports of the {target} handler (python -X importtime, one run each; ms)",
                ["module (direct import or at init)", "no .pyc", "with .pyc", "|", "package (self time)", "no .pyc"],
                [
                    [d["module"], d["cumulative_ms"], with_pyc.get(d["module"], "-"), "|", p["package"], p["self_ms"]]
                    for d, p in zip(imports["top_direct_cumulative"], imports["top_packages_self"], strict=False)
                ],
            )
        )
    report.goals = [
        Goal(
            f"{t} cold start p50 / baseline p50 (bytecode)",
            figures[GOAL_VARIANT][t]["ratio_p50_vs_baseline"],
            GOAL_RATIO,
            "<=",
            "x",
        )
        for t in ("api", "worker")
    ]
    return report


def _measure(lam: LambdaDir, runs: int) -> dict[str, list[dict[str, float]]]:
    samples: dict[str, list[dict[str, float]]] = defaultdict(list)
    names = list(TARGETS)
    out = lam.root / "result.json"
    for round_index in range(runs + 1):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for target in order:
            child_target, env = TARGETS[target]
            started = time.perf_counter()
            subprocess.run(  # noqa: S603 - our own interpreter and scripts
                lam.command("cold", child_target, str(out)),
                env=lam.env(env),
                check=True,
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
            )
            process_ms = (time.perf_counter() - started) * 1000
            result = json.loads(out.read_text())
            if round_index:
                samples[target].append(
                    {
                        "init_ms": result["init_ms"],
                        "deferred_ms": result.get("deferred_ms", 0.0),
                        "process_ms": process_ms,
                        "modules": result["modules"],
                    }
                )
    return samples


def _variant_figures(samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    base = percentile([s["init_ms"] for s in samples["baseline"]], 50)
    for target, runs in samples.items():
        init = [s["init_ms"] for s in runs]
        figures[target] = {
            "init_ms": summary(init),
            "deferred_ms": summary([s["deferred_ms"] for s in runs]),
            "process_ms": summary([s["process_ms"] for s in runs]),
            "modules": int(runs[-1]["modules"]),
            "ratio_p50_vs_baseline": round(percentile(init, 50) / base, 3),
            "samples_init_ms": [round(v, 1) for v in init],
        }
    return figures


def _importtime(lam: LambdaDir, target: str) -> dict[str, Any]:
    """One ``-X importtime`` run; the heaviest imports of the measured part."""
    child_target, env = TARGETS[target]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and scripts
        lam.command("cold", child_target, str(lam.root / "importtime.json"), importtime=True),
        env=lam.env(env),
        check=True,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    lines = completed.stderr.splitlines()
    begin = next(i for i, line in enumerate(lines) if "measured imports begin" in line)
    end = next(i for i, line in enumerate(lines) if "measured imports end" in line)
    entries = []
    for line in lines[begin + 1 : end]:
        match = _LINE.match(line)
        if match:
            self_us, cumulative_us, indent, module = match.groups()
            entries.append((module, int(self_us) / 1000, int(cumulative_us) / 1000, len(indent) // 2))
    handler_modules = {"generate_image", "generate_image.app", "sqs_worker", "sqs_worker.app", "baseline_handlers"}
    packages: dict[str, float] = defaultdict(float)
    for module, self_ms, _, _ in entries:
        packages[module.split(".")[0]] += self_ms
    direct = [e for e in entries if e[3] <= 1 and e[0] not in handler_modules]
    return {
        "total_self_ms": round(sum(e[1] for e in entries), 1),
        "modules_imported": len(entries),
        "top_self": [
            {"module": m, "self_ms": round(s, 1), "cumulative_ms": round(c, 1)}
            for m, s, c, _ in sorted(entries, key=lambda e: -e[1])[:10]
        ],
        "top_packages_self": [
            {"package": p, "self_ms": round(s, 1)} for p, s in sorted(packages.items(), key=lambda kv: -kv[1])[:10]
        ],
        "top_direct_cumulative": [
            {"module": m, "cumulative_ms": round(c, 1)} for m, _, c, _ in sorted(direct, key=lambda e: -e[2])[:10]
        ],
        "all_direct": [{"module": m, "cumulative_ms": round(c, 1)} for m, _, c, _ in direct],
    }
