"""Escalation paths through the bootstrap's deploying roles, checked as the requests an attacker would make (with
the evaluator of tests/infra/iam_evaluator.py): roles without the permissions boundary, the boundary removed or
changed, roles passed beyond their services, a foreign KMS key taken over, the plan role writing the lock file."""

from __future__ import annotations

import pytest

from tests.infra.bootstrap_rules import (
    DEPLOYED_ROLES,
    KEY,
    READ_ONLY_ACTION,
    boundary_tampering_problems,
    kms_takeover_problems,
    pass_role_problems,
    plan_write_problems,
    role_creation_problems,
)
from tests.infra.bootstrap_support import ACCOUNT, STATE_BUCKET, STATE_KEY, Bootstrap, _as_list
from tests.infra.iam_evaluator import decide


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
