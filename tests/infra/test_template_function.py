"""template.yaml's API function (runtime, limits, build, log group, environment) and the gallery's index table."""

from __future__ import annotations

import re

import pytest

from tests.infra.template_support import (
    BUCKET_ID,
    FUNCTION_ID,
    REPO_ROOT,
    SCENARIOS,
    Resolver,
    function_properties,
    resources_of_type,
)


# ------------------------------------------------------------------------------------- function --
def test_function_runtime_and_limits(cfn):
    properties = function_properties(cfn)
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "generate_image.app.lambda_handler"
    assert properties["Timeout"] < 29  # API Gateway's integration timeout
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert 128 <= properties["MemorySize"] <= 10240

    # The Bedrock read timeout, times the attempts, must end before the function does.
    env = Resolver(cfn).resolve(properties["Environment"]["Variables"])
    budget = int(env["BEDROCK_READ_TIMEOUT_SECONDS"]) * int(env["BEDROCK_MAX_ATTEMPTS"])
    assert budget < properties["Timeout"]


def test_function_is_built_by_the_makefile(sam_template):
    function = sam_template["Resources"][FUNCTION_ID]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert function["Properties"]["CodeUri"] == "."
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(rf"^build-{FUNCTION_ID}:", makefile, re.MULTILINE)


def test_function_log_group_has_retention(cfn):
    groups = resources_of_type(cfn, "AWS::Logs::LogGroup")
    names = {lid: Resolver(cfn).resolve(g["Properties"]["LogGroupName"]) for lid, g in groups.items()}
    function_groups = [lid for lid, name in names.items() if name == f"/aws/lambda/<{FUNCTION_ID}>"]
    assert len(function_groups) == 1
    retention = groups[function_groups[0]]["Properties"]["RetentionInDays"]
    assert Resolver(cfn).resolve(retention) == "30"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_function_environment(cfn, scenario):
    from imagegen.chain import parse_chain
    from imagegen.config import DEFAULT_MODEL_COOLDOWN_SECONDS, DEFAULT_MODEL_ID, Settings

    overrides = SCENARIOS[scenario]
    env = Resolver(cfn, overrides).resolve(function_properties(cfn)["Environment"]["Variables"])
    expected_bucket = overrides.get("ImagesBucketName") or f"<{BUCKET_ID}>"
    assert env["BUCKET_NAME"] == expected_bucket
    assert env["KEY_PREFIX"] == overrides.get("KeyPrefix", "")
    assert env["MODEL_ID"] == DEFAULT_MODEL_ID
    assert env["BEDROCK_REGION"] == "us-east-1"
    assert env["MODEL_COOLDOWN_SECONDS"] == str(DEFAULT_MODEL_COOLDOWN_SECONDS)
    assert env["POWERTOOLS_SERVICE_NAME"] == "imagegen-api"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "ImageGen"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"

    # The application accepts exactly what the template sets.
    settings = Settings.from_env({k: str(v) for k, v in env.items()})
    assert settings.bucket_name == expected_bucket
    assert settings.key_prefix == overrides.get("KeyPrefix", "")
    assert settings.url_expiry_seconds == 3600
    assert settings.models == parse_chain(DEFAULT_MODEL_ID, "us-east-1")
    assert settings.model_cooldown_seconds == DEFAULT_MODEL_COOLDOWN_SECONDS

    cooldown = Resolver(cfn, {**overrides, "ModelCooldownSeconds": "0"}).resolve(
        function_properties(cfn)["Environment"]["Variables"]["MODEL_COOLDOWN_SECONDS"]
    )
    assert cooldown == "0"


# ------------------------------------------------------------------------------------ the index --
def test_the_index_table_is_on_demand_encrypted_recoverable_and_keyed_as_the_code_expects(cfn):
    from imagegen.index import table_definition

    table = cfn["Resources"]["ImagesTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    expected = table_definition("any")
    assert properties["BillingMode"] == "PAY_PER_REQUEST" == expected["BillingMode"]
    assert properties["KeySchema"] == expected["KeySchema"]
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"
