"""Calling Bedrock Runtime's InvokeModel and classifying its failures.

The client is a plain ``boto3.client("bedrock-runtime")``: ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` redirect it (local stack, tests). Retries are botocore's own
``standard`` mode with a bounded number of attempts; throttling, 5xx, ModelNotReady and connection
errors are retried there, so what reaches ``classify_client_error`` has already been retried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from imagegen.errors import (
    BedrockError,
    ContentFilteredError,
    ModelAccessDeniedError,
    ModelNotFoundError,
    ModelResponseError,
    ModelTimeoutError,
    PermanentBedrockError,
    ThrottledError,
    TransientBedrockError,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

# Bedrock's message for prompts or images its filters reject, e.g. "This request has been blocked by our
# content filters." (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-errors.html).
_CONTENT_FILTER = re.compile(r"content filter", re.IGNORECASE)

# What Bedrock answers when the model itself cannot be used (reported verbatim by users, 2025-2026):
# ResourceNotFoundException "This model version has reached the end of its life. …" or "Access denied. This
# Model is marked by provider as Legacy and you have not been actively using the model in the last 15 days. …";
# ValidationException "The provided model identifier is invalid." (not offered in this region) or "Invocation of
# model ID … with on-demand throughput isn't supported. …" (only through an inference profile).
_NOT_FOUND_REASONS = (
    (re.compile(r"end of (its )?life", re.IGNORECASE), "end of life"),
    (re.compile(r"\bLegacy\b"), "Legacy, not used by this account recently"),
)
_UNUSABLE_HERE = (
    (re.compile(r"model identifier is invalid", re.IGNORECASE), "not offered in this region"),
    (re.compile(r"on-demand throughput isn.t supported", re.IGNORECASE), "needs an inference profile"),
)

_TRANSIENT_CODES = {
    "ThrottlingException",
    "ServiceQuotaExceededException",
    "ModelTimeoutException",
    "ServiceUnavailableException",
    "InternalServerException",
    "ModelNotReadyException",
    "ModelErrorException",
}


def make_bedrock_client(region: str, *, max_attempts: int, read_timeout_seconds: float) -> BedrockRuntimeClient:
    """A Bedrock Runtime client with bounded standard-mode retries and explicit timeouts."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout_seconds,
    )
    return boto3.client("bedrock-runtime", region_name=region, config=config)


def invoke_model(client: BedrockRuntimeClient, model_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Invoke ``model_id`` with a JSON body and return the decoded JSON reply.

    Raises a ``TransientBedrockError`` or ``PermanentBedrockError`` subclass on failure.
    """
    try:
        response = client.invoke_model(
            modelId=model_id,
            body=json.dumps(body).encode(),
            contentType="application/json",
            accept="application/json",
        )
        raw = response["body"].read()
    except ClientError as exc:
        raise classify_client_error(exc) from exc
    except ReadTimeoutError as exc:
        raise ModelTimeoutError("The model did not answer in time.", aws_code="ReadTimeout", detail=str(exc)) from exc
    except BotocoreConnectionError as exc:
        raise TransientBedrockError(
            "The image model is temporarily unavailable.", aws_code="ConnectionError", detail=str(exc)
        ) from exc
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelResponseError("The model returned an unusable reply.", detail=f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ModelResponseError("The model returned an unusable reply.", detail="reply is not an object")
    return payload


def classify_client_error(exc: ClientError) -> BedrockError:
    """Map a Bedrock ``ClientError`` to the core's error types. AWS's text goes to ``detail`` only."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    detail = f"{code}: {error.get('Message', '')}"
    if code == "ValidationException" and _CONTENT_FILTER.search(str(error.get("Message", ""))):
        return ContentFilteredError(
            "The prompt was blocked by the model's content filter. Rephrase it and try again.",
            aws_code=code,
            detail=detail,
        )
    if code in {"ThrottlingException", "ServiceQuotaExceededException"}:
        return ThrottledError(
            "Too many image requests right now. Try again shortly.",
            retry_after_seconds=_retry_after(exc),
            aws_code=code,
            detail=detail,
        )
    if code == "ModelTimeoutException":
        return ModelTimeoutError("The model did not answer in time.", aws_code=code, detail=detail)
    if code in _TRANSIENT_CODES:
        return TransientBedrockError("The image model is temporarily unavailable.", aws_code=code, detail=detail)
    message = str(error.get("Message", ""))
    if code == "AccessDeniedException":
        return ModelAccessDeniedError(
            "The service may not use the image model.",
            aws_code=code,
            detail=detail,
            reason="access denied (model access not enabled in the account, or IAM)",
        )
    if code == "ResourceNotFoundException":
        reason = next((text for pattern, text in _NOT_FOUND_REASONS if pattern.search(message)), "not found")
        return ModelNotFoundError(_NOT_FOUND, aws_code=code, detail=detail, reason=reason)
    unusable_here = next((text for pattern, text in _UNUSABLE_HERE if pattern.search(message)), None)
    if code == "ValidationException" and unusable_here:
        return ModelNotFoundError(_NOT_FOUND, aws_code=code, detail=detail, reason=unusable_here)
    if code == "ValidationException":
        return PermanentBedrockError("The image model rejected the request.", aws_code=code, detail=detail)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if status >= 500:
        return TransientBedrockError("The image model is temporarily unavailable.", aws_code=code, detail=detail)
    return PermanentBedrockError("The image model rejected the request.", aws_code=code, detail=detail)


_NOT_FOUND = "The configured image model was not found."
DEFAULT_RETRY_AFTER_SECONDS = 10


def _retry_after(exc: ClientError) -> int:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("retry-after", "")
    return int(value) if str(value).isdigit() and int(value) > 0 else DEFAULT_RETRY_AFTER_SECONDS
