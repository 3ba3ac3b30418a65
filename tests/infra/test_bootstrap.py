"""infra/bootstrap/: the one-time Terraform that creates the GitHub OIDC roles and the state bucket.

Formatting, validation and checkov as for infra/, then a real ``terraform apply`` against a moto server in this
process (IAM, S3 and STS; see ``tests/terraform_support.py``), after which the roles' trust and permission policies
and the state bucket are read back with boto3. No AWS account is involved: what is checked is what the module
asks AWS to create, not how AWS evaluates it.

The apply spends most of its minute waiting (the provider polls an S3 lifecycle configuration until it is stable),
so it is started in the background by the first Terraform test, and fmt, validate and checkov run meanwhile.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.checkov_support import clean_checkov_report
from tests.infra.terraform_support import (
    REPO_ROOT,
    Deployment,
    moto_override,
    moto_server,
    terraform,
    terraform_binary,
    terraform_env,
    write_cli_config,
)

BOOTSTRAP_DIR = REPO_ROOT / "infra" / "bootstrap"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account
REPOSITORY = "octo-org/imagegen"
OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC_HOST}"
STATE_BUCKET = f"imagegen-tfstate-{ACCOUNT}"
STATE_KEY = "imagegen/queue-worker.tfstate"
DEPLOY_SUBJECT = f"repo:{REPOSITORY}:environment:production"
SAM_ARTIFACT_BUCKET = "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-*"

ROLES = {
    "sam_deploy": "imagegen-github-sam-deploy",
    "terraform_plan": "imagegen-github-terraform-plan",
    "terraform_apply": "imagegen-github-terraform-apply",
}

#: Actions AWS authorizes against "*" only (no resource type in the Service Authorization Reference), by role.
#: Anything else must name its resources.
UNSCOPABLE_ACTIONS = {
    "sam_deploy": {
        "cloudformation:ValidateTemplate",
        "ec2:DescribeNetworkInterfaces",
        "logs:DescribeIndexPolicies",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
    },
    "terraform_plan": {
        "kms:ListAliases",
        "lambda:ListEventSourceMappings",
        "logs:DescribeLogGroups",
        "sns:GetSubscriptionAttributes",
    },
    "terraform_apply": {
        "kms:ListAliases",
        "lambda:ListEventSourceMappings",
        "logs:DescribeLogGroups",
        "sns:GetSubscriptionAttributes",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
        # Limited by conditions (asserted below): lambda:FunctionArn, aws:RequestTag/project.
        "lambda:CreateEventSourceMapping",
        "lambda:DeleteEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
        "kms:CreateKey",
        "kms:TagResource",
    },
}

#: The AWS API calls `terraform apply`, `plan` and `destroy` of infra/ made against moto (recorded from the
#: provider's debug log, hashicorp/aws 5.100.0), plus the tagging calls AWS makes for tags passed at creation, which
#: moto does not authorize separately. The apply role must allow all of them, the plan role the reads.
INFRA_PLAN_CALLS = {
    "cloudformation:DescribeStacks",  # the workflow's "Images bucket" step
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListResourceTags",
    "lambda:GetEventSourceMapping",
    "lambda:GetFunction",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:ListTags",
    "lambda:ListVersionsByFunction",
    "logs:DescribeLogGroups",
    "logs:ListTagsForResource",
    "s3:GetObject",
    "s3:ListBucket",
    "sns:GetSubscriptionAttributes",
    "sns:GetTopicAttributes",
    "sns:ListTagsForResource",
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
}
INFRA_APPLY_CALLS = INFRA_PLAN_CALLS | {
    "cloudwatch:DeleteAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:ListInstanceProfilesForRole",
    "iam:PassRole",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "kms:CreateAlias",
    "kms:CreateKey",
    "kms:DeleteAlias",
    "kms:EnableKeyRotation",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "lambda:CreateEventSourceMapping",
    "lambda:CreateFunction",
    "lambda:DeleteEventSourceMapping",
    "lambda:DeleteFunction",
    "lambda:TagResource",
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:PutRetentionPolicy",
    "logs:TagResource",
    "s3:DeleteObject",
    "s3:PutObject",
    "sns:CreateTopic",
    "sns:DeleteTopic",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
    "sns:TagResource",
    "sns:Unsubscribe",
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
}

EXPECTED_OUTPUTS = {
    "oidc_provider_arn",
    "sam_deploy_role_arn",
    "terraform_plan_role_arn",
    "terraform_apply_role_arn",
    "state_bucket_name",
    "github_variables",
    "github_variables_commands",
}

_NOT_COPIED = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", "*.tfplan", "terraform.tfvars")


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _document(value: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------ static --
def _blocks(text: str, kind: str) -> dict[str, str]:
    """The bodies of the top-level ``kind "name" { ... }`` blocks of an HCL file (brace matching)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, flags=re.MULTILINE):
        depth, position = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        blocks[match.group(1)] = text[match.end() : position - 1]
    return blocks


