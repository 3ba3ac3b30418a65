"""The original system's handlers, rebuilt in its style as the benchmarks' baseline.

Module-level ``import base64, json, os, random, boto3`` and two plain clients made at import time (default
retry settings, no explicit timeouts), a handler that calls InvokeModel then PutObject, and a queue worker
that handles one record after the other and raises on the first failure, so that SQS redelivers the whole
batch (no partial batch response, no idempotency: a redelivered record is generated again).

Two deviations: a body may be a JSON object with ``prompt`` and ``seed`` (the original sent the plain prompt
with a random seed), so that the baseline and our worker send byte-identical Bedrock requests in a
benchmark (a plain-text body is used as the prompt, as in the original); and it calls the model every
benchmark stack serves, Stable Image Core in us-west-2 (one image per call, 1:1 = 1024x1024), with that
model's request body, because the original's Titan Image Generator v1 has reached its end of life.

The local stack's worker service runs ``worker_handler`` in its own process
(``stack.restart_worker(handler="bench.baseline_handlers:worker_handler")``); the clients below then reach
moto and the Bedrock emulator through ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.

This file is also copied into the Lambda-like directory of the cold-start and memory benchmarks, so it
imports nothing but the standard library and boto3.
"""

import base64
import json
import os
import random
import uuid
from typing import Any

import boto3

MODEL_ID = "stability.stable-image-core-v1:1"
MODEL_REGION = "us-west-2"

bedrock = boto3.client("bedrock-runtime", region_name=MODEL_REGION)
s3 = boto3.client("s3")

BUCKET_NAME = os.environ.get("BUCKET_NAME", "")


def _prompt_and_seed(body: str) -> tuple[str, int]:
    if body.lstrip().startswith("{"):
        payload = json.loads(body)
        return str(payload["prompt"]), int(payload.get("seed", random.randint(0, 4294967294)))  # noqa: S311
    return body, random.randint(0, 4294967294)  # noqa: S311


def generate(prompt: str, seed: int) -> bytes:
    """One InvokeModel call with Stable Image Core's request body; the PNG bytes of the image."""
    body = {"prompt": prompt, "aspect_ratio": "1:1", "seed": seed, "output_format": "png"}
    response = bedrock.invoke_model(
        modelId=MODEL_ID, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    payload = json.loads(response["body"].read())
    return base64.b64decode(payload["images"][0])


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway proxy handler: generate one image, store it, answer with its S3 URI."""
    prompt, seed = _prompt_and_seed(event.get("body") or "")
    image = generate(prompt, seed)
    key = f"generated_images/{uuid.uuid4()}.png"
    s3.put_object(Bucket=BUCKET_NAME, Key=key, Body=image, ContentType="image/png")
    return {"statusCode": 200, "body": json.dumps({"s3_uri": f"s3://{BUCKET_NAME}/{key}"})}


def worker_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS handler: records one after the other; any exception fails (and redelivers) the whole batch."""
    for record in event["Records"]:
        prompt, seed = _prompt_and_seed(record["body"])
        image = generate(prompt, seed)
        key = f"generated_images/baseline/{record['messageId']}/{uuid.uuid4()}.png"
        s3.put_object(Bucket=BUCKET_NAME, Key=key, Body=image, ContentType="image/png")
    return {}
