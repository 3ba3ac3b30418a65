"""The Terraform in infra/: formatting, validation, checkov, and a real ``terraform apply`` against moto.

Every terraform command runs in a temporary copy of infra/ with its own CLI configuration (see
``tests/terraform_support.py``), so the repository never gets a ``.terraform/``, a state file or an
``override.tf``. The apply test starts a moto server in this process, points every AWS endpoint of the
provider at it from an ``override.tf`` in the copy, applies, and then inspects what was created with boto3.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagegen.config import DEFAULT_MODEL_ID
from tests.infra.checkov_support import clean_checkov_report
from tests.infra.terraform_support import (
    INFRA_DIR,
    REPO_ROOT,
    Deployment,
    copy_infra,
    moto_override,
    moto_server,
    terraform,
    terraform_binary,
    terraform_env,
    write_cli_config,
)
from tests.infra.test_template import invoke_problems

REGION = "eu-west-1"
BUCKET = "imagegen-infra-test-images"
ALERT_EMAIL = "ops@example.com"
ZIP = REPO_ROOT / "build" / "sqs_worker.zip"
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
}


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


def test_every_variable_is_described_typed_and_validated_and_only_three_are_required() -> None:
    variables = _blocks((INFRA_DIR / "variables.tf").read_text(), "variable")
    assert len(variables) >= 15
    for name, body in variables.items():
        for part in ("description", "type", "validation {"):
            assert re.search(rf"^\s*{re.escape(part)}", body, flags=re.MULTILINE), f"variable {name} has no {part}"
    required = {name for name, body in variables.items() if not re.search(r"^\s*default\s*=", body, re.MULTILINE)}
    assert required == {"alert_email", "bucket_name", "images_table_name"}


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


# --------------------------------------------------------------------------------- terraform --
@pytest.fixture(scope="module")
def cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    terraform_binary()
    return write_cli_config(tmp_path_factory.mktemp("terraform-cli"))


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


# ------------------------------------------------------------------------------- moto apply --
def _worker_zip(directory: Path) -> Path:
    """A private copy of the worker zip (other tests rebuild build/sqs_worker.zip in place)."""
    subprocess.run(["make", "--no-print-directory", "package"], cwd=REPO_ROOT, check=True, capture_output=True)
    return Path(shutil.copy2(ZIP, directory / "sqs_worker.zip"))


@pytest.fixture(scope="module")
def deployment(cli_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    scratch = tmp_path_factory.mktemp("infra-apply")
    zip_path = _worker_zip(scratch)
    workdir = copy_infra(scratch / "infra")
    with moto_server() as endpoint:
        (workdir / "override.tf").write_text(moto_override(endpoint))
        deployment = Deployment(endpoint, workdir, terraform_env(cli_config), {})
        deployment.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        deployment.client("iam").create_policy(
            PolicyName=BOUNDARY_NAME,
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
            ),
        )
        var_args = [f"-var={name}={value}" for name, value in {**VARIABLES, "worker_zip_path": str(zip_path)}.items()]
        terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=deployment.env)
        terraform(["apply", "-auto-approve", "-input=false", "-no-color", *var_args], cwd=workdir, env=deployment.env)
        result = terraform(["output", "-json", "-no-color"], cwd=workdir, env=deployment.env)
        outputs = {name: output["value"] for name, output in json.loads(result.stdout).items()}
        yield Deployment(endpoint, workdir, deployment.env, outputs)


@pytest.mark.slow
def test_outputs_are_all_present(deployment: Deployment) -> None:
    assert set(deployment.outputs) >= EXPECTED_OUTPUTS
    assert set(deployment.outputs["alarm_names"]) == {"queue_age", "dlq_not_empty", "worker_errors"}


@pytest.mark.slow
def test_prompt_queue_is_encrypted_redriven_and_sized_for_the_worker(deployment: Deployment) -> None:
    sqs = deployment.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=deployment.outputs["queue_url"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["QueueArn"] == deployment.outputs["queue_arn"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == deployment.outputs["dlq_arn"]
    assert int(redrive["maxReceiveCount"]) == int(VARIABLES["max_receive_count"]) >= 5
    assert int(attributes["VisibilityTimeout"]) == EXPECTED_VISIBILITY_TIMEOUT
    assert int(attributes["MessageRetentionPeriod"]) == 4 * 24 * 3600
    assert int(attributes["ReceiveMessageWaitTimeSeconds"]) == 20
    _assert_tls_only(json.loads(attributes["Policy"]), deployment.outputs["queue_arn"])


@pytest.mark.slow
def test_dead_letter_queue_keeps_messages_14_days_and_accepts_only_the_prompt_queue(deployment: Deployment) -> None:
    sqs = deployment.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=deployment.outputs["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == deployment.outputs["dlq_arn"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert int(attributes["MessageRetentionPeriod"]) == 1_209_600
    # Returned by moto only thanks to the patch in terraform_support (a moto gap, see there).
    allow = json.loads(attributes["RedriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [deployment.outputs["queue_arn"]]}
    _assert_tls_only(json.loads(attributes["Policy"]), deployment.outputs["dlq_arn"])


def _assert_tls_only(policy: dict[str, Any], queue_arn: str) -> None:
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sqs:*"
    assert statement["Resource"] == queue_arn
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.slow
def test_worker_function_configuration(deployment: Deployment) -> None:
    config = deployment.client("lambda").get_function_configuration(FunctionName=deployment.outputs["function_name"])
    assert config["Runtime"] == "python3.13"
    assert config["Architectures"] == ["arm64"]
    assert config["Handler"] == "sqs_worker.app.lambda_handler"
    assert config["Timeout"] == int(VARIABLES["worker_timeout_seconds"])
    assert config["MemorySize"] == int(VARIABLES["worker_memory_mb"])
    assert config["TracingConfig"]["Mode"] == "Active"
    assert config["Environment"]["Variables"] == {
        "BUCKET_NAME": BUCKET,
        "IMAGES_TABLE_NAME": VARIABLES["images_table_name"],
        "KEY_PREFIX": "candidate",
        "MODEL_ID": DEFAULT_MODEL_ID,
        "BEDROCK_REGION": "us-east-1",
        "MODEL_COOLDOWN_SECONDS": VARIABLES["model_cooldown_seconds"],
        "BEDROCK_READ_TIMEOUT_SECONDS": "60",
        "DEAD_LETTER_QUEUE_URL": deployment.outputs["dlq_url"],
        "WORKER_CONCURRENCY": VARIABLES["worker_concurrency"],
        "MAX_RECEIVE_COUNT": VARIABLES["max_receive_count"],
        "CLAIM_TTL_SECONDS": VARIABLES["worker_timeout_seconds"],
        "POWERTOOLS_SERVICE_NAME": "imagegen-worker",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageGen",
    }
    groups = deployment.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{deployment.outputs['function_name']}"
    )["logGroups"]
    assert [(group["logGroupName"], group.get("retentionInDays")) for group in groups] == [
        (f"/aws/lambda/{deployment.outputs['function_name']}", int(VARIABLES["log_retention_days"]))
    ]


@pytest.mark.slow
def test_event_source_mapping_reports_batch_item_failures_with_bounded_concurrency(deployment: Deployment) -> None:
    awslambda = deployment.client("lambda")
    function_arn = awslambda.get_function_configuration(FunctionName=deployment.outputs["function_name"])["FunctionArn"]
    # Listed by queue: moto filters FunctionName by the exact string used at creation (here the ARN),
    # where AWS accepts a name or an ARN.
    mappings = awslambda.list_event_source_mappings(EventSourceArn=deployment.outputs["queue_arn"])[
        "EventSourceMappings"
    ]
    assert [m["UUID"] for m in mappings] == [deployment.outputs["event_source_mapping_uuid"]]
    mapping = awslambda.get_event_source_mapping(UUID=deployment.outputs["event_source_mapping_uuid"])
    assert mapping["FunctionArn"] == function_arn
    assert mapping["EventSourceArn"] == deployment.outputs["queue_arn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == int(VARIABLES["batch_size"])
    assert mapping["MaximumBatchingWindowInSeconds"] == int(VARIABLES["batching_window_seconds"])
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": int(VARIABLES["max_concurrency"])}


@pytest.mark.slow
def test_worker_role_is_least_privilege(deployment: Deployment) -> None:
    iam = deployment.client("iam")
    function = deployment.client("lambda").get_function_configuration(FunctionName=deployment.outputs["function_name"])
    role_name = function["Role"].rsplit("/", 1)[-1]
    role = iam.get_role(RoleName=role_name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == VARIABLES["permissions_boundary_arn"]
    assume = role["AssumeRolePolicyDocument"]
    assume = json.loads(assume) if isinstance(assume, str) else assume
    assert [s["Principal"] for s in assume["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document

    statements = {statement["Sid"]: statement for statement in document["Statement"]}
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        if any(action.startswith(("s3:", "bedrock:", "sqs:", "logs:")) for action in _as_list(statement["Action"])):
            # Exact ARNs; the only wildcard allowed is a trailing one (an object-key or log-stream suffix).
            for resource in _as_list(statement["Resource"]):
                assert resource != "*", statement
                assert "*" not in resource.removesuffix("*"), statement
    # The one wildcard: X-Ray has no resource-level permissions.
    wildcard = [sid for sid, statement in statements.items() if "*" in _as_list(statement["Resource"])]
    assert wildcard == ["WriteTraces"]
    assert sorted(_as_list(statements["WriteTraces"]["Action"])) == [
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]

    folder = "candidate/generated_images/from_queue/"
    assert _as_list(statements["ReadWriteQueueImages"]["Resource"]) == [f"arn:aws:s3:::{BUCKET}/{folder}*"]
    assert sorted(_as_list(statements["ReadWriteQueueImages"]["Action"])) == ["s3:GetObject", "s3:PutObject"]
    assert _as_list(statements["ListQueueImages"]["Resource"]) == [f"arn:aws:s3:::{BUCKET}"]
    assert statements["ListQueueImages"]["Condition"] == {"StringLike": {"s3:prefix": f"{folder}*"}}
    # Exactly the default chain's models, each in its region.
    assert invoke_problems(list(statements.values()), DEFAULT_MODEL_ID, "us-east-1") == []
    assert [sid for sid in statements if sid.startswith("InvokeModel")] == ["InvokeModel0", "InvokeModel1"]
    # The gallery's index: the worker adds items, it never reads them (the API pages them).
    assert _as_list(statements["IndexQueueImages"]["Action"]) == ["dynamodb:PutItem"]
    assert _as_list(statements["IndexQueueImages"]["Resource"]) == [
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{VARIABLES['images_table_name']}"
    ]
    assert [sid for sid, s in statements.items() if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))] == [
        "IndexQueueImages"
    ]
    assert _as_list(statements["ConsumePromptQueue"]["Resource"]) == [deployment.outputs["queue_arn"]]
    assert _as_list(statements["DeadLetterPermanentFailures"]["Resource"]) == [deployment.outputs["dlq_arn"]]
    assert _as_list(statements["DeadLetterPermanentFailures"]["Action"]) == ["sqs:SendMessage"]
    assert _as_list(statements["WriteOwnLogs"]["Resource"]) == [
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{deployment.outputs['function_name']}:*"
    ]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _plan(deployment: Deployment, **variables: str) -> dict[str, Any]:
    """``terraform show -json`` of a plan of the applied deployment with other variable values (nothing is applied;
    -refresh=false: the resources are as the apply left them)."""
    values = {**VARIABLES, "worker_zip_path": str(deployment.workdir.parent / "sqs_worker.zip"), **variables}
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


#: (model_id, bedrock_region, permissions_boundary_arn) planned on top of the applied default chain: a chain with
#: inference profiles (and no boundary: the role then has none), and a single id whose region is bedrock_region.
PLANNED = {
    "profiles": (
        "us.amazon.nova-canvas-v1:0@us-east-1,amazon.titan-image-generator-v1,global.stability.stable-image-core-v1:1",
        "us-west-2",
        "",
    ),
    "single-id": ("amazon.nova-canvas-v1:0", "eu-west-1", BOUNDARY),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(PLANNED))
def test_the_worker_may_invoke_exactly_the_planned_chain(deployment: Deployment, case: str) -> None:
    chain, region, boundary = PLANNED[case]
    plan = _plan(deployment, model_id=chain, bedrock_region=region, permissions_boundary_arn=boundary)
    # The chain's statements, as the worker's policy includes them (source_policy_documents; the applied policy of
    # test_worker_role_is_least_privilege shows the inclusion). Under moto the worker's whole document is only known
    # at apply: moto's SQS answers make the plan update the prompt queue, which the document refers to.
    document = json.loads(_read(plan, "data.aws_iam_policy_document.invoke_models")["json"])
    assert invoke_problems(_as_list_of(document["Statement"]), chain, region, ACCOUNT) == []
    assert _after(plan, "aws_iam_role.worker")["permissions_boundary"] == (boundary or None)
    environment = _after(plan, "aws_lambda_function.worker")["environment"][0]["variables"]
    assert (environment["MODEL_ID"], environment["BEDROCK_REGION"]) == (chain, region)


@pytest.mark.slow
def test_alarms_watch_backlog_dlq_and_errors_and_notify_the_topic(deployment: Deployment) -> None:
    names = deployment.outputs["alarm_names"]
    topic = deployment.outputs["topic_arn"]
    alarms = {
        alarm["AlarmName"]: alarm
        for alarm in deployment.client("cloudwatch").describe_alarms(AlarmNames=list(names.values()))["MetricAlarms"]
    }
    assert set(alarms) == set(names.values())
    queue_name = deployment.outputs["queue_url"].rsplit("/", 1)[-1]
    dlq_name = deployment.outputs["dlq_url"].rsplit("/", 1)[-1]
    expected = {
        "queue_age": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue_name, 600.0),
        "dlq_not_empty": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq_name, 0.0),
        "worker_errors": ("AWS/Lambda", "Errors", "FunctionName", deployment.outputs["function_name"], 0.0),
    }
    for purpose, (namespace, metric, dimension, value, threshold) in expected.items():
        alarm = alarms[names[purpose]]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), purpose
        assert alarm["Dimensions"] == [{"Name": dimension, "Value": value}], purpose
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", purpose
        assert alarm["Threshold"] == threshold, purpose
        assert alarm["AlarmActions"] == [topic], purpose
        assert alarm["OKActions"] == [topic], purpose
        assert alarm["TreatMissingData"] == "notBreaching", purpose
        assert alarm["ActionsEnabled"], purpose


@pytest.mark.slow
def test_topic_is_encrypted_for_cloudwatch_and_mails_the_alert_address(deployment: Deployment) -> None:
    sns = deployment.client("sns")
    topic = deployment.outputs["topic_arn"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", ALERT_EMAIL)]
    key_id = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    assert key_id.startswith("arn:aws:kms:")
    kms = deployment.client("kms")
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    # A customer managed key whose policy lets CloudWatch alarms publish (aws/sns would not).
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    cloudwatch = [s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch
    assert sorted(_as_list(cloudwatch[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # ... only for this account's alarms, and with no other grant to anyone but the account.
    assert alert_key_policy_problems(policy) == []


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


@pytest.mark.slow
def test_invalid_variable_values_are_rejected(deployment: Deployment) -> None:
    bad = {
        "max_receive_count": "3",
        "batch_size": "50",
        "batching_window_seconds": "0",
        "key_prefix": "/candidate/",
        "log_retention_days": "10",
        "worker_timeout_seconds": "901",
        "model_id": "amazon.titan-image-generator-v1, amazon.nova-canvas-v1:0",  # a space
        "model_cooldown_seconds": "86401",
        "permissions_boundary_arn": "arn:aws:iam::123456789012:role/not-a-policy",
    }
    args = [f"-var={name}={value}" for name, value in {**VARIABLES, **bad, "worker_zip_path": "x.zip"}.items()]
    result = subprocess.run(
        [terraform_binary(), "plan", "-input=false", "-no-color", "-lock=false", *args],
        cwd=deployment.workdir,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("Invalid value for variable") == 8, result.stderr
    for name in (
        "max_receive_count",
        "key_prefix",
        "log_retention_days",
        "worker_timeout_seconds",
        "model_id",
        "model_cooldown_seconds",
        "permissions_boundary_arn",
    ):
        assert f"var.{name} is" in result.stderr, name
    # batch_size 50 is in range, but above 10 AWS requires a batching window (a cross-variable validation).
    assert "var.batch_size is 50" in result.stderr
    assert "var.batching_window_seconds is 0" in result.stderr


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
        # infra/bootstrap/state_bucket.tf, aws_s3_bucket.state (checked in detail by tests/test_bootstrap.py)
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