def test_every_variable_is_described_typed_and_validated_and_only_the_repository_is_required() -> None:
    variables = _blocks((BOOTSTRAP_DIR / "variables.tf").read_text(), "variable")
    assert len(variables) >= 12
    for name, body in variables.items():
        for part in ("description", "type", "validation {"):
            assert re.search(rf"^\s*{re.escape(part)}", body, flags=re.MULTILINE), f"variable {name} has no {part}"
    required = {name for name, body in variables.items() if not re.search(r"^\s*default\s*=", body, re.MULTILINE)}
    assert required == {"github_repository"}


def test_the_example_variables_file_sets_only_declared_variables() -> None:
    declared = set(_blocks((BOOTSTRAP_DIR / "variables.tf").read_text(), "variable"))
    example = (BOOTSTRAP_DIR / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^([a-z_]+)\s*=", example, flags=re.MULTILINE))
    assert assigned == declared


def test_the_repository_holds_no_bootstrap_state_overrides_or_backend() -> None:
    assert not list(BOOTSTRAP_DIR.rglob("*override.tf"))
    assert not list(BOOTSTRAP_DIR.rglob("*.tfstate*"))
    # Local state by default (the bucket does not exist before the first apply); backend.tf.example shows how to
    # move the state into the bucket afterwards.
    for path in BOOTSTRAP_DIR.glob("*.tf"):
        assert not re.search(r'^\s*backend\s+"', path.read_text(), flags=re.MULTILINE), path.name
    assert re.search(r'^\s*backend "s3"', (BOOTSTRAP_DIR / "backend.tf.example").read_text(), flags=re.MULTILINE)
    assert "terraform.tfvars" in (BOOTSTRAP_DIR / ".gitignore").read_text().split()


def test_the_state_bucket_cannot_be_destroyed_by_terraform() -> None:
    text = (BOOTSTRAP_DIR / "state_bucket.tf").read_text()
    bucket = re.search(r'^resource "aws_s3_bucket" "state" \{\n(.*?)^\}', text, flags=re.MULTILINE | re.DOTALL)
    assert bucket
    assert re.search(r"lifecycle \{\s*prevent_destroy = true\s*\}", bucket.group(1))


# --------------------------------------------------------------------------------- terraform --
@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    terraform_binary()
    return write_cli_config(tmp_path_factory.mktemp("terraform-cli"))


def _copy_bootstrap(destination: Path) -> Path:
    shutil.copytree(BOOTSTRAP_DIR, destination, ignore=_NOT_COPIED)
    return destination


@dataclass
class _Apply:
    """A ``terraform apply`` of a copy of infra/bootstrap/ against moto, running in the background."""

    endpoint: str
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def wait(self) -> None:
        self.process.wait(timeout=600)
        assert self.process.returncode == 0, f"terraform apply failed\n{self.log.read_text()}"


@pytest.fixture(scope="module")
def background_apply(cli_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Apply]:
    """Starts the apply; the tests that request this fixture (fmt, validate, checkov) run while it is going."""
    scratch = tmp_path_factory.mktemp("bootstrap-apply")
    workdir = _copy_bootstrap(scratch / "bootstrap")
    log = scratch / "apply.log"
    with moto_server() as endpoint, log.open("wb") as output:
        # Local state and every AWS endpoint at moto (the module uses IAM, S3 and STS).
        (workdir / "override.tf").write_text(moto_override(endpoint))
        env = terraform_env(cli_config)
        terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=env)
        apply = ["apply", "-auto-approve", "-input=false", "-no-color", f"-var=github_repository={REPOSITORY}"]
        process = subprocess.Popen([terraform_binary(), *apply], cwd=workdir, env=env, stdout=output, stderr=output)
        try:
            yield _Apply(endpoint, workdir, env, process, log)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.mark.slow
