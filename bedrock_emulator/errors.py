"""The errors Bedrock answers with (Runtime's InvokeModel and the control plane): codes, HTTP statuses and
messages.

The lifecycle messages are Bedrock's own words as users reported them verbatim (2025-2026): end of life and
"Legacy, not used recently" are ResourceNotFoundException (404) on InvokeModel and GetFoundationModel alike; a
model the region does not offer is ValidationException (400) ``INVALID_MODEL_MESSAGE``; model access not
enabled is AccessDeniedException (403) with the default message below.
"""

from __future__ import annotations

__all__ = [
    "CONTENT_FILTER_MESSAGE",
    "DEFAULT_MESSAGES",
    "END_OF_LIFE_MESSAGE",
    "ERROR_NAMESPACE",
    "ERROR_STATUS",
    "INVALID_MODEL_MESSAGE",
    "LEGACY_INACTIVE_MESSAGE",
    "NO_ACCESS_MESSAGE",
    "THROTTLING_MESSAGE",
    "BedrockApiError",
]

#: HTTP status of each error code Bedrock Runtime's InvokeModel can answer with.
ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}
#: Appended to the code in ``x-amzn-ErrorType`` (``Code:namespace``), as Bedrock does.
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"

INVALID_MODEL_MESSAGE = "The provided model identifier is invalid."
END_OF_LIFE_MESSAGE = (
    "This model version has reached the end of its life. Please refer to the AWS documentation for more details."
)
LEGACY_INACTIVE_MESSAGE = (
    "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in "
    "the last 15 days. Please upgrade to an active model on Amazon Bedrock"
)
NO_ACCESS_MESSAGE = "You don't have access to the model with the specified model ID."
CONTENT_FILTER_MESSAGE = (
    "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request."
)
THROTTLING_MESSAGE = "Too many requests, please wait before trying again."
DEFAULT_MESSAGES: dict[str, str] = {
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "AccessDeniedException": NO_ACCESS_MESSAGE,
    "ResourceNotFoundException": "The requested resource could not be found.",
    "ThrottlingException": THROTTLING_MESSAGE,
    "ModelNotReadyException": "The model is not ready to serve inference requests. Try again later.",
    "ModelErrorException": "The model encountered an error while processing the request.",
    "ServiceQuotaExceededException": "Your request exceeds the service quota for your account.",
    "ValidationException": "The request is invalid.",
}


class BedrockApiError(Exception):
    """An error reply: ``code`` goes to ``x-amzn-ErrorType``, ``message`` to the JSON body."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, code)
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return ERROR_STATUS.get(self.code, 400)
