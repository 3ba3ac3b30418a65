"""Test doubles: a fake Bedrock Runtime client and a small PNG encoder."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from imagegen.config import Settings
from imagegen.service import ImageService

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client


def make_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A valid RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def b64png(width: int = 8, height: int = 8) -> str:
    return base64.b64encode(make_png(width, height)).decode()


def client_error(code: str, message: str = "upstream said no", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        "InvokeModel",
    )


Reply = dict[str, Any] | Exception | Callable[[dict[str, Any]], dict[str, Any]]


def stability_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What the Stability models answer: one PNG, its seed, no finish reason."""
    return {"images": [b64png(4, 4)], "seeds": [body["seed"]], "finish_reasons": [None]}


def titan_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What Titan/Nova answer: one PNG per requested image, of the requested size."""
    config = body["imageGenerationConfig"]
    return {"images": [b64png(config["width"] // 64, config["height"] // 64)] * config["numberOfImages"]}


@dataclass
class FakeBedrock:
    """Stands in for ``boto3.client("bedrock-runtime")``: records calls, answers from a script."""

    replies: list[Reply] = field(default_factory=lambda: [titan_reply])
    calls: list[dict[str, Any]] = field(default_factory=list)
    #: Replies by model id, consulted before ``replies`` (the model chain's tests).
    by_model: dict[str, Reply] = field(default_factory=dict)

    def invoke_model(self, **kwargs: Any) -> dict[str, Any]:
        body = json.loads(kwargs["body"])
        self.calls.append({**kwargs, "decoded_body": body})
        if kwargs["modelId"] in self.by_model:
            reply = self.by_model[kwargs["modelId"]]
        else:
            reply = self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        payload = reply(body) if callable(reply) else reply
        return {"body": io.BytesIO(json.dumps(payload).encode()), "contentType": "application/json"}


def api_event(
    body: str | None,
    *,
    path: str = "/generate-image",
    method: str = "POST",
    request_id: str = "req-0001",
    resource: str | None = None,
    headers: dict[str, str] | None = None,
    api_key_id: str = "key-id-1",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as the Lambda integration delivers it."""
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": {
            "Content-Type": "application/json",
            "x-api-key": "test-key",
            "Host": "abc.example",
            "X-Forwarded-Proto": "https",
            **(headers or {}),
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
            "httpMethod": method,
            "path": f"/Prod{path}",
            "stage": "Prod",
            "requestId": request_id,
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "identity": {"sourceIp": "127.0.0.1", "apiKey": "test-key", "apiKeyId": api_key_id},
        },
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class FakeLambdaContext:
    function_name: str = "GenerateImageFunction"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:GenerateImageFunction"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "lambda-req-1"
    log_group_name: str = "/aws/lambda/GenerateImageFunction"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def make_service(settings: Settings, bedrock: FakeBedrock, s3: S3Client) -> ImageService:
    """An ``ImageService`` on the fake Bedrock and a (moto) S3 client."""
    return ImageService(settings, bedrock=cast("BedrockRuntimeClient", bedrock), s3=s3)


#: GetFoundationModelAvailability's answer for a model the account may use.
AVAILABLE_MODEL = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
                   "regionAvailability": "AVAILABLE", "agreementAvailability": {"status": "AVAILABLE"}}  # fmt: skip


@dataclass
class FakeControlPlane:
    """One region's ``boto3.client("bedrock")``: answers per model id, records what it was asked."""

    lifecycle: dict[str, dict[str, Any] | Exception] = field(default_factory=dict)
    availability: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def get_foundation_model(self, modelIdentifier: str) -> dict[str, Any]:
        self.asked.append(modelIdentifier)
        answer = self.lifecycle.get(modelIdentifier, {"status": "ACTIVE"})
        if isinstance(answer, Exception):
            raise answer
        return {"modelDetails": {"modelId": modelIdentifier, "modelLifecycle": answer}}

    def get_foundation_model_availability(self, modelId: str) -> dict[str, Any]:
        return self.availability.get(modelId, AVAILABLE_MODEL)


class FakeTime:
    """A clock that only ``sleep`` moves, and the sleeps asked for: no test waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
