"""Rules on the bootstrap's role policies (escalation paths, the plan role's writes), each a function that
returns the problems it finds: run on the applied policies (none) and on a policy with the hole put back (some)."""

from __future__ import annotations

import re
from typing import Any

from tests.infra.bootstrap_support import ACCOUNT, BOUNDARY, REGION, STATE_BUCKET, STATE_KEY, _as_list
from tests.infra.iam_evaluator import Context, decide

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