def test_terraform_fmt_is_clean(cli_config: Path, background_apply: _Apply) -> None:
    terraform(
        ["fmt", "-check", "-recursive", "-diff", str(BOOTSTRAP_DIR)], cwd=REPO_ROOT, env=terraform_env(cli_config)
    )


@pytest.mark.slow
def test_terraform_validate(cli_config: Path, tmp_path: Path, background_apply: _Apply) -> None:
    workdir = _copy_bootstrap(tmp_path / "bootstrap")
    env = terraform_env(cli_config)
    terraform(["init", "-backend=false", "-input=false", "-no-color"], cwd=workdir, env=env)
    report = json.loads(terraform(["validate", "-json", "-no-color"], cwd=workdir, env=env).stdout)
    assert report["valid"], report
    assert report["error_count"] == 0
    assert report["warning_count"] == 0, report["diagnostics"]


# ---------------------------------------------------------------------------------- checkov --
# Every skip is deliberate (reasons inline in state_bucket.tf); a new one must be added here too.
EXPECTED_SKIPS = {
    ("CKV_AWS_18", "aws_s3_bucket.state"),  # access logging: a second bucket; CloudTrail data events instead
    ("CKV_AWS_144", "aws_s3_bucket.state"),  # cross-region replication: versioning keeps every state
    ("CKV2_AWS_62", "aws_s3_bucket.state"),  # event notifications: nothing consumes them
    ("CKV_AWS_145", "aws_s3_bucket.state"),  # KMS CMK: SSE-S3, access is decided by IAM and the bucket policy
}


@pytest.mark.slow
def test_checkov_passes_and_every_skip_has_a_reason(background_apply: _Apply) -> None:
    skipped = clean_checkov_report("terraform", "-d", str(BOOTSTRAP_DIR.relative_to(REPO_ROOT)))
    assert {(check["check_id"], check["resource"]) for check in skipped} == EXPECTED_SKIPS

    for path in BOOTSTRAP_DIR.glob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.fullmatch(r"\s*# checkov:skip=CKV2?_AWS_\d+:.{40,}", line), f"{path.name}: {line.strip()}"


