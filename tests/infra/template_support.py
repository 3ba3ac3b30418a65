"""Reading template.yaml in tests: the CloudFormation that the SAM transform produces, and an evaluator of its
intrinsic functions (shared by the test_template*.py modules and tests/infra/test_model_chain_defaults.py).

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
