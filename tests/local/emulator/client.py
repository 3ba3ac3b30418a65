"""Talking to a Bedrock emulator over real HTTP: boto3 clients and raw calls, for the tests in tests/local."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from bedrock_emulator.server import BedrockEmulator

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

#: The ``start_emulator`` fixture: ``start(config=None, clock=time.monotonic, *, table=False)`` -> a running
#: emulator that ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` and ``AWS_ENDPOINT_URL_BEDROCK`` point at, stopped after the
#: test; every model the tests invoke is ACTIVE everywhere unless ``table`` or the config's own overrides.
StartEmulator = Callable[..., BedrockEmulator]


def make_client() -> BedrockRuntimeClient:
    """A plain client (endpoint from ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``) that never retries, so every call
    is exactly one emulator request."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return boto3.client("bedrock-runtime", region_name="us-east-1", config=config)


def invoke(client: BedrockRuntimeClient, model_id: str, body: Any) -> dict[str, Any]:
    response = client.invoke_model(
        modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    assert response["contentType"] == "application/json"
    reply: dict[str, Any] = json.loads(response["body"].read())
    return reply


def invoke_error(client: BedrockRuntimeClient, model_id: str, body: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        invoke(client, model_id, body)
    return caught.value


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def decode_images(reply: dict[str, Any], fmt: str = "PNG") -> list[Image.Image]:
    images: list[Image.Image] = []
    for encoded in reply["images"]:
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        image.load()
        assert image.format == fmt
        images.append(image)
    return images


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """A raw HTTP call (no botocore) returning status, lower-cased headers and the decoded JSON body."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())