@pytest.mark.slow
def test_invalid_variable_values_are_rejected(cli_config: Path, tmp_path: Path, background_apply: _Apply) -> None:
    # In a copy of its own, with no state: runs while the apply is still going.
    workdir = _copy_bootstrap(tmp_path / "bootstrap")
    (workdir / "override.tf").write_text(moto_override(background_apply.endpoint))
    env = terraform_env(cli_config)
    terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=env)
    bad = {
        "github_repository": "octo-org/*",
        "api_stack_name": "imagegen",  # role/imagegen-* would cover the GitHub roles
        "deploy_environment": "prod*",
        "terraform_plan_subjects": '["*"]',
        "state_key": "/imagegen/*.tfstate",
        "images_bucket_name": "Not_A_Bucket",
    }
    result = subprocess.run(
        [terraform_binary(), "plan", "-input=false", "-no-color", "-lock=false"]
        + [f"-var={name}={value}" for name, value in bad.items()],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("Invalid value for variable") == len(bad), result.stderr
    for name in bad:
        assert f"var.{name}" in result.stderr, name


# ------------------------------------------------------------------------------- moto apply --
@dataclass(frozen=True)
class Bootstrap(Deployment):
    def trust(self, role: str) -> dict[str, Any]:
        return _document(self.client("iam").get_role(RoleName=ROLES[role])["Role"]["AssumeRolePolicyDocument"])

    def statements(self, role: str) -> list[dict[str, Any]]:
        """Every statement of the role's permission policies (inline and attached)."""
        iam = self.client("iam")
        name = ROLES[role]
        documents = [
            _document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            documents.append(
                _document(
                    iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"][
                        "Document"
                    ]
                )
            )
        return [statement for document in documents for statement in _as_list_of_statements(document)]

    def allowed(self, role: str) -> list[dict[str, Any]]:
        return [s for s in self.statements(role) if s["Effect"] == "Allow"]


def _as_list_of_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


@pytest.fixture(scope="module")
def bootstrap(background_apply: _Apply) -> Bootstrap:
    """The applied bootstrap (waits for the background apply)."""
    background_apply.wait()
    result = terraform(["output", "-json", "-no-color"], cwd=background_apply.workdir, env=background_apply.env)
    outputs = {name: output["value"] for name, output in json.loads(result.stdout).items()}
    return Bootstrap(background_apply.endpoint, background_apply.workdir, background_apply.env, outputs)


@pytest.mark.slow
def test_outputs_name_the_roles_bucket_and_github_variables(bootstrap: Bootstrap) -> None:
    outputs = bootstrap.outputs
    assert set(outputs) == EXPECTED_OUTPUTS
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/"
    assert outputs["oidc_provider_arn"] == OIDC_PROVIDER_ARN
    assert outputs["state_bucket_name"] == STATE_BUCKET
    assert outputs["github_variables"] == {
        "AWS_REGION": REGION,
        "AWS_SAM_DEPLOY_ROLE_ARN": role_arn + ROLES["sam_deploy"],
        "AWS_TERRAFORM_ROLE_ARN": role_arn + ROLES["terraform_apply"],
        "AWS_TERRAFORM_PLAN_ROLE_ARN": role_arn + ROLES["terraform_plan"],
        "TF_STATE_BUCKET": STATE_BUCKET,
        "TF_STATE_KEY": STATE_KEY,
        "TF_STATE_REGION": REGION,
    }
    commands = outputs["github_variables_commands"].splitlines()
    assert len(commands) == len(outputs["github_variables"])
    assert f"gh variable set TF_STATE_BUCKET --repo {REPOSITORY} --body '{STATE_BUCKET}'" in commands


@pytest.mark.slow
def test_oidc_provider_is_githubs_with_the_sts_audience(bootstrap: Bootstrap) -> None:
    provider = bootstrap.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=OIDC_PROVIDER_ARN)
    assert provider["ClientIDList"] == ["sts.amazonaws.com"]
    assert provider["Url"].removeprefix("https://") == OIDC_HOST
    assert set(provider["ThumbprintList"]) == {
        "6938fd4d98bab03faadb97b34396831e3780aea1",
        "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
    }


def _trust_subjects(trust: dict[str, Any]) -> dict[str, set[str]]:
    """{condition operator: subjects}, after checking what every trust statement must say."""
    subjects: dict[str, set[str]] = {}
    for statement in _as_list_of_statements(trust):
        assert statement["Effect"] == "Allow"
        assert _as_list(statement["Action"]) == ["sts:AssumeRoleWithWebIdentity"]
        assert statement["Principal"] == {"Federated": OIDC_PROVIDER_ARN}
        conditions = statement["Condition"]
        assert conditions["StringEquals"][f"{OIDC_HOST}:aud"] in ("sts.amazonaws.com", ["sts.amazonaws.com"])
        for operator, keys in conditions.items():
            assert set(keys) <= {f"{OIDC_HOST}:aud", f"{OIDC_HOST}:sub"}, operator
            if f"{OIDC_HOST}:sub" in keys:
                subjects.setdefault(operator, set()).update(_as_list(keys[f"{OIDC_HOST}:sub"]))
        assert any(f"{OIDC_HOST}:sub" in keys for keys in conditions.values()), "a statement without a sub condition"
    for subject in set[str]().union(*subjects.values()):
        # The repository part is always literal: no repo:*, no repo:octo-org/*.
        assert subject.startswith(f"repo:{REPOSITORY}:"), subject
        assert "*" not in subject.removeprefix(f"repo:{REPOSITORY}:").removesuffix("*"), subject
    return subjects


