"""The errors Bedrock answers with (Runtime's InvokeModel and the control plane): codes, HTTP statuses and
messages, as of 2026.

The messages are Bedrock's own words as users reported them verbatim:

* End of life and "Legacy, not used recently" are ResourceNotFoundException (404) on InvokeModel and
  GetFoundationModel alike. The Legacy text says 30 days since 2026 (15 before), e.g.
  https://github.com/fourTheorem/podwhisperer/pull/24 (2026-05-19).
* A model the region does not offer: ValidationException (400) ``INVALID_MODEL_MESSAGE``, e.g.
  https://github.com/aws-samples/amazon-bedrock-workshop/issues/340 (Nova Canvas in us-west-2, 2025).
* A well-formed model id that names no foundation model (a typo, an id Bedrock never had): ResourceNotFoundException
  (404) ``UNRESOLVED_MODEL_MESSAGE`` on InvokeModel and InvokeModelWithResponseStream, e.g.
  https://github.com/truera/trulens/issues/779 (``amazon.ai21.j2-ultra-v1``, 2024) and
  https://github.com/aws-samples/bedrock-chat/issues/91. An id not shaped like a foundation-model id (``sonnet``)
  is ``INVALID_MODEL_MESSAGE``: https://github.com/iOfficeAI/AionCore/pull/377 (2026). Bedrock is not consistent
  here (https://github.com/MattJColes/lgtmaybe/pull/70 quotes ``INVALID_MODEL_MESSAGE`` for ``openai.gpt-5.5``);
  the emulator answers by the id's shape.
* An AWS Marketplace model (Stability AI's) whose agreement the account lacks, invoked by a principal that may not
  subscribe: AccessDeniedException (403) ``MARKETPLACE_ACCESS_DENIED_MESSAGE``, verbatim from
  https://github.com/ministryofjustice/modernisation-platform-environments/pull/18323 (2026-08-21; 2025 reports
  say "after 15 minutes"); its cause:
  https://www.repost.aws/knowledge-center/bedrock-resolve-marketplace-permission.
* Model access refused otherwise (the pre-2025 model-access page's wording): AccessDeniedException (403)
  ``NO_ACCESS_MESSAGE``.
* CreateFoundationModelAgreement for a model that already has its agreement: ConflictException (400), whose message
  says the agreement already exists (clients match "already exists"; the exact AWS wording is not published, so
  ``AGREEMENT_EXISTS_MESSAGE`` is the emulator's).
"""

from __future__ import annotations

__all__ = [
    "AGREEMENT_EXISTS_MESSAGE",
    "CONTENT_FILTER_MESSAGE",
    "CONTROL_PLANE_STATUS",
    "DEFAULT_MESSAGES",
    "END_OF_LIFE_MESSAGE",
    "ERROR_NAMESPACE",
    "ERROR_STATUS",
    "INVALID_MODEL_MESSAGE",
    "LEGACY_INACTIVE_MESSAGE",
    "MARKETPLACE_ACCESS_DENIED_MESSAGE",
    "NO_ACCESS_MESSAGE",
    "THROTTLING_MESSAGE",
    "UNRESOLVED_MODEL_MESSAGE",
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
#: HTTP status of the control plane's own error codes (besides those above).
CONTROL_PLANE_STATUS: dict[str, int] = {"ConflictException": 400}
#: Appended to the code in ``x-amzn-ErrorType`` (``Code:namespace``), as Bedrock does.
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"

INVALID_MODEL_MESSAGE = "The provided model identifier is invalid."
UNRESOLVED_MODEL_MESSAGE = "Could not resolve the foundation model from the provided model identifier."
END_OF_LIFE_MESSAGE = (
    "This model version has reached the end of its life. Please refer to the AWS documentation for more details."
)
LEGACY_INACTIVE_MESSAGE = (
    "Access denied. This Model is marked by provider as Legacy and you have not been actively using the model in "
    "the last 30 days. Please upgrade to an active model on Amazon Bedrock"
)
NO_ACCESS_MESSAGE = "You don't have access to the model with the specified model ID."
MARKETPLACE_ACCESS_DENIED_MESSAGE = (
    "Model access is denied due to IAM user or service role is not authorized to perform the required AWS "
    "Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable access to this "
    "model. Refer to the Amazon Bedrock documentation for further details. Your AWS Marketplace subscription for "
    "this model cannot be completed at this time. If you recently fixed this issue, try again after 5 minutes."
)
AGREEMENT_EXISTS_MESSAGE = "An agreement for this model already exists."
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
        return ERROR_STATUS.get(self.code) or CONTROL_PLANE_STATUS.get(self.code, 400)
