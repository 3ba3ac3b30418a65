"""The rules for every workflow, for when workflows run and for Dependabot catch what they are for: each finds a
problem in an example, or a copy of a real workflow, broken on purpose."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.infra.workflow_rules import (
    ci_once_problems,
    dependabot_problems,
    oidc_problems,
    pinning_problems,
    push_triggers,
    sam_cli_version_problems,
    static_key_problems,
    version_comment_problems,
    workflow_permission_problems,
)
from tests.infra.workflow_support import (
    DEPENDABOT,
    SETUP_SAM,
    WORKFLOW_FILES,
    Workflow,
    _step_named,
    jobs,
    triggers,
    uses,
    workflow,
)


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