@pytest.mark.slow
@pytest.mark.parametrize("role", ["sam_deploy", "terraform_apply"])
def test_deploying_roles_trust_only_the_deploy_environment(bootstrap: Bootstrap, role: str) -> None:
    assert _trust_subjects(bootstrap.trust(role)) == {"StringEquals": {DEPLOY_SUBJECT}}


@pytest.mark.slow
def test_plan_role_trusts_branches_and_pull_requests_of_the_repository_only(bootstrap: Bootstrap) -> None:
    assert _trust_subjects(bootstrap.trust("terraform_plan")) == {
        "StringEquals": {f"repo:{REPOSITORY}:pull_request"},
        "StringLike": {f"repo:{REPOSITORY}:ref:refs/heads/*"},
    }


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_wildcard_actions_and_star_resources_only_for_unscopable_actions(bootstrap: Bootstrap, role: str) -> None:
    allowed = bootstrap.allowed(role)
    assert allowed
    for statement in allowed:
        actions = _as_list(statement["Action"])
        resources = _as_list(statement["Resource"])
        for action in actions:
            # No "*", "s3:*", "iam:*", "bedrock:*" and no prefix wildcards such as "iam:Put*".
            assert "*" not in action, statement
            # The deploying identities never call Bedrock themselves.
            assert not action.startswith("bedrock:"), statement
        if "*" in resources:
            assert resources == ["*"], statement
            assert set(actions) <= UNSCOPABLE_ACTIONS[role], statement
            assert not any(action.startswith(("s3:", "iam:", "bedrock:")) for action in actions), statement


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLES))
def test_pass_role_is_limited_to_the_services_that_use_the_roles(bootstrap: Bootstrap, role: str) -> None:
    expected = {
        "sam_deploy": ["lambda.amazonaws.com", "apigateway.amazonaws.com"],
        "terraform_plan": None,
        "terraform_apply": ["lambda.amazonaws.com"],
    }[role]
    passing = [s for s in bootstrap.allowed(role) if "iam:PassRole" in _as_list(s["Action"])]
    if expected is None:
        assert passing == []
        return
    assert passing
    for statement in passing:
        assert _as_list(statement["Action"]) == ["iam:PassRole"]
        assert sorted(_as_list(statement["Condition"]["StringEquals"]["iam:PassedToService"])) == sorted(expected)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["sam_deploy", "terraform_apply"])
def test_deploying_roles_cannot_change_the_github_roles_or_the_oidc_provider(bootstrap: Bootstrap, role: str) -> None:
    denies = [s for s in bootstrap.statements(role) if s["Effect"] == "Deny"]
    assert len(denies) == 1
    (deny,) = denies
    assert set(_as_list(deny["Resource"])) == {f"arn:aws:iam::{ACCOUNT}:role/imagegen-github-*", OIDC_PROVIDER_ARN}
    assert {"iam:Put*", "iam:Attach*", "iam:Update*", "iam:PassRole", "iam:Create*"} <= set(_as_list(deny["Action"]))
    assert "Condition" not in deny
    # And no Allow names them.
    for statement in bootstrap.allowed(role):
        for resource in _as_list(statement["Resource"]):
            assert "imagegen-github-" not in resource and "oidc-provider" not in resource, statement


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in _as_list(statement["Action"])}


def _resources_of(statements: list[dict[str, Any]], prefix: str) -> set[str]:
    """Resources of the statements that grant an action of the service ``prefix`` (e.g. "s3:")."""
    return {
        resource
        for statement in statements
        if any(action.startswith(prefix) for action in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
    }


@pytest.mark.slow
def test_terraform_roles_allow_what_terraform_calls_for_infra(bootstrap: Bootstrap) -> None:
    assert INFRA_PLAN_CALLS - _actions(bootstrap.allowed("terraform_plan")) == set()
    assert INFRA_APPLY_CALLS - _actions(bootstrap.allowed("terraform_apply")) == set()


@pytest.mark.slow
def test_plan_role_is_read_only_except_for_the_lock_file(bootstrap: Bootstrap) -> None:
    allowed = bootstrap.allowed("terraform_plan")
    read_only = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)[A-Za-z]*$")
    writes = [(a, _as_list(s["Resource"])) for s in allowed for a in _as_list(s["Action"]) if not read_only.match(a)]
    lock = f"arn:aws:s3:::{STATE_BUCKET}/{STATE_KEY}.tflock"
    assert sorted(writes) == [("s3:DeleteObject", [lock]), ("s3:PutObject", [lock])]


