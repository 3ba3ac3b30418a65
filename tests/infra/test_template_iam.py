"""template.yaml's IAM: no Bedrock or S3 permission on a wildcard, the permissions boundary on every role, and
the objects and tables the API function may read and write (the model chain: test_template.py)."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.template_rules import (
    BOUNDARY,
    CHAINS,
    ROUTED_MODEL,
    _bucket,
    api_object_problems,
    boundary_problems,
)
from tests.infra.template_support import (
    ALLOWED_MANAGED_POLICIES,
    BUCKET_ID,
    REPO_ROOT,
    SCENARIOS,
    Resolver,
    actions,
    allow_statements,
    as_list,
    function_properties,
    function_role_statements,
    resources_of_type,
    statements_with_action,
)


# ------------------------------------------------------------------------------------------- IAM --
def test_no_bedrock_or_s3_permission_on_a_wildcard_resource(cfn):
    assert allow_statements(cfn), "no IAM statements found"
    chains = {name: {"ModelId": chain, "BedrockRegion": region} for name, (chain, region) in CHAINS.items()}
    for scenario, overrides in {**SCENARIOS, **chains}.items():
        for logical_id, statement in allow_statements(cfn, overrides):
            assert "NotAction" not in statement and "NotResource" not in statement, logical_id
            for action in actions(statement):
                assert action != "*", f"{logical_id}: Action '*'"
                service, _, operation = action.lower().partition(":")
                if service not in {"bedrock", "s3"}:
                    continue
                assert "*" not in operation, f"{logical_id}: wildcard action {action}"
                for resource in as_list(statement["Resource"]):
                    assert resource != "*", f"{logical_id}: {action} on '*' ({scenario})"
                    # The one exception: the region of the model behind an inference profile, reachable only
                    # through that exact profile (invoke_problems checks the condition).
                    if service == "bedrock" and ROUTED_MODEL.fullmatch(resource):
                        profile = (
                            statement.get("Condition", {}).get("StringEquals", {}).get("bedrock:InferenceProfileArn")
                        )
                        assert profile and not re.search(r"[*?]", str(profile)), f"{logical_id}: {statement}"
                        continue
                    # A folder's objects (`…/generated_images/*`), or its images only (`…/*.png`).
                    scoped = resource.removesuffix("/*").removesuffix("/*.png")
                    assert "*" not in scoped, f"{logical_id}: {action} on {resource}"

    for logical_id, role in resources_of_type(cfn, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert Resolver(cfn).resolve(arn) in ALLOWED_MANAGED_POLICIES, f"{logical_id}: {arn}"


# ------------------------------------------------------------------------------- the boundary --
def test_every_role_carries_the_permissions_boundary_when_it_is_set(cfn, sam_template):
    both_roles = {"ConfigureApiGatewayLoggingRole": "true"}
    assert boundary_problems(cfn, {**both_roles, "PermissionsBoundaryArn": BOUNDARY}) == ([], 2)
    assert boundary_problems(cfn, both_roles) == ([], 2)
    assert boundary_problems(cfn, {"PermissionsBoundaryArn": BOUNDARY}) == ([], 1)
    assert sam_template["Parameters"]["PermissionsBoundaryArn"]["Default"] == ""

    # The check catches a role without it.
    broken = json.loads(json.dumps(cfn))
    del broken["Resources"]["ApiGatewayCloudWatchRole"]["Properties"]["PermissionsBoundary"]
    assert boundary_problems(broken, {**both_roles, "PermissionsBoundaryArn": BOUNDARY})[0] != []


def test_the_boundary_parameter_takes_a_managed_policy_arn_as_terraform_does(sam_template):
    pattern = re.compile(sam_template["Parameters"]["PermissionsBoundaryArn"]["AllowedPattern"])
    for good in ("", BOUNDARY, "arn:aws-us-gov:iam::123456789012:policy/path/imagegen-workload-boundary"):
        assert pattern.fullmatch(good), good
    for bad in ("arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::123456789012:role/x", "boundary", " "):
        assert pattern.fullmatch(bad) is None, bad
    variables = (REPO_ROOT / "infra" / "variables.tf").read_text()
    terraform = re.search(
        r'var\.permissions_boundary_arn == "" \|\| can\(regex\("(.+?)", var\.permissions_boundary', variables
    )
    assert terraform is not None
    assert "^$|" + terraform.group(1).replace("\\\\", "\\") == pattern.pattern


# ------------------------------------------------------------------------------------ objects --
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("defaults", f"arn:aws:s3:::<{BUCKET_ID}>/generated_images/"),
        ("prefix", f"arn:aws:s3:::<{BUCKET_ID}>/candidate42/generated_images/"),
        ("existing-bucket", "arn:aws:s3:::existing-bucket/candidate42/generated_images/"),
        ("existing-bucket-no-prefix", "arn:aws:s3:::existing-bucket/generated_images/"),
    ],
)
def test_s3_permission_is_the_generated_images_prefix(cfn, scenario, expected):
    from imagegen.storage import IMAGES_FOLDER

    overrides = SCENARIOS[scenario]
    (write,) = statements_with_action(cfn, "s3:PutObject", overrides)
    (read,) = statements_with_action(cfn, "s3:GetObject", overrides)
    assert actions(write) == ["s3:PutObject"]
    assert actions(read) == ["s3:GetObject"]
    s3_statements = [
        s for _, s in allow_statements(cfn, overrides) if any(a.lower().startswith("s3:") for a in actions(s))
    ]
    assert s3_statements == [write, read]
    assert as_list(write["Resource"]) == [expected + "*"]
    assert as_list(read["Resource"]) == [expected + "*.png"]  # images only: no sidecars, claims or outcomes
    assert expected.endswith(f"/{IMAGES_FOLDER}/")  # the folder the code writes to


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_api_reads_and_writes_only_directly_in_generated_images(cfn, scenario):
    overrides = SCENARIOS[scenario]
    statements = function_role_statements(cfn, overrides)
    assert api_object_problems(statements, _bucket(overrides), overrides.get("KeyPrefix", "")) == []
    # Writes to the subfolders are excluded by an explicit Deny (an Allow cannot say "no further /"); reads are
    # limited by the Allow to images (the gallery shows the queue's images too).
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert actions(deny) == ["s3:PutObject"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_object_rule_catches_access_to_the_queue_folder(cfn, scenario):
    overrides = SCENARIOS[scenario]
    allows = [s for s in function_role_statements(cfn, overrides) if s["Effect"] == "Allow"]
    problems = api_object_problems(allows, _bucket(overrides), overrides.get("KeyPrefix", ""))
    assert any("PutObject" in problem and "from_queue/" in problem for problem in problems), problems
    assert any(".claims/" in problem for problem in problems), problems
    # Widening the read to every object (sidecars, claims, outcomes) is caught too.
    wide = [{**s, "Resource": [r.replace("*.png", "*") for r in as_list(s["Resource"])]} for s in allows]
    widened = api_object_problems(wide, _bucket(overrides), overrides.get("KeyPrefix", ""))
    assert any("GetObject" in problem and ".outcomes/" in problem for problem in widened), widened
    # And a policy without the Allow lets the API write nothing.
    assert api_object_problems([], _bucket(overrides), overrides.get("KeyPrefix", "")) != []


# ----------------------------------------------------------------------------------- the index --
def test_the_api_may_write_and_query_the_index_table_and_nothing_else_of_dynamodb_but_the_jobs(cfn):
    statements = [s for _, s in allow_statements(cfn, {}) if any(a.startswith("dynamodb:") for a in actions(s))]
    granted = {tuple(as_list(statement["Resource"])): sorted(actions(statement)) for statement in statements}
    assert len(granted) == len(statements)
    assert granted == {
        ("<ImagesTable.Arn>",): ["dynamodb:PutItem", "dynamodb:Query"],
        # The job records: tests/infra/test_template_jobs.py.
        ("<JobsTable.Arn>",): ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    }
    environment = function_properties(cfn)["Environment"]["Variables"]
    assert Resolver(cfn).resolve(environment["IMAGES_TABLE_NAME"]) == "<ImagesTable>"
