"""Stack startup: how long ``LocalStack.start()`` and ``stop()`` take, against the in-process stack it replaced.

The stack starts ``moto`` and ``bedrock`` side by side, creates the bucket and queues, then starts ``api`` and
``worker`` side by side; each is a fresh ``python -m`` process that imports what it serves (moto, the handlers
with Powertools and boto3) before it prints its ready line, so every start pays those imports, the first as
much as the later ones. ``STARTS`` stacks are started and stopped one after the other in this process, with
the benchmarks' settings (free ports, no state file, ``BENCH_MODEL_ID``).

The in-process stack (commit 4d18db4) no longer exists; its figures below were measured once on this machine
with the same virtual environment, from that commit exported with ``git archive`` (a first start in a fresh
process pays the imports of moto and both handlers, later starts in the same process do not; stop waited for
the poller's long poll).
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Report, log, summary, table
from bench.stacks import BENCH_MODEL_ID, local_stack

NAME = "stack_startup"
STARTS = 5
#: Seconds, in-process stack (4d18db4), measured 2026-11-30 on this machine: 3 fresh processes (import of
#: ``local_stack.stack`` + first ``start()``), and 5 starts in one process (the first pays moto's and the
#: handlers' imports, the next four do not).
IN_PROCESS_4D18DB4: dict[str, Any] = {
    "fresh_process_import_plus_start_s": [3.04, 3.93, 2.21],
    "start_s_in_one_process": [2.91, 0.116, 0.116, 0.125, 0.119],
    "stop_s": [2.99, 3.00, 3.01, 3.05, 3.05],
}


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "starts": STARTS,
        "model_id": BENCH_MODEL_ID,
        "stack": "process per service: moto, bedrock (side by side), then api, worker (side by side)",
        "in_process_stack_4d18db4": IN_PROCESS_4D18DB4,
    }
    starts: list[float] = []
    stops: list[float] = []
    for index in range(STARTS):
        started = time.perf_counter()
        with local_stack(f"{NAME}-{index}"):
            starts.append(time.perf_counter() - started)
            stopping = time.perf_counter()
        stops.append(time.perf_counter() - stopping)
        log(f"[{NAME}] start {index + 1}: {starts[-1]:.2f} s, stop {stops[-1]:.2f} s")
    old = IN_PROCESS_4D18DB4
    report.figures = {
        "start_s": summary(starts, 2),
        "stop_s": summary(stops, 2),
        "samples_start_s": [round(s, 2) for s in starts],
        "samples_stop_s": [round(s, 2) for s in stops],
        "in_process_stack_4d18db4": {
            "fresh_process_import_plus_start_s": summary(old["fresh_process_import_plus_start_s"], 2),
            "later_start_same_process_s": summary(old["start_s_in_one_process"][1:], 2),
            "stop_s": summary(old["stop_s"], 2),
        },
    }
    f, o = report.figures, report.figures["in_process_stack_4d18db4"]
    rows = [
        [
            "process per service: start",
            f["start_s"]["n"],
            f["start_s"]["min"],
            f["start_s"]["p50"],
            f["start_s"]["max"],
        ],
        ["process per service: stop", f["stop_s"]["n"], f["stop_s"]["min"], f["stop_s"]["p50"], f["stop_s"]["max"]],
    ]
    for label, key in [
        ("in-process (4d18db4): import + first start", "fresh_process_import_plus_start_s"),
        ("in-process (4d18db4): later start, same process", "later_start_same_process_s"),
        ("in-process (4d18db4): stop", "stop_s"),
    ]:
        rows.append([label, o[key]["n"], o[key]["min"], o[key]["p50"], o[key]["max"]])
    report.add_table(table("Local stack start and stop (s)", ["", "n", "min", "median", "max"], rows))
    return report
