"""The Terraform in infra/ without an apply: the variables, no state in the repository, formatting, validation,
checkov, the alert key's policy rule and the worker's rule on the job records. Every terraform command runs in a
temporary copy of infra/ (see ``tests/infra/terraform_support.py``); the apply against moto: test_terraform.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.checkov_support import clean_checkov_report
from tests.infra.infra_support import (
    ACCOUNT,
    ALARM_ARNS,
    REGION,
    VARIABLES,
    alert_key_policy_problems,
    worker_jobs_problems,
)
from tests.infra.terraform_support import INFRA_DIR, REPO_ROOT, copy_infra, terraform, terraform_env


# ------------------------------------------------------------------------------------ static --
def _blocks(text: str, kind: str) -> dict[str, str]:
    """The bodies of the top-level ``kind "name" { ... }`` blocks of an HCL file (brace matching)."""
    blocks = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, flags=re.MULTILINE):
        depth, position = 1, match.end()
        while depth:
            char = text[position]
            depth += {"{": 1, "}": -1}.get(char, 0)
            position += 1
        blocks[match.group(1)] = text[match.end() : position - 1]
    return blocks


def test_every_variable_is_described_typed_and_validated_and_only_four_are_required() -> None:
    variables = _blocks((INFRA_DIR / "variables.tf").read_text(), "variable")
    assert len(variables) >= 15
    for name, body in variables.items():
        for part in ("description", "type", "validation {"):
            assert re.search(rf"^\s*{re.escape(part)}", body, flags=re.MULTILINE), f"variable {name} has no {part}"
    required = {name for name, body in variables.items() if not re.search(r"^\s*default\s*=", body, re.MULTILINE)}
    assert required == {"alert_email", "bucket_name", "images_table_name", "jobs_table_name"}
    # The tables' names are validated alike (both are the SAM stack's outputs).
    for table in ("images_table_name", "jobs_table_name"):
        assert 'can(regex("^[A-Za-z0-9_.-]{3,255}$", var.' + table + "))" in variables[table], table


def test_the_repository_holds_no_terraform_state_or_overrides() -> None:
    assert not list(INFRA_DIR.rglob("*override.tf")), "override files belong in test copies only"
    assert not list(INFRA_DIR.rglob("*.tfstate*"))
    lock = (INFRA_DIR / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    # The only provider: nothing but hashicorp/aws is available to the deployment.
    assert lock.count('provider "') == 1


def test_visibility_timeout_is_derived_not_typed() -> None:
    sqs_tf = (INFRA_DIR / "sqs.tf").read_text()
    assert "visibility_timeout_seconds = local.queue_visibility_timeout_seconds" in sqs_tf
    assert re.search(
        r"queue_visibility_timeout_seconds\s*=\s*6 \* var\.worker_timeout_seconds \+ var\.batching_window_seconds",
        (INFRA_DIR / "main.tf").read_text(),
    )


def test_the_dead_letter_size_limit_is_derived_not_typed() -> None:
    # The worker's DEAD_LETTER_MAX_MESSAGE_BYTES is the DLQ's own max_message_size (imagegen/queue.py sizes each dead
    # letter, attributes included, against it).
    assert re.search(
        r"^\s*DEAD_LETTER_MAX_MESSAGE_BYTES\s*=\s*tostring\(aws_sqs_queue\.dead_letter\.max_message_size\)$",
        (INFRA_DIR / "lambda.tf").read_text(),
        flags=re.MULTILINE,
    )


# --------------------------------------------------------------------------------- terraform --
@pytest.mark.slow
def test_terraform_fmt_is_clean(cli_config: Path) -> None:
    terraform(["fmt", "-check", "-recursive", "-diff", str(INFRA_DIR)], cwd=REPO_ROOT, env=terraform_env(cli_config))


@pytest.mark.slow
def test_terraform_validate(cli_config: Path, tmp_path: Path) -> None:
    workdir = copy_infra(tmp_path / "infra")
    env = terraform_env(cli_config)
    terraform(["init", "-backend=false", "-input=false", "-no-color"], cwd=workdir, env=env)
    result = terraform(["validate", "-json", "-no-color"], cwd=workdir, env=env)
    report = json.loads(result.stdout)
    assert report["valid"], report
    assert report["error_count"] == 0
    assert report["warning_count"] == 0, report["diagnostics"]


def _alert_key_policy() -> dict[str, Any]:
    """The alert key's policy as the module renders it (the same statements the apply test reads back)."""
    root = {"Sid": "AccountAdministersKey", "Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    return {
        "Statement": [
            {**root, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}},
            {
                "Sid": "CloudWatchAlarmsPublishToEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": ALARM_ARNS}},
            },
            {
                "Sid": "AccountMayAliasThisKey",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:CreateAlias", "kms:UpdateAlias"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": ACCOUNT},
                    "ForAllValues:StringEquals": {"kms:ResourceAliases": "alias/imagegen-alerts"},
                },
            },
        ]
    }


