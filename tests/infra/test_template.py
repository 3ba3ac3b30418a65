"""Checks on template.yaml: the CloudFormation that the SAM transform produces, and the linters.

The template is read with cfn-lint's YAML loader (it understands ``!Ref``/``!Sub``) and transformed
with aws-sam-translator, in-process when the venv has it, otherwise with the Python of the
``aws-sam-cli`` uv tool (which bundles it). A small evaluator then resolves ``Ref``/``Fn::Sub``/
``Fn::If`` for concrete parameter values, so the assertions compare real ARNs and names.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.checkov_support import clean_checkov_report
from tests.tools import tool_spec, uv

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "imagegen-api"

API_ID = "ImageApi"
FUNCTION_ID = "GenerateImageFunction"
BUCKET_ID = "ImagesBucket"

# AWS managed policies that may be attached; none of them grants Bedrock or S3 access.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
}

# Parameter sets the template must handle: created vs existing bucket, with and without a prefix.
SCENARIOS: dict[str, dict[str, str]] = {
    "defaults": {},
    "prefix": {"KeyPrefix": "candidate42"},
    "existing-bucket": {"ImagesBucketName": "existing-bucket", "KeyPrefix": "candidate42"},
    "existing-bucket-no-prefix": {"ImagesBucketName": "existing-bucket"},
}

_TRANSFORM_SCRIPT = """
import json, sys
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

request = json.load(sys.stdin)
print(json.dumps(transform(request["template"], request["parameters"], NoManagedPolicies())))
"""

_NO_VALUE = object()


# --------------------------------------------------------------------------------------- loading --
def load_sam_template() -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]

    # A JSON round trip turns cfn-lint's node classes into plain dicts, lists and strings.
    template: dict[str, Any] = json.loads(json.dumps(cfn_yaml.load(str(TEMPLATE))))
    return template


def _translator_command() -> list[str]:
    if importlib.util.find_spec("samtranslator") is not None:
        return [sys.executable]
    return [uv(), "tool", "run", "--from", tool_spec("SAM_CLI"), "python"]


def transform_template(sam_template: dict[str, Any]) -> dict[str, Any]:
    template = json.loads(json.dumps(sam_template))
    # As `sam validate` does: a local CodeUri is only valid after `sam package`.
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    request = {"template": template, "parameters": {"AWS::Region": REGION, "AWS::Partition": "aws"}}
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    result = subprocess.run(
        [*_translator_command(), "-c", _TRANSFORM_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"SAM transform failed:\n{result.stderr}"
    transformed: dict[str, Any] = json.loads(result.stdout)
    return transformed


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_sam_template()


@pytest.fixture(scope="module")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The transformed CloudFormation template."""
    return transform_template(sam_template)


