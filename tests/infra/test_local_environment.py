"""The local stack's mirror of the worker's environment (``local_stack.deployment.WORKER_ENVIRONMENT``) is what
infra/lambda.tf gives the function: the same variables, and Terraform's literals and variable defaults where the
mirror has a value. (The API function's environment is read from template.yaml itself: tests/unit/
test_local_deployment.py.)"""

from __future__ import annotations

import re

from local_stack.deployment import WORKER_ENVIRONMENT
from tests.infra.terraform_support import INFRA_DIR

_VARIABLES_BLOCK = re.compile(
    r'resource "aws_lambda_function" "worker" \{.*?\n  environment \{\n    variables = \{\n(?P<body>.*?)\n    \}',
    re.DOTALL,
)
_ASSIGNMENT = re.compile(r"^\s+(?P<name>[A-Z][A-Z0-9_]*)\s*=\s*(?P<expression>\S.*?)\s*$", re.MULTILINE)
_VARIABLE = re.compile(r"^(?:tostring\()?var\.(?P<name>[a-z0-9_]+)\)?$")
_LITERAL = re.compile(r'^"(?P<value>[^"$]*)"$')


def variable_default(name: str) -> str | None:
    """The default of ``variable "name"`` in infra/variables.tf, as the string Lambda gets; None without one."""
    text = (INFRA_DIR / "variables.tf").read_text()
    block = re.search(rf'^variable "{name}" \{{\n(?P<body>.*?)^\}}', text, re.DOTALL | re.MULTILINE)
    assert block, f"infra/variables.tf has no variable {name}"
    default = re.search(r"^  default\s*=\s*(?P<value>.+)$", block["body"], re.MULTILINE)
    return None if default is None else default["value"].strip().strip('"')


def terraform_worker_environment() -> dict[str, str | None]:
    """infra/lambda.tf's worker environment: a literal, a variable's default, or None (known at apply time)."""
    block = _VARIABLES_BLOCK.search((INFRA_DIR / "lambda.tf").read_text())
    assert block, "infra/lambda.tf: no environment block in aws_lambda_function.worker"
    environment: dict[str, str | None] = {}
    for assignment in _ASSIGNMENT.finditer(block["body"]):
        expression = assignment["expression"]
        if literal := _LITERAL.match(expression):
            environment[assignment["name"]] = literal["value"]
        elif variable := _VARIABLE.match(expression):
            environment[assignment["name"]] = variable_default(variable["name"])
        else:
            environment[assignment["name"]] = None
    return environment


def test_the_mirror_has_the_variables_terraform_gives_the_worker() -> None:
    terraform = terraform_worker_environment()
    assert len(terraform) >= 15
    assert set(WORKER_ENVIRONMENT) == set(terraform)


def test_the_mirror_has_terraforms_values_where_it_has_one() -> None:
    terraform = terraform_worker_environment()
    mirrored = {name: value for name, value in WORKER_ENVIRONMENT.items() if value is not None}
    assert {"BEDROCK_READ_TIMEOUT_SECONDS", "MODEL_COOLDOWN_SECONDS", "POWERTOOLS_SERVICE_NAME"} <= set(mirrored)
    assert {name: terraform.get(name) for name in mirrored} == mirrored | {
        # The DLQ's own MaximumMessageSize, known at apply time: the provider's default, which the mirror takes.
        "DEAD_LETTER_MAX_MESSAGE_BYTES": None
    }
