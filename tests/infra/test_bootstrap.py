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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/imagegen-workload-boundary"
MODELS = [
    "amazon.titan-image-generator-v1",
    "stability.stable-image-core-v1:1",
    "stability.stable-image-ultra-v1:1",
    "stability.sd3-5-large-v1:0",
]

ROLES = {
    "sam_deploy": "imagegen-github-sam-deploy",
    "terraform_plan": "imagegen-github-terraform-plan",
    "terraform_apply": "imagegen-github-terraform-apply",
}

#: Actions AWS authorizes against "*" only (no resource type in the Service Authorization Reference), by role.
#: Anything else must name its resources.
UNSCOPABLE_ACTIONS = {
    "sam_deploy": {
        "bedrock:GetFoundationModelAvailability",
        "bedrock:ListFoundationModels",
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
        "bedrock:GetFoundationModelAvailability",
        "bedrock:ListFoundationModels",
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

#: The only Bedrock actions of the deploying roles: read-only model metadata for the preflight (`imagegen models`).
PREFLIGHT_ACTIONS = {
    "bedrock:GetFoundationModel",
    "bedrock:GetFoundationModelAvailability",
    "bedrock:ListFoundationModels",
}

EXPECTED_OUTPUTS = {
    "oidc_provider_arn",
    "permissions_boundary_arn",
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
        "key_prefix": "/candidate/",
        "bedrock_model_ids": '["stability.*"]',
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
    assert outputs["permissions_boundary_arn"] == BOUNDARY
    assert outputs["github_variables"] == {
        "AWS_REGION": REGION,
        "AWS_SAM_DEPLOY_ROLE_ARN": role_arn + ROLES["sam_deploy"],
        "AWS_TERRAFORM_ROLE_ARN": role_arn + ROLES["terraform_apply"],
        "AWS_TERRAFORM_PLAN_ROLE_ARN": role_arn + ROLES["terraform_plan"],
        "AWS_PERMISSIONS_BOUNDARY_ARN": BOUNDARY,
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
            # The deploying identities never invoke a model: Bedrock only as read-only metadata for the preflight.
            if action.startswith("bedrock:"):
                assert role != "terraform_plan" and action in PREFLIGHT_ACTIONS, statement
        if "*" in resources:
            assert resources == ["*"], statement
            assert set(actions) <= UNSCOPABLE_ACTIONS[role], statement
            assert not any(action.startswith(("s3:", "iam:")) for action in actions), statement
            assert "bedrock:GetFoundationModel" not in actions, statement  # it has a resource type


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
    # One of them guards the bootstrap's identities (the others: the permissions boundary, KMS tags).
    (deny,) = [s for s in denies if s.get("Sid") == "DenyChangingBootstrapIdentities"]
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
def test_plan_role_writes_nothing_not_even_the_lock_file(bootstrap: Bootstrap) -> None:
    # Until the plan job planned with -lock=false, the lock file was the plan role's one write.
    assert plan_write_problems(bootstrap.statements("terraform_plan")) == []


@pytest.mark.slow
def test_terraform_roles_reach_only_infras_state_key_and_lock_file(bootstrap: Bootstrap) -> None:
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    lock = {"terraform_plan": [], "terraform_apply": [f"{STATE_KEY}.tflock"]}
    for role in ("terraform_plan", "terraform_apply"):
        allowed = bootstrap.allowed(role)
        lock_arns = {f"{bucket}/{key}" for key in lock[role]}
        assert _resources_of(allowed, "s3:") == {bucket, f"{bucket}/{STATE_KEY}"} | lock_arns
        (listing,) = [s for s in allowed if "s3:ListBucket" in _as_list(s["Action"])]
        assert _as_list(listing["Resource"]) == [bucket]
        prefixes = sorted(_as_list(listing["Condition"]["StringEquals"]["s3:prefix"]))
        assert prefixes == sorted(["env:/", STATE_KEY, *lock[role]])
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
    # The gallery's index table: managed, never deleted, and no item access for the deploy role.
    assert _resources_of(allowed, "dynamodb:") == {f"arn:aws:dynamodb:{arn}:table/imagegen-api-*"}
    dynamodb = {a for s in allowed for a in _as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert "dynamodb:CreateTable" in dynamodb
    assert not dynamodb & {"dynamodb:DeleteTable", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query",
                           "dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}  # fmt: skip
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


# ------------------------------------------------------------------------------ escalation paths --
# A small evaluator of the IAM policy language, as far as these policies use it (Allow/Deny, wildcards in Action and
# Resource, the condition operators below; an operator it does not know fails the test), so that each escalation
# path is checked as the requests an attacker would make, not as the shape of a statement. Each check returns the
# problems it finds and is run twice: on the applied policies (none) and on a policy with the hole put back (some).
Decision = Literal["Allow", "Deny", "ImplicitDeny"]
Context = Mapping[str, Any]  # condition key -> value, or values for a multivalued key


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's `*` (any characters, "/" included) and `?` (one character)."""
    regex = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE if ignore_case else 0) is not None


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": _wildcard,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": _wildcard,
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    values = [str(value) for value in _as_list(expected)]
    qualifier, _, test = operator.rpartition(":")
    if_exists = test.endswith("IfExists")
    test = test.removesuffix("IfExists")
    if test == "Null":
        return (key not in context) == (values == ["true"])
    negated = "Not" in test
    compare = _COMPARE[test.replace("Not", "", 1)]
    if key not in context:
        if if_exists or qualifier == "ForAllValues":
            return True
        return False if qualifier == "ForAnyValue" else negated

    def holds(actual: str) -> bool:
        matched = any(compare(value, actual) for value in values)
        return not matched if negated else matched

    actual = [str(value) for value in _as_list(context[key])]
    if qualifier == "ForAnyValue":
        return any(holds(value) for value in actual)
    if qualifier == "ForAllValues":
        return all(holds(value) for value in actual)
    (single,) = actual
    return holds(single)


def _applies(statement: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
    if not any(_wildcard(pattern, action, ignore_case=True) for pattern in _as_list(statement["Action"])):
        return False
    if not any(_wildcard(pattern, resource) for pattern in _as_list(statement["Resource"])):
        return False
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def decide(statements: list[dict[str, Any]], action: str, resource: str, context: Context | None = None) -> Decision:
    matching = [s for s in statements if _applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    return "Allow" if matching else "ImplicitDeny"


ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
#: The roles each deploying role creates (and may pass), and one role by that pattern.
DEPLOYED_ROLES = {
    "sam_deploy": f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-*",
    "terraform_apply": f"arn:aws:iam::{ACCOUNT}:role/imagegen-queue-worker",
}
FOREIGN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole"


def _deployed_role(role: str) -> str:
    return DEPLOYED_ROLES[role].replace("*", "GenerateImageFunctionRole-1A2B3C4D5E6F")


def role_creation_problems(statements: list[dict[str, Any]], role: str) -> list[str]:
    """No role without the boundary: not created, not given policies, not given another boundary."""
    target = _deployed_role(role)
    problems = []
    granting = {
        "iam:CreateRole": {},
        "iam:PutRolePolicy": {},
        "iam:AttachRolePolicy": {"iam:PolicyARN": LAMBDA_BASIC},
        "iam:PutRolePermissionsBoundary": {},
    }
    for action, context in granting.items():
        for boundary in (None, ADMIN_POLICY, f"arn:aws:iam::{ACCOUNT}:policy/imagegen-other-boundary"):
            with_boundary = {**context, "iam:PermissionsBoundary": boundary} if boundary else context
            if decide(statements, action, target, with_boundary) == "Allow":
                problems.append(f"{action} on {target} with boundary {boundary}")
        if decide(statements, action, FOREIGN_ROLE, {**context, "iam:PermissionsBoundary": BOUNDARY}) == "Allow":
            problems.append(f"{action} on {FOREIGN_ROLE}")
    attach_admin = {"iam:PolicyARN": ADMIN_POLICY, "iam:PermissionsBoundary": BOUNDARY}
    if decide(statements, "iam:AttachRolePolicy", target, attach_admin) == "Allow":
        problems.append(f"AdministratorAccess can be attached to {target}")
    # And with the boundary it can: otherwise deployments fail, and the checks above pass for the wrong reason.
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"):
        if decide(statements, action, target, {"iam:PermissionsBoundary": BOUNDARY}) != "Allow":
            problems.append(f"{action} on {target} is not allowed even with the boundary")
    return problems


def boundary_tampering_problems(statements: list[dict[str, Any]], role: str) -> list[str]:
    """The boundary can be neither removed from a role nor changed, explicitly denied whatever an Allow says."""
    problems = []
    for target in (_deployed_role(role), FOREIGN_ROLE):
        if decide(statements, "iam:DeleteRolePermissionsBoundary", target) != "Deny":
            problems.append(f"iam:DeleteRolePermissionsBoundary on {target} is not denied")
    for action in (
        "iam:CreatePolicyVersion",
        "iam:DeletePolicy",
        "iam:DeletePolicyVersion",
        "iam:SetDefaultPolicyVersion",
    ):
        if decide(statements, action, BOUNDARY) != "Deny":
            problems.append(f"{action} on the boundary policy is not denied")
    context = {"iam:PermissionsBoundary": ADMIN_POLICY}
    if decide(statements, "iam:PutRolePermissionsBoundary", _deployed_role(role), context) != "Deny":
        problems.append("replacing the boundary by another policy is not denied")
    return problems


def pass_role_problems(statements: list[dict[str, Any]], role: str) -> list[str]:
    """Only roles that carry the boundary can be passed: the deployed roles, only to their services, and those
    roles cannot exist without the boundary (not created without it, not stripped of it)."""
    services = {
        "sam_deploy": ["lambda.amazonaws.com", "apigateway.amazonaws.com"],
        "terraform_apply": ["lambda.amazonaws.com"],
    }
    problems = []
    passable = [
        resource
        for s in statements
        if s["Effect"] == "Allow" and "iam:PassRole" in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    ]
    for pattern in passable:
        sample = pattern.replace("*", "Anything-1A2B3C")
        if decide(statements, "iam:CreateRole", sample) == "Allow":
            problems.append(f"{sample} can be passed and created without the boundary")
        if decide(statements, "iam:DeleteRolePermissionsBoundary", sample) != "Deny":
            problems.append(f"{sample} can be passed and stripped of its boundary")
    unbounded = [FOREIGN_ROLE, f"arn:aws:iam::{ACCOUNT}:role/imagegen-github-terraform-apply"]
    for target in unbounded:
        for service in ("lambda.amazonaws.com", "apigateway.amazonaws.com", "ec2.amazonaws.com"):
            if decide(statements, "iam:PassRole", target, {"iam:PassedToService": service}) == "Allow":
                problems.append(f"{target} can be passed to {service}")
    target = _deployed_role(role)
    if decide(statements, "iam:PassRole", target, {"iam:PassedToService": "ec2.amazonaws.com"}) == "Allow":
        problems.append(f"{target} can be passed to EC2")
    for service in services[role]:
        if decide(statements, "iam:PassRole", target, {"iam:PassedToService": service}) != "Allow":
            problems.append(f"{target} cannot be passed to {service}")
    return problems


KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key"
ALERT_KEY = {"aws:ResourceTag/project": "imagegen", "kms:ResourceAliases": ["alias/imagegen-alerts"]}


def kms_takeover_problems(statements: list[dict[str, Any]]) -> list[str]:
    """No key of the account can be taken over: the alert key is administered, every other key is not, even after
    this role put the project tag on it (which kms:TagResource for CreateKey allows on any untagged key)."""
    problems = []
    foreign = f"{KEY}/1111aaaa-foreign"
    tagged = {"aws:ResourceTag/project": "imagegen"}
    other_project = {"aws:ResourceTag/project": "billing", "kms:ResourceAliases": ["alias/billing"]}
    # The key side of aliasing it (the alias side is the project's own alias name).
    for action in ("kms:CreateAlias", "kms:UpdateAlias"):
        for tags in ({}, tagged):
            if decide(statements, action, foreign, tags) == "Allow":
                problems.append(f"{action} can point an alias at a foreign key ({tags})")
    administration = [
        "kms:CancelKeyDeletion",
        "kms:DisableKeyRotation",
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:UpdateKeyDescription",
        "kms:CreateGrant",
        "kms:Decrypt",
    ]
    foreign_states: list[Context] = [
        {},
        tagged,
        {**tagged, "kms:ResourceAliases": ["alias/billing"]},
        other_project,
    ]
    for context in foreign_states:
        for action in administration:
            if decide(statements, action, foreign, context) == "Allow":
                problems.append(f"{action} on a foreign key ({context})")
        for action in ("kms:TagResource", "kms:UntagResource"):
            tagging: Context = {**context, "aws:TagKeys": ["owner"], "aws:RequestTag/owner": "x"}
            if decide(statements, action, foreign, tagging) == "Allow":
                problems.append(f"{action} of an arbitrary tag on a foreign key ({context})")
    retag = {**other_project, "aws:TagKeys": ["project"], "aws:RequestTag/project": "imagegen"}
    if decide(statements, "kms:TagResource", foreign, retag) == "Allow":
        problems.append("another project's key can be re-tagged project=imagegen")
    # The alert key's project tag is neither changed nor removed.
    alert_key = f"{KEY}/2222bbbb-alerts"
    change = {**ALERT_KEY, "aws:TagKeys": ["project"], "aws:RequestTag/project": "billing"}
    if decide(statements, "kms:TagResource", alert_key, change) == "Allow":
        problems.append("the alert key's project tag can be changed")
    if decide(statements, "kms:UntagResource", alert_key, {**ALERT_KEY, "aws:TagKeys": ["project"]}) == "Allow":
        problems.append("the alert key's project tag can be removed")
    # What infra/ needs still works (else the checks above pass because nothing does).
    needed: list[tuple[str, str, Context]] = [
        ("kms:CreateKey", "*", {"aws:RequestTag/project": "imagegen", "aws:TagKeys": ["project", "managed-by"]}),
        ("kms:TagResource", "*", {"aws:RequestTag/project": "imagegen", "aws:TagKeys": ["project", "managed-by"]}),
        ("kms:EnableKeyRotation", alert_key, {}),
        ("kms:PutKeyPolicy", alert_key, ALERT_KEY),
        ("kms:ScheduleKeyDeletion", alert_key, ALERT_KEY),
        ("kms:TagResource", alert_key, {**ALERT_KEY, "aws:TagKeys": ["managed-by"]}),
        ("kms:CreateAlias", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/imagegen-alerts", {}),
    ]
    for action, resource, request in needed:
        if decide(statements, action, resource, request) != "Allow":
            problems.append(f"{action} on {resource} is not allowed ({request})")
    return problems


READ_ONLY_ACTION = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)[A-Za-z]*$")


def plan_write_problems(statements: list[dict[str, Any]]) -> list[str]:
    """The plan role reads and never writes, not even the state's lock file."""
    problems = [
        f"{action} on {_as_list(s['Resource'])}"
        for s in statements
        if s["Effect"] == "Allow"
        for action in _as_list(s["Action"])
        if not READ_ONLY_ACTION.match(action)
    ]
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    for key in (STATE_KEY, f"{STATE_KEY}.tflock", "imagegen/bootstrap.tfstate"):
        for action in ("s3:PutObject", "s3:DeleteObject"):
            if decide(statements, action, f"{bucket}/{key}") == "Allow":
                problems.append(f"{action} {key}")
    if decide(statements, "s3:GetObject", f"{bucket}/{STATE_KEY}") != "Allow":
        problems.append("the state cannot be read")
    return problems


def test_the_evaluator_follows_iam() -> None:
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret/*"}
    assert decide([allow], "s3:getobject", "arn:aws:s3:::b/a/b") == "Allow"
    assert decide([allow, deny], "s3:GetObject", "arn:aws:s3:::b/secret/x") == "Deny"
    assert decide([allow], "s3:PutObject", "arn:aws:s3:::b/a") == "ImplicitDeny"
    equals = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k": "v"}}}
    assert decide([equals], "a:B", "r", {"k": "v"}) == "Allow"
    assert decide([equals], "a:B", "r") == "ImplicitDeny"  # a missing key does not match
    not_equals = {**equals, "Condition": {"StringNotEquals": {"k": "v"}}}
    assert decide([not_equals], "a:B", "r") == "Allow"  # ... and so a negated operator holds
    any_value = {**equals, "Condition": {"ForAnyValue:StringEquals": {"k": ["a", "b"]}}}
    assert decide([any_value], "a:B", "r", {"k": ["x", "b"]}) == "Allow"
    assert decide([any_value], "a:B", "r", {"k": []}) == "ImplicitDeny"
    all_values = {**equals, "Condition": {"ForAllValues:StringNotEquals": {"k": "project"}}}
    assert decide([all_values], "a:B", "r", {"k": ["owner", "team"]}) == "Allow"
    assert decide([all_values], "a:B", "r", {"k": ["owner", "project"]}) == "ImplicitDeny"
    assert decide([all_values], "a:B", "r") == "Allow"
    null = {**equals, "Condition": {"Null": {"k": "false"}}}
    assert decide([null], "a:B", "r", {"k": "x"}) == "Allow"
    assert decide([null], "a:B", "r") == "ImplicitDeny"
    if_exists = {**equals, "Condition": {"BoolIfExists": {"k": "false"}}}
    assert decide([if_exists], "a:B", "r") == "Allow"
    assert decide([if_exists], "a:B", "r", {"k": "true"}) == "ImplicitDeny"
    with pytest.raises(KeyError):
        decide([{**equals, "Condition": {"NumericEquals": {"k": "1"}}}], "a:B", "r", {"k": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(DEPLOYED_ROLES))
def test_deploying_roles_cannot_create_or_change_a_role_without_the_boundary(bootstrap: Bootstrap, role: str) -> None:
    statements = bootstrap.statements(role)
    assert role_creation_problems(statements, role) == []
    # As the roles were: any role of the stack, created and given policies without a boundary.
    unbounded = {
        "Effect": "Allow",
        "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"],
        "Resource": DEPLOYED_ROLES[role],
    }
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert role_creation_problems([*allows, unbounded], role) != []


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(DEPLOYED_ROLES))
def test_deploying_roles_cannot_remove_or_change_the_boundary(bootstrap: Bootstrap, role: str) -> None:
    statements = bootstrap.statements(role)
    assert boundary_tampering_problems(statements, role) == []
    guard = {"DenyRolesWithoutTheBoundary", "DenyRemovingPermissionsBoundaries", "DenyChangingTheBoundaryPolicy"}
    assert boundary_tampering_problems([s for s in statements if s.get("Sid") not in guard], role) != []


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(DEPLOYED_ROLES))
def test_deploying_roles_can_pass_only_roles_with_the_boundary(bootstrap: Bootstrap, role: str) -> None:
    statements = bootstrap.statements(role)
    assert pass_role_problems(statements, role) == []
    any_role = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}
    assert pass_role_problems([*statements, any_role], role) != []
    # As before the boundary: the passable roles could be created without it.
    create = {"Effect": "Allow", "Action": "iam:CreateRole", "Resource": DEPLOYED_ROLES[role]}
    assert pass_role_problems([s for s in statements if s["Effect"] == "Allow"] + [create], role) != []


@pytest.mark.slow
def test_apply_role_cannot_take_over_a_foreign_kms_key(bootstrap: Bootstrap) -> None:
    statements = bootstrap.statements("terraform_apply")
    assert kms_takeover_problems(statements) == []
    # The SAM deploy role and the plan role have no KMS write at all.
    for role in ("sam_deploy", "terraform_plan"):
        writes = [a for s in bootstrap.allowed(role) for a in _as_list(s["Action"]) if a.startswith("kms:")]
        assert all(READ_ONLY_ACTION.match(action) for action in writes), (role, writes)


@pytest.mark.slow
def test_the_kms_rule_catches_the_tag_route_to_a_foreign_key(bootstrap: Bootstrap) -> None:
    statements = bootstrap.statements("terraform_apply")
    # As it was: the key side of CreateAlias for any key, and administration by the tag alone.
    alias_any_key = {"Effect": "Allow", "Action": ["kms:CreateAlias"], "Resource": f"{KEY}/*"}
    assert kms_takeover_problems([*statements, alias_any_key]) != []
    by_tag = {
        "Effect": "Allow",
        "Action": ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"],
        "Resource": f"{KEY}/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/project": "imagegen"}},
    }
    assert kms_takeover_problems([*statements, by_tag]) != []
    retag = [s for s in statements if s.get("Sid") != "DenyRetaggingOtherProjectsKeys"]
    assert kms_takeover_problems(retag) != []


@pytest.mark.slow
def test_the_plan_write_rule_catches_the_lock_file(bootstrap: Bootstrap) -> None:
    lock = {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "Resource": f"arn:aws:s3:::{STATE_BUCKET}/{STATE_KEY}.tflock",
    }
    assert plan_write_problems([*bootstrap.statements("terraform_plan"), lock]) != []


# ---------------------------------------------------------------------------- permissions boundary --
def boundary_scope_problems(statements: list[dict[str, Any]]) -> list[str]:
    """The boundary allows the functions' own resources by name: "*" only for X-Ray, nothing of IAM, STS or KMS."""
    problems = []
    for statement in statements:
        s3_only = all(action.startswith("s3:") for action in _as_list(statement["Action"]))
        if statement["Effect"] != "Allow" or ("Condition" in statement and not s3_only):
            problems.append(f"not a plain Allow (conditions only for S3): {statement}")
        actions = _as_list(statement["Action"])
        resources = _as_list(statement["Resource"])
        for action in actions:
            if "*" in action or action.startswith(("iam:", "sts:", "kms:", "organizations:")):
                problems.append(f"action {action}")
        if "*" in resources and not all(action.startswith("xray:") for action in actions):
            problems.append(f'"*" for {actions}')
        for resource in resources:
            if resource != "*" and not resource.startswith("arn:aws:"):
                problems.append(f"resource {resource}")
    return problems


@dataclass(frozen=True)
class Boundary:
    statements: list[dict[str, Any]]

    def allows(self, action: str, resource: str, context: Context | None = None) -> bool:
        return decide(self.statements, action, resource, context) == "Allow"


@pytest.fixture(scope="module")
def boundary(bootstrap: Bootstrap) -> Boundary:
    iam = bootstrap.client("iam")
    policy = iam.get_policy(PolicyArn=BOUNDARY)["Policy"]
    version = iam.get_policy_version(PolicyArn=BOUNDARY, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    return Boundary(_as_list_of_statements(_document(version["Document"])))


@pytest.mark.slow
def test_the_boundary_is_scoped_to_the_projects_resources(boundary: Boundary) -> None:
    assert boundary_scope_problems(boundary.statements) == []
    by_service: dict[str, set[str]] = {}
    for statement in boundary.statements:
        for action in _as_list(statement["Action"]):
            by_service.setdefault(action.split(":")[0], set()).update(_as_list(statement["Resource"]))
    arn = f"{REGION}:{ACCOUNT}"
    assert by_service == {
        "bedrock": {f"arn:aws:bedrock:*::foundation-model/{m}" for m in MODELS}
        | {f"arn:aws:bedrock:*:{ACCOUNT}:inference-profile/*.{m}" for m in MODELS},
        "s3": {
            "arn:aws:s3:::imagegen-api-imagesbucket-*/generated_images/*",
            "arn:aws:s3:::imagegen-api-imagesbucket-*",
        },
        "sqs": {f"arn:aws:sqs:{arn}:imagegen-prompts", f"arn:aws:sqs:{arn}:imagegen-prompts-dlq"},
        "dynamodb": {f"arn:aws:dynamodb:{arn}:table/imagegen-api-*"},
        "logs": {
            f"arn:aws:logs:{arn}:log-group:/aws/lambda/imagegen-api-*",
            f"arn:aws:logs:{arn}:log-group:/aws/lambda/imagegen-*",
            f"arn:aws:logs:{arn}:log-group:/aws/apigateway/imagegen-api/access",
            f"arn:aws:logs:{arn}:log-group:/aws/apigateway/imagegen-api/access:*",
        },
        "xray": {"*"},
    }
    actions = {a for s in boundary.statements for a in _as_list(s["Action"])}
    assert {a for a in actions if a.startswith(("bedrock:", "dynamodb:"))} == {
        "bedrock:InvokeModel",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    (listing,) = [s for s in boundary.statements if "s3:ListBucket" in _as_list(s["Action"])]
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": "generated_images/*"},
        "StringEquals": {"s3:ResourceAccount": ACCOUNT},
    }
    # Bucket names are global: objects only in a bucket of this account.
    for statement in boundary.statements:
        if any(action.startswith("s3:") for action in _as_list(statement["Action"])):
            assert statement["Condition"]["StringEquals"] == {"s3:ResourceAccount": ACCOUNT}, statement


@pytest.mark.slow
def test_the_boundary_allows_what_the_functions_do_and_nothing_next_to_it(boundary: Boundary) -> None:
    bucket = "arn:aws:s3:::imagegen-api-imagesbucket-1a2b3c4d5e6f"
    log = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group"
    ours = {"s3:ResourceAccount": ACCOUNT}
    allowed = [
        ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-image-generator-v1"),
        ("bedrock:InvokeModel", "arn:aws:bedrock:us-west-2::foundation-model/stability.sd3-5-large-v1:0"),
        ("bedrock:InvokeModel", f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.stability.sd3-5-large-v1:0"),
        ("s3:PutObject", f"{bucket}/generated_images/4f0c-0.png"),
        ("s3:GetObject", f"{bucket}/generated_images/from_queue/.claims/m-1"),
        ("sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagegen-prompts"),
        ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagegen-prompts-dlq"),
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/imagegen-api-ImagesTable-1A2B"),
        ("dynamodb:Query", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/imagegen-api-ImagesTable-1A2B/index/by-day"),
        ("logs:PutLogEvents", f"{log}:/aws/lambda/imagegen-queue-worker:log-stream:2026/01/01/x"),
        ("logs:CreateLogStream", f"{log}:/aws/lambda/imagegen-api-GenerateImageFunction-1A2B:log-stream:x"),
        ("xray:PutTraceSegments", "*"),
    ]
    for action, resource in allowed:
        assert boundary.allows(action, resource, ours), (action, resource)
    listing = {**ours, "s3:prefix": "generated_images/from_queue/m-1-0.json"}
    assert boundary.allows("s3:ListBucket", bucket, listing)
    denied = [
        ("bedrock:InvokeModel", "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-20240229-v1:0"),
        (
            "bedrock:InvokeModelWithResponseStream",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-image-generator-v1",
        ),
        ("s3:PutObject", f"{bucket}/other/x.png"),
        ("s3:DeleteObject", f"{bucket}/generated_images/x.png"),
        ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/generated_images/x.png"),
        ("s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/{STATE_KEY}"),
        ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:billing-events"),
        ("sqs:PurgeQueue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagegen-prompts"),
        ("dynamodb:Scan", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/imagegen-api-ImagesTable-1A2B"),
        ("dynamodb:PutItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/billing"),
        ("logs:PutLogEvents", f"{log}:/aws/lambda/billing:log-stream:x"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-queue-worker"),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-x"),
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-github-terraform-apply"),
        ("kms:Decrypt", f"{KEY}/1111aaaa-foreign"),
    ]
    for action, resource in denied:
        assert not boundary.allows(action, resource, ours), (action, resource)
    assert not boundary.allows("s3:ListBucket", bucket, {**ours, "s3:prefix": ""})
    # A bucket of the same name pattern in another account.
    assert not boundary.allows(
        "s3:PutObject", f"{bucket}/generated_images/x.png", {"s3:ResourceAccount": "210987654321"}
    )
    assert not boundary.allows("s3:ListBucket", bucket, {**listing, "s3:ResourceAccount": "210987654321"})


@pytest.mark.slow
def test_the_boundary_scope_rule_catches_wide_statements(boundary: Boundary) -> None:
    for wide in (
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"Bool": {"x": "true"}}},
        {"Effect": "Allow", "Action": "bedrock:*", "Resource": "arn:aws:bedrock:*::foundation-model/*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-x"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/x"},
    ):
        assert boundary_scope_problems([*boundary.statements, wide]) != [], wide


#: IAM's limit on the inline policies of one role, counted without whitespace.
ROLE_INLINE_POLICY_LIMIT = 10_240


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_policies_fit_iams_size_limit(bootstrap: Bootstrap, role: str) -> None:
    # moto does not enforce it; AWS rejects the apply above this size.
    iam = bootstrap.client("iam")
    name = ROLES[role]
    size = sum(
        len(
            re.sub(r"\s", "", json.dumps(_document(iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"])))
        )
        for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
    )
    assert size <= ROLE_INLINE_POLICY_LIMIT, size
