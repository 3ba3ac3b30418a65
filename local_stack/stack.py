"""The whole system on one machine, with no AWS account and no Docker.

``LocalStack.start()`` brings up, each in a process of its own and all on loopback, as they are separate
services in AWS:

* ``moto`` — a moto server (S3, SQS, DynamoDB): the bucket, the gallery's index table, the job records table, and
  the prompt queue with a redrive policy to its dead-letter queue;
* ``bedrock`` — the Bedrock emulator (``python -m bedrock_emulator``);
* ``api`` — a local API Gateway in front of the real ``generate_image`` handler (``local_stack.gateway``);
* ``worker`` — Lambda's SQS event-source semantics feeding the real ``sqs_worker`` handler
  (``local_stack.poller``).

The handlers reach moto and the emulator through the standard ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` variables, exactly as they reach AWS. The local stack has no alarms:
moto stores CloudWatch alarms but never evaluates them (the Terraform tests check the real ones).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Self

from bedrock_emulator import LISTENING
from bedrock_emulator.admin import EmulatorAdmin
from imagegen.index import table_definition
from imagegen.jobs import TTL_ATTRIBUTE
from imagegen.jobs import table_definition as jobs_table_definition
from local_stack.config import LOCAL_CREDENTIALS, StackConfig, StackEndpoints, local_client
from local_stack.deployment import WORKER_FUNCTION, api_function, function_settings
from local_stack.processes import ServiceError, ServiceProcess, child_environment, python_module, stop_all

__all__ = ["LocalStack", "PollerAdmin", "ServiceError", "StackConfig", "StackEndpoints"]

#: How long one service may take to print its ready line (imports included).
START_TIMEOUT_SECONDS = 30.0
_EMULATOR_READY = re.compile(rf"^{re.escape(LISTENING)} (?P<url>\S+)$")


class PollerAdmin:
    """The worker service's admin endpoint: the poller's counters and switches (tests, benchmarks)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def resume(self) -> None:
        self._call("POST", "/resume", {})

    def set_duplicate_rate(self, rate: float) -> None:
        self._call("POST", "/duplicate-rate", {"rate": rate})

    def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            result: dict[str, Any] = json.loads(reply.read())
            return result


