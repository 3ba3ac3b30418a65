"""The Terraform in infra/: a real ``terraform apply`` against moto, and plans on top of it.

Every terraform command runs in a temporary copy of infra/ with its own CLI configuration (see
``tests/infra/terraform_support.py``), so the repository never gets a ``.terraform/``, a state file or an
``override.tf``. The apply test starts a moto server in this process, points every AWS endpoint of the
provider at it from an ``override.tf`` in the copy, applies, and then inspects what was created with boto3.
Formatting, validation, checkov and the static checks: test_terraform_static.py.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagegen.config import DEFAULT_MODEL_ID
from tests.infra.iam_evaluator import decide
from tests.infra.infra_support import (
    ACCOUNT,
    ALERT_EMAIL,
    BOUNDARY,
    BOUNDARY_NAME,
    BUCKET,
    EXPECTED_OUTPUTS,
    EXPECTED_VISIBILITY_TIMEOUT,
    REGION,
    VARIABLES,
    _after,
    _as_list,
    _as_list_of,
    _assert_tls_only,
    _lambda_zips,
    _plan,
    _read,
    alert_key_policy_problems,
    worker_jobs_problems,
)
from tests.infra.template_rules import invoke_problems
from tests.infra.template_support import FUNCTION_ID, Resolver
from tests.infra.terraform_support import (
    Deployment,
    copy_infra,
    moto_override,
    moto_server,
    terraform,
    terraform_binary,
    terraform_env,
)


# ------------------------------------------------------------------------------- moto apply --
@pytest.fixture(scope="module")
def deployment(cli_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    scratch = tmp_path_factory.mktemp("infra-apply")
    zips = _lambda_zips(scratch)
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
        var_args = [f"-var={name}={value}" for name, value in {**VARIABLES, **zips}.items()]
        terraform(["init", "-input=false", "-no-color"], cwd=workdir, env=deployment.env)
        terraform(["apply", "-auto-approve", "-input=false", "-no-color", *var_args], cwd=workdir, env=deployment.env)
        result = terraform(["output", "-json", "-no-color"], cwd=workdir, env=deployment.env)
        outputs = {name: output["value"] for name, output in json.loads(result.stdout).items()}
        yield Deployment(endpoint, workdir, deployment.env, outputs)


@pytest.mark.slow
def test_outputs_are_all_present(deployment: Deployment) -> None:
    assert set(deployment.outputs) >= EXPECTED_OUTPUTS
    purposes = {"queue_age", "dlq_not_empty", "worker_errors", "model_watch_errors"}
    assert set(deployment.outputs["alarm_names"]) == purposes


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
        "JOBS_TABLE_NAME": VARIABLES["jobs_table_name"],
        "KEY_PREFIX": "candidate",
        "MODEL_ID": DEFAULT_MODEL_ID,
        "BEDROCK_REGION": "us-east-1",
        "MODEL_COOLDOWN_SECONDS": VARIABLES["model_cooldown_seconds"],
        "BEDROCK_READ_TIMEOUT_SECONDS": "60",
        "DEAD_LETTER_QUEUE_URL": deployment.outputs["dlq_url"],
        "DEAD_LETTER_MAX_MESSAGE_BYTES": "262144",  # the DLQ's MaximumMessageSize (the provider's default)
        "WORKER_CONCURRENCY": VARIABLES["worker_concurrency"],
        "MAX_RECEIVE_COUNT": VARIABLES["max_receive_count"],
        "CLAIM_TTL_SECONDS": VARIABLES["worker_timeout_seconds"],
        "RETRY_BASE_SECONDS": VARIABLES["retry_base_seconds"],
        "POWERTOOLS_SERVICE_NAME": "imagegen-worker",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageGen",
        "POWERTOOLS_LOG_LEVEL": VARIABLES["log_level"],
    }
    groups = deployment.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{deployment.outputs['function_name']}"
    )["logGroups"]
    assert [(group["logGroupName"], group.get("retentionInDays")) for group in groups] == [
        (f"/aws/lambda/{deployment.outputs['function_name']}", int(VARIABLES["log_retention_days"]))
    ]


@pytest.mark.slow
def test_the_worker_sizes_dead_letters_by_the_dead_letter_queues_own_limit(deployment: Deployment) -> None:
    # SQS counts the attributes (the reason) against MaximumMessageSize too: the worker must know the DLQ's limit.
    dlq = deployment.client("sqs").get_queue_attributes(
        QueueUrl=deployment.outputs["dlq_url"], AttributeNames=["MaximumMessageSize"]
    )["Attributes"]
    config = deployment.client("lambda").get_function_configuration(FunctionName=deployment.outputs["function_name"])
    assert config["Environment"]["Variables"]["DEAD_LETTER_MAX_MESSAGE_BYTES"] == dlq["MaximumMessageSize"] == "262144"
    # Taken from the queue, not a copy of its value: a DLQ with another limit changes the worker's setting with it.
    resized = deployment.workdir / "dlq_size_override.tf"
    resized.write_text('resource "aws_sqs_queue" "dead_letter" {\n  max_message_size = 4096\n}\n')
    try:
        plan = _plan(deployment)
    finally:
        resized.unlink()
    assert _after(plan, "aws_sqs_queue.dead_letter")["max_message_size"] == 4096
    environment = _after(plan, "aws_lambda_function.worker")["environment"][0]["variables"]
    assert environment["DEAD_LETTER_MAX_MESSAGE_BYTES"] == "4096"


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
    # The job records: the worker claims, updates and ends them (conditional UpdateItem) and reads them (GetItem); it
    # never puts or deletes one (POST /jobs creates them, TTL removes them).
    jobs_table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{VARIABLES['jobs_table_name']}"
    assert sorted(_as_list(statements["TrackQueueJobs"]["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert _as_list(statements["TrackQueueJobs"]["Resource"]) == [jobs_table]
    dynamodb = [sid for sid, s in statements.items() if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
    assert dynamodb == ["IndexQueueImages", "TrackQueueJobs"]
    assert worker_jobs_problems(list(statements.values()), jobs_table) == []
    assert _as_list(statements["ConsumePromptQueue"]["Resource"]) == [deployment.outputs["queue_arn"]]
    assert _as_list(statements["DeadLetterPermanentFailures"]["Resource"]) == [deployment.outputs["dlq_arn"]]
    assert _as_list(statements["DeadLetterPermanentFailures"]["Action"]) == ["sqs:SendMessage"]
    assert _as_list(statements["WriteOwnLogs"]["Resource"]) == [
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/lambda/{deployment.outputs['function_name']}:*"
    ]


@pytest.mark.slow
def test_the_api_sends_to_the_queue_terraform_creates(deployment: Deployment, sam_template: dict[str, Any]) -> None:
    # Both stacks with their defaults, in one region and account: template.yaml's PromptQueueName is infra/'s queue.
    resolver = Resolver(sam_template)
    function = sam_template["Resources"][FUNCTION_ID]["Properties"]
    (submit,) = [s for s in resolver.resolve(function["Policies"][0]["Statement"]) if s.get("Sid") == "SubmitJobs"]
    assert submit["Resource"] == deployment.outputs["queue_arn"]
    url = resolver.resolve(function["Environment"]["Variables"]["PROMPT_QUEUE_URL"])
    assert url == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{deployment.outputs['queue_name']}"


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
        "model_watch_errors": (
            "AWS/Lambda", "Errors", "FunctionName", deployment.outputs["model_watch_function_name"], 0.0
        ),
    }  # fmt: skip
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
        "jobs_table_name": "jobs table",
        "retry_base_seconds": "0",
        "log_level": "TRACE",
        "model_watch_days": "0",
        "model_watch_schedule": "daily",
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
    assert result.stderr.count("Invalid value for variable") == 13, result.stderr
    for name in (
        "max_receive_count",
        "key_prefix",
        "log_retention_days",
        "worker_timeout_seconds",
        "model_id",
        "model_cooldown_seconds",
        "permissions_boundary_arn",
        "jobs_table_name",
        "retry_base_seconds",
        "log_level",
        "model_watch_days",
        "model_watch_schedule",
    ):
        assert f"var.{name} is" in result.stderr, name
    # batch_size 50 is in range, but above 10 AWS requires a batching window (a cross-variable validation).
    assert "var.batch_size is 50" in result.stderr
    assert "var.batching_window_seconds is 0" in result.stderr


# -------------------------------------------------------------------------------- model watch --
def _watch_function(deployment: Deployment) -> dict[str, Any]:
    name = deployment.outputs["model_watch_function_name"]
    config: dict[str, Any] = deployment.client("lambda").get_function_configuration(FunctionName=name)
    return config


@pytest.mark.slow
def test_model_watch_function_configuration(deployment: Deployment) -> None:
    config = _watch_function(deployment)
    name = deployment.outputs["model_watch_function_name"]
    assert name == "imagegen-model-watch"
    assert (config["Runtime"], config["Architectures"], config["Handler"]) == (
        "python3.13", ["arm64"], "model_watch.app.lambda_handler"
    )  # fmt: skip
    assert config["TracingConfig"]["Mode"] == "Active"
    assert config["Environment"]["Variables"] == {
        "MODEL_ID": DEFAULT_MODEL_ID,
        "BEDROCK_REGION": "us-east-1",
        "ALERT_TOPIC_ARN": deployment.outputs["topic_arn"],
        "MODEL_WATCH_DAYS": VARIABLES["model_watch_days"],
    }
    groups = deployment.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert [(group["logGroupName"], group.get("retentionInDays")) for group in groups] == [
        (f"/aws/lambda/{name}", int(VARIABLES["log_retention_days"]))
    ]


@pytest.mark.slow
def test_model_watch_runs_daily_on_its_schedule_and_only_the_schedule_may_invoke_it(deployment: Deployment) -> None:
    events = deployment.client("events")
    rule = events.describe_rule(Name=deployment.outputs["model_watch_rule_name"])
    assert rule["ScheduleExpression"] == "rate(1 day)"  # the default of model_watch_schedule
    assert rule["State"] == "ENABLED"
    function_arn = _watch_function(deployment)["FunctionArn"]
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert [target["Arn"] for target in targets] == [function_arn]
    policy = json.loads(
        deployment.client("lambda").get_policy(FunctionName=deployment.outputs["model_watch_function_name"])["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"] == {"ArnLike": {"AWS:SourceArn": rule["Arn"]}}


@pytest.mark.slow
def test_model_watch_reads_the_chains_lifecycle_and_publishes_to_the_alert_topic_only(deployment: Deployment) -> None:
    iam = deployment.client("iam")
    role_name = _watch_function(deployment)["Role"].rsplit("/", 1)[-1]
    role = iam.get_role(RoleName=role_name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == VARIABLES["permissions_boundary_arn"]
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    (policy_name,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    statements = _as_list_of(document["Statement"])

    topic = deployment.outputs["topic_arn"]
    titan = "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-image-generator-v1"
    core = "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1"
    in_region = {"aws:RequestedRegion": "us-west-2"}
    allowed = [
        ("bedrock:GetFoundationModel", titan, {}),
        ("bedrock:GetFoundationModel", core, {}),
        ("bedrock:GetFoundationModelAvailability", "*", in_region),
        ("sns:Publish", topic, {}),
    ]
    denied = [
        # Another model, or a chain model in a region the chain does not name.
        ("bedrock:GetFoundationModel", core.replace("stable-image-core", "stable-image-ultra"), {}),
        ("bedrock:GetFoundationModel", core.replace("us-west-2", "eu-west-1"), {}),
        ("bedrock:GetFoundationModelAvailability", "*", {"aws:RequestedRegion": "eu-west-1"}),
        # Never invoke a model, accept an agreement or subscribe: those are the deploying roles' (infra/bootstrap).
        ("bedrock:InvokeModel", core, {}),
        ("bedrock:ListFoundationModelAgreementOffers", "*", in_region),
        ("bedrock:CreateFoundationModelAgreement", "*", in_region),
        ("aws-marketplace:Subscribe", "*", {}),
        ("sns:Publish", topic.replace("imagegen-alerts", "billing-alerts"), {}),
        ("sqs:SendMessage", deployment.outputs["queue_arn"], {}),
    ]
    problems = [f"{a} on {r} is not allowed" for a, r, c in allowed if decide(statements, a, r, c) != "Allow"]
    problems += [f"{a} on {r} is allowed" for a, r, c in denied if decide(statements, a, r, c) == "Allow"]
    assert problems == []
    # The alert key only through SNS, for this topic (the topic is encrypted: publishing needs it).
    (kms,) = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert sorted(_as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"] == topic
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == f"sns.{REGION}.amazonaws.com"
    # Only the unscopable actions have "*": the availability read (limited by region) and X-Ray.
    wildcard = sorted(a for s in statements if "*" in _as_list(s["Resource"]) for a in _as_list(s["Action"]))
    assert wildcard == ["bedrock:GetFoundationModelAvailability", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]


@pytest.mark.slow
def test_model_watch_follows_the_planned_chain_and_schedule(deployment: Deployment) -> None:
    chain, region, _ = PLANNED["profiles"]
    plan = _plan(deployment, model_id=chain, bedrock_region=region, model_watch_schedule="cron(0 7 * * ? *)")
    assert _after(plan, "aws_cloudwatch_event_rule.model_watch")["schedule_expression"] == "cron(0 7 * * ? *)"
    environment = _after(plan, "aws_lambda_function.model_watch")["environment"][0]["variables"]
    assert (environment["MODEL_ID"], environment["BEDROCK_REGION"]) == (chain, region)
    # What the watch asks about is the foundation model behind each inference profile, in the entry's region.
    statements = _as_list_of(json.loads(_read(plan, "data.aws_iam_policy_document.model_watch")["json"])["Statement"])
    (lifecycle,) = [s for s in statements if s["Sid"] == "ReadModelLifecycle"]
    assert sorted(_as_list(lifecycle["Resource"])) == [
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0",
        "arn:aws:bedrock:us-west-2::foundation-model/amazon.titan-image-generator-v1",
        "arn:aws:bedrock:us-west-2::foundation-model/stability.stable-image-core-v1:1",
    ]
