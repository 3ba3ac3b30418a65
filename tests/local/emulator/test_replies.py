"""What the emulator answers over real HTTP to real boto3 clients: images of the requested size, count and
format, deterministic per seed; whatever ``imagegen.models`` sends is accepted and its replies parse; the
image service stores what it generates."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.render import render_placeholder
from bedrock_emulator.server import BedrockEmulator
from bedrock_emulator.wire.stability import STABILITY_SIZES
from imagegen.bedrock import invoke_model, make_bedrock_client
from imagegen.config import Settings
from imagegen.models import SUPPORTED_MODEL_PREFIXES, StabilityAdapter
from imagegen.models import adapter_for as real_adapter_for
from imagegen.request import ImageRequest
from imagegen.service import ImageService
from tests.conftest import BUCKET
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, TITAN_V2, ULTRA, amazon, nova, stability, titan
from tests.local.emulator.client import (
    StartEmulator,
    decode_images,
    invoke,
    make_client,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client


# ---- valid requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body", "size", "count"),
    [
        (TITAN, titan(numberOfImages=3), (512, 512), 3),
        (TITAN_V2, titan(width=1173, height=640, quality="premium", cfgScale=8.0, seed=7), (1173, 640), 1),
        ("us.amazon.titan-image-generator-v2:0", amazon(), (1024, 1024), 1),
        (NOVA, nova(numberOfImages=2, width=640, height=384, text_params={"negativeText": "blurry"}), (640, 384), 2),
        ("us.amazon.nova-canvas-v1:0", amazon(text_params={"style": "PHOTOREALISM"}), (1024, 1024), 1),
    ],
)
def test_amazon_models_return_pngs_of_the_requested_size_and_count(
    client: BedrockRuntimeClient, model_id: str, body: Any, size: tuple[int, int], count: int
) -> None:
    reply = invoke(client, model_id, body)
    assert reply["error"] is None
    images = decode_images(reply)
    assert len(images) == count
    assert all(image.size == size for image in images)
    assert len({image.tobytes() for image in images}) == count  # seed + index: images of one request differ


@pytest.mark.parametrize(
    ("model_id", "body", "size", "fmt"),
    [
        (SD35, stability(mode="text-to-image", seed=5), (1024, 1024), "PNG"),
        (CORE, stability(aspect_ratio="16:9", output_format="png"), (1344, 768), "PNG"),
        (ULTRA, stability(aspect_ratio="9:21", output_format="jpeg", negative_prompt="fog"), (640, 1536), "JPEG"),
        (SD35, stability(aspect_ratio="5:4", output_format="webp"), (1152, 896), "WEBP"),
    ],
)
def test_stability_models_return_one_image_at_about_a_megapixel(
    client: BedrockRuntimeClient, model_id: str, body: Any, size: tuple[int, int], fmt: str
) -> None:
    reply = invoke(client, model_id, body)
    (image,) = decode_images(reply, fmt)
    assert image.size == size
    assert reply["finish_reasons"] == [None]
    assert len(reply["seeds"]) == 1
    assert 0 < reply["seeds"][0] <= StabilityAdapter.max_seed
    if "seed" in body:
        assert reply["seeds"] == [body["seed"]]


@pytest.mark.parametrize(
    ("model_id", "body", "other_seed"),
    [
        (TITAN, titan(seed=1), titan(seed=2)),
        (NOVA, nova(), nova(seed=13)),  # no seed: Nova's documented default 12
        (SD35, stability(seed=1), stability(seed=2)),
        (CORE, stability(), stability(seed=3)),  # 0 ("random") is replaced by a seed derived from the prompt
    ],
)
def test_replies_are_deterministic_and_depend_on_the_seed(
    client: BedrockRuntimeClient, model_id: str, body: Any, other_seed: Any
) -> None:
    first = invoke(client, model_id, body)
    assert invoke(client, model_id, body) == first
    assert invoke(client, model_id, other_seed)["images"] != first["images"]
    changed_prompt = json.loads(json.dumps(body).replace("lighthouse", "windmill"))
    assert invoke(client, model_id, changed_prompt)["images"] != first["images"]


@pytest.mark.parametrize("model_prefix", list(SUPPORTED_MODEL_PREFIXES))
def test_every_body_the_adapters_send_is_accepted_and_their_replies_parse(
    shared_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch, model_prefix: str
) -> None:
    """The contract that matters: what ``imagegen.models`` sends, the emulator takes, and vice versa."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", shared_emulator.url)
    model_id = f"{model_prefix}:0"
    adapter = real_adapter_for(model_id)
    if isinstance(adapter, StabilityAdapter):
        request = ImageRequest(prompt="a red fox", negative_prompt="fog", seed=9, width=1920, height=1080)
        expected_size = STABILITY_SIZES["16:9"]
    else:
        request = ImageRequest(
            prompt="a red fox", negative_prompt="fog", seed=9, width=512, height=512, number_of_images=2, cfg_scale=5
        )
        expected_size = (512, 512)
    invocation = adapter.prepare(request)
    client = make_bedrock_client("us-east-1", max_attempts=1, read_timeout_seconds=30)
    images = adapter.parse_response(invoke_model(client, model_id, invocation.body), invocation)
    assert len(images) == (request.number_of_images or 1)
    for image in images:
        assert image.seed == 9
        assert Image.open(io.BytesIO(image.png)).size == expected_size


def test_image_file_replies_reach_boto3(start_emulator: StartEmulator, tmp_path: Path) -> None:
    png = tmp_path / "large.png"
    png.write_bytes(render_placeholder("a realistic-size image", 7, 96, 64))
    start_emulator(EmulatorConfig(image_file=png))
    reply = invoke(make_client(), TITAN_V2, titan(numberOfImages=2))
    assert [base64.b64decode(image) for image in reply["images"]] == [png.read_bytes()] * 2
    assert [image.size for image in decode_images(reply)] == [(96, 64)] * 2


# ---- the service end to end -------------------------------------------------------------------


def test_image_service_stores_a_png_generated_by_the_emulator(start_emulator: StartEmulator, s3: S3Client) -> None:
    emulator = start_emulator()
    settings = Settings(bucket_name=BUCKET, model_id=NOVA, bedrock_max_attempts=1)
    bedrock = make_bedrock_client(settings.bedrock_region, max_attempts=1, read_timeout_seconds=30)
    service = ImageService(settings, bedrock=bedrock, s3=s3)
    prepared = service.prepare({"prompt": "a red fox in snow", "width": 640, "height": 384, "numberOfImages": 2})
    result = service.generate(prepared, request_id="req-emulator-1")

    assert len(result.images) == 2
    for stored in result.images:
        data = s3.get_object(Bucket=BUCKET, Key=stored.key)["Body"].read()
        image = Image.open(io.BytesIO(data))
        assert (image.format, image.size) == ("PNG", (640, 384))
    assert emulator.stats["requests"] == 1
    assert emulator.stats["images"] == 2
