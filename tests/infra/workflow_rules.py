"""Rules for every workflow (static keys, token permissions, OIDC, pinning, the SAM CLI version), for when
workflows run (CI exactly once a push), and for Dependabot. Each returns the problems it finds, so that it is
checked twice: the real workflows have none, a copy broken on purpose has at least one."""

from __future__ import annotations

import re
from typing import Any

from tests.infra.workflow_support import (
    CI_WORKFLOW,
    COMMIT_SHA,
    CONFIGURE_AWS,
    IMAGE_DIGEST,
    PINNED_LINE,
    REMOTE_ACTION,
    SETUP_SAM,
    STATIC_AWS_KEY,
    Workflow,
    as_list,
    jobs,
    steps,
    triggers,
    uses,
)


# ---- rules for every workflow -------------------------------------------------------------------------
def static_key_problems(text: str) -> list[str]:
    return [f"static AWS key reference: {m.group(0)}" for m in STATIC_AWS_KEY.finditer(text)]


def workflow_permission_problems(wf: Workflow) -> list[str]:
    """The GITHUB_TOKEN's default is set at workflow level and read-only; jobs widen it as they need."""
    if "permissions" not in wf:
        return ["no workflow-level `permissions:` (the token would get the repository's default, maybe write)"]
    permissions = wf["permissions"]
    if permissions in ("read-all", {}):
        return []
    if not isinstance(permissions, dict):
        return [f"workflow-level permissions {permissions!r} are not read-only"]
    return [
        f"workflow-level permission {scope}: {level}"
        for scope, level in permissions.items()
        if level not in ("read", "none")
    ]


def oidc_problems(wf: Workflow) -> list[str]:
    """AWS only through OIDC: id-token: write on exactly the jobs that assume a role named by a variable."""
    problems = []
    for name, job in jobs(wf).items():
        permissions = job.get("permissions") or {}
        id_token = permissions.get("id-token") if isinstance(permissions, dict) else permissions
        aws_steps = [s for s in steps(job) if uses(s, CONFIGURE_AWS)]
        if not aws_steps:
            if id_token == "write" or permissions == "write-all":
                problems.append(f"{name}: id-token: write without configure-aws-credentials")
            continue
        if id_token != "write":
            problems.append(f"{name}: configure-aws-credentials without permissions id-token: write")
        for step in aws_steps:
            inputs = step.get("with") or {}
            if "vars." not in str(inputs.get("role-to-assume", "")):
                problems.append(f"{name}: role-to-assume does not come from a repository variable (vars.*)")
            if not inputs.get("aws-region"):
                problems.append(f"{name}: configure-aws-credentials without aws-region")
    return problems


def action_references(wf: Workflow) -> list[str]:
    refs = []
    for job in jobs(wf).values():
        if "uses" in job:  # a reusable workflow
            refs.append(str(job["uses"]))
        refs.extend(str(step["uses"]) for step in steps(job) if "uses" in step)
    return refs


def pinning_problems(wf: Workflow) -> list[str]:
    """Remote actions and reusable workflows at a full commit SHA, docker images at a digest.

    A tag (v6, v6.1.0) or a branch can be moved to other code after review; a commit cannot. Only local
    actions and workflows (./...) are exempt: they are the reviewed code of this commit.
    """
    problems = []
    for ref in action_references(wf):
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if not IMAGE_DIGEST.search(ref):
                problems.append(f"{ref}: docker image not pinned to a sha256 digest")
            continue
        match = REMOTE_ACTION.match(ref)
        if match is None:
            problems.append(f"{ref}: not pinned with @")
        elif not COMMIT_SHA.match(match["ref"]):
            problems.append(f"{ref}: pinned to {match['ref']!r}, not a full 40-character commit SHA")
    return problems


