"""template.yaml's jobs: the job records' table, the function's environment and permissions for it and for the prompt
queue, the routes, and the queue's name, which must be the one infra/ gives it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.template_rules import JOBS_TABLE_ARN, api_jobs_problems, prompt_queue_arn
from tests.infra.template_support import (
    ACCOUNT,
    API_ID,
    REGION,
    REPO_ROOT,
    Resolver,
    actions,
    function_properties,
    function_role_statements,
)

#: The SQS queue names the parameter must refuse (a FIFO name, wildcards, too long, empty).
REFUSED_QUEUE_NAMES = ["", "a" * 81, "prompts.fifo", "imagegen-*", "imagegen-prompts?", "a b", "arn:aws:sqs:x"]


# ------------------------------------------------------------------------------------- the table --
def test_the_jobs_table_is_keyed_by_pk_only_and_expires_items_through_ttl(cfn):
    from imagegen.jobs import TTL_ATTRIBUTE, table_definition

    table = cfn["Resources"]["JobsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # ... as the code reads and writes it.
    expected = table_definition("any")
    assert properties["KeySchema"] == expected["KeySchema"]
    assert properties["AttributeDefinitions"] == expected["AttributeDefinitions"]
    assert properties["TimeToLiveSpecification"]["AttributeName"] == TTL_ATTRIBUTE
    assert properties["BillingMode"] == "PAY_PER_REQUEST" == expected["BillingMode"]
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    # A deleted record would make the worker redo its job: kept with the stack, as the index.
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


# ------------------------------------------------------------------------------ the environment --
@pytest.mark.parametrize("queue_name", ["imagegen-prompts", "team_b-prompts"])
def test_the_function_knows_the_jobs_table_and_the_prompt_queue(cfn, queue_name):
    from imagegen.config import Settings

    env = Resolver(cfn, {"PromptQueueName": queue_name}).resolve(function_properties(cfn)["Environment"]["Variables"])
    assert env["JOBS_TABLE_NAME"] == "<JobsTable>"
    assert env["PROMPT_QUEUE_URL"] == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue_name}"
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    assert (settings.jobs_table_name, settings.prompt_queue_url) == ("<JobsTable>", env["PROMPT_QUEUE_URL"])


# ------------------------------------------------------------------------------------------ IAM --
@pytest.mark.parametrize("queue_name", ["imagegen-prompts", "team_b-prompts"])
def test_the_function_may_track_jobs_and_send_to_exactly_the_prompt_queue(cfn, queue_name):
    statements = function_role_statements(cfn, {"PromptQueueName": queue_name})
    assert api_jobs_problems(statements, queue_name) == []
    (track,) = [s for s in statements if JOBS_TABLE_ARN in str(s["Resource"])]
    assert (track["Effect"], sorted(track["Action"])) == (
        "Allow",
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    )
    (submit,) = [s for s in statements if any(action.startswith("sqs:") for action in actions(s))]
    assert (submit["Action"], submit["Resource"]) == ("sqs:SendMessage", prompt_queue_arn(queue_name))


def _broken(statements: list[dict[str, Any]], sid: str, **changes: Any) -> list[dict[str, Any]]:
    copy: list[dict[str, Any]] = json.loads(json.dumps(statements))
    for statement in copy:
        if statement.get("Sid") == sid:
            statement.update(changes)
    return copy


def test_the_jobs_rule_catches_wider_or_missing_grants(cfn):
    statements = function_role_statements(cfn, {})
    queue = "imagegen-prompts"
    assert api_jobs_problems(statements, queue) == []
    examples = {
        "every item action": _broken(statements, "TrackJobs", Action="dynamodb:*"),
        "deleting records": _broken(statements, "TrackJobs", Action=["dynamodb:GetItem", "dynamodb:DeleteItem",
                                                                     "dynamodb:PutItem", "dynamodb:UpdateItem"]),
        "every table": _broken(statements, "TrackJobs", Resource=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*"),
        "no reads": _broken(statements, "TrackJobs", Action=["dynamodb:PutItem", "dynamodb:UpdateItem"]),
        "every queue": _broken(statements, "SubmitJobs", Resource=f"arn:aws:sqs:{REGION}:{ACCOUNT}:*"),
        "a queue prefix": _broken(statements, "SubmitJobs", Resource=prompt_queue_arn(f"{queue}*")),
        "any region": _broken(statements, "SubmitJobs", Resource=f"arn:aws:sqs:*:{ACCOUNT}:{queue}"),
        "every queue action": _broken(statements, "SubmitJobs", Action="sqs:*"),
        "another queue": _broken(statements, "SubmitJobs", Resource=prompt_queue_arn("other")),
        "no statement": [s for s in statements if s.get("Sid") != "SubmitJobs"],
    }  # fmt: skip
    for name, example in examples.items():
        assert api_jobs_problems(example, queue) != [], name


# ------------------------------------------------------------------------------------- the routes --
def test_the_jobs_routes_exist_and_need_the_api_key(cfn, sam_template):
    events = sam_template["Resources"]["GenerateImageFunction"]["Properties"]["Events"]
    routes = {name: (event["Properties"]["Method"], event["Properties"]["Path"]) for name, event in events.items()}
    assert (routes["CreateJob"], routes["GetJob"]) == (("post", "/jobs"), ("get", "/jobs/{job_id}"))
    for name in ("CreateJob", "GetJob"):
        # No Auth of their own: the API's default, ApiKeyRequired.
        assert events[name]["Properties"].get("Auth", {}).get("ApiKeyRequired", True) is True, name
    assert sam_template["Resources"][API_ID]["Properties"]["Auth"]["ApiKeyRequired"] is True

    # As API Gateway gets them: both operations, each with the x-api-key scheme and the path parameter.
    body = cfn["Resources"][API_ID]["Properties"]["Body"]
    schemes = {name for name, s in body["components"]["securitySchemes"].items() if s.get("name") == "x-api-key"}
    for path, verb in (("/jobs", "post"), ("/jobs/{job_id}", "get")):
        operation = body["paths"][path][verb]
        assert any(set(requirement) & schemes for requirement in operation["security"]), (verb, path)
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", (verb, path)


def test_the_jobs_outputs(cfn):
    outputs = cfn["Outputs"]
    resolver = Resolver(cfn)
    assert resolver.resolve(outputs["JobsTableName"]["Value"]) == "<JobsTable>"
    assert "jobs_table_name" in outputs["JobsTableName"]["Description"]  # what Terraform takes it as
    assert (
        resolver.resolve(outputs["JobsUrl"]["Value"])
        == f"https://<{API_ID}>.execute-api.{REGION}.amazonaws.com/Prod/jobs"
    )


# -------------------------------------------------------------------------------------- the queue --
def _terraform_queue_name() -> tuple[str, str]:
    """(name_prefix's default in infra/variables.tf, the suffix infra/main.tf's local.queue_name puts after it),
    both read from the files."""
    main = (REPO_ROOT / "infra" / "main.tf").read_text()
    suffix = re.search(r'^\s*queue_name\s*=\s*"\$\{var\.name_prefix\}([^"$]*)"', main, re.MULTILINE)
    assert suffix is not None, "local.queue_name is no longer ${var.name_prefix}<suffix>"
    variables = (REPO_ROOT / "infra" / "variables.tf").read_text()
    prefix = re.search(r'variable "name_prefix" \{[^}]*?default\s*=\s*"([^"]*)"', variables)
    assert prefix is not None
    return prefix.group(1), suffix.group(1)


def test_the_prompt_queue_parameter_defaults_to_terraforms_queue(sam_template):
    prefix, suffix = _terraform_queue_name()
    parameter = sam_template["Parameters"]["PromptQueueName"]
    assert parameter["Default"] == prefix + suffix
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch(parameter["Default"])
    # The queue of any name_prefix infra/ accepts (1-32 characters of [a-z0-9-]) is accepted too.
    assert pattern.fullmatch("a" * 32 + suffix) and pattern.fullmatch("0" + suffix)
    assert pattern.fullmatch("Team_B-prompts") and pattern.fullmatch("a" * 80)
    for name in REFUSED_QUEUE_NAMES:
        assert pattern.fullmatch(name) is None, name
