"""schemathesis (pinned in the Makefile: SCHEMATHESIS_SPEC) against a local stack, from openapi.yaml: generated and
mutated requests for every operation, bounded, and any finding of the four checks fails the build. The stack's usage
plan is raised far above the template's (tests/local/test_gateway_http.py tests the real one): at 5 requests a second
the run would take two minutes, and most of a faster run's answers would be 429s."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import StackConfig, StackEndpoints
from local_stack.stack import LocalStack
from local_stack.usage_plan import UsagePlan
from tests.tools import ROOT, tool_spec, uv

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"
MAX_EXAMPLES = 30
SEED = 20261203
#: Far above any rate this run reaches: every generated request reaches the handler.
PLAN = UsagePlan(rate=1000, burst=1000, quota_per_day=100_000)


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture: the stack sets the environment its handlers need."""


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    config = StackConfig(api_port=0, aws_port=0, bedrock_port=0, state_file=None,
                         log_dir=tmp_path_factory.mktemp("contract") / "logs", emulator=EmulatorConfig(latency_ms=0),
                         model_id="stability.stable-image-core-v1:1@us-west-2", usage_plan=PLAN)  # fmt: skip
    with LocalStack(config) as running:
        assert running.endpoints is not None
        yield running.endpoints


def schemathesis(endpoints: StackEndpoints, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        uv(), "tool", "run", "--from", tool_spec("SCHEMATHESIS"), "st", "run", str(ROOT / "openapi.yaml"),
        "--url", endpoints.stage_url, "--header", f"x-api-key: {endpoints.api_key}", "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--request-timeout", "30", "--no-color", "--report", "ndjson", "--report-ndjson-path", str(report),
        "--generation-database", "none",  # no example database left in the repository
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False, env={**os.environ})


def requests_sent(report: Path) -> int:
    """How many requests schemathesis sent, from its ndjson event log."""
    sent = 0
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        for value in event.values():
            if isinstance(value, dict) and "recorder" in value:
                sent += sum(len(interactions) for interactions in [value["recorder"].get("interactions", {})])
    return sent


def test_schemathesis_finds_nothing(endpoints: StackEndpoints, tmp_path: Path) -> None:
    report = tmp_path / "events.ndjson"
    result = schemathesis(endpoints, report)
    sent = requests_sent(report)
    print(result.stdout[-4000:], f"\nrequests sent: {sent}")  # the summary (make contract shows it)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-4000:]
    assert sent >= 5 * MAX_EXAMPLES  # every operation was exercised (601 on 2026-12-03)
