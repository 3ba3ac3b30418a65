"""The emulator checks requests against its own copy of AWS's published rules, so a wrong limit in the service
(``imagegen.models``) is caught end to end: the service lets the request through, the emulator refuses it with
Bedrock's ValidationException, and the service reports the refusal as Bedrock's rejection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from imagegen.bedrock import make_bedrock_client
from imagegen.config import Settings
from imagegen.errors import PermanentBedrockError
from imagegen.models import ModelAdapter, NovaCanvasAdapter, StabilityAdapter, TitanImageAdapter
from imagegen.service import ImageService
from tests.conftest import BUCKET
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN
from tests.local.emulator.client import StartEmulator

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.mark.parametrize(
    ("model_id", "adapter", "limit", "wrong", "payload", "refusal"),
    [
        pytest.param(
            CORE, StabilityAdapter, "max_seed", 2**33, {"seed": 2**32},
            "#/seed: 4294967296 is not less or equal to 4294967295", id="stability-seed",
        ),
        pytest.param(
            SD35, StabilityAdapter, "max_prompt_chars", 20_000, {"prompt": "p" * 10_001},
            "#/prompt: expected maxLength: 10000, actual: 10001", id="stability-prompt",
        ),
        pytest.param(
            TITAN, TitanImageAdapter, "max_prompt_chars", 1000, {"prompt": "p" * 513, "width": 512, "height": 512},
            "#/textToImageParams/text: expected maxLength: 512, actual: 513", id="titan-prompt",
        ),
        pytest.param(
            NOVA, NovaCanvasAdapter, "max_seed", 2_147_483_646, {"seed": 858_993_460, "width": 320, "height": 320},
            "#/imageGenerationConfig/seed: 858993460 is not less or equal to 858993459", id="nova-seed",
        ),
    ],
)  # fmt: skip
def test_a_wrong_limit_in_the_service_is_refused_by_the_emulator(
    start_emulator: StartEmulator,
    s3: S3Client,
    monkeypatch: pytest.MonkeyPatch,
    model_id: str,
    adapter: type[ModelAdapter],
    limit: str,
    wrong: int,
    payload: dict[str, Any],
    refusal: str,
) -> None:
    emulator = start_emulator()
    monkeypatch.setattr(adapter, limit, wrong)  # the service's limit is now wrong; the emulator's table is not
    settings = Settings(bucket_name=BUCKET, model_id=model_id, bedrock_max_attempts=1)
    bedrock = make_bedrock_client(settings.bedrock_region, max_attempts=1, read_timeout_seconds=30)
    service = ImageService(settings, bedrock=bedrock, s3=s3)

    prepared = service.prepare({"prompt": "a red fox", **payload})  # the service's own check lets it through
    with pytest.raises(PermanentBedrockError) as caught:
        service.generate(prepared, request_id="req-wrong-limit")

    error = caught.value
    assert type(error) is PermanentBedrockError
    assert (error.code, error.aws_code, error.transient) == ("BedrockRejected", "ValidationException", False)
    assert (
        error.detail
        == f"ValidationException: Malformed input request: {refusal}, please reformat your input and try again."
    )
    assert refusal not in error.public_message  # Bedrock's text is logged, never shown to the client
    assert (emulator.stats["requests"], emulator.stats["invalid"], emulator.stats["images"]) == (1, 1, 0)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_the_same_request_within_the_published_limit_is_served(start_emulator: StartEmulator, s3: S3Client) -> None:
    emulator = start_emulator()
    settings = Settings(bucket_name=BUCKET, model_id=CORE, bedrock_max_attempts=1)
    bedrock = make_bedrock_client(settings.bedrock_region, max_attempts=1, read_timeout_seconds=30)
    service = ImageService(settings, bedrock=bedrock, s3=s3)

    result = service.generate(service.prepare({"prompt": "a red fox", "seed": 2**32 - 1}), request_id="req-top-seed")
    assert [image.seed for image in result.images] == [2**32 - 1]
    assert emulator.stats["invalid"] == 0
