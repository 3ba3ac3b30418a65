"""Running checkov (in its own uv tool environment) and checking its report the same way everywhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.tools import tool_spec, uv

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_REASON_CHARS = 40


def clean_checkov_report(framework: str, *target: str) -> list[dict[str, Any]]:
    """Run checkov on ``target`` (``-f FILE`` or ``-d DIR``); assert 0 failed checks, no parse errors and a
    written reason on every skip. Returns the skipped checks for the caller's own expectations."""
    # No --quiet: it would drop the passed and skipped checks from the JSON report.
    command = [
        uv(),
        "tool",
        "run",
        "--from",
        tool_spec("CHECKOV"),
        "checkov",
        "--skip-download",
        "--compact",
        "--output",
        "json",
    ]
    result = subprocess.run(
        [*command, "--framework", framework, *target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework
        (report,) = (entry for entry in report if entry.get("check_type") == framework)
    results, summary = report["results"], report["summary"]
    failed = [(check["check_id"], check["resource"], check["file_path"]) for check in results["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0, results.get("parsing_errors")
    assert summary["passed"] > 0
    assert result.returncode == 0, result.stderr
    skipped: list[dict[str, Any]] = results.get("skipped_checks", [])
    for check in skipped:
        reason = str(check["check_result"].get("suppress_comment") or "").strip()
        assert reason != "No comment provided", f"{check['check_id']} on {check['resource']} has no reason"
        assert len(reason) >= MIN_REASON_CHARS, f"{check['check_id']} on {check['resource']}: reason too short"
    return skipped