def test_the_alert_key_rule_catches_an_unconditioned_service_or_wildcard_grant() -> None:
    assert alert_key_policy_problems(_alert_key_policy()) == []

    policy = _alert_key_policy()
    del policy["Statement"][1]["Condition"]["StringEquals"]  # as before: any account's alarms
    assert alert_key_policy_problems(policy) != []

    policy = _alert_key_policy()
    policy["Statement"][1]["Condition"]["ArnLike"]["aws:SourceArn"] = "arn:aws:cloudwatch:*:*:alarm:*"
    assert alert_key_policy_problems(policy) != []

    policy = _alert_key_policy()
    del policy["Statement"][2]["Condition"]["StringEquals"]  # any account's principals
    assert alert_key_policy_problems(policy) != []

    policy = _alert_key_policy()
    del policy["Statement"][2]["Condition"]["ForAllValues:StringEquals"]  # re-point an alias at any time
    assert alert_key_policy_problems(policy) != []

    policy = _alert_key_policy()
    policy["Statement"][2]["Action"] = ["kms:CreateAlias", "kms:Decrypt"]
    assert alert_key_policy_problems(policy) != []


def test_the_worker_jobs_rule_catches_puts_deletes_and_other_tables() -> None:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{VARIABLES['jobs_table_name']}"
    track = {"Sid": "TrackQueueJobs", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"]}
    index = {"Sid": "IndexQueueImages", "Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": [f"{table}-x"]}
    assert worker_jobs_problems([{**track, "Resource": [table]}, index], table) == []
    examples = {
        "puts records": {**track, "Resource": [table], "Action": [*track["Action"], "dynamodb:PutItem"]},
        "deletes records": {**track, "Resource": [table], "Action": [*track["Action"], "dynamodb:DeleteItem"]},
        "every item action": {**track, "Resource": [table], "Action": ["dynamodb:*"]},
        "every table": {**track, "Resource": [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*"]},
        "a table prefix": {**track, "Resource": [f"{table}*"]},
        "no reads": {**track, "Resource": [table], "Action": ["dynamodb:UpdateItem"]},
        "another table": {**track, "Resource": [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/billing"]},
    }
    for name, statement in examples.items():
        assert worker_jobs_problems([statement, index], table) != [], name


# ---------------------------------------------------------------------------------- checkov --
# Every skip is deliberate (reasons are inline in the .tf files); a new one must be added here too.
EXPECTED_SKIPS = {
    "infra": {
        # aws_lambda_function.worker
        "CKV_AWS_115",  # reserved concurrency: bounded by the ESM's maximum_concurrency
        "CKV_AWS_116",  # function DLQ: SQS-triggered, the queue's redrive DLQ applies
        "CKV_AWS_117",  # VPC: only public AWS endpoints
        "CKV_AWS_173",  # env-var CMK: no secrets in the environment
        "CKV_AWS_272",  # code signing: not set up for this project
        # aws_cloudwatch_log_group.worker
        "CKV_AWS_158",  # log CMK: no secrets in the logs
        "CKV_AWS_338",  # 1-year retention: a variable
        # module.alarms: the KMS key policy document ("Resource": "*" means the key itself)
        "CKV_AWS_109",
        "CKV_AWS_111",
        "CKV_AWS_356",
        # infra/bootstrap/state_bucket.tf, aws_s3_bucket.state (checked by tests/infra/test_bootstrap_apply.py)
        "CKV_AWS_18",  # access logging: would need a second bucket; CloudTrail data events instead
        "CKV_AWS_144",  # cross-region replication: versioning keeps every earlier state
        "CKV_AWS_145",  # KMS CMK: SSE-S3; access is decided by IAM and the bucket policy
        "CKV2_AWS_62",  # event notifications: nothing consumes them
    },
    "infra/modules/alarms": {"CKV_AWS_109", "CKV_AWS_111", "CKV_AWS_356"},
}


@pytest.mark.slow
@pytest.mark.parametrize("directory", sorted(EXPECTED_SKIPS))
def test_checkov_passes_and_every_skip_has_a_reason(directory: str) -> None:
    skipped = clean_checkov_report("terraform", "-d", directory)
    assert {check["check_id"] for check in skipped} == EXPECTED_SKIPS[directory]

    # And in the sources: every inline skip is `# checkov:skip=ID:reason` with a real reason.
    for path in (REPO_ROOT / directory).rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.fullmatch(r"\s*# checkov:skip=CKV2?_AWS_\d+:.{40,}", line), f"{path.name}: {line.strip()}"
