"""The applied bootstrap: its outputs, GitHub's OIDC provider, the state bucket, and a plan with the example values
against the applied state. The roles' policies: test_bootstrap_roles.py, test_bootstrap_escalation.py,
test_bootstrap_boundary.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.infra.bootstrap_support import (
    ACCOUNT,
    BOOTSTRAP_DIR,
    BOUNDARY,
    EXPECTED_OUTPUTS,
    OIDC_HOST,
    OIDC_PROVIDER_ARN,
    REGION,
    REPOSITORY,
    ROLES,
    STATE_BUCKET,
    STATE_KEY,
    Bootstrap,
    _as_list,
)
from tests.infra.terraform_support import terraform_binary


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
