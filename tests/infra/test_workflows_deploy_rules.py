"""The rules for one workflow each catch what they are for: each finds a problem in a copy of the real workflow
broken on purpose (a step moved or removed, a condition or a variable changed)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.workflow_deploy_rules import (
    boundary_problems,
    deploy_sam_problems,
    docker_publish_problems,
    plan_lock_problems,
    preflight_problems,
    release_problems,
    stack_output_problems,
    terraform_problems,
)
from tests.infra.workflow_support import (
    CONFIGURE_AWS,
    MODEL_VARIABLE,
    PREFLIGHT,
    Job,
    Workflow,
    _move,
    _step_named,
    _terraform,
    jobs,
    runs,
    steps,
    triggers,
    uses,
    workflow,
)


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

    def no_agreements(job: Job) -> None:  # a fresh account's deploy would serve nothing
        step = job["steps"][_step_named(job, _is_preflight)]
        step["run"] = step["run"].replace(" --accept-agreements", "", 1)

    for change in (last, first, gone, default_chain_only, other_variable, no_agreements):
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


OUTPUTS = {"ImagesTableName", "JobsTableName"}


@pytest.mark.parametrize("job_name", ["plan", "apply"])
def test_the_stack_output_rule_catches_a_table_not_read_or_read_too_late(job_name: str) -> None:
    assert stack_output_problems(workflow("terraform.yml"), OUTPUTS) == []

    def reads_jobs(step: dict[str, Any]) -> bool:
        return runs(step, "JobsTableName")

    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    step = job["steps"][_step_named(job, reads_jobs)]
    step["run"] = re.sub(r"[^\n]*TF_VAR_jobs_table_name=[^\n]*\n", "", step["run"])
    assert stack_output_problems(wf, OUTPUTS) != []

    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    _move(job, _step_named(job, reads_jobs), len(job["steps"]))
    assert stack_output_problems(wf, OUTPUTS) != []

    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    step = job["steps"][_step_named(job, reads_jobs)]
    step["run"] = step["run"].replace("OutputKey=='JobsTableName'", "OutputKey=='ImagesTableName'")
    assert stack_output_problems(wf, OUTPUTS) != []

    wf = workflow("terraform.yml")
    job = jobs(wf)[job_name]
    step = job["steps"][_step_named(job, reads_jobs)]
    step["run"] = step["run"].replace(' || [ "$jobs_table" = "None" ]', "")
    assert stack_output_problems(wf, OUTPUTS) != []


def test_the_stack_output_rule_catches_an_output_the_template_lacks() -> None:
    assert stack_output_problems(workflow("terraform.yml"), {"ImagesTableName"}) != []