@pytest.mark.slow
def test_terraform_roles_reach_only_infras_state_key_and_lock_file(bootstrap: Bootstrap) -> None:
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    for role in ("terraform_plan", "terraform_apply"):
        allowed = bootstrap.allowed(role)
        assert _resources_of(allowed, "s3:") == {bucket, f"{bucket}/{STATE_KEY}", f"{bucket}/{STATE_KEY}.tflock"}
        (listing,) = [s for s in allowed if "s3:ListBucket" in _as_list(s["Action"])]
        assert _as_list(listing["Resource"]) == [bucket]
        prefixes = sorted(_as_list(listing["Condition"]["StringEquals"]["s3:prefix"]))
        assert prefixes == ["env:/", STATE_KEY, f"{STATE_KEY}.tflock"]
    # Only the apply role writes the state itself.
    writers = {
        role
        for role in ("terraform_plan", "terraform_apply")
        for s in bootstrap.allowed(role)
        if "s3:PutObject" in _as_list(s["Action"]) and f"{bucket}/{STATE_KEY}" in _as_list(s["Resource"])
    }
    assert writers == {"terraform_apply"}


@pytest.mark.slow
def test_apply_role_manages_infras_resources_by_name(bootstrap: Bootstrap) -> None:
    allowed = bootstrap.allowed("terraform_apply")
    arn = f"{REGION}:{ACCOUNT}"
    assert _resources_of(allowed, "sqs:") == {
        f"arn:aws:sqs:{arn}:imagegen-prompts",
        f"arn:aws:sqs:{arn}:imagegen-prompts-dlq",
    }
    assert _resources_of(allowed, "iam:") == {f"arn:aws:iam::{ACCOUNT}:role/imagegen-queue-worker"}
    assert _resources_of(allowed, "cloudwatch:") == {f"arn:aws:cloudwatch:{arn}:alarm:imagegen-*"}
    assert _resources_of(allowed, "cloudformation:") == {f"arn:aws:cloudformation:{arn}:stack/imagegen-api/*"}
    function = f"arn:aws:lambda:{arn}:function:imagegen-queue-worker"
    assert _resources_of(allowed, "lambda:") == {
        function,
        f"{function}:*",
        f"arn:aws:lambda:{arn}:event-source-mapping:*",
        "*",
    }
    (mapping,) = [s for s in allowed if "lambda:CreateEventSourceMapping" in _as_list(s["Action"])]
    assert mapping["Condition"] == {"ArnEquals": {"lambda:FunctionArn": function}}
    (create_key,) = [s for s in allowed if "kms:CreateKey" in _as_list(s["Action"])]
    assert create_key["Condition"]["StringEquals"] == {"aws:RequestTag/project": "imagegen"}
    (administer,) = [s for s in allowed if "kms:PutKeyPolicy" in _as_list(s["Action"])]
    assert administer["Condition"]["StringEquals"] == {"aws:ResourceTag/project": "imagegen"}
    (subscribe,) = [s for s in allowed if "sns:Subscribe" in _as_list(s["Action"])]
    assert subscribe["Condition"] == {"StringEquals": {"sns:Protocol": "email"}}


