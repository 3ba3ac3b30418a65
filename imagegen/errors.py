"""Error types the handlers map to HTTP statuses (API) or to retry / dead-letter decisions (queue).

Every error carries a stable ``code`` and a ``public_message`` that is safe to show to a client: text
from AWS exceptions is logged, never put in ``public_message``.
"""

from __future__ import annotations


class ImageGenError(Exception):
    """Base class for every error the core raises on purpose."""

    code = "ImageGenError"
    #: Whether trying the same request again later may succeed.
    transient = False

    def __init__(self, public_message: str, *, detail: str | None = None) -> None:
        super().__init__(detail or public_message)
        self.public_message = public_message
        self.detail = detail or public_message


class ConfigurationError(ImageGenError):
    """The deployment is misconfigured (missing environment variable, unsupported model id)."""

    code = "ConfigurationError"


class InvalidRequestError(ImageGenError):
    """The request breaks a rule; ``field`` names the offending field (``body`` for the whole body)."""

    code = "InvalidRequest"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class JobNotFoundError(ImageGenError):
    """No job has this id (never made, or its record expired)."""

    code = "NotFound"


class IdempotencyKeyMismatchError(ImageGenError):
    """An Idempotency-Key was used before with another request body."""

    code = "IdempotencyKeyMismatch"


# ---- Bedrock ----------------------------------------------------------------------------------


class BedrockError(ImageGenError):
    """A Bedrock call failed; subclasses say whether retrying can help."""

    code = "BedrockError"

    def __init__(self, public_message: str, *, aws_code: str = "", detail: str | None = None) -> None:
        super().__init__(public_message, detail=detail)
        self.aws_code = aws_code


class TransientBedrockError(BedrockError):
    """Worth retrying later: throttling, timeouts, service-side faults."""

    code = "BedrockUnavailable"
    transient = True


#: ``Retry-After`` (seconds) when Bedrock names none: a throttle without the header, a failed inference.
DEFAULT_RETRY_AFTER_SECONDS = 10


class ThrottledError(TransientBedrockError):
    """Bedrock kept throttling after the client's bounded retries."""

    code = "Throttled"

    def __init__(
        self, public_message: str, *, retry_after_seconds: int, aws_code: str = "", detail: str | None = None
    ) -> None:
        super().__init__(public_message, aws_code=aws_code, detail=detail)
        self.retry_after_seconds = retry_after_seconds


class ModelTimeoutError(TransientBedrockError):
    """The model did not answer in time."""

    code = "ModelTimeout"


class ModelInferenceError(TransientBedrockError):
    """The model answered, but says its inference failed (a Stability model's ``finish_reasons`` "Inference error").

    Like Bedrock's ``ModelErrorException`` it is worth another try. botocore never retries it (the reply is an HTTP
    200), so ``imagegen.bedrock.retry_inference_errors`` asks again within the same attempt budget. When every attempt
    failed so, the API answers 503 with ``Retry-After`` (``retry_after_seconds``), as it answers a throttle 429 with
    it; the queue retries, then dead-letters with this code."""

    code = "ModelInferenceFailed"

    def __init__(self, public_message: str, *, aws_code: str = "", detail: str | None = None) -> None:
        super().__init__(public_message, aws_code=aws_code, detail=detail)
        self.retry_after_seconds = DEFAULT_RETRY_AFTER_SECONDS


class PermanentBedrockError(BedrockError):
    """Retrying the same request cannot help."""

    code = "BedrockRejected"


class ContentFilteredError(PermanentBedrockError):
    """The prompt or the generated image was blocked by the model's content filter."""

    code = "ContentFiltered"


class ModelUnavailableError(PermanentBedrockError):
    """Bedrock says this model cannot be used at all (not just this request): the service moves to the next
    entry of the model chain. ``reason`` says why, in a few words."""

    code = "ModelUnavailable"
    reason = "unavailable"

    def __init__(
        self, public_message: str, *, aws_code: str = "", detail: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(public_message, aws_code=aws_code, detail=detail)
        if reason:
            self.reason = reason


class ModelAccessDeniedError(ModelUnavailableError):
    """The function may not invoke the model (IAM, or model access not granted in the account)."""

    code = "ModelAccessDenied"
    reason = "access denied"


class ModelNotFoundError(ModelUnavailableError):
    """The model is not offered: end of life, Legacy and unused, unknown, or not in this region."""

    code = "ModelNotFound"
    reason = "not found"


class NoModelAvailableError(TransientBedrockError):
    """Every entry of the model chain is marked unavailable; an operator can fix the chain, so retry later."""

    code = "NoModelAvailable"


class ModelResponseError(PermanentBedrockError):
    """The model answered with something that is not a usable image."""

    code = "ModelResponseInvalid"


# ---- Storage ----------------------------------------------------------------------------------


class DeliveryInProgressError(ImageGenError):
    """Another delivery of the same queue message holds its claim; retry later (it may finish it)."""

    code = "DeliveryInProgress"
    transient = True


class StorageError(ImageGenError):
    """S3 failed after botocore's retries; the image is not stored, so the request may be retried."""

    code = "StorageUnavailable"
    transient = True
