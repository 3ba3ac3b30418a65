"""The applied bootstrap's GitHub roles: whom they trust, and what they may do, by name and not by wildcard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.bootstrap_rules import plan_write_problems
from tests.infra.bootstrap_support import (
    ACCOUNT,
    DEPLOY_SUBJECT,
    INFRA_APPLY_CALLS,
    INFRA_PLAN_CALLS,
    MODEL_REGIONS,
    OIDC_HOST,
    OIDC_PROVIDER_ARN,
    PREFLIGHT_ACTIONS,
    REGION,
    REPOSITORY,
    ROLES,
    SAM_ARTIFACT_BUCKET,
    STATE_BUCKET,
    STATE_KEY,
    UNSCOPABLE_ACTIONS,
    Bootstrap,
    _as_list,
    _as_list_of_statements,
    _document,
)
from tests.infra.iam_evaluator import decide


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
    assert _resources_of(allowed, "iam:") == {
        f"arn:aws:iam::{ACCOUNT}:role/imagegen-queue-worker",
        f"arn:aws:iam::{ACCOUNT}:role/imagegen-model-watch",
    }
    assert _resources_of(allowed, "cloudwatch:") == {f"arn:aws:cloudwatch:{arn}:alarm:imagegen-*"}
    assert _resources_of(allowed, "cloudformation:") == {f"arn:aws:cloudformation:{arn}:stack/imagegen-api/*"}
    function = f"arn:aws:lambda:{arn}:function:imagegen-queue-worker"
    watch = f"arn:aws:lambda:{arn}:function:imagegen-model-watch"
    assert _resources_of(allowed, "lambda:") == {
        function,
        f"{function}:*",
        watch,
        f"{watch}:*",
        f"arn:aws:lambda:{arn}:event-source-mapping:*",
        "*",
    }
    # The watch's schedule, and its invoke permission for EventBridge only.
    assert _resources_of(allowed, "events:") == {f"arn:aws:events:{arn}:rule/imagegen-model-watch"}
    (permission,) = [s for s in allowed if "lambda:AddPermission" in _as_list(s["Action"])]
    assert _as_list(permission["Resource"]) == [watch]
    assert permission["Condition"] == {"StringEquals": {"lambda:Principal": "events.amazonaws.com"}}
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
    # The stack's tables (the gallery's index, the job records): managed, never deleted, and no item access for the
    # deploy role. JobsTable's TTL is set (UpdateTimeToLive) and read back (DescribeTimeToLive) by CloudFormation.
    assert _resources_of(allowed, "dynamodb:") == {f"arn:aws:dynamodb:{arn}:table/imagegen-api-*"}
    dynamodb = {a for s in allowed for a in _as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert {"dynamodb:CreateTable", "dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive"} <= dynamodb
    statements = bootstrap.statements("sam_deploy")
    jobs_table = f"arn:aws:dynamodb:{arn}:table/imagegen-api-JobsTable-1A2B3C4D5E6F"
    for action in ("CreateTable", "UpdateTable", "UpdateTimeToLive", "DescribeTimeToLive", "UpdateContinuousBackups"):
        assert decide(statements, f"dynamodb:{action}", jobs_table) == "Allow", action
    for action in ("DeleteTable", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan", "Query"):
        assert decide(statements, f"dynamodb:{action}", jobs_table) != "Allow", action
    assert decide(statements, "dynamodb:UpdateTimeToLive", f"arn:aws:dynamodb:{arn}:table/billing") != "Allow"
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


@pytest.mark.slow
@pytest.mark.parametrize("role", sorted(ROLES))
def test_only_the_deploying_roles_accept_model_agreements_and_in_the_chains_regions(
    bootstrap: Bootstrap, role: str
) -> None:
    # `imagegen models --accept-agreements` before each deploy: list the offers, create the agreement (which
    # subscribes the account to the model's Marketplace product), read the subscriptions. No resource type exists
    # for any of these; the Bedrock ones are limited to the chain's regions.
    statements = bootstrap.statements(role)
    deploying = role != "terraform_plan"
    for region in MODEL_REGIONS:
        for action in ("bedrock:ListFoundationModelAgreementOffers", "bedrock:CreateFoundationModelAgreement"):
            decision = decide(statements, action, "*", {"aws:RequestedRegion": region})
            assert (decision == "Allow") is deploying, (action, region, decision)
    for action in ("bedrock:ListFoundationModelAgreementOffers", "bedrock:CreateFoundationModelAgreement"):
        assert decide(statements, action, "*", {"aws:RequestedRegion": "eu-central-1"}) != "Allow", action
    for action in ("aws-marketplace:Subscribe", "aws-marketplace:ViewSubscriptions"):
        assert (decide(statements, action, "*", {"aws-marketplace:ProductId": "prod-x"}) == "Allow") is deploying
    # Nothing that undoes or widens a subscription.
    for action in ("aws-marketplace:Unsubscribe", "bedrock:DeleteFoundationModelAgreement", "bedrock:InvokeModel"):
        assert decide(statements, action, "*", {"aws:RequestedRegion": MODEL_REGIONS[0]}) != "Allow", action
