"""``python -m bench [name ...]``: run the benchmarks (all by default), print their tables, write their results.

Each benchmark starts its own local stack(s) on loopback (each service in a process of its own; service logs in
``.local/bench-logs/``), prints its tables and writes
``bench/results/<name>.json``; the summary at the end lists every goal as MET or MISSED. The exit status is 0
when every benchmark ran (a missed goal is a finding, not a failure).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

from bench.common import Report, out

BENCHMARKS = (
    "cold_start",
    "queue_throughput",
    "api_overhead",
    "cost",
    "memory",
    "stack_startup",
    "model_chain",
    "gallery",
    "jobs",
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks on the local stack.")
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default: all): {BENCHMARKS}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    reports: list[Report] = []
    for name in args.names or BENCHMARKS:
        out(f"===== {name} =====")
        module = importlib.import_module(f"bench.{name}")
        report: Report = module.run()
        report.write()
        reports.append(report)
    out(f"===== summary: {len(reports)} benchmark(s) in {time.monotonic() - started:.0f} s =====")
    for report in reports:
        for goal in report.goals:
            verdict = "MET   " if goal.met else "MISSED"
            out(
                f"{verdict}  {report.name}: {goal.name} = {goal.actual:g} (target {goal.op} {goal.limit:g} {goal.unit})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
