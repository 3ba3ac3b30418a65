"""Calling Bedrock Runtime's InvokeModel and classifying its failures.

The client is a plain ``boto3.client("bedrock-runtime")``: ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` redirect it (local stack, tests). Retries are botocore's own
``standard`` mode with a bounded number of attempts; throttling, 5xx, ModelNotReady and connection
errors are retried there, so what reaches ``classify_client_error`` has already been retried. A reply that says the
model's inference failed (HTTP 200, so botocore never retries it) is asked again by ``retry_inference_errors``,
within the same number of attempts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

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
    DEFAULT_RETRY_AFTER_SECONDS,
    BedrockError,
    ContentFilteredError,
    ModelAccessDeniedError,
    ModelInferenceError,
    ModelNotFoundError,
    ModelResponseError,
    ModelTimeoutError,
    ModelUnavailableError,
    PermanentBedrockError,
    ThrottledError,
    TransientBedrockError,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

# Bedrock's message for prompts or images its filters reject, e.g. "This request has been blocked by our
# content filters." (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-errors.html).
_CONTENT_FILTER = re.compile(r"content filter", re.IGNORECASE)

# What Bedrock answers when the model itself cannot be used (reported verbatim by users, 2025-2026), matched on the
# message whatever the code (ResourceNotFoundException, AccessDeniedException, ValidationException):
# - "This model version has reached the end of its life. …" (end of life);
# - "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in the
#   last 30 days. …" (Legacy and unused; AWS has said 15 and 30 days, so any number of days);
# - "Model access is denied due to IAM user or service role is not authorized to perform the required AWS Marketplace
#   actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable access to this model. Refer to the
#   Amazon Bedrock documentation for further details. Your AWS Marketplace subscription for this model cannot be
#   completed at this time. If you recently fixed this issue, try again after 2 minutes." (no Marketplace agreement,
#   and the caller may not create it; also "… due to User: arn:… is not authorized to perform:
#   aws-marketplace:ViewSubscriptions …");
# - "The provided model identifier is invalid." (not offered in this region);
# - "Could not resolve the foundation model from the provided model identifier." (no such model);
# - "Invocation of model ID … with on-demand throughput isn't supported. …" (only through an inference profile).
MARKETPLACE_REASON = (
    "no AWS Marketplace agreement for the model (the caller may not subscribe: aws-marketplace:ViewSubscriptions, "
    "aws-marketplace:Subscribe); create it once with `imagegen models --accept-agreements`"
)
_UNAVAILABLE: tuple[tuple[re.Pattern[str], type[ModelUnavailableError], str], ...] = (
    (re.compile(r"end of (its )?life", re.IGNORECASE), ModelNotFoundError, "end of life"),
    (
        re.compile(r"\bLegacy\b.*\bnot been actively using the model in the last \d+ days?\b", re.I | re.S),
        ModelNotFoundError,
        "Legacy, not used by this account recently",
    ),
    (re.compile(r"aws-marketplace:|\bAWS Marketplace\b", re.IGNORECASE), ModelAccessDeniedError, MARKETPLACE_REASON),
    (re.compile(r"model identifier is invalid", re.IGNORECASE), ModelNotFoundError, "not offered in this region"),
    (
        re.compile(r"could not resolve the foundation model", re.IGNORECASE),
        ModelNotFoundError,
        "not found (Bedrock cannot resolve the model id)",
    ),
    (
        re.compile(r"on-demand throughput isn.t supported", re.IGNORECASE),
        ModelNotFoundError,
        "needs an inference profile",
    ),
)
#: The codes whose message can say that the model itself cannot be used.
_UNAVAILABLE_CODES = {"ResourceNotFoundException", "AccessDeniedException", "ValidationException"}

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


Result = TypeVar("Result")


def retry_inference_errors(attempt: Callable[[], Result], *, attempts: int) -> Result:
    """``attempt()`` (an InvokeModel call and the parsing of its reply), made again while it raises
    ``ModelInferenceError``: the model answered that its inference failed, an HTTP 200 that botocore never retries.
    At most ``attempts`` calls in all, the budget botocore's retries get for one call; the last
    ``ModelInferenceError`` is raised when every one fails so, any other error at once."""
    remaining = max(attempts, 1)
    while True:
        try:
            return attempt()
        except ModelInferenceError:
            remaining -= 1
            if remaining == 0:
                raise


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
    if code in _UNAVAILABLE_CODES:
        for pattern, error_type, reason in _UNAVAILABLE:
            if pattern.search(message):
                public = _NO_ACCESS if issubclass(error_type, ModelAccessDeniedError) else _NOT_FOUND
                return error_type(public, aws_code=code, detail=detail, reason=reason)
    if code == "AccessDeniedException":
        return ModelAccessDeniedError(
            _NO_ACCESS,
            aws_code=code,
            detail=detail,
            reason="access denied (model access not enabled in the account, or IAM)",
        )
    if code == "ResourceNotFoundException":
        return ModelNotFoundError(_NOT_FOUND, aws_code=code, detail=detail, reason="not found")
    if code == "ValidationException":
        return PermanentBedrockError("The image model rejected the request.", aws_code=code, detail=detail)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if status >= 500:
        return TransientBedrockError("The image model is temporarily unavailable.", aws_code=code, detail=detail)
    return PermanentBedrockError("The image model rejected the request.", aws_code=code, detail=detail)


_NOT_FOUND = "The configured image model was not found."
_NO_ACCESS = "The service may not use the image model."


def _retry_after(exc: ClientError) -> int:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    value = headers.get("retry-after", "")
    return int(value) if str(value).isdigit() and int(value) > 0 else DEFAULT_RETRY_AFTER_SECONDS
