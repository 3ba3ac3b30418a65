"""infra/bootstrap/ in tests: what the apply is given and expected to create, the background apply, and the
applied bootstrap read back with boto3 (shared by the test_bootstrap*.py modules and tests/infra/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.terraform_support import REPO_ROOT, Deployment

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
#: infra/bootstrap's bedrock_regions default: the regions of the default chain.
MODEL_REGIONS = ["us-east-1", "us-west-2"]

ROLES = {
    "sam_deploy": "imagegen-github-sam-deploy",
    "terraform_plan": "imagegen-github-terraform-plan",
    "terraform_apply": "imagegen-github-terraform-apply",
}

#: What `imagegen models --accept-agreements` needs besides the preflight's reads (infra/bootstrap/model_access.tf):
#: no resource type in the Service Authorization Reference for any of them.
AGREEMENT_ACTIONS = {
    "bedrock:CreateFoundationModelAgreement",
    "bedrock:ListFoundationModelAgreementOffers",
    "aws-marketplace:Subscribe",
    "aws-marketplace:ViewSubscriptions",
}

#: Actions AWS authorizes against "*" only (no resource type in the Service Authorization Reference), by role.
#: Anything else must name its resources.
UNSCOPABLE_ACTIONS = {
    "sam_deploy": {
        *AGREEMENT_ACTIONS,
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
        *AGREEMENT_ACTIONS,
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
    "events:DescribeRule",
    "events:ListTagsForResource",
    "events:ListTargetsByRule",
    "lambda:GetPolicy",
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
    "events:DeleteRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:TagResource",
    "lambda:AddPermission",
    "lambda:RemovePermission",
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

#: The only Bedrock actions of the deploying roles: read-only model metadata for the preflight (`imagegen models`),
#: and the models' Marketplace agreements (`imagegen models --accept-agreements`).
PREFLIGHT_ACTIONS = {
    "bedrock:GetFoundationModel",
    "bedrock:GetFoundationModelAvailability",
    "bedrock:ListFoundationModels",
    "bedrock:CreateFoundationModelAgreement",
    "bedrock:ListFoundationModelAgreementOffers",
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