@pytest.mark.slow
def test_deploy_role_is_limited_to_the_api_stack_and_sams_artifacts(bootstrap: Bootstrap) -> None:
    allowed = bootstrap.allowed("sam_deploy")
    arn = f"{REGION}:{ACCOUNT}"
    assert _resources_of(allowed, "cloudformation:") == {
        f"arn:aws:cloudformation:{arn}:stack/imagegen-api/*",
        f"arn:aws:cloudformation:{arn}:stack/aws-sam-cli-managed-default/*",
        f"arn:aws:cloudformation:{REGION}:aws:transform/Serverless-2016-10-31",
        f"arn:aws:cloudformation:{arn}:changeSet/InitialCreation/*",  # tagging SAM's managed stack on creation
        "*",  # ValidateTemplate only (asserted in the wildcard test)
    }
    (transform,) = [s for s in allowed if any(":transform/" in r for r in _as_list(s["Resource"]))]
    assert _as_list(transform["Action"]) == ["cloudformation:CreateChangeSet"]
    assert _resources_of(allowed, "lambda:") == {f"arn:aws:lambda:{arn}:function:imagegen-api-*"}
    assert _resources_of(allowed, "iam:") == {f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-*"}
    assert _resources_of(allowed, "s3:") == {
        SAM_ARTIFACT_BUCKET,
        f"{SAM_ARTIFACT_BUCKET}/*",
        "arn:aws:s3:::imagegen-api-imagesbucket-*",
    }
    # Object access only in SAM's artifact bucket, never in the images bucket.
    for statement in allowed:
        if {"s3:GetObject", "s3:PutObject"} & set(_as_list(statement["Action"])):
            assert _as_list(statement["Resource"]) == [
                "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-*/*"
            ]
    assert _resources_of(allowed, "logs:") == {
        f"arn:aws:logs:{arn}:log-group:/aws/lambda/imagegen-api-*",
        f"arn:aws:logs:{arn}:log-group:/aws/apigateway/imagegen-api/access",
        f"arn:aws:logs:{arn}:log-group:/aws/apigateway/imagegen-api/access:*",
        "*",  # Describe* only
    }
    assert _resources_of(allowed, "apigateway:") == {
        f"arn:aws:apigateway:{REGION}::{path}"
        for path in ("/restapis", "/restapis/*", "/usageplans", "/usageplans/*", "/apikeys", "/apikeys/*", "/tags/*")
    } | {f"arn:aws:apigateway:{REGION}::/account"}
    (attach,) = [s for s in allowed if "iam:AttachRolePolicy" in _as_list(s["Action"])]
    assert sorted(_as_list(attach["Condition"]["ArnEquals"]["iam:PolicyARN"])) == [
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
    ]
    (permission,) = [s for s in allowed if "lambda:AddPermission" in _as_list(s["Action"])]
    assert permission["Condition"] == {"StringEquals": {"lambda:Principal": "apigateway.amazonaws.com"}}


@pytest.mark.slow
def test_state_bucket_is_versioned_encrypted_private_and_tls_only(bootstrap: Bootstrap) -> None:
    s3 = bootstrap.client("s3")
    assert s3.get_bucket_versioning(Bucket=STATE_BUCKET)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=STATE_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_public_access_block(Bucket=STATE_BUCKET)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=STATE_BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=STATE_BUCKET)["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=STATE_BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert sorted(_as_list(statement["Resource"])) == [f"arn:aws:s3:::{STATE_BUCKET}", f"arn:aws:s3:::{STATE_BUCKET}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _plan(bootstrap: Bootstrap, *args: str) -> subprocess.CompletedProcess[str]:
    """``terraform plan`` against the state the apply has just written (so without refreshing it)."""
    plan = ["plan", "-input=false", "-no-color", "-lock=false", "-refresh=false", "-detailed-exitcode"]
    return subprocess.run(
        [terraform_binary(), *plan, *args],
        cwd=bootstrap.workdir,
        env=bootstrap.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_example_values_are_the_defaults_and_an_existing_oidc_provider_is_looked_up(bootstrap: Bootstrap) -> None:
    example = BOOTSTRAP_DIR / "terraform.tfvars.example"
    result = _plan(bootstrap, f"-var-file={example}", "-var=create_oidc_provider=false")
    assert result.returncode == 2, result.stdout + result.stderr  # 2: there are changes
    # The only change: the provider leaves this module (its resource has count 0 now). The example file's other
    # values are the defaults the bootstrap was applied with, and every role keeps its trust policy, because the
    # data source finds the same provider.
    assert "data.aws_iam_openid_connect_provider.github[0]: Read complete" in result.stdout
    assert "aws_iam_openid_connect_provider.github[0] will be destroyed" in result.stdout
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in result.stdout
