"""``imagegen enqueue``: send a prompt to the SQS queue, and with ``--wait`` download its image."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from imagegen.storage import QUEUE_FOLDER, image_key, sidecar_key
from imagegen_cli.common import CliError, aws_reason, local_endpoints, progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from local_stack.config import StackEndpoints


@dataclass(frozen=True)
class QueueTarget:
    queue_url: str
    endpoint_url: str | None = None
    region: str | None = None
    bucket: str | None = None
    key_prefix: str = ""
    dlq_url: str | None = None
    local: bool = False


def resolve_queue_target(args: argparse.Namespace) -> QueueTarget:
    queue_url = args.queue_url or os.environ.get("SQS_QUEUE_URL")
    bucket = args.bucket or os.environ.get("IMAGEGEN_BUCKET")
    key_prefix = args.key_prefix if args.key_prefix is not None else os.environ.get("IMAGEGEN_KEY_PREFIX", "")
    if queue_url:
        return QueueTarget(queue_url=queue_url, bucket=bucket, key_prefix=key_prefix, region=args.region)
    local = local_endpoints(args.state_file)
    if local is None:
        raise CliError("no queue to send to: set SQS_QUEUE_URL, pass --queue-url, or start `imagegen local`")
    return local_queue_target(local)


def local_queue_target(local: StackEndpoints) -> QueueTarget:
    return QueueTarget(
        queue_url=local.queue_url,
        endpoint_url=local.aws_endpoint_url,
        region=local.region,
        bucket=local.bucket,
        key_prefix=local.key_prefix,
        dlq_url=local.dlq_url,
        local=True,
    )


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
    """Send one message: the plain prompt, or a JSON request when options are given. Returns its id."""
    body = json.dumps({"prompt": prompt, **options}) if options else prompt
    sqs: SQSClient = _aws_client("sqs", target)
    try:
        return sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)["MessageId"]
    except NoCredentialsError:
        raise CliError("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)") from None
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot send to {target.queue_url}: {aws_reason(exc)}") from None


def wait_for_images(
    target: QueueTarget, message_id: str, count: int, out: Path, *, timeout: float, poll: Callable[[float], None]
) -> list[Path]:
    """Wait until the worker has stored the message's images (or dead-lettered it), then download them."""
    if not target.bucket:
        raise CliError("--wait needs the images bucket: pass --bucket or set IMAGEGEN_BUCKET")
    s3: S3Client = _aws_client("s3", target)
    keys = [image_key(target.key_prefix, message_id, index, QUEUE_FOLDER) for index in range(count)]
    deadline = time.monotonic() + timeout
    with progress(f"waiting for message {message_id}"):
        while True:
            if all(_exists(s3, target.bucket, sidecar_key(key)) for key in keys):
                break
            reason = _dead_letter_reason(target, message_id)
            if reason:
                raise CliError(f"the worker rejected the prompt: {reason}")
            if time.monotonic() > deadline:
                raise CliError(f"no image after {timeout:g} s; the message may still be processing ({message_id})")
            poll(0.5)
    paths = []
    for key in keys:
        path = out / Path(key).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=target.bucket, Key=key)["Body"].read())
        paths.append(path)
    return paths


def _exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise CliError(f"cannot read s3://{bucket}/{key}: {aws_reason(exc)}") from None
    except BotoCoreError as exc:
        raise CliError(f"cannot read s3://{bucket}: {aws_reason(exc)}") from None
    return True


def _dead_letter_reason(target: QueueTarget, message_id: str) -> str | None:
    """Peek at the DLQ (without consuming) for this message's reason."""
    if not target.dlq_url:
        return None
    sqs: SQSClient = _aws_client("sqs", target)
    try:
        messages = sqs.receive_message(
            QueueUrl=target.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
    except (BotoCoreError, ClientError):
        return None
    for message in messages:
        attributes = {
            name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
        }
        if attributes.get("source_message_id") == message_id:
            return f"{attributes.get('error_message', '')} [{attributes.get('error_code', '')}]"
        if message.get("MessageId") == message_id:
            return "moved to the dead-letter queue after repeated failures"
    return None
