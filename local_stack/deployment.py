"""Each function as AWS runs it, so that the local stack gives each handler what it gets there.

* The API function: its timeout and environment are read from template.yaml. A variable the template writes (a
  literal, or a ``!Ref`` to a parameter, which becomes the parameter's default) keeps that value; one known only
  at deploy time (``!If``, ``!Sub``, a ``!Ref`` to a resource: the bucket, the tables, the queue URL) is the local
  stack's to give.
* The queue worker: Terraform's environment (infra/lambda.tf) cannot be read without Terraform, so
  ``WORKER_ENVIRONMENT`` mirrors it, with the variables' defaults; tests/infra/test_local_environment.py compares
  it with what ``terraform plan`` gives the function.

``FunctionSpec.environment_with`` refuses a local value for a variable the function does not have, and a
deploy-time variable left without one: a variable added to the template or to Terraform breaks the local stack
until it is given here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagegen.config import (
    DEFAULT_BEDROCK_READ_TIMEOUT_SECONDS,
    DEFAULT_DEAD_LETTER_MAX_MESSAGE_BYTES,
    DEFAULT_MODEL_COOLDOWN_SECONDS,
)

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
API_FUNCTION = "GenerateImageFunction"


@dataclass(frozen=True)
class Intrinsic:
    """A CloudFormation intrinsic function as the template writes it: ``!Ref X`` is ``Intrinsic("Ref", "X")``."""

    function: str
    argument: Any


class _TemplateLoader(yaml.SafeLoader):
    """Reads a CloudFormation template, keeping its short-form intrinsic functions (``!Ref``, ``!If``, …)."""


def _intrinsic(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> Intrinsic:
    argument: Any
    if isinstance(node, yaml.ScalarNode):
        argument = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        argument = loader.construct_sequence(node, deep=True)
    else:
        argument = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Intrinsic(suffix, argument)


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as a dictionary, its intrinsic functions as ``Intrinsic`` values."""
    return yaml.load(path.read_text(encoding="utf-8"), _TemplateLoader)  # type: ignore[no-any-return]  # noqa: S506 - a SafeLoader


@dataclass(frozen=True)
class FunctionSpec:
    """A function's environment: a value of ``None`` is only known at deploy time."""

    name: str
    environment: Mapping[str, str | None]

    def environment_with(self, local: Mapping[str, str]) -> dict[str, str]:
        """The environment with the local stack's values for the deploy-time variables (and for any other it
        chooses to set); ``ValueError`` for a variable the function lacks or a deploy-time one left unset."""
        unknown = sorted(set(local) - set(self.environment))
        if unknown:
            raise ValueError(f"{self.name} has no environment variable {', '.join(unknown)} in AWS")
        unset = sorted(name for name, value in self.environment.items() if value is None and name not in local)
        if unset:
            raise ValueError(f"{self.name}: the local stack gives no value for {', '.join(unset)}")
        deployed = {name: value for name, value in self.environment.items() if value is not None}
        return {**deployed, **local}


def _api_properties(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (load_template() if template is None else template)["Resources"][API_FUNCTION]["Properties"]  # type: ignore[no-any-return]


def api_timeout_seconds(template: Mapping[str, Any] | None = None) -> float:
    """The API function's timeout in template.yaml."""
    return float(_api_properties(template)["Timeout"])


def api_function(template: Mapping[str, Any] | None = None) -> FunctionSpec:
    """The API function's environment as template.yaml deploys it."""
    template = load_template() if template is None else template
    parameters: Mapping[str, Any] = template["Parameters"]
    properties = _api_properties(template)

    def value(raw: Any) -> str | None:
        if isinstance(raw, Intrinsic):
            is_parameter = raw.function == "Ref" and raw.argument in parameters
            return str(parameters[raw.argument].get("Default", "")) if is_parameter else None
        return str(raw)

    variables = properties["Environment"]["Variables"]
    return FunctionSpec(
        name=API_FUNCTION,
        environment={name: value(raw) for name, raw in variables.items()},
    )


#: The worker's environment as infra/lambda.tf sets it with Terraform's defaults; ``None``: set at deploy time.
WORKER_ENVIRONMENT: Mapping[str, str | None] = {
    "BUCKET_NAME": None,
    "IMAGES_TABLE_NAME": None,
    "JOBS_TABLE_NAME": None,
    "KEY_PREFIX": None,
    "MODEL_ID": None,
    "BEDROCK_REGION": None,
    "MODEL_COOLDOWN_SECONDS": str(DEFAULT_MODEL_COOLDOWN_SECONDS),
    "BEDROCK_READ_TIMEOUT_SECONDS": str(DEFAULT_BEDROCK_READ_TIMEOUT_SECONDS),
    "DEAD_LETTER_QUEUE_URL": None,
    "DEAD_LETTER_MAX_MESSAGE_BYTES": str(DEFAULT_DEAD_LETTER_MAX_MESSAGE_BYTES),
    "WORKER_CONCURRENCY": None,
    "MAX_RECEIVE_COUNT": None,
    "CLAIM_TTL_SECONDS": None,
    "RETRY_BASE_SECONDS": None,
    "POWERTOOLS_SERVICE_NAME": "imagegen-worker",
    "POWERTOOLS_METRICS_NAMESPACE": "ImageGen",
    "POWERTOOLS_LOG_LEVEL": None,
}
WORKER_FUNCTION = FunctionSpec(name="worker (infra/lambda.tf)", environment=WORKER_ENVIRONMENT)


def function_settings() -> frozenset[str]:
    """Every variable either function is configured by in AWS: none of them may reach a local service from the
    shell that started the stack."""
    return frozenset(api_function().environment) | frozenset(WORKER_ENVIRONMENT)
