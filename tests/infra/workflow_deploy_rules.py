"""Rules for one workflow each: the SAM deploy, Terraform, the Docker image, the state lock, the permissions
boundary, the model chain's preflight and the release. Each returns the problems it finds, so that it is checked
twice: the real workflows have none, a copy broken on purpose has at least one."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.infra.workflow_support import (
    BOUNDARY_VARIABLE,
    CI_WORKFLOW,
    CONFIGURE_AWS,
    DOCKERHUB_SECRET,
    MODEL_VARIABLE,
    PREFLIGHT,
    SAME_REPO,
    Job,
    Workflow,
    _terraform,
    as_list,
    first_index,
    in_order,
    job_with,
    jobs,
    runs,
    steps,
    terraform_step,
    triggers,
    uses,
)


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


#: The Terraform variables each terraform job reads from the API stack's outputs (template.yaml): its tables.
STACK_OUTPUT_VARIABLES = {"ImagesTableName": "TF_VAR_images_table_name", "JobsTableName": "TF_VAR_jobs_table_name"}


def _reads_output(output: str, setter: str) -> Callable[[dict[str, Any]], bool]:
    return lambda step: runs(step, rf"OutputKey=='{output}'") and runs(step, setter)


def stack_output_problems(wf: Workflow, template_outputs: set[str]) -> list[str]:
    """Before each `terraform plan`, a step reads every output of STACK_OUTPUT_VARIABLES from the API stack
    (describe-stacks) into its TF_VAR_ in $GITHUB_ENV, and fails when the output is missing (the CLI prints "None",
    which Terraform would take for a name); each output exists in template.yaml."""
    problems = [
        f"template.yaml has no output {name}" for name in sorted(set(STACK_OUTPUT_VARIABLES) - template_outputs)
    ]
    for job_name in ("plan", "apply"):
        job = jobs(wf).get(job_name)
        if job is None:
            problems.append(f"no job {job_name!r}")
            continue
        plan = first_index(job, terraform_step("plan"))
        for output, variable in STACK_OUTPUT_VARIABLES.items():
            setter = rf'echo "{variable}=\$(\w+)" >> "\$GITHUB_ENV"'
            index = first_index(job, _reads_output(output, setter))
            if index is None or not in_order([index, plan]):
                problems.append(
                    f"terraform {job_name}: {variable} is not read from the output {output} before the plan"
                )
                continue
            run = str(steps(job)[index]["run"])
            shell_variable = re.search(setter, run).group(1)  # type: ignore[union-attr]
            if f'"${shell_variable}" = "None"' not in run:
                problems.append(f"terraform {job_name}: a missing output {output} (${shell_variable}) is not refused")
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
    """`imagegen models --accept-agreements` checks the model chain, and creates its missing Marketplace agreements,
    before every deploy: after the AWS credentials (it asks Bedrock's
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
        # A fresh account has no Marketplace agreement: every invocation of the step creates the missing ones, under
        # the deploying role (the functions' roles may not).
        invocations = [line for line in str(step.get("run", "")).splitlines() if re.search(PREFLIGHT, line)]
        if not invocations or not all("--accept-agreements" in line for line in invocations):
            problems.append(f"{name}: imagegen models runs without --accept-agreements")

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
