"""``imagegen reindex``: rebuild the gallery's DynamoDB index from the sidecars in S3 (S3 is the truth).

Idempotent: an image's item is keyed by its creation time and S3 key, so running it twice writes the same items.
Prints progress every ``PROGRESS_EVERY`` images and a last line with the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import StorageError
from imagegen.index import ImageIndex, entry_from_sidecar
from imagegen.storage import images_base
from imagegen_cli.common import CliError, aws_reason, local_endpoints

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROGRESS_EVERY = 100


def sidecar_keys(s3: S3Client, bucket: str, key_prefix: str) -> Iterator[str]:
    """Every image sidecar under ``{key_prefix}/generated_images/`` (claims and outcomes are not sidecars)."""
    base = images_base(key_prefix) + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith(".json") and "/." not in key[len(base) - 1 :]:
                yield key


def reindex(
    s3: S3Client, bucket: str, key_prefix: str, index: ImageIndex, progress: Callable[[str], None] = print
) -> int:
    """Write one index item per sidecar; returns how many."""
    written = 0
    pending: list[dict[str, Any]] = []
    for key in sidecar_keys(s3, bucket, key_prefix):
        sidecar = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        entry = entry_from_sidecar(sidecar)
        if not entry["key"] or not entry["created_at"]:
            progress(f"skipped {key}: not an image sidecar")
            continue
        pending.append(entry)
        if len(pending) == PROGRESS_EVERY:
            index.put_many(pending)
            written += len(pending)
            pending = []
            progress(f"{written} images indexed…")
    index.put_many(pending)
    written += len(pending)
    progress(f"indexed {written} images from s3://{bucket}/{images_base(key_prefix)}/ into {index.table_name}")
    return written


def run_reindex(args: argparse.Namespace) -> int:
    """Target: --bucket/--table (or IMAGEGEN_BUCKET/IMAGEGEN_TABLE), --stack-name's outputs, or the local stack."""
    bucket = args.bucket or os.environ.get("IMAGEGEN_BUCKET")
    table = args.table or os.environ.get("IMAGEGEN_TABLE")
    key_prefix = args.key_prefix if args.key_prefix is not None else os.environ.get("IMAGEGEN_KEY_PREFIX", "")
    clients: dict[str, Any] = {"region_name": args.region}
    if args.stack_name:
        outputs = _stack_outputs(args.stack_name, args.region)
        bucket, table = bucket or outputs.get("ImagesBucketName"), table or outputs.get("ImagesTableName")
    if not (bucket and table):
        local = local_endpoints(args.state_file)
        if local is None:
            raise CliError("no bucket and table: pass --bucket/--table or --stack-name, or start `imagegen local`")
        bucket, table, key_prefix = local.bucket, local.images_table, local.key_prefix
        clients = {"region_name": local.region, "endpoint_url": local.aws_endpoint_url,
                   "aws_access_key_id": "local", "aws_secret_access_key": "local"}  # fmt: skip
    try:
        s3 = boto3.client("s3", **clients)
        index = ImageIndex(boto3.client("dynamodb", **clients), table)
        reindex(s3, bucket, key_prefix, index, progress=lambda line: print(line, file=sys.stderr))
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot reindex s3://{bucket} into {table}: {aws_reason(exc)}") from None
    except StorageError as exc:
        raise CliError(f"cannot write the index {table}: {exc.detail}") from None
    return 0


def _stack_outputs(stack_name: str, region: str | None) -> dict[str, str]:
    try:
        stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot read stack {stack_name}: {aws_reason(exc)}") from None
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
