"""Bedrock's 2026 answers for a model that cannot be used are classified so the chain fails over, whatever the
wording's variable parts; a failed inference (Stability's ``finish_reasons``) is asked again within the budget."""

from __future__ import annotations

import pytest

from bedrock_emulator.errors import (
    LEGACY_INACTIVE_MESSAGE,
    MARKETPLACE_ACCESS_DENIED_MESSAGE,
    UNRESOLVED_MODEL_MESSAGE,
)
from imagegen.bedrock import classify_client_error, retry_inference_errors
from imagegen.errors import (
    DEFAULT_RETRY_AFTER_SECONDS,
    ModelAccessDeniedError,
    ModelInferenceError,
    ModelNotFoundError,
    ModelUnavailableError,
    ThrottledError,
)
from tests.fakes import client_error

LEGACY_REASON = "Legacy, not used by this account recently"


def legacy_message(days: str) -> str:
    """The Legacy-inactive text with another number of days (AWS has said 15, and 30 since 2026)."""
    assert "the last 30 days" in LEGACY_INACTIVE_MESSAGE  # the emulator's text is the 2026 one
    return LEGACY_INACTIVE_MESSAGE.replace("the last 30 days", f"the last {days}")


@pytest.mark.parametrize("days", ["30 days", "15 days", "7 days", "1 day", "120 days"])
@pytest.mark.parametrize(("code", "status"), [("ResourceNotFoundException", 404), ("AccessDeniedException", 403)])
def test_legacy_inactive_with_any_number_of_days_fails_over(days: str, code: str, status: int) -> None:
    message = legacy_message(days)
    error = classify_client_error(client_error(code, message, status))
    assert type(error) is ModelNotFoundError
    assert isinstance(error, ModelUnavailableError)  # what makes the service move to the next entry
    assert (error.reason, error.aws_code, error.transient) == (LEGACY_REASON, code, False)
    assert error.detail == f"{code}: {message}"
    assert "Legacy" not in error.public_message


@pytest.mark.parametrize(
    "message",
    [
        MARKETPLACE_ACCESS_DENIED_MESSAGE,
        MARKETPLACE_ACCESS_DENIED_MESSAGE.replace("after 5 minutes", "after 2 minutes"),
        "User: arn:aws:sts::123456789012:assumed-role/imagegen-api/fn is not authorized to perform: "
        "aws-marketplace:ViewSubscriptions on resource: * because no identity-based policy allows it",
    ],
    ids=["2026", "2025-wording", "iam-denial"],
)
def test_a_marketplace_access_denial_fails_over_and_tells_the_operator_to_accept_the_agreement(message: str) -> None:
    error = classify_client_error(client_error("AccessDeniedException", message, 403))
    assert type(error) is ModelAccessDeniedError
    assert isinstance(error, ModelUnavailableError)
    assert "`imagegen models --accept-agreements`" in error.reason  # logged when the entry is marked
    assert "AWS Marketplace agreement" in error.reason
    assert error.detail == f"AccessDeniedException: {message}"
    assert "Marketplace" not in error.public_message


def test_model_access_refused_otherwise_is_not_called_a_marketplace_agreement() -> None:
    error = classify_client_error(client_error("AccessDeniedException", "You don't have access to the model.", 403))
    assert type(error) is ModelAccessDeniedError
    assert "accept-agreements" not in error.reason


@pytest.mark.parametrize(("code", "status"), [("ResourceNotFoundException", 404), ("ValidationException", 400)])
def test_an_unresolvable_model_identifier_fails_over_as_not_found(code: str, status: int) -> None:
    error = classify_client_error(client_error(code, UNRESOLVED_MODEL_MESSAGE, status))
    assert type(error) is ModelNotFoundError
    assert error.reason == "not found (Bedrock cannot resolve the model id)"
    assert error.detail == f"{code}: {UNRESOLVED_MODEL_MESSAGE}"


def test_a_validation_error_about_the_body_does_not_fail_over() -> None:
    error = classify_client_error(client_error("ValidationException", "Malformed input request: #/seed: bad", 400))
    assert not isinstance(error, ModelUnavailableError)
    assert error.code == "BedrockRejected"


# ---- a failed inference ----------------------------------------------------------------------------------------


class Script:
    """An attempt that fails with each scripted error in turn, then answers ``"image"``; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "image"


def inference_error() -> ModelInferenceError:
    return ModelInferenceError("The model failed to make the image.", aws_code="InferenceError", detail="x")


def test_a_failed_inference_is_asked_again_until_it_succeeds() -> None:
    attempt = Script(inference_error(), inference_error())
    assert retry_inference_errors(attempt, attempts=3) == "image"
    assert attempt.calls == 3


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_a_failed_inference_that_persists_is_raised_after_the_budget(attempts: int) -> None:
    attempt = Script(*(inference_error() for _ in range(5)))
    with pytest.raises(ModelInferenceError) as caught:
        retry_inference_errors(attempt, attempts=attempts)
    assert attempt.calls == attempts
    assert caught.value.transient
    assert caught.value.retry_after_seconds == DEFAULT_RETRY_AFTER_SECONDS  # the API's Retry-After


def test_any_other_error_is_raised_at_once() -> None:
    throttled = ThrottledError("slow down", retry_after_seconds=3)
    attempt = Script(throttled)
    with pytest.raises(ThrottledError) as caught:
        retry_inference_errors(attempt, attempts=3)
    assert caught.value is throttled  # botocore already retried it: never again here
    assert attempt.calls == 1


def test_a_budget_below_one_still_makes_one_attempt() -> None:
    attempt = Script()
    assert retry_inference_errors(attempt, attempts=0) == "image"
    assert attempt.calls == 1
