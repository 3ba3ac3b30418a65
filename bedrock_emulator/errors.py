"""The errors Bedrock Runtime's InvokeModel answers with: codes, HTTP statuses and default messages."""

from __future__ import annotations

__all__ = [
    "CONTENT_FILTER_MESSAGE",
    "DEFAULT_MESSAGES",
    "ERROR_NAMESPACE",
    "ERROR_STATUS",
    "INVALID_MODEL_MESSAGE",
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
CONTENT_FILTER_MESSAGE = (
    "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request."
)
THROTTLING_MESSAGE = "Too many requests, please wait before trying again."
DEFAULT_MESSAGES: dict[str, str] = {
    "ModelTimeoutException": "Model has timed out in processing the request. Try your request again.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "AccessDeniedException": "You don't have access to the model with the specified model ID.",
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