class LocalStack:
    """Starts and stops every local service; use as a context manager or call start()/stop()."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.endpoints: StackEndpoints | None = None
        self.emulator: EmulatorAdmin | None = None
        self.poller: PollerAdmin | None = None
        self.services: dict[str, ServiceProcess] = {}
        self._queue_arn = ""

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
        cfg = self.config
        # moto and the emulator depend on nothing: they start side by side.
        moto = self._service("moto", python_module("local_stack.moto_service", "--host", cfg.host, "--port",
                                                   str(cfg.aws_port)))  # fmt: skip
        bedrock = self._service(
            "bedrock",
            python_module("bedrock_emulator", "--host", cfg.host, "--port", str(cfg.bedrock_port)),
            extra_env=cfg.emulator.to_env(),
            ready=_EMULATOR_READY,
        )
        aws_url, bedrock_url = _wait_all(moto, bedrock)
        self.emulator = EmulatorAdmin(bedrock_url)
        queue_url, self._queue_arn, dlq_url = self._create_resources(aws_url)

        plan = cfg.usage_plan
        usage_plan = (
            ["--rate", str(plan.rate), "--burst", str(plan.burst), "--quota", str(plan.quota_per_day)] if plan else []
        )
        api = self._service(
            "api",
            python_module("local_stack.gateway", "--host", cfg.host, "--port", str(cfg.api_port),
                          "--api-key", cfg.api_key, "--read-timeout", str(cfg.api_read_timeout_seconds), *usage_plan),
            extra_env=self._api_environment(aws_url, bedrock_url, queue_url),
        )  # fmt: skip
        worker = self._start_worker(self._worker_environment(aws_url, bedrock_url, dlq_url), queue_url)
        stage_url, worker_admin_url = _wait_all(api, worker)
        self.poller = PollerAdmin(worker_admin_url)
        self.endpoints = StackEndpoints(
            api_url=f"{stage_url}/generate-image",
            api_key=cfg.api_key,
            queue_url=queue_url,
            dlq_url=dlq_url,
            bucket=cfg.bucket,
            images_table=cfg.images_table,
            jobs_table=cfg.jobs_table,
            aws_endpoint_url=aws_url,
            bedrock_endpoint_url=bedrock_url,
            region=cfg.region,
            key_prefix=cfg.key_prefix,
            worker_admin_url=worker_admin_url,
            log_dir=str(cfg.log_dir),
        )
        if cfg.state_file:
            self.endpoints.write(cfg.state_file)
        return self

    def stop(self) -> None:
        """Stop every service, all at once (SIGTERM to each, then wait for each); safe to call twice."""
        stop_all([self.services.pop(name) for name in reversed(list(self.services))])
        if self.config.state_file and self.endpoints:
            self.config.state_file.unlink(missing_ok=True)
        self.endpoints = None

    def restart_worker(
        self,
        *,
        paused: bool = False,
        handler: str | None = None,
        env: Mapping[str, str] | None = None,
        **changes: Any,
    ) -> PollerAdmin:
        """Replace the worker service (a fresh "container"), e.g. with another concurrency or handler.

        ``changes`` are ``StackConfig`` fields (``batch_size``, ``max_concurrency``, …); ``paused`` starts it
        waiting for ``PollerAdmin.resume()``, so a benchmark can pre-load the queue first; ``env`` adds to (or
        overrides) the function's environment, e.g. ``{"WORKER_CONCURRENCY": "5"}`` (default: the batch size)."""
        assert self.endpoints is not None, "the stack is not running"
        self.config = replace(self.config, **changes)
        self.services.pop("worker").stop()
        ep = self.endpoints
        handler_env = self._worker_environment(ep.aws_endpoint_url, ep.bedrock_endpoint_url, ep.dlq_url)
        worker = self._start_worker({**handler_env, **(env or {})}, ep.queue_url, paused=paused, handler=handler)
        self.poller = PollerAdmin(worker.wait_ready(START_TIMEOUT_SECONDS))
        self.endpoints = replace(ep, worker_admin_url=self.poller.url)
        return self.poller

    # ---- parts --------------------------------------------------------------------------------

    def _service(
        self, name: str, argv: list[str], *, extra_env: dict[str, str] | None = None, ready: Any = None
    ) -> ServiceProcess:
        cfg = self.config
        env = child_environment({**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": cfg.region, "AWS_REGION": cfg.region,
                                 **(extra_env or {})},
                                dropped=function_settings(), dropped_prefixes=("POWERTOOLS_",))  # fmt: skip
        kwargs = {"ready": ready} if ready is not None else {}
        process = ServiceProcess(name, argv, env=env, log_dir=cfg.log_dir, verbose=cfg.verbose, **kwargs)
        self.services[name] = process.start()
        return process

    def _start_worker(
        self, env: dict[str, str], queue_url: str, *, paused: bool = False, handler: str | None = None
    ) -> ServiceProcess:
        cfg = self.config
        argv = python_module(
            "local_stack.poller",
            "--queue-url", queue_url, "--queue-arn", self._queue_arn, "--region", cfg.region,
            "--batch-size", str(cfg.batch_size), "--batching-window", str(cfg.batching_window_seconds),
            "--max-concurrency", str(cfg.max_concurrency), "--timeout", str(cfg.worker_timeout_seconds),
            "--duplicate-rate", str(cfg.duplicate_delivery_rate), "--admin-host", cfg.host,
        )  # fmt: skip
        if paused:
            argv.append("--paused")
        if handler:
            argv += ["--handler", handler]
        return self._service("worker", argv, extra_env=env)

    def _endpoints_environment(self, aws_url: str, bedrock_url: str) -> dict[str, str]:
        """How a function reaches moto and the emulator instead of AWS: the standard endpoint variables."""
        return {"AWS_ENDPOINT_URL": aws_url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_url}

    def _resources_environment(self) -> dict[str, str]:
        """The values both functions get at deploy time, for this stack's resources and chain."""
        cfg = self.config
        return {
            "BUCKET_NAME": cfg.bucket,
            "IMAGES_TABLE_NAME": cfg.images_table,
            "JOBS_TABLE_NAME": cfg.jobs_table,
            "KEY_PREFIX": cfg.key_prefix,
            "MODEL_ID": cfg.model_id,
            "BEDROCK_REGION": cfg.region,
            "POWERTOOLS_LOG_LEVEL": cfg.log_level,
        }

    def _api_environment(self, aws_url: str, bedrock_url: str, queue_url: str) -> dict[str, str]:
        """The API function's, as template.yaml sets it: POST /jobs sends to the prompt queue."""
        local = {**self._resources_environment(), "PROMPT_QUEUE_URL": queue_url}
        return {**api_function().environment_with(local), **self._endpoints_environment(aws_url, bedrock_url)}

    def _worker_environment(self, aws_url: str, bedrock_url: str, dlq_url: str) -> dict[str, str]:
        """The worker's, as infra/lambda.tf sets it, with this stack's scaled-down queue settings."""
        cfg = self.config
        local = {
            **self._resources_environment(),
            "DEAD_LETTER_QUEUE_URL": dlq_url,
            "WORKER_CONCURRENCY": str(cfg.batch_size),
            "RETRY_BASE_SECONDS": str(cfg.retry_base_seconds),
            "MAX_RECEIVE_COUNT": str(cfg.max_receive_count),
            "CLAIM_TTL_SECONDS": str(int(cfg.worker_timeout_seconds)),
        }
        return {**WORKER_FUNCTION.environment_with(local), **self._endpoints_environment(aws_url, bedrock_url)}

    def _create_resources(self, aws_url: str) -> tuple[str, str, str]:
        """The bucket, the tables (as the SAM stack makes them), and the prompt queue redriven to its dead-letter
        queue (as Terraform makes them)."""
        cfg = self.config
        s3 = local_client("s3", aws_url, cfg.region)
        sqs = local_client("sqs", aws_url, cfg.region)
        s3.create_bucket(Bucket=cfg.bucket)
        dynamodb = local_client("dynamodb", aws_url, cfg.region)
        dynamodb.create_table(**table_definition(cfg.images_table))
        dynamodb.create_table(**jobs_table_definition(cfg.jobs_table))
        dynamodb.update_time_to_live(
            TableName=cfg.jobs_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
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
        return queue_url, queue_arn, dlq_url


def _wait_all(*services: ServiceProcess) -> list[str]:
    """Wait for services started side by side; their URLs in order."""
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        futures = [pool.submit(service.wait_ready, START_TIMEOUT_SECONDS) for service in services]
        return [future.result() for future in futures]
