"""Bedrock's 2026 answers through the service (moto S3, a fake Bedrock): a model Bedrock calls unusable (Legacy and
unused, no Marketplace agreement, an id it cannot resolve) hands the request to the next entry of the chain; a
Stability reply whose ``finish_reasons`` says "Inference error" is asked again within the attempt budget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from bedrock_emulator.errors import (
    LEGACY_INACTIVE_MESSAGE,
    MARKETPLACE_ACCESS_DENIED_MESSAGE,
    UNRESOLVED_MODEL_MESSAGE,
)
from imagegen.config import Settings
from imagegen.errors import ModelInferenceError
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, Reply, client_error, make_service, stability_reply, titan_reply

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

CORE, TITAN = "stability.stable-image-core-v1:1", "amazon.titan-image-generator-v1"
#: Stability first (the chain's live model in 2026), Titan after it.
CHAIN = f"{CORE}@us-west-2,{TITAN}@us-east-1"
INFERENCE_ERROR: dict[str, Any] = {"finish_reasons": ["Inference error"]}

#: Each 2026 answer, with the reason the service logs when it marks the entry.
UNUSABLE: dict[str, tuple[ClientError, str]] = {
    "legacy-30-days": (
        client_error("ResourceNotFoundException", LEGACY_INACTIVE_MESSAGE, 404),
        "Legacy, not used by this account recently",
    ),
    "legacy-15-days": (
        client_error("ResourceNotFoundException", LEGACY_INACTIVE_MESSAGE.replace("30 days", "15 days"), 404),
        "Legacy, not used by this account recently",
    ),
    "marketplace": (
        client_error("AccessDeniedException", MARKETPLACE_ACCESS_DENIED_MESSAGE, 403),
        "no AWS Marketplace agreement for the model (the caller may not subscribe: aws-marketplace:ViewSubscriptions, "
        "aws-marketplace:Subscribe); create it once with `imagegen models --accept-agreements`",
    ),
    "unresolved": (
        client_error("ResourceNotFoundException", UNRESOLVED_MODEL_MESSAGE, 404),
        "not found (Bedrock cannot resolve the model id)",
    ),
}


@pytest.mark.parametrize("answer", UNUSABLE)
def test_an_unusable_model_hands_the_request_to_the_next_entry(
    s3: S3Client, caplog: pytest.LogCaptureFixture, answer: str
) -> None:
    error, reason = UNUSABLE[answer]
    bedrock = FakeBedrock(by_model={CORE: error, TITAN: titan_reply})
    service = make_service(Settings(bucket_name=BUCKET, model_id=CHAIN), bedrock, s3)

    result = service.generate(service.prepare({"prompt": "a lighthouse"}), request_id="req-1")

    assert (result.model_id, result.region, len(result.images)) == (TITAN, "us-east-1", 1)
    assert [call["modelId"] for call in bedrock.calls] == [CORE, TITAN]
    [warning] = [record for record in caplog.records if "marked unavailable" in record.getMessage()]
    assert (warning.model, warning.reason) == (CORE, reason)  # type: ignore[attr-defined]
    assert reason in warning.getMessage()  # the operator reads what to do in the log line itself


@pytest.mark.parametrize("failures", [1, 2])
def test_a_failed_inference_is_asked_again_within_the_budget(s3: S3Client, failures: int) -> None:
    replies: list[Reply] = [*([INFERENCE_ERROR] * failures), stability_reply]
    bedrock = FakeBedrock(replies=replies)
    service = make_service(Settings(bucket_name=BUCKET, model_id=CORE, bedrock_max_attempts=3), bedrock, s3)

    result = service.generate(service.prepare({"prompt": "a lighthouse", "seed": 5}), request_id="req-1")

    assert [image.seed for image in result.images] == [5]
    assert len(bedrock.calls) == failures + 1
    assert {call["decoded_body"]["seed"] for call in bedrock.calls} == {5}  # the same body each time


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_failed_inference_that_persists_is_a_transient_error_not_a_model_failover(
    s3: S3Client, attempts: int
) -> None:
    bedrock = FakeBedrock(by_model={CORE: INFERENCE_ERROR, TITAN: titan_reply})
    settings = Settings(bucket_name=BUCKET, model_id=CHAIN, bedrock_max_attempts=attempts)
    service = make_service(settings, bedrock, s3)

    with pytest.raises(ModelInferenceError) as caught:
        service.generate(service.prepare({"prompt": "a lighthouse"}), request_id="req-1")

    assert [call["modelId"] for call in bedrock.calls] == [CORE] * attempts  # the model is fine: no failover
    error = caught.value
    assert (error.transient, error.code, error.aws_code) == (True, "ModelInferenceFailed", "InferenceError")
    assert error.detail == "finish_reasons: Inference error"
    assert error.retry_after_seconds > 0
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
