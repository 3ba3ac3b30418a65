"""infra/ in tests: the variable values the apply test of test_terraform.py gives, what it expects back, the
helpers that read the applied deployment and plans of it, the alert key's policy rule and the worker's rule on the
job records."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.infra.iam_evaluator import decide
from tests.infra.terraform_support import REPO_ROOT, Deployment, terraform

REGION = "eu-west-1"
BUCKET = "imagegen-infra-test-images"
ALERT_EMAIL = "ops@example.com"
#: The Lambda zips `make package` builds, by the Terraform variable that points to each.
ZIPS = {"worker_zip_path": "sqs_worker.zip", "model_watch_zip_path": "model_watch.zip"}
ACCOUNT = "123456789012"  # moto's account
#: The bootstrap's permissions boundary, as a policy the apply test creates in moto first (AWS refuses a role whose
#: boundary does not exist).
BOUNDARY_NAME = "imagegen-workload-boundary"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{BOUNDARY_NAME}"

# Non-default values for the variables whose wiring the apply test checks.
VARIABLES: dict[str, str] = {
    "alert_email": ALERT_EMAIL,
    "bucket_name": BUCKET,
    "images_table_name": "imagegen-api-ImagesTable-TEST",
    "jobs_table_name": "imagegen-api-JobsTable-TEST",
    "aws_region": REGION,
    "key_prefix": "candidate",
    "worker_timeout_seconds": "120",
    "worker_memory_mb": "1024",
    "worker_concurrency": "4",
    "batch_size": "5",
    "batching_window_seconds": "2",
    "max_concurrency": "3",
    "max_receive_count": "6",
    "alarm_age_threshold_seconds": "600",
    "log_retention_days": "14",
    "model_cooldown_seconds": "120",
    "permissions_boundary_arn": BOUNDARY,
    "retry_base_seconds": "45",
    "log_level": "DEBUG",
    "model_watch_days": "30",
}
EXPECTED_VISIBILITY_TIMEOUT = 6 * 120 + 2

EXPECTED_OUTPUTS = {
    "queue_url",
    "queue_arn",
    "queue_name",
    "dlq_url",
    "dlq_arn",
    "function_name",
    "event_source_mapping_uuid",
    "topic_arn",
    "alarm_names",
    "model_watch_function_name",
    "model_watch_rule_name",
}


def _lambda_zips(directory: Path) -> dict[str, str]:
    """Private copies of the Lambda zips in ``directory`` (other tests rebuild build/*.zip in place), as the
    Terraform variables that point to them."""
    subprocess.run(["make", "--no-print-directory", "package"], cwd=REPO_ROOT, check=True, capture_output=True)
    return {
        variable: str(shutil.copy2(REPO_ROOT / "build" / name, directory / name)) for variable, name in ZIPS.items()
    }


def _zip_variables(deployment: Deployment) -> dict[str, str]:
    """The zip variables of the applied deployment (its copies sit next to its working directory)."""
    return {variable: str(deployment.workdir.parent / name) for variable, name in ZIPS.items()}


def _assert_tls_only(policy: dict[str, Any], queue_arn: str) -> None:
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sqs:*"
    assert statement["Resource"] == queue_arn
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _plan(deployment: Deployment, **variables: str) -> dict[str, Any]:
    """``terraform show -json`` of a plan of the applied deployment with other variable values (nothing is applied;
    -refresh=false: the resources are as the apply left them)."""
    values = {**VARIABLES, **_zip_variables(deployment), **variables}
    plan_file = deployment.workdir / "other-values.tfplan"
    var_args = [f"-var={name}={value}" for name, value in values.items()]
    plan = ["plan", "-input=false", "-no-color", "-lock=false", "-refresh=false", f"-out={plan_file}", *var_args]
    terraform(plan, cwd=deployment.workdir, env=deployment.env)
    shown = terraform(["show", "-json", "-no-color", str(plan_file)], cwd=deployment.workdir, env=deployment.env)
    plan_json: dict[str, Any] = json.loads(shown.stdout)
    return plan_json


def _after(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """A resource's planned values."""
    (change,) = [change for change in plan["resource_changes"] if change["address"] == address]
    after: dict[str, Any] = change["change"]["after"]
    return after


def _read(plan: dict[str, Any], address: str) -> dict[str, Any]:
    """A data source the plan read (it depends on nothing that the plan changes)."""
    resources = plan["prior_state"]["values"]["root_module"]["resources"]
    (values,) = [resource["values"] for resource in resources if resource["address"] == address]
    return dict(values)


ALARM_ARNS = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:imagegen-*"


def alert_key_policy_problems(policy: dict[str, Any]) -> list[str]:
    """The alert key's policy: CloudWatch may use it only on behalf of this account's alarms of the module
    (aws:SourceAccount, aws:SourceArn), and the one grant to any principal ("*") is limited to this account and to
    pointing the module's alias at the key (see infra/bootstrap/iam_terraform.tf, KMS)."""
    problems = []
    for statement in _as_list_of(policy["Statement"]):
        principal = statement["Principal"]
        conditions = statement.get("Condition", {})
        actions = set(_as_list(statement["Action"]))
        if principal == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}:
            continue  # the account's own administrators (IAM policies decide)
        if principal == {"Service": "cloudwatch.amazonaws.com"}:
            if actions != {"kms:Decrypt", "kms:GenerateDataKey*"}:
                problems.append(f"CloudWatch may {sorted(actions)}")
            if conditions.get("StringEquals", {}).get("aws:SourceAccount") != ACCOUNT:
                problems.append("CloudWatch's use of the key has no aws:SourceAccount condition for this account")
            if conditions.get("ArnLike", {}).get("aws:SourceArn") != ALARM_ARNS:
                problems.append(f"CloudWatch's use of the key is not limited to the alarms {ALARM_ARNS}")
        elif principal in ({"AWS": "*"}, "*"):
            if actions - {"kms:CreateAlias", "kms:UpdateAlias"}:
                problems.append(f"any principal may {sorted(actions)}")
            if conditions.get("StringEquals", {}).get("kms:CallerAccount") != ACCOUNT:
                problems.append("a grant to any principal is not limited to this account")
            aliases = conditions.get("ForAllValues:StringEquals", {}).get("kms:ResourceAliases")
            if _as_list(aliases or []) != ["alias/imagegen-alerts"]:
                problems.append("a grant to any principal is not limited to a key without other aliases")
        else:
            problems.append(f"unexpected principal {principal}")
    return problems


def _as_list_of(statements: Any) -> list[dict[str, Any]]:
    return [statements] if isinstance(statements, dict) else list(statements)


def worker_jobs_problems(statements: list[dict[str, Any]], table_arn: str) -> list[str]:
    """The worker reads (GetItem) and updates (UpdateItem: claim, record, end) job records in exactly the jobs table,
    and nothing next to it: no PutItem or DeleteItem (POST /jobs creates records, TTL removes them), no Query or
    Scan, none of these on another table, no wildcard. Checked as requests with tests/infra/iam_evaluator.py."""
    table = table_arn.rsplit("/", 1)[1]
    other_tables = [table_arn.replace(f"/{table}", "/billing"), table_arn.replace(f"/{table}", f"/{table}-copy"),
                    table_arn.replace(f":{REGION}:", ":us-east-1:")]  # fmt: skip
    allowed = [("dynamodb:GetItem", table_arn), ("dynamodb:UpdateItem", table_arn)]
    denied_actions = ("PutItem", "DeleteItem", "Query", "Scan", "BatchWriteItem", "DeleteTable", "UpdateTable")
    denied = [(f"dynamodb:{action}", table_arn) for action in denied_actions]
    denied += [(action, other) for other in other_tables for action in ("dynamodb:GetItem", "dynamodb:UpdateItem")]
    problems = [f"{a} on {r} is not allowed" for a, r in allowed if decide(statements, a, r) != "Allow"]
    problems += [f"{a} on {r} is allowed" for a, r in denied if decide(statements, a, r) == "Allow"]
    for statement in statements:
        if any(action.lower().startswith("dynamodb:") for action in _as_list(statement["Action"])):
            problems += [f"dynamodb on {r}" for r in _as_list(statement["Resource"]) if "*" in r or "?" in r]
    return problems