# ------------------------------------------------------------------------------------ evaluation --
class Resolver:
    """Resolves the intrinsic functions this template uses for one set of parameter values.

    A resource's ``Ref`` becomes ``<LogicalId>`` and ``Fn::GetAtt`` becomes ``<LogicalId.Attr>``.
    """

    def __init__(self, template: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> None:
        values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        values.update(overrides or {})
        self.values = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            **values,
        }
        self.conditions: Mapping[str, Any] = template.get("Conditions", {})
        self.resources: Mapping[str, Any] = template["Resources"]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Fn::If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not self.resolve(arg[0])
        if name == "Fn::And":
            return all(self.resolve(arg))
        if name == "Fn::Or":
            return any(self.resolve(arg))
        if name == "Fn::Sub":
            return self._sub(arg)
        if name == "Fn::Join":
            separator, items = arg
            assert isinstance(separator, str), f"Fn::Join's delimiter must be a literal string, not {separator}"
            return separator.join(str(item) for item in self.resolve(items))
        if name == "Fn::Split":
            delimiter, source = arg
            assert isinstance(delimiter, str), f"Fn::Split's delimiter must be a literal string, not {delimiter}"
            return str(self.resolve(source)).split(delimiter)
        if name == "Fn::Select":
            index, items = arg
            values = self.resolve(items)
            position = int(self.resolve(index))
            # CloudFormation fails the deployment on an index past the end of the list.
            assert 0 <= position < len(values), f"Fn::Select index {position} past the end of {values}"
            return values[position]
        if name == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            assert logical_id in self.resources, f"GetAtt to unknown resource {logical_id}"
            return f"<{logical_id}.{attribute}>"
        raise AssertionError(f"the test resolver does not know {name}")

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        assert name in self.resources, f"Ref to unknown name {name}"
        assert self.exists(name), f"Ref to {name}, which this parameter set does not create"
        return f"<{name}>"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        resolved = {key: self.resolve(value) for key, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in resolved:
                return str(resolved[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self._function("Fn::GetAtt", name))
            return str(self._ref(name))

        return re.sub(r"\$\{([^!}][^}]*)\}", replace, text)


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document: inline role policies, IAM policies and managed policies."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] in {"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"}:
            for policy in properties.get("Policies", []):
                yield logical_id, policy["PolicyDocument"]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            yield logical_id, properties["PolicyDocument"]


def allow_statements(
    template: Mapping[str, Any], overrides: Mapping[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of the resources that exist for one parameter set, resolved (a conditional statement
    that resolves to AWS::NoValue is not there)."""
    resolver = Resolver(template, overrides)
    return [
        (logical_id, statement)
        for logical_id, document in policy_documents(template)
        if resolver.exists(logical_id)
        for statement in resolver.resolve(as_list(document["Statement"]))
        if statement["Effect"] == "Allow"
    ]


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(action) for action in as_list(statement.get("Action", []))]


def statements_with_action(
    template: Mapping[str, Any], action: str, overrides: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    return [s for _, s in allow_statements(template, overrides) if action in actions(s)]


def function_properties(cfn: Mapping[str, Any]) -> dict[str, Any]:
    function = cfn["Resources"][FUNCTION_ID]
    assert function["Type"] == "AWS::Lambda::Function"
    properties: dict[str, Any] = function["Properties"]
    return properties


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
    assert {("/generate-image", "post"), ("/images", "get"), ("/", "get")} <= set(checked)


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


# ----------------------------------------------------------------------------- the model chain --
#: Chains (ModelId, BedrockRegion) the template must grant exactly: the default, a single id (its region from
#: BedrockRegion, as before the chain), four entries (every slot), and inference profiles of every prefix, also in
#: the last slot, next to ids that only look like one.
CHAINS: dict[str, tuple[str, str]] = {
    "default": ("amazon.titan-image-generator-v1@us-east-1,stability.stable-image-core-v1:1@us-west-2", "us-east-1"),
    "single-id": ("amazon.nova-canvas-v1:0", "us-west-2"),
    "four-entries": (
        "amazon.titan-image-generator-v2:0@us-east-1,stability.stable-image-ultra-v1:1@us-west-2,"
        "amazon.nova-canvas-v1:0,stability.sd3-5-large-v1:0@us-west-2",
        "eu-west-1",
    ),
    "profile": ("us.amazon.nova-canvas-v1:0@us-east-1,amazon.titan-image-generator-v1", "us-east-1"),
    "every-profile-prefix": (
        "eu.amazon.nova-canvas-v1:0@eu-west-1,apac.amazon.nova-canvas-v1:0@ap-northeast-1,"
        "us-gov.amazon.titan-image-generator-v2:0@us-gov-west-1,global.amazon.nova-canvas-v1:0",
        "us-east-1",
    ),
    "lookalikes": ("eu-central.model-x.v2:1.5@eu-central-1,useast.a.b,global.us.a-b.c@us-west-2", "us-west-2"),
}

#: The one Bedrock resource with a wildcard: the foundation model behind a profile, in whichever region it routes to.
ROUTED_MODEL = re.compile(r"arn:aws[a-z-]*:bedrock:\*::foundation-model/[^*?]+")


def expected_invoke_grants(chain: str, region: str, account: str = ACCOUNT) -> list[tuple[str, str]]:
    """What bedrock:InvokeModel must be allowed on for a chain, as (resource, profile condition or "") pairs, from
    imagegen.chain.parse_chain: a model's foundation-model ARN in its region; for an inference profile, the profile
    (this account, the entry's region) and the foundation model behind it in any region, only through the profile
    (bedrock:InferenceProfileArn), as AWS documents for cross-region inference."""
    from imagegen.chain import parse_chain

    grants = []
    for entry in parse_chain(chain, region):
        if entry.is_inference_profile:
            profile = f"arn:aws:bedrock:{entry.region}:{account}:inference-profile/{entry.model_id}"
            grants.append((profile, ""))
            grants.append((f"arn:aws:bedrock:*::foundation-model/{entry.base_model_id}", profile))
        else:
            grants.append((f"arn:aws:bedrock:{entry.region}::foundation-model/{entry.model_id}", ""))
    return sorted(grants)


def invoke_problems(statements: list[dict[str, Any]], chain: str, region: str, account: str = ACCOUNT) -> list[str]:
    """The Bedrock statements of a policy allow exactly bedrock:InvokeModel on the chain's grants: no other Bedrock
    action, no other resource, no route to a profile's model without the condition naming that exact profile."""
    problems, granted = [], []
    for statement in statements:
        bedrock = [action for action in actions(statement) if action.lower().startswith("bedrock:")]
        if not bedrock:
            continue
        if statement["Effect"] != "Allow" or {"NotAction", "NotResource"} & set(statement):
            problems.append(f"unexpected Bedrock statement {statement}")
            continue
        if actions(statement) != ["bedrock:InvokeModel"]:
            problems.append(f"actions {actions(statement)}, not bedrock:InvokeModel alone")
        condition = statement.get("Condition", {})
        equals = condition.get("StringEquals", {})
        if set(condition) - {"StringEquals"} or set(equals) - {"bedrock:InferenceProfileArn"}:
            problems.append(f"unexpected condition {condition}")
        profiles = [str(value) for value in as_list(equals.get("bedrock:InferenceProfileArn", []))]
        if len(profiles) > 1:
            problems.append(f"a statement conditioned on several profiles {profiles}")
        granted += [(str(resource), profiles[0] if profiles else "") for resource in as_list(statement["Resource"])]
    expected = expected_invoke_grants(chain, region, account)
    missing = [grant for grant in expected if grant not in granted]
    extra = [grant for grant in granted if grant not in expected]
    problems += [f"bedrock:InvokeModel not allowed on {grant}" for grant in missing]
    problems += [f"bedrock:InvokeModel allowed beyond the chain on {grant}" for grant in extra]
    if sorted(granted) != expected and not (missing or extra):
        problems.append(f"duplicated grants {sorted(granted)}")
    return problems


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_the_function_may_invoke_exactly_the_chain(cfn, case):
    chain, region = CHAINS[case]
    statements = function_role_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
    assert invoke_problems(statements, chain, region) == []
    # Nothing else in the stack may invoke a model.
    others = [
        (logical_id, statement)
        for logical_id, statement in allow_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
        if any(action.lower().startswith("bedrock:") for action in actions(statement)) and statement not in statements
    ]
    assert others == []


def test_the_invoke_rule_catches_a_broader_or_missing_grant(cfn):
    chain, region = CHAINS["profile"]
    statements = function_role_statements(cfn, {"ModelId": chain, "BedrockRegion": region})
    assert invoke_problems(statements, chain, region) == []
    bedrock = [i for i, s in enumerate(statements) if "bedrock:InvokeModel" in actions(s)]
    (route,) = [i for i in bedrock if "Condition" in statements[i]]
    (profile,) = [i for i in bedrock if "inference-profile/" in str(statements[i]["Resource"]) and i != route]
    (model,) = [i for i in bedrock if i not in (route, profile)]

    def broken(index: int, **changes: Any) -> list[dict[str, Any]]:
        copy: list[dict[str, Any]] = json.loads(json.dumps(statements))
        copy[index].update(changes)
        for key in [key for key, value in changes.items() if value is None]:
            del copy[index][key]
        return copy

    any_model = {
        "Sid": "Any",
        "Effect": "Allow",
        "Action": "bedrock:InvokeModel",
        "Resource": "arn:aws:bedrock:*::foundation-model/*",
    }
    examples = {
        "a model of any region": broken(
            model, Resource="arn:aws:bedrock:*::foundation-model/amazon.titan-image-generator-v1"
        ),
        "another region": broken(
            model, Resource="arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-image-generator-v1"
        ),
        "every profile": broken(profile, Resource="arn:aws:bedrock:us-east-1:123456789012:inference-profile/*"),
        "the route without its condition": broken(route, Condition=None),
        "the route through any profile": broken(route, Condition={"StringLike": {"bedrock:InferenceProfileArn": "*"}}),
        "more actions": broken(model, Action=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]),
        "every Bedrock action": broken(model, Action="bedrock:*"),
        "an entry left out": [s for i, s in enumerate(statements) if i != model],
        "one more statement": [*statements, any_model],
    }
    for name, example in examples.items():
        assert invoke_problems(example, chain, region) != [], name


def model_id_pattern(template: Mapping[str, Any]) -> re.Pattern[str]:
    return re.compile(template["Parameters"]["ModelId"]["AllowedPattern"])


#: Chains ModelId's AllowedPattern must refuse (CloudFormation matches the whole value).
REFUSED_CHAINS = {
    "five entries": "a.b,c.d,e.f,g.h,i.j",
    "a space after a comma": "amazon.titan-image-generator-v1, amazon.nova-canvas-v1:0",
    "a leading space": " amazon.titan-image-generator-v1",
    "a trailing space": "amazon.titan-image-generator-v1 ",
    "a space before the region": "amazon.titan-image-generator-v1 @us-east-1",
    "empty": "",
    "an empty entry": "a.b,,c.d",
    "a trailing comma": "a.b,",
    "no dot": "titan",
    "upper case": "Amazon.titan-image-generator-v1",
    "an empty region": "a.b@",
    "two regions": "a.b@us-east-1@us-west-2",
    "not a region": "a.b@moon",
    "a wildcard": "amazon.*",
    "a semicolon": "a.b;c.d",
    "a caret": "^us.a.b",
}


def test_model_id_allows_one_to_four_entries_without_spaces(sam_template):
    pattern = model_id_pattern(sam_template)
    for chain, _ in CHAINS.values():
        assert pattern.fullmatch(chain), chain
    assert pattern.fullmatch(sam_template["Parameters"]["ModelId"]["Default"])
    for name, chain in REFUSED_CHAINS.items():
        assert pattern.fullmatch(chain) is None, name
    # As many entries as the policy has slots, and no more.
    assert pattern.fullmatch(",".join(["a.b"] * len(chain_slots(sam_template))))
    assert pattern.fullmatch(",".join(["a.b"] * (len(chain_slots(sam_template)) + 1))) is None


def chain_slots(template: Mapping[str, Any]) -> list[int]:
    """The slot indexes of the model chain: one HasModel<i> condition each."""
    return sorted(int(name.removeprefix("HasModel")) for name in template["Conditions"] if name.startswith("HasModel"))


def _slot_shape(template: Mapping[str, Any], index: int) -> str:
    """Slot ``index``'s conditions and statements as JSON, with its index replaced by "<i>"."""
    policy = template["Resources"][FUNCTION_ID]["Properties"]["Policies"][0]["Statement"]
    statements = [s for s in policy if "Fn::If" in s and s["Fn::If"][0] in (f"HasModel{index}", f"IsProfile{index}")]
    conditions = {name: template["Conditions"][f"{name}{index}"] for name in ("HasModel", "IsProfile")}
    text = json.dumps({"conditions": conditions, "statements": statements}, sort_keys=True)
    text = text.replace(
        f'{{"Fn::Select": [{index}, {{"Fn::Split": [",", ', '{"Fn::Select": ["<i>", {"Fn::Split": [",", '
    )
    return re.sub(rf"\b(HasModel|IsProfile|InvokeModel){index}(?!\d)", r"\1<i>", text)


def test_the_slots_differ_only_in_their_index(sam_template):
    slots = chain_slots(sam_template)
    assert slots == list(range(4))
    assert sorted(name for name in sam_template["Conditions"] if name.startswith("IsProfile")) == [
        f"IsProfile{i}" for i in slots
    ]
    shapes = {index: _slot_shape(sam_template, index) for index in slots}
    assert '"<i>"' in shapes[0] and "HasModel<i>" in shapes[0]
    assert all(shape == shapes[0] for shape in shapes.values()), "a slot differs from slot 0 in more than its index"
    # Two statements a slot, nothing else conditional in the policy.
    policy = sam_template["Resources"][FUNCTION_ID]["Properties"]["Policies"][0]["Statement"]
    assert len([s for s in policy if "Fn::If" in s]) == 2 * len(slots)

    # The check sees a slot edited alone.
    broken = json.loads(json.dumps(sam_template))
    broken["Conditions"]["IsProfile2"]["Fn::Not"][0]["Fn::Equals"][1] = "x"
    assert _slot_shape(broken, 2) != shapes[0]


#: The functions the Conditions section uses: CloudFormation evaluates Fn::Select/Fn::Split/Fn::Join there (cfn-lint
#: E8003 allows Ref, Fn::FindInMap, Fn::Sub, Fn::Join, Fn::Select, Fn::Split in Fn::Equals), nothing more is needed.
CONDITION_FUNCTIONS = {
    "Fn::Not",
    "Fn::Equals",
    "Fn::And",
    "Fn::Or",
    "Condition",
    "Ref",
    "Fn::Select",
    "Fn::Split",
    "Fn::Join",
}


def _functions(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _functions(item)
    elif isinstance(node, dict):
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                yield key, arg
        for value in node.values():
            yield from _functions(value)


def intrinsic_problems(template: Mapping[str, Any]) -> list[str]:
    """Fn::Split's and Fn::Join's delimiters are literal strings and Fn::Select's index a literal number (CloudFormation
    allows no function there); the Conditions use only CONDITION_FUNCTIONS."""
    problems = []
    for name, arg in _functions(template):
        if name in ("Fn::Split", "Fn::Join") and not isinstance(arg[0], str):
            problems.append(f"{name} with the delimiter {arg[0]!r}")
        if name == "Fn::Select" and not str(arg[0]).isdigit():
            problems.append(f"Fn::Select with the index {arg[0]!r}")
    for condition, body in template.get("Conditions", {}).items():
        problems += [f"{condition} uses {name}" for name, _ in _functions(body) if name not in CONDITION_FUNCTIONS]
    return problems


def test_the_functions_are_used_where_cloudformation_allows_them(sam_template):
    assert intrinsic_problems(sam_template) == []
    used = {name for body in sam_template["Conditions"].values() for name, _ in _functions(body)}
    assert {"Fn::Select", "Fn::Split", "Fn::Join"} <= used  # the chain's conditions are really checked


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::Sub": "${ModelId}"}, ""]}),
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::If": ["HasModel0", "a", "b"]}, ""]}),
        lambda t: t["Conditions"].update(X={"Fn::Equals": [{"Fn::Split": [{"Ref": "KeyPrefix"}, "a"]}, ""]}),
        lambda t: t["Outputs"].update(X={"Value": {"Fn::Join": [{"Ref": "KeyPrefix"}, ["a"]]}}),
        lambda t: t["Outputs"].update(X={"Value": {"Fn::Select": [{"Ref": "LogRetentionDays"}, ["a"]]}}),
    ],
)
def test_the_intrinsic_rule_catches_a_function_cloudformation_refuses(sam_template, change):
    broken = json.loads(json.dumps(sam_template))
    change(broken)
    assert intrinsic_problems(broken) != []


# ------------------------------------------------------------------------------- the boundary --
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/imagegen-workload-boundary"


def boundary_problems(cfn: Mapping[str, Any], overrides: Mapping[str, str]) -> tuple[list[str], int]:
    """Every role the parameter set creates carries PermissionsBoundaryArn when it is set, and no boundary when it is
    empty; also how many roles were checked."""
    resolver = Resolver(cfn, overrides)
    expected = overrides.get("PermissionsBoundaryArn", "")
    problems, checked = [], 0
    for logical_id, role in resources_of_type(cfn, "AWS::IAM::Role").items():
        if not resolver.exists(logical_id):
            continue
        checked += 1
        boundary = resolver.resolve(role["Properties"]).get("PermissionsBoundary")
        if boundary != (expected or None):
            problems.append(f"{logical_id}: boundary {boundary!r}, expected {expected or None!r}")
    return problems, checked


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


def function_role_statements(cfn: Mapping[str, Any], overrides: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every statement (Allow and Deny) of the API function's role, resolved for one parameter set."""
    role = function_properties(cfn)["Role"]["Fn::GetAtt"][0]
    resolver = Resolver(cfn, overrides)
    return [
        statement
        for logical_id, document in policy_documents(cfn)
        if logical_id == role
        for statement in resolver.resolve(as_list(document["Statement"]))
    ]


def _iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcards in Action and Resource: `*` any characters (also `/`), `?` one character."""
    regex = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(regex, value) is not None


def s3_object_allowed(statements: list[dict[str, Any]], action: str, object_arn: str) -> bool:
    """IAM's evaluation for an object ARN (no conditions in these statements): an explicit Deny wins."""

    def applies(statement: Mapping[str, Any]) -> bool:
        assert "Condition" not in statement, statement
        return any(_iam_match(a.lower(), action.lower()) for a in actions(statement)) and any(
            _iam_match(resource, object_arn) for resource in as_list(statement["Resource"])
        )

    matching = [statement for statement in statements if applies(statement)]
    return bool(matching) and all(statement["Effect"] == "Allow" for statement in matching)


def api_object_problems(statements: list[dict[str, Any]], bucket: str, key_prefix: str) -> list[str]:
    """The API writes its own images and sidecars directly in generated_images/ and nowhere else — not the queue
    worker's from_queue/ (images, sidecars, claims, outcomes), no other subfolder or prefix; it reads images
    (PNG), its own and the queue's (the gallery presigns both), and nothing else."""
    from imagegen.storage import CLAIMS, OUTCOMES, QUEUE_FOLDER, image_key, images_base, sidecar_key

    stem = "4f0c7a52-6a47-4d2e-9c1e-0b6c1c2f1a3e"
    own = image_key(key_prefix, stem, 0)
    queue = image_key(key_prefix, "msg-1", 0, QUEUE_FOLDER)
    state = [f"{images_base(key_prefix)}/{QUEUE_FOLDER}/{kind}/msg-1" for kind in (CLAIMS, OUTCOMES)]
    elsewhere = [
        image_key(key_prefix, stem, 0, "any/deeper/folder"),
        f"{images_base(key_prefix)}-copy/{stem}-0.png",
        f"elsewhere/{stem}-0.png",
    ]
    rules = {
        "s3:PutObject": ([own, sidecar_key(own), image_key(key_prefix, stem, 3)],
                         [queue, sidecar_key(queue), *state, *elsewhere]),
        "s3:GetObject": ([own, queue], [sidecar_key(queue), *state, *elsewhere[1:]]),
    }  # fmt: skip
    problems = []
    for action, (allowed, denied) in rules.items():
        for key in allowed:
            if not s3_object_allowed(statements, action, f"arn:aws:s3:::{bucket}/{key}"):
                problems.append(f"{action} {key} is not allowed")
        for key in denied:
            if s3_object_allowed(statements, action, f"arn:aws:s3:::{bucket}/{key}"):
                problems.append(f"{action} {key} is allowed")
    return problems


def _bucket(overrides: Mapping[str, str]) -> str:
    return overrides.get("ImagesBucketName") or f"<{BUCKET_ID}>"


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


# ----------------------------------------------------------------------------------------- bucket --
def test_bucket_is_created_only_without_a_bucket_name(cfn, sam_template):
    bucket = cfn["Resources"][BUCKET_ID]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Condition"] == "CreateBucket"
    assert sam_template["Parameters"]["ImagesBucketName"]["Default"] == ""
    assert Resolver(cfn).exists(BUCKET_ID)
    assert Resolver(cfn, {"ImagesBucketName": "existing-bucket"}).exists(BUCKET_ID) is False
    for logical_id in resources_of_type(cfn, "AWS::S3::BucketPolicy"):
        assert cfn["Resources"][logical_id]["Condition"] == "CreateBucket"


def test_created_bucket_is_private_and_encrypted(cfn):
    properties = cfn["Resources"][BUCKET_ID]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rules = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules
    assert all(r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"} for r in rules)
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert properties["VersioningConfiguration"]["Status"] == "Enabled"
    assert "AccessControl" not in properties


def test_bucket_policy_denies_plain_http(cfn):
    policies = resources_of_type(cfn, "AWS::S3::BucketPolicy")
    assert len(policies) == 1
    properties = next(iter(policies.values()))["Properties"]
    assert properties["Bucket"] == {"Ref": BUCKET_ID}
    resolver = Resolver(cfn)
    denials = [
        s
        for s in as_list(properties["PolicyDocument"]["Statement"])
        if s["Effect"] == "Deny"
        and s["Principal"] in ("*", {"AWS": "*"})
        and "s3:*" in as_list(s["Action"])
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(denials) == 1
    assert set(as_list(resolver.resolve(denials[0]["Resource"]))) == {
        f"<{BUCKET_ID}.Arn>",
        f"<{BUCKET_ID}.Arn>/*",
    }


# ---------------------------------------------------------------------------------------- outputs --
def test_outputs(cfn):
    outputs = cfn["Outputs"]
    assert {"ApiUrl", "ApiKeyId", "ImagesBucketName", "ImagesTableName", "PageUrl", "FunctionName"} <= set(outputs)
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


# --------------------------------------------------------------------------------------- linters --
def test_every_checkov_skip_in_the_template_has_a_reason(sam_template):
    skips = [
        (logical_id, skip)
        for logical_id, resource in sam_template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(str(skip.get("comment", "")).split()) >= 5, f"{logical_id}: {skip['id']} needs a reason"


@pytest.mark.slow
def test_cfn_lint_is_clean():
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

    matches = lint_file(TEMPLATE, config=ManualArgs(regions=[REGION]))
    problems = [str(m) for m in matches if not m.rule.id.startswith("I")]
    assert problems == []


@pytest.mark.slow
def test_sam_validate_lint():
    cmd = [uv(), "tool", "run", "--from", tool_spec("SAM_CLI"), "sam", "validate", "--lint"]
    cmd += ["--template", str(TEMPLATE), "--region", REGION]
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_checkov_passes_and_every_skip_has_a_reason():
    skipped = clean_checkov_report("cloudformation", "-f", str(TEMPLATE))
    assert skipped  # the template's skips (each with its reason) are reported, not silently dropped


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


def test_the_api_may_write_and_query_the_index_table_and_nothing_else_of_dynamodb(cfn):
    statements = [s for _, s in allow_statements(cfn, {}) if any(a.startswith("dynamodb:") for a in actions(s))]
    (statement,) = statements
    assert sorted(actions(statement)) == ["dynamodb:PutItem", "dynamodb:Query"]
    assert as_list(statement["Resource"]) == ["<ImagesTable.Arn>"]
    environment = function_properties(cfn)["Environment"]["Variables"]
    assert Resolver(cfn).resolve(environment["IMAGES_TABLE_NAME"]) == "<ImagesTable>"