def version_comment_problems(text: str) -> list[str]:
    """Every SHA-pinned `uses:` line says which version the SHA is, in a trailing comment (`# v6.1.0`)."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^\s*(-\s+)?uses:\s*(?P<ref>\S+)", line)
        if match is None or match["ref"].startswith(("./", "docker://")):
            continue
        if not PINNED_LINE.match(line):
            problems.append(f"line {number}: {line.strip()!r} has no commit SHA with a `# vX.Y.Z` comment")
    return problems


def sam_cli_version_problems(wf: Workflow) -> list[str]:
    """aws-actions/setup-sam installs an exact SAM CLI release, not whatever is latest on the day of the run."""
    problems = []
    for name, job in jobs(wf).items():
        for step in steps(job):
            if uses(step, SETUP_SAM):
                version = str((step.get("with") or {}).get("version", ""))
                if not re.fullmatch(r"\d+\.\d+\.\d+", version):
                    problems.append(f"{name}: setup-sam installs SAM CLI {version or 'latest'!r}, not a pinned X.Y.Z")
    return problems


# ---- when workflows run ---------------------------------------------------------------------------------
def _filter_regex(pattern: str) -> re.Pattern[str]:
    """A GitHub branch or path filter pattern: `**` any characters, `*` any but `/`, `?` one character."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wildcards = {"**": ".*", "*": "[^/]*", "?": "."}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def _matches(patterns: list[str], value: str) -> bool:
    """GitHub's filter lists: the last matching pattern decides, `!pattern` excludes."""
    matched = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _filter_regex(pattern.removeprefix("!")).fullmatch(value):
            matched = not negated
    return matched


def push_triggers(wf: Workflow, branch: str, paths: list[str]) -> bool:
    """Whether a push of `paths` to `branch` starts the workflow (its on: push filters)."""
    on = triggers(wf)
    if isinstance(on, str):
        on = {on: None}
    elif isinstance(on, list):
        on = dict.fromkeys(on)
    if not isinstance(on, dict) or "push" not in on:
        return False
    push = on["push"] or {}
    if "branches" in push:
        if not _matches([str(p) for p in as_list(push["branches"])], branch):
            return False
    elif "branches-ignore" in push:
        if _matches([str(p) for p in as_list(push["branches-ignore"])], branch):
            return False
    elif "tags" in push or "tags-ignore" in push:
        return False  # only tag filters: branch pushes do not trigger it
    if "paths" in push:
        return any(_matches([str(p) for p in as_list(push["paths"])], path) for path in paths)
    if "paths-ignore" in push:
        return not all(_matches([str(p) for p in as_list(push["paths-ignore"])], path) for path in paths)
    return True


def ci_runs_for_push(workflows: dict[str, Workflow], branch: str, paths: list[str]) -> int:
    """How many times a push runs ci.yml: on its own push trigger, plus once per calling job of every other
    workflow the push starts."""
    runs_ = 0
    for name, wf in workflows.items():
        if not push_triggers(wf, branch, paths):
            continue
        if name == "ci.yml":
            runs_ += 1
        else:
            runs_ += sum(1 for job in jobs(wf).values() if job.get("uses") == CI_WORKFLOW)
    return runs_


#: Pushes that must run CI exactly once: code and documentation, on main and on a branch.
PUSHES = [
    ("main", ["imagegen/service.py"]),
    ("main", ["README.md"]),
    ("main", ["docs/ARCHITECTURE.md", "infra/main.tf"]),
    ("feature/x", ["imagegen/service.py"]),
    ("feature/x", ["docs/ARCHITECTURE.md"]),
]


def ci_once_problems(workflows: dict[str, Workflow]) -> list[str]:
    return [
        f"a push of {paths} to {branch} runs CI {count} times"
        for branch, paths in PUSHES
        if (count := ci_runs_for_push(workflows, branch, paths)) != 1
    ]


def dependabot_problems(config: Any) -> list[str]:
    """Dependabot keeps every pinned ecosystem current, weekly."""
    if not isinstance(config, dict) or config.get("version") != 2:
        return ["not a version 2 Dependabot configuration"]
    directories: dict[str, set[str]] = {}
    problems = []
    for update in config.get("updates") or []:
        ecosystem = update.get("package-ecosystem")
        found = {*as_list(update.get("directory")), *as_list(update.get("directories"))}
        directories.setdefault(ecosystem, set()).update(str(directory) for directory in found)
        if (update.get("schedule") or {}).get("interval") != "weekly":
            problems.append(f"{ecosystem}: not weekly")
    expected = {
        "github-actions": {"/"},
        "uv": {"/"},
        "docker": {"/"},
        "terraform": {"/infra", "/infra/bootstrap"},
    }
    for ecosystem, wanted in expected.items():
        if not wanted <= directories.get(ecosystem, set()):
            problems.append(f"{ecosystem}: {sorted(wanted - directories.get(ecosystem, set()))} not covered")
    return problems
