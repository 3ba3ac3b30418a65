"""The permissions boundary the bootstrap creates for the project's roles: scoped to the project's resources, it
allows what the functions do and nothing next to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.bootstrap_rules import KEY
from tests.infra.bootstrap_support import (
    ACCOUNT,
    BOUNDARY,
    MODELS,
    REGION,
    STATE_BUCKET,
    STATE_KEY,
    Bootstrap,
    _as_list,
    _as_list_of_statements,
    _document,
)
from tests.infra.iam_evaluator import Context, decide

# ---------------------------------------------------------------------------- permissions boundary --
#: The one KMS use the boundary allows: the alarm topic's data keys, through SNS, for that topic only (the lifecycle
#: watch publishes to the encrypted topic).
ALERT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:imagegen-alerts"
ALERT_KEY_USE = {
    "StringEquals": {
        "kms:ViaService": f"sns.{REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:sns:topicArn": ALERT_TOPIC,
    }
}
#: Read-only actions without a resource type: "*" is the only Resource that works for them.
UNSCOPABLE = {"bedrock:GetFoundationModelAvailability"}


def boundary_scope_problems(statements: list[dict[str, Any]]) -> list[str]:
    """The boundary allows the functions' own resources by name: "*" only for X-Ray and an unscopable read, nothing
    of IAM or STS, and KMS only for the alarm topic's data keys through SNS."""
    problems = []
    for statement in statements:
        actions = _as_list(statement["Action"])
        s3_only = all(action.startswith("s3:") for action in actions)
        kms = any(action.startswith("kms:") for action in actions)
        if statement["Effect"] != "Allow" or ("Condition" in statement and not (s3_only or kms)):
            problems.append(f"not a plain Allow (conditions only for S3 and KMS): {statement}")
        if kms and (
            set(actions) != {"kms:Decrypt", "kms:GenerateDataKey"} or statement.get("Condition") != ALERT_KEY_USE
        ):
            problems.append(f"KMS beyond the alarm topic's data keys through SNS: {statement}")
        resources = _as_list(statement["Resource"])
        for action in actions:
            if "*" in action or action.startswith(("iam:", "sts:", "organizations:")):
                problems.append(f"action {action}")
        if "*" in resources and not all(action.startswith("xray:") or action in UNSCOPABLE for action in actions):
            problems.append(f'"*" for {actions}')
        for resource in resources:
            if resource != "*" and not resource.startswith("arn:aws:"):
                problems.append(f"resource {resource}")
    return problems


