"""``imagegen enqueue``: send a prompt to the SQS queue. The message's id is its job id (``imagegen status``);
``--wait`` follows the job through the API (``imagegen_cli.jobs``)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from imagegen_cli.common import CliError, aws_reason, local_endpoints

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from local_stack.config import StackEndpoints


@dataclass(frozen=True)
class QueueTarget:
    queue_url: str
    endpoint_url: str | None = None
    region: str | None = None
    local: bool = False


def resolve_queue_target(args: argparse.Namespace) -> QueueTarget:
    queue_url = args.queue_url or os.environ.get("SQS_QUEUE_URL")
    if queue_url:
        return QueueTarget(queue_url=queue_url, region=args.region)
    local = local_endpoints(args.state_file)
    if local is None:
        raise CliError("no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`")
    return local_queue_target(local)


def local_queue_target(local: StackEndpoints) -> QueueTarget:
    return QueueTarget(queue_url=local.queue_url, endpoint_url=local.aws_endpoint_url, region=local.region, local=True)


def _aws_client(service: str, target: QueueTarget) -> Any:
    extra: dict[str, str] = {}
    if target.local:
        extra = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    region = target.region or _region_of(target.queue_url) or os.environ.get("AWS_REGION")
    return boto3.client(service, endpoint_url=target.endpoint_url, region_name=region, **extra)  # type: ignore[call-overload]


def _region_of(queue_url: str) -> str | None:
    # https://sqs.eu-west-1.amazonaws.com/123/name -> eu-west-1
    host = queue_url.split("/")[2] if "://" in queue_url else ""
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "sqs" else None


def enqueue(target: QueueTarget, prompt: str, options: dict[str, Any]) -> str:
    """Send one message: the plain prompt, or a JSON request when options are given. Returns its id (the job id)."""
    body = json.dumps({"prompt": prompt, **options}) if options else prompt
    sqs: SQSClient = _aws_client("sqs", target)
    try:
        return sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)["MessageId"]
    except NoCredentialsError:
        raise CliError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)") from None
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot send to {target.queue_url}: {aws_reason(exc)}") from None
