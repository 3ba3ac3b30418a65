"""What every benchmark shares: statistics, goals, tables, result files, output (the local stack: ``bench.stacks``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


# ---- output and waiting --------------------------------------------------------------------------


def out(text: str) -> None:
    """Print a result line to stdout."""
    print(text, flush=True)


def log(message: str) -> None:
    """Print progress to stderr."""
    print(message, file=sys.stderr, flush=True)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