#: The job records' table, as CloudFormation names the stack's JobsTable.
JOBS_TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/imagegen-api-JobsTable-1A2B"


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
        # "*": the lifecycle watch's GetFoundationModelAvailability (no resource type).
        "bedrock": {f"arn:aws:bedrock:*::foundation-model/{m}" for m in MODELS}
        | {f"arn:aws:bedrock:*:{ACCOUNT}:inference-profile/*.{m}" for m in MODELS}
        | {"*"},
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
        # The lifecycle watch's alerts.
        "sns": {ALERT_TOPIC},
        "kms": {f"{KEY}/*"},
    }
    actions = {a for s in boundary.statements for a in _as_list(s["Action"])}
    assert {a for a in actions if a.startswith(("bedrock:", "dynamodb:", "sns:", "kms:"))} == {
        "bedrock:GetFoundationModel",
        "bedrock:GetFoundationModelAvailability",
        "bedrock:InvokeModel",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sns:Publish",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
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
        # The job records: the API reads, creates and updates them, the worker reads and updates them.
        *[(f"dynamodb:{action}", JOBS_TABLE) for action in ("GetItem", "PutItem", "UpdateItem")],
        ("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:imagegen-prompts"),  # POST /jobs
        ("logs:PutLogEvents", f"{log}:/aws/lambda/imagegen-queue-worker:log-stream:2026/01/01/x"),
        ("logs:CreateLogStream", f"{log}:/aws/lambda/imagegen-api-GenerateImageFunction-1A2B:log-stream:x"),
        ("xray:PutTraceSegments", "*"),
        # The lifecycle watch.
        ("bedrock:GetFoundationModel", "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1"),
        ("bedrock:GetFoundationModelAvailability", "*"),
        ("sns:Publish", ALERT_TOPIC),
    ]
    for action, resource in allowed:
        assert boundary.allows(action, resource, ours), (action, resource)
    through_sns = {
        "kms:ViaService": f"sns.{REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:sns:topicArn": ALERT_TOPIC,
    }
    assert boundary.allows("kms:GenerateDataKey", f"{KEY}/1111aaaa-alerts", through_sns)
    assert not boundary.allows("kms:Decrypt", f"{KEY}/1111aaaa-alerts")  # directly, not through SNS
    other_topic = {**through_sns, "kms:EncryptionContext:aws:sns:topicArn": ALERT_TOPIC.replace("imagegen", "billing")}
    assert not boundary.allows("kms:Decrypt", f"{KEY}/1111aaaa-alerts", other_topic)
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
        ("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/billing"),
        ("dynamodb:UpdateItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/billing"),
        ("dynamodb:UpdateItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/imagegen-api-JobsTable-1A2B"),
        ("dynamodb:DeleteItem", JOBS_TABLE),
        ("dynamodb:Scan", JOBS_TABLE),
        ("dynamodb:BatchWriteItem", JOBS_TABLE),
        ("dynamodb:DeleteTable", JOBS_TABLE),
        ("logs:PutLogEvents", f"{log}:/aws/lambda/billing:log-stream:x"),
        ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-queue-worker"),
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-x"),
        ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/imagegen-github-terraform-apply"),
        ("kms:Decrypt", f"{KEY}/1111aaaa-foreign"),
        (
            "bedrock:GetFoundationModel",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-opus-20240229-v1:0",
        ),
        ("sns:Publish", f"arn:aws:sns:{REGION}:{ACCOUNT}:billing-alerts"),
        ("sns:Subscribe", ALERT_TOPIC),
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
def test_no_function_role_can_accept_an_agreement_or_subscribe(boundary: Boundary) -> None:
    # Whatever a function's own policy says (the worker, the watch, the API): the boundary caps it, and it allows none
    # of what `imagegen models --accept-agreements` does under the deploying roles (infra/bootstrap/model_access.tf).
    everywhere = {"aws:RequestedRegion": "us-west-2", "aws-marketplace:ProductId": "prod-x"}
    for action in (
        "bedrock:ListFoundationModelAgreementOffers",
        "bedrock:CreateFoundationModelAgreement",
        "bedrock:DeleteFoundationModelAgreement",
        "bedrock:PutFoundationModelEntitlement",
        "aws-marketplace:Subscribe",
        "aws-marketplace:ViewSubscriptions",
        "aws-marketplace:Unsubscribe",
    ):
        assert not boundary.allows(action, "*", everywhere), action
    # The rule is real: the boundary with an agreement statement added lets a function accept one.
    accept = {"Effect": "Allow", "Action": "bedrock:CreateFoundationModelAgreement", "Resource": "*"}
    assert Boundary([*boundary.statements, accept]).allows("bedrock:CreateFoundationModelAgreement", "*", everywhere)
    assert boundary_scope_problems([*boundary.statements, accept]) != []


@pytest.mark.slow
def test_the_boundary_scope_rule_catches_wide_statements(boundary: Boundary) -> None:
    for wide in (
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"Bool": {"x": "true"}}},
        {"Effect": "Allow", "Action": "bedrock:*", "Resource": "arn:aws:bedrock:*::foundation-model/*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/imagegen-api-x"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/x"},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"{KEY}/*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": f"{KEY}/*",
         "Condition": {"StringEquals": {"kms:ViaService": f"sns.{REGION}.amazonaws.com"}}},
    ):  # fmt: skip
        assert boundary_scope_problems([*boundary.statements, wide]) != [], wide
