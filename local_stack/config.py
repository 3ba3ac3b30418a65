"""What the local stack can be told, with its defaults (the one place they are written), and what it tells
its clients (``.local/stack.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import boto3

from bedrock_emulator.config import DEFAULT_PORT, EmulatorConfig
from imagegen.config import DEFAULT_MODEL_ID
from local_stack.usage_plan import UsagePlan

DEFAULT_STATE_FILE = Path(".local/stack.json")
DEFAULT_LOG_DIR = Path(".local/logs")
#: The local API gateway's read timeout (``python -m local_stack.gateway --read-timeout``).
API_READ_TIMEOUT_SECONDS = 10.0
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True)
class StackConfig:
    """Everything ``imagegen local`` can set; every port may be 0 (pick a free one)."""

    host: str = "127.0.0.1"
    api_port: int = 3000
    aws_port: int = 4566
    bedrock_port: int = DEFAULT_PORT  # the emulator's own default
    region: str = "us-east-1"
    api_key: str = "local-api-key"
    bucket: str = "imagegen-local-images"
    images_table: str = "imagegen-local-images-index"
    jobs_table: str = "imagegen-local-jobs"
    key_prefix: str = ""
    queue_name: str = "imagegen-prompts"
    model_id: str = DEFAULT_MODEL_ID
    # Event source mapping and queue, scaled down from the Terraform defaults for quick local feedback.
    batch_size: int = 10
    batching_window_seconds: float = 0.0
    #: Concurrent worker invocations (the event source mapping's maximum concurrency).
    max_concurrency: int = 2
    worker_timeout_seconds: float = 60.0
    max_receive_count: int = 5
    retry_base_seconds: int = 2
    #: Share of batches the poller delivers twice (SQS delivers at least once; tests and soaks use this).
    duplicate_delivery_rate: float = 0.0
    emulator: EmulatorConfig = field(default_factory=EmulatorConfig)
    #: The API key's usage plan and the stage throttle, as template.yaml sets them; ``None``: none (benchmarks,
    #: which measure the service, not the plan).
    usage_plan: UsagePlan | None = field(default_factory=UsagePlan.from_template)
    #: How long the API gateway waits for a whole request (headers and body) before it closes the connection.
    api_read_timeout_seconds: float = API_READ_TIMEOUT_SECONDS
    #: Where the endpoints are written for the CLI; ``None``: nowhere (demo, tests, benchmarks).
    state_file: Path | None = DEFAULT_STATE_FILE
    #: Where each service's output (the handlers' JSON logs and metrics) goes, one file per service.
    log_dir: Path = DEFAULT_LOG_DIR
    #: Also copy every service's output to the terminal.
    verbose: bool = False
    log_level: str = "INFO"

    @property
    def visibility_timeout_seconds(self) -> int:
        # The rule the Terraform stack applies: 6 x the function timeout + the batching window.
        return int(6 * self.worker_timeout_seconds + self.batching_window_seconds)

    @classmethod
    def with_overrides(cls, **overrides: Any) -> StackConfig:
        """The defaults, with every override that is not ``None`` (so unset CLI flags keep the defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown stack settings: {', '.join(sorted(unknown))}")
        return cls(**{name: value for name, value in overrides.items() if value is not None})


@dataclass(frozen=True)
class StackEndpoints:
    """What clients need; written to ``.local/stack.json``."""

    api_url: str
    api_key: str
    queue_url: str
    dlq_url: str
    bucket: str
    images_table: str
    jobs_table: str
    aws_endpoint_url: str
    bedrock_endpoint_url: str
    region: str
    key_prefix: str
    worker_admin_url: str
    log_dir: str

    @property
    def stage_url(self) -> str:
        """The API's stage: ``{stage_url}/jobs``, ``{stage_url}/images``, the page at ``{stage_url}/``."""
        return self.api_url.removesuffix("/generate-image")

    def client(self, service_name: str) -> Any:
        """A boto3 client for this stack's moto server (S3, SQS)."""
        return local_client(service_name, self.aws_endpoint_url, self.region)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")


def local_client(service_name: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client for a local endpoint, with the local stack's fixed credentials."""
    return boto3.client(  # type: ignore[call-overload]
        service_name,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def load_endpoints(state_file: Path = DEFAULT_STATE_FILE) -> StackEndpoints | None:
    """The endpoints of a running local stack, or ``None`` when none is running."""
    try:
        return StackEndpoints(**json.loads(state_file.read_text()))
    except (OSError, ValueError, TypeError):
        return None
