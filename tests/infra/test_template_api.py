"""template.yaml's API: every route but the page needs the API key, the usage plan limits it, the Prod stage is
traced, logged and throttled; the stack's outputs."""

from __future__ import annotations

import json

from tests.infra.template_support import API_ID, BUCKET_ID, REGION, Resolver, as_list, resources_of_type

# -------------------------------------------------------------------------------------- API key --
#: The only route without the API key: the page (HTML, CSS, JavaScript; no data). Everything it fetches needs it.
PUBLIC_ROUTES = {("/", "get")}


def test_every_api_method_but_the_page_requires_an_api_key(cfn):
    checked = []
    for method in resources_of_type(cfn, "AWS::ApiGateway::Method").values():
        if method["Properties"].get("HttpMethod", "").upper() != "OPTIONS":
            assert method["Properties"].get("ApiKeyRequired") is True
            checked.append(method["Properties"].get("HttpMethod"))
    # SAM describes the routes in the RestApi's OpenAPI body rather than as Method resources.
    for rest_api in resources_of_type(cfn, "AWS::ApiGateway::RestApi").values():
        body = rest_api["Properties"]["Body"]
        schemes = body.get("components", {}).get("securitySchemes") or body.get("securityDefinitions", {})
        api_key_schemes = {
            name
            for name, scheme in schemes.items()
            if scheme.get("type") == "apiKey" and scheme.get("in") == "header" and scheme.get("name") == "x-api-key"
        }
        for path, operations in body["paths"].items():
            for verb, operation in operations.items():
                if verb.lower() == "options":
                    continue
                requirements = operation.get("security", [])
                has_key = any(set(req) & api_key_schemes for req in requirements)
                assert has_key is ((path, verb.lower()) not in PUBLIC_ROUTES), f"{verb} {path}: API key {has_key}"
                checked.append((path, verb))
    assert {("/generate-image", "post"), ("/images", "get"), ("/jobs", "post"), ("/jobs/{job_id}", "get"),
            ("/", "get")} <= set(checked)  # fmt: skip


def test_usage_plan_throttles_and_limits_the_api_key(cfn, sam_template):
    plans = resources_of_type(cfn, "AWS::ApiGateway::UsagePlan")
    assert len(plans) == 1
    ((plan_id, plan),) = plans.items()
    properties = plan["Properties"]
    defaults = {
        name: int(spec["Default"]) for name, spec in sam_template["Parameters"].items() if name.startswith("Api")
    }
    assert int(properties["Throttle"]["RateLimit"]) == defaults["ApiThrottleRateLimit"]
    assert int(properties["Throttle"]["BurstLimit"]) == defaults["ApiThrottleBurstLimit"]
    assert int(properties["Quota"]["Limit"]) == defaults["ApiDailyQuota"]
    assert properties["Quota"]["Period"] == "DAY"
    assert properties["ApiStages"] == [{"ApiId": {"Ref": API_ID}, "Stage": {"Ref": f"{API_ID}ProdStage"}}]

    keys = resources_of_type(cfn, "AWS::ApiGateway::ApiKey")
    assert list(keys) == [f"{API_ID}ApiKey"]
    assert keys[f"{API_ID}ApiKey"]["Properties"]["Enabled"] is True

    plan_keys = [r["Properties"] for r in resources_of_type(cfn, "AWS::ApiGateway::UsagePlanKey").values()]
    assert plan_keys == [{"KeyId": {"Ref": f"{API_ID}ApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}]


def test_the_prod_stage_is_traced_logged_and_throttled(cfn):
    stages = resources_of_type(cfn, "AWS::ApiGateway::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == ["Prod"]  # no stray "Stage" stage
    stage = next(iter(stages.values()))["Properties"]
    assert stage["TracingEnabled"] is True

    destination = stage["AccessLogSetting"]["DestinationArn"]
    log_group_id = destination["Fn::GetAtt"][0]
    assert cfn["Resources"][log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in cfn["Resources"][log_group_id]["Properties"]
    log_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert "$context.identity.apiKeyId" in log_format.values()

    (settings,) = stage["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(settings)
    assert settings.get("CachingEnabled", False) is False
    assert settings.get("DataTraceEnabled", False) is False  # would log request bodies


# ---------------------------------------------------------------------------------------- outputs --
def test_outputs(cfn):
    outputs = cfn["Outputs"]
    assert {"ApiUrl", "ApiKeyId", "ImagesBucketName", "ImagesTableName", "JobsTableName", "JobsUrl", "PageUrl",
            "FunctionName"} <= set(outputs)  # fmt: skip
    resolver = Resolver(cfn)
    assert resolver.resolve(outputs["ApiUrl"]["Value"]) == (
        f"https://<{API_ID}>.execute-api.{REGION}.amazonaws.com/Prod/generate-image"
    )
    assert (
        resolver.resolve(outputs["PageUrl"]["Value"]) == f"https://<{API_ID}>.execute-api.{REGION}.amazonaws.com/Prod/"
    )
    assert resolver.resolve(outputs["ImagesTableName"]["Value"]) == "<ImagesTable>"
    assert cfn["Resources"][API_ID]["Type"] == "AWS::ApiGateway::RestApi"
    assert "/generate-image" in cfn["Resources"][API_ID]["Properties"]["Body"]["paths"]

    key_ref = outputs["ApiKeyId"]["Value"]["Ref"]
    assert cfn["Resources"][key_ref]["Type"] == "AWS::ApiGateway::ApiKey"
    assert "get-api-key" in outputs["ApiKeyId"]["Description"]
    assert "--include-value" in outputs["ApiKeyId"]["Description"]

    function_ref = outputs["FunctionName"]["Value"]["Ref"]
    assert cfn["Resources"][function_ref]["Type"] == "AWS::Lambda::Function"

    assert resolver.resolve(outputs["ImagesBucketName"]["Value"]) == f"<{BUCKET_ID}>"
    existing = Resolver(cfn, {"ImagesBucketName": "existing-bucket"})
    assert existing.resolve(outputs["ImagesBucketName"]["Value"]) == "existing-bucket"


def test_api_waits_for_the_optional_account_logging_role(cfn):
    resources = cfn["Resources"]
    assert resources["ApiGatewayAccount"]["Condition"] == "ConfigureApiGatewayAccount"
    assert Resolver(cfn).exists("ApiGatewayAccount") is False  # never touched by default
    handle = as_list(resources[API_ID]["DependsOn"])
    assert handle == ["ApiGatewayAccountReady"]
    enabled = Resolver(cfn, {"ConfigureApiGatewayLoggingRole": "true"})
    assert enabled.resolve(resources["ApiGatewayAccountReady"]["Metadata"]) == {
        "ApiGatewayAccount": "<ApiGatewayAccount>"
    }
