"""The whole system on one machine, with no AWS account and no Docker.

``LocalStack.start()`` brings up, all on loopback:

* a moto server (S3, SQS, SNS, CloudWatch) — ``aws_endpoint_url``;
* the Bedrock emulator (``bedrock_emulator.emulator``);
* the bucket, the prompt queue with a redrive policy to its dead-letter queue, an SNS topic with an email
  subscription, and the three alarms the Terraform stack defines (moto stores alarms; they never fire);
* a local API Gateway in front of the real ``generate_image`` handler (API key, 29 s, 10 MB);
* a queue poller feeding the real ``sqs_worker`` handler with Lambda's event-source semantics.

Both handlers run in this process and reach moto and the emulator through the standard
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` variables, exactly as they reach AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import boto3

from bedrock_emulator.emulator import BedrockEmulator, EmulatorConfig
from imagegen.config import DEFAULT_MODEL_ID
from local_stack.gateway import LocalApiGateway
from local_stack.lambda_runtime import LocalFunction
from local_stack.poller import QueuePoller

logger = logging.getLogger(__name__)

DEFAULT_STATE_FILE = Path(".local/stack.json")
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass
class StackConfig:
    """Everything ``imagegen local`` can set; every port may be 0 (pick a free one)."""

    host: str = "127.0.0.1"
    api_port: int = 3000
    aws_port: int = 4566
    bedrock_port: int = 4567
    region: str = "us-east-1"
    api_key: str = "local-api-key"
    bucket: str = "imagegen-local-images"
    key_prefix: str = ""
    queue_name: str = "imagegen-prompts"
    model_id: str = DEFAULT_MODEL_ID
    alert_email: str = "ops@example.com"
    # Event source mapping and queue, scaled down from the Terraform defaults for quick local feedback.
    batch_size: int = 10
    batching_window_seconds: float = 1.0
    max_concurrency: int = 2
    worker_timeout_seconds: float = 60.0
    max_receive_count: int = 5
    retry_base_seconds: int = 2
    alarm_age_threshold_seconds: int = 300
    #: Share of batches the poller delivers twice (SQS delivers at least once; tests and soaks use this).
    duplicate_delivery_rate: float = 0.0
    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)
    state_file: Path | None = DEFAULT_STATE_FILE
    log_level: str = "WARNING"

    @property
    def visibility_timeout_seconds(self) -> int:
        # The rule the Terraform stack applies: 6 x the function timeout + the batching window.
        return int(6 * self.worker_timeout_seconds + self.batching_window_seconds)


@dataclass(frozen=True)
class StackEndpoints:
    """What clients need; written to ``.local/stack.json``."""

    api_url: str
    api_key: str
    queue_url: str
    dlq_url: str
    bucket: str
    aws_endpoint_url: str
    bedrock_endpoint_url: str
    region: str
    key_prefix: str
    topic_arn: str
    alarm_names: list[str]


class LocalStack:
    """Starts and stops every local component; use as a context manager or call start()/stop()."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.endpoints: StackEndpoints | None = None
        self.emulator: BedrockEmulator | None = None
        self.gateway: LocalApiGateway | None = None
        self.poller: QueuePoller | None = None
        self._moto: Any = None
        self._functions: list[LocalFunction] = []
        self._saved_env: dict[str, str | None] = {}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Self:
        from moto.server import ThreadedMotoServer  # heavy import, only when a stack starts

        cfg = self.config
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto = ThreadedMotoServer(ip_address=cfg.host, port=cfg.aws_port, verbose=False)
        self._moto.start()
        aws_host, aws_port = self._moto.get_host_and_port()
        aws_url = f"http://{aws_host}:{aws_port}"
        self.emulator = BedrockEmulator(cfg.emulator, host=cfg.host, port=cfg.bedrock_port).start()

        self._set_env({**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": cfg.region, "AWS_REGION": cfg.region})
        self._set_env(
            {
                "AWS_ENDPOINT_URL": aws_url,
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.emulator.url,
                "BUCKET_NAME": cfg.bucket,
                "KEY_PREFIX": cfg.key_prefix,
                "MODEL_ID": cfg.model_id,
                "BEDROCK_REGION": cfg.region,
                "RETRY_BASE_SECONDS": str(cfg.retry_base_seconds),
                "MAX_RECEIVE_COUNT": str(cfg.max_receive_count),
                "CLAIM_TTL_SECONDS": str(int(cfg.worker_timeout_seconds)),
                "WORKER_CONCURRENCY": str(cfg.batch_size),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": cfg.log_level,
                "POWERTOOLS_METRICS_NAMESPACE": "ImageGenLocal",
            },
            override=True,
        )
        queue_url, queue_arn, dlq_url, topic_arn, alarm_names = self._create_resources()
        self._set_env({"DEAD_LETTER_QUEUE_URL": dlq_url}, override=True)

        api_function, worker_function = self._load_functions()
        self.gateway = LocalApiGateway(api_function, api_key=cfg.api_key, host=cfg.host, port=cfg.api_port).start()
        self.poller = QueuePoller(
            worker_function,
            boto3.client("sqs", region_name=cfg.region),
            queue_url,
            queue_arn,
            batch_size=cfg.batch_size,
            batching_window_seconds=cfg.batching_window_seconds,
            max_concurrency=cfg.max_concurrency,
            region=cfg.region,
            duplicate_delivery_rate=cfg.duplicate_delivery_rate,
        ).start()
        self.endpoints = StackEndpoints(
            api_url=self.gateway.url,
            api_key=cfg.api_key,
            queue_url=queue_url,
            dlq_url=dlq_url,
            bucket=cfg.bucket,
            aws_endpoint_url=aws_url,
            bedrock_endpoint_url=self.emulator.url,
            region=cfg.region,
            key_prefix=cfg.key_prefix,
            topic_arn=topic_arn,
            alarm_names=alarm_names,
        )
        if cfg.state_file:
            cfg.state_file.parent.mkdir(parents=True, exist_ok=True)
            cfg.state_file.write_text(json.dumps(asdict(self.endpoints), indent=2) + "\n")
        return self

    def stop(self) -> None:
        """Stop everything that started, newest first; safe to call twice."""
        if self.poller:
            self.poller.stop()
            self.poller = None
        if self.gateway:
            self.gateway.stop()
            self.gateway = None
        for function in self._functions:
            function.close()
        self._functions = []
        if self.emulator:
            self.emulator.stop()
            self.emulator = None
        if self._moto:
            # moto's backends live per process, not per server: a later stack in this process would find
            # this one's bucket and queues.
            if self.endpoints:
                with contextlib.suppress(OSError):
                    reset_url = f"{self.endpoints.aws_endpoint_url}/moto-api/reset"  # the local moto server
                    reset = urllib.request.Request(reset_url, method="POST")  # noqa: S310
                    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
            self._moto.stop()
            self._moto = None
        if self.config.state_file and self.endpoints:
            self.config.state_file.unlink(missing_ok=True)
        self._restore_env()

    # ---- parts --------------------------------------------------------------------------------

    def _create_resources(self) -> tuple[str, str, str, str, list[str]]:
        cfg = self.config
        s3 = boto3.client("s3", region_name=cfg.region)
        sqs = boto3.client("sqs", region_name=cfg.region)
        sns = boto3.client("sns", region_name=cfg.region)
        cloudwatch = boto3.client("cloudwatch", region_name=cfg.region)

        s3.create_bucket(Bucket=cfg.bucket)
        dlq_url = sqs.create_queue(
            QueueName=f"{cfg.queue_name}-dlq", Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(cfg.max_receive_count)}
        queue_url = sqs.create_queue(
            QueueName=cfg.queue_name,
            Attributes={
                "VisibilityTimeout": str(cfg.visibility_timeout_seconds),
                "ReceiveMessageWaitTimeSeconds": "20",
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic_arn = sns.create_topic(Name=f"{cfg.queue_name}-alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=cfg.alert_email)

        alarms = [
            (f"{cfg.queue_name}-oldest-message-age", "AWS/SQS", "ApproximateAgeOfOldestMessage",
             {"QueueName": cfg.queue_name}, float(cfg.alarm_age_threshold_seconds), "Maximum"),
            (f"{cfg.queue_name}-dlq-not-empty", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
             {"QueueName": f"{cfg.queue_name}-dlq"}, 0.0, "Maximum"),
            (f"{cfg.queue_name}-worker-errors", "AWS/Lambda", "Errors",
             {"FunctionName": "imagegen-worker"}, 0.0, "Sum"),
        ]  # fmt: skip
        for name, namespace, metric, dimensions, threshold, statistic in alarms:
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace=namespace,
                MetricName=metric,
                Dimensions=[{"Name": key, "Value": value} for key, value in dimensions.items()],
                Statistic=statistic,  # type: ignore[arg-type]
                Period=60,
                EvaluationPeriods=1,
                Threshold=threshold,
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData="notBreaching",
                AlarmActions=[topic_arn],
                OKActions=[topic_arn],
            )
        return queue_url, queue_arn, dlq_url, topic_arn, [alarm[0] for alarm in alarms]

    def _load_functions(self) -> tuple[LocalFunction, LocalFunction]:
        # Imported after the environment is set: Powertools reads it at import time.
        from generate_image import app as api_app
        from sqs_worker import app as worker_app

        # Clients are made once per container; this process is a fresh container for this stack.
        api_app.reset()
        worker_app.reset()
        # One invocation at a time, like one Lambda container: Powertools' REST resolver keeps the current
        # event on a class attribute, so concurrent invocations in one process would read each other's.
        api = LocalFunction("imagegen-api", api_app.lambda_handler, timeout_seconds=28, max_concurrency=1)
        worker = LocalFunction(
            "imagegen-worker",
            worker_app.lambda_handler,
            timeout_seconds=self.config.worker_timeout_seconds,
            max_concurrency=self.config.max_concurrency,
        )
        self._functions = [api, worker]
        return api, worker

    def _set_env(self, values: dict[str, str], *, override: bool = False) -> None:
        for name, value in values.items():
            if not override and os.environ.get(name):
                continue
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}


def load_endpoints(state_file: Path = DEFAULT_STATE_FILE) -> StackEndpoints | None:
    """The endpoints of a running local stack, or ``None`` when none is running."""
    try:
        return StackEndpoints(**json.loads(state_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None
