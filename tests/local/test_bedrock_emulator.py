"""The local Bedrock emulator, over real HTTP with real boto3 clients, and its placeholder renderer."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from bedrock_emulator.emulator import (
    CONTENT_FILTER_MESSAGE,
    ERROR_STATUS,
    FAULT_CODES,
    INVALID_MODEL_MESSAGE,
    STABILITY_SIZES,
    THROTTLING_MESSAGE,
    BedrockEmulator,
    EmulatorConfig,
    main,
)
from bedrock_emulator.render import CAPTION, render_placeholder
from imagegen.bedrock import classify_client_error, invoke_model, make_bedrock_client
from imagegen.config import Settings
from imagegen.errors import ContentFilteredError, ThrottledError
from imagegen.models import SUPPORTED_MODEL_PREFIXES, NovaCanvasAdapter, StabilityAdapter, TitanImageAdapter
from imagegen.models import adapter_for as real_adapter_for
from imagegen.models.stability import ASPECT_RATIOS
from imagegen.request import ImageRequest
from imagegen.service import ImageService
from tests.conftest import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client

TITAN = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"
REPO = Path(__file__).resolve().parents[2]


# ---- helpers ----------------------------------------------------------------------------------


def make_client() -> BedrockRuntimeClient:
    """A plain client that never retries, so every call is exactly one emulator request."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
    return boto3.client("bedrock-runtime", region_name="us-east-1", config=config)


def amazon(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    body: dict[str, Any] = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text, **(text_params or {})}}
    if config:
        body["imageGenerationConfig"] = config
    return body


def titan(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    """A Titan body at a small size (fast to render) unless the test sets one."""
    return amazon(text, text_params=text_params, **{"width": 512, "height": 512, **config})


def nova(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    return amazon(text, text_params=text_params, **{"width": 320, "height": 320, **config})


def stability(prompt: str = "a lighthouse at dusk", **fields: Any) -> Any:
    return {"prompt": prompt, **fields}


def invoke(client: BedrockRuntimeClient, model_id: str, body: Any) -> dict[str, Any]:
    response = client.invoke_model(
        modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    assert response["contentType"] == "application/json"
    reply: dict[str, Any] = json.loads(response["body"].read())
    return reply


def invoke_error(client: BedrockRuntimeClient, model_id: str, body: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        invoke(client, model_id, body)
    return caught.value


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def decode_images(reply: dict[str, Any], fmt: str = "PNG") -> list[Image.Image]:
    images: list[Image.Image] = []
    for encoded in reply["images"]:
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        image.load()
        assert image.format == fmt
        images.append(image)
    return images


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """A raw HTTP call (no botocore) returning status, lower-cased headers and the decoded JSON body."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[BedrockEmulator]:
    """One default emulator for the tests that only read from it (validation, rendering)."""
    with BedrockEmulator(EmulatorConfig()) as emulator:
        yield emulator


_shared_clients: dict[str, BedrockRuntimeClient] = {}


@pytest.fixture
def client(shared_emulator: BedrockEmulator, monkeypatch: pytest.MonkeyPatch) -> BedrockRuntimeClient:
    """A client of the shared emulator, made once (from the environment, like the service does) and reused."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", shared_emulator.url)
    if shared_emulator.url not in _shared_clients:
        _shared_clients[shared_emulator.url] = make_client()
    return _shared_clients[shared_emulator.url]


StartEmulator = Callable[..., BedrockEmulator]


@pytest.fixture
def start_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[StartEmulator]:
    """Starts a dedicated emulator and points ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` at it."""
    started: list[BedrockEmulator] = []

    def start(config: EmulatorConfig | None = None, clock: Callable[[], float] = time.monotonic) -> BedrockEmulator:
        emulator = BedrockEmulator(config or EmulatorConfig(), clock=clock).start()
        started.append(emulator)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", emulator.url)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


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
        (CORE, stability(aspect_ratio="5:4", output_format="webp"), (1152, 896), "WEBP"),
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


def test_stability_sizes_cover_every_aspect_ratio_at_about_a_megapixel() -> None:
    assert set(STABILITY_SIZES) == {f"{w}:{h}" for w, h in ASPECT_RATIOS}
    for ratio, (width, height) in STABILITY_SIZES.items():
        ratio_w, ratio_h = map(int, ratio.split(":"))
        assert width % 64 == 0
        assert height % 64 == 0
        assert 0.9e6 < width * height < 1.1e6
        assert abs(width / height - ratio_w / ratio_h) < 0.08 * ratio_w / ratio_h


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


# ---- validation -------------------------------------------------------------------------------

_TITAN_MAX, _NOVA_MAX, _SD_MAX = TitanImageAdapter.max_seed, NovaCanvasAdapter.max_seed, StabilityAdapter.max_seed
_T_TEXT, _N_TEXT = TitanImageAdapter.max_prompt_chars, NovaCanvasAdapter.max_prompt_chars
_S_TEXT = StabilityAdapter.max_prompt_chars

# (model, body, None if accepted else a fragment of the message naming the JSON path)
VALIDATION_CASES = [
    # ---- Titan ----
    pytest.param(TITAN, titan("x" * _T_TEXT), None, id="titan-text-max"),
    pytest.param(
        TITAN, titan("x" * (_T_TEXT + 1)), "#/textToImageParams/text: expected maxLength: 512", id="titan-text-long"
    ),
    pytest.param(TITAN, titan("x"), None, id="titan-text-min"),
    pytest.param(TITAN, titan(""), "#/textToImageParams/text: expected minLength: 1, actual: 0", id="titan-text-empty"),
    pytest.param(TITAN, titan(text_params={"negativeText": "n" * _T_TEXT}), None, id="titan-negative-max"),
    pytest.param(
        TITAN,
        titan(text_params={"negativeText": "n" * (_T_TEXT + 1)}),
        "#/textToImageParams/negativeText",
        id="titan-negative-long",
    ),
    pytest.param(
        TITAN, titan(text_params={"negativeText": ""}), "#/textToImageParams/negativeText", id="titan-negative-empty"
    ),
    pytest.param(TITAN, titan(numberOfImages=5), None, id="titan-count-max"),
    pytest.param(
        TITAN,
        titan(numberOfImages=6),
        "#/imageGenerationConfig/numberOfImages: 6 is not less or equal to 5",
        id="titan-count-high",
    ),
    pytest.param(TITAN, titan(numberOfImages=1), None, id="titan-count-min"),
    pytest.param(
        TITAN,
        titan(numberOfImages=0),
        "#/imageGenerationConfig/numberOfImages: 0 is not greater or equal to 1",
        id="titan-count-low",
    ),
    pytest.param(
        TITAN,
        titan(numberOfImages=True),
        "#/imageGenerationConfig/numberOfImages: expected type: Integer, found: Boolean",
        id="titan-count-bool",
    ),
    pytest.param(TITAN, titan(cfgScale=1.1), None, id="titan-cfg-min"),
    pytest.param(
        TITAN,
        titan(cfgScale=1.09),
        "#/imageGenerationConfig/cfgScale: 1.09 is not greater or equal to 1.1",
        id="titan-cfg-low",
    ),
    pytest.param(TITAN, titan(cfgScale=10), None, id="titan-cfg-max"),
    pytest.param(TITAN, titan(cfgScale=10.01), "#/imageGenerationConfig/cfgScale", id="titan-cfg-high"),
    pytest.param(
        TITAN,
        titan(cfgScale="8"),
        "#/imageGenerationConfig/cfgScale: expected type: Number, found: String",
        id="titan-cfg-type",
    ),
    pytest.param(TITAN, titan(seed=0), None, id="titan-seed-min"),
    pytest.param(
        TITAN, titan(seed=-1), "#/imageGenerationConfig/seed: -1 is not greater or equal to 0", id="titan-seed-low"
    ),
    pytest.param(TITAN, titan(seed=_TITAN_MAX), None, id="titan-seed-max"),
    pytest.param(
        TITAN,
        titan(seed=_TITAN_MAX + 1),
        f"#/imageGenerationConfig/seed: {_TITAN_MAX + 1} is not less",
        id="titan-seed-high",
    ),
    pytest.param(
        TITAN,
        titan(seed=1.5),
        "#/imageGenerationConfig/seed: expected type: Integer, found: Number",
        id="titan-seed-float",
    ),
    pytest.param(TITAN, titan(quality="premium"), None, id="titan-quality-ok"),
    pytest.param(
        TITAN,
        titan(quality="ultra"),
        "#/imageGenerationConfig/quality: ultra is not a valid enum value",
        id="titan-quality-bad",
    ),
    pytest.param(TITAN, titan(width=320, height=704), None, id="titan-size-smallest-side"),
    pytest.param(TITAN, titan(width=1408, height=640), None, id="titan-size-largest-side"),
    pytest.param(
        TITAN,
        titan(width=1409, height=640),
        "#/imageGenerationConfig/width: 1409 is not less or equal to 1408",
        id="titan-width-high",
    ),
    pytest.param(
        TITAN,
        titan(width=512, height=319),
        "#/imageGenerationConfig/height: 319 is not greater or equal to 320",
        id="titan-height-low",
    ),
    pytest.param(
        TITAN,
        titan(width=1024, height=768),
        "#/imageGenerationConfig: width x height 1024x768 is not one of the supported",
        id="titan-size-unlisted",
    ),
    pytest.param(
        TITAN,
        titan(width=768, height=None),
        "#/imageGenerationConfig/height: expected type: Integer, found: Null",
        id="titan-height-null",
    ),
    pytest.param(
        TITAN_V2,
        {**titan(), "taskType": "INPAINTING"},
        "#/taskType: INPAINTING is not a valid enum value",
        id="titan-task",
    ),
    pytest.param(
        TITAN, {"taskType": "TEXT_IMAGE"}, "#: required key [textToImageParams] not found", id="titan-no-params"
    ),
    pytest.param(
        TITAN, {"textToImageParams": {"text": "x"}}, "#: required key [taskType] not found", id="titan-no-task"
    ),
    pytest.param(
        TITAN,
        amazon(text_params={"text": None}),
        "#/textToImageParams/text: expected type: String, found: Null",
        id="titan-text-null",
    ),
    pytest.param(TITAN, {**titan(), "extra": 1}, "#: extraneous key [extra] is not permitted", id="titan-extra-root"),
    pytest.param(
        TITAN,
        titan(steps=30),
        "#/imageGenerationConfig: extraneous key [steps] is not permitted",
        id="titan-extra-config",
    ),
    pytest.param(
        TITAN,
        titan(text_params={"style": "PHOTOREALISM"}),
        "#/textToImageParams: extraneous key [style]",
        id="titan-no-style",
    ),
    pytest.param(
        TITAN,
        {**titan(), "imageGenerationConfig": []},
        "#/imageGenerationConfig: expected type: JSONObject, found: JSONArray",
        id="titan-config-type",
    ),
    pytest.param(TITAN, ["TEXT_IMAGE"], "#: expected type: JSONObject, found: JSONArray", id="titan-body-array"),
    # ---- Nova Canvas ----
    pytest.param(NOVA, nova("x" * _N_TEXT), None, id="nova-text-max"),
    pytest.param(
        NOVA,
        nova("x" * (_N_TEXT + 1)),
        "#/textToImageParams/text: expected maxLength: 1024, actual: 1025",
        id="nova-text-long",
    ),
    pytest.param(NOVA, nova(""), "#/textToImageParams/text: expected minLength: 1", id="nova-text-empty"),
    pytest.param(NOVA, nova(text_params={"negativeText": "n" * _N_TEXT}), None, id="nova-negative-max"),
    pytest.param(
        NOVA,
        nova(text_params={"negativeText": "n" * (_N_TEXT + 1)}),
        "#/textToImageParams/negativeText: expected maxLength: 1024",
        id="nova-negative-long",
    ),
    pytest.param(NOVA, nova(numberOfImages=5), None, id="nova-count-max"),
    pytest.param(NOVA, nova(numberOfImages=6), "#/imageGenerationConfig/numberOfImages", id="nova-count-high"),
    pytest.param(NOVA, nova(cfgScale=10.0), None, id="nova-cfg-max"),
    pytest.param(
        NOVA,
        nova(cfgScale=10.5),
        "#/imageGenerationConfig/cfgScale: 10.5 is not less or equal to 10.0",
        id="nova-cfg-high",
    ),
    pytest.param(NOVA, nova(cfgScale=1.0), "#/imageGenerationConfig/cfgScale", id="nova-cfg-low"),
    pytest.param(NOVA, nova(quality="standard"), None, id="nova-quality-ok"),
    pytest.param(NOVA, nova(quality="best"), "#/imageGenerationConfig/quality", id="nova-quality-bad"),
    pytest.param(NOVA, nova(seed=_NOVA_MAX), None, id="nova-seed-max"),
    pytest.param(
        NOVA,
        nova(seed=_NOVA_MAX + 1),
        "#/imageGenerationConfig/seed: 858993460 is not less or equal to 858993459",
        id="nova-seed-high",
    ),
    pytest.param(NOVA, nova(seed=-1), "#/imageGenerationConfig/seed", id="nova-seed-low"),
    pytest.param(NOVA, nova(width=320, height=320), None, id="nova-side-min"),
    pytest.param(
        NOVA,
        nova(width=304, height=320),
        "#/imageGenerationConfig/width: 304 is not greater or equal to 320",
        id="nova-side-low",
    ),
    # 4096 itself is unreachable: its partner must be >= 1024 (ratio) and 1024 x 4096 is not < max_pixels.
    pytest.param(NOVA, nova(width=1024, height=4080), None, id="nova-side-largest-usable"),
    pytest.param(
        NOVA, nova(width=1024, height=4096), "#/imageGenerationConfig: width x height 1024x4096", id="nova-side-max"
    ),
    pytest.param(
        NOVA,
        nova(width=1024, height=4112),
        "#/imageGenerationConfig/height: 4112 is not less or equal to 4096",
        id="nova-side-high",
    ),
    pytest.param(NOVA, nova(width=336, height=320), None, id="nova-step-ok"),
    pytest.param(
        NOVA,
        nova(width=330, height=320),
        "#/imageGenerationConfig/width: 330 is not a multiple of 16",
        id="nova-step-bad",
    ),
    pytest.param(NOVA, nova(width=1280, height=320), None, id="nova-ratio-max"),
    pytest.param(
        NOVA, nova(width=1296, height=320), "#/imageGenerationConfig: aspect ratio 1296:320", id="nova-ratio-wide"
    ),
    pytest.param(
        NOVA, nova(width=320, height=1296), "#/imageGenerationConfig: aspect ratio 320:1296", id="nova-ratio-tall"
    ),
    pytest.param(NOVA, nova(width=2048, height=2032), None, id="nova-pixels-max"),
    pytest.param(
        NOVA,
        nova(width=2048, height=2048),
        "#/imageGenerationConfig: width x height 2048x2048 = 4194304 pixels",
        id="nova-pixels-high",
    ),
    pytest.param(NOVA, nova(text_params={"style": "PHOTOREALISM"}), None, id="nova-style-ok"),
    pytest.param(
        NOVA,
        nova(text_params={"style": "CUBISM"}),
        "#/textToImageParams/style: CUBISM is not a valid enum value",
        id="nova-style-bad",
    ),
    pytest.param(NOVA, {**nova(), "taskType": "TEXT_TO_IMAGE"}, "#/taskType", id="nova-task"),
    pytest.param(
        NOVA,
        nova(text_params={"conditionImage": "x"}),
        "#/textToImageParams: extraneous key [conditionImage]",
        id="nova-extra",
    ),
    # ---- Stability ----
    pytest.param(SD35, stability("x" * _S_TEXT), None, id="sd-prompt-max"),
    pytest.param(
        SD35, stability("x" * (_S_TEXT + 1)), "#/prompt: expected maxLength: 10000, actual: 10001", id="sd-prompt-long"
    ),
    pytest.param(CORE, stability(""), "#/prompt: expected minLength: 1, actual: 0", id="sd-prompt-empty"),
    pytest.param(CORE, stability(negative_prompt="n" * _S_TEXT), None, id="sd-negative-max"),
    pytest.param(
        CORE,
        stability(negative_prompt="n" * (_S_TEXT + 1)),
        "#/negative_prompt: expected maxLength: 10000",
        id="sd-negative-long",
    ),
    pytest.param(ULTRA, stability(seed=_SD_MAX), None, id="sd-seed-max"),
    pytest.param(
        ULTRA, stability(seed=_SD_MAX + 1), "#/seed: 4294967295 is not less or equal to 4294967294", id="sd-seed-high"
    ),
    pytest.param(ULTRA, stability(seed=-1), "#/seed: -1 is not greater or equal to 0", id="sd-seed-low"),
    pytest.param(SD35, stability(aspect_ratio="21:9"), None, id="sd-ratio-ok"),
    pytest.param(
        SD35, stability(aspect_ratio="7:3"), "#/aspect_ratio: 7:3 is not a valid enum value", id="sd-ratio-bad"
    ),
    pytest.param(SD35, stability(output_format="jpeg"), None, id="sd-format-ok"),
    pytest.param(
        SD35, stability(output_format="gif"), "#/output_format: gif is not a valid enum value", id="sd-format-bad"
    ),
    pytest.param(SD35, stability(mode="text-to-image"), None, id="sd-mode-ok"),
    pytest.param(
        SD35, stability(mode="image-to-image"), "#/mode: image-to-image is not a valid enum value", id="sd-mode-bad"
    ),
    pytest.param(SD35, {"aspect_ratio": "1:1"}, "#: required key [prompt] not found", id="sd-no-prompt"),
    pytest.param(SD35, stability(cfg_scale=7), "#: extraneous key [cfg_scale] is not permitted", id="sd-extra"),
    pytest.param(SD35, {"prompt": 42}, "#/prompt: expected type: String, found: Integer", id="sd-prompt-type"),
]


@pytest.mark.parametrize(("model_id", "body", "problem"), VALIDATION_CASES)
def test_wire_bodies_are_validated_at_and_just_past_every_bound(
    client: BedrockRuntimeClient, model_id: str, body: Any, problem: str | None
) -> None:
    if problem is None:
        assert invoke(client, model_id, body)["images"]
        return
    error = invoke_error(client, model_id, body)
    assert error_code(error) == "ValidationException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    message = error.response["Error"]["Message"]
    assert message.startswith("Malformed input request: #")
    assert message.endswith(", please reformat your input and try again.")
    assert problem in message


def test_limits_come_from_the_adapters(client: BedrockRuntimeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TitanImageAdapter, "max_prompt_chars", 20)
    monkeypatch.setattr(StabilityAdapter, "max_seed", 100)
    assert (
        "expected maxLength: 20, actual: 21"
        in invoke_error(client, TITAN, titan("x" * 21)).response["Error"]["Message"]
    )
    assert "#/seed: 101 is not less or equal to 100" in str(invoke_error(client, SD35, stability(seed=101)))


def test_a_body_that_is_not_json_is_a_validation_error(shared_emulator: BedrockEmulator) -> None:
    status, headers, payload = http(f"{shared_emulator.url}/model/{TITAN}/invoke", "POST", b"{not json")
    assert status == 400
    assert headers["x-amzn-errortype"].startswith("ValidationException:")
    assert "not valid JSON" in payload["message"]


@pytest.mark.parametrize(
    "model_id", ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1", "nova-canvas", "x"]
)
def test_an_unknown_model_id_is_rejected_like_bedrock_does(client: BedrockRuntimeClient, model_id: str) -> None:
    error = invoke_error(client, model_id, titan())
    assert error_code(error) == "ValidationException"
    assert error.response["Error"]["Message"] == INVALID_MODEL_MESSAGE


def test_the_model_id_is_url_decoded(shared_emulator: BedrockEmulator) -> None:
    body = json.dumps(nova()).encode()
    status, _, payload = http(f"{shared_emulator.url}/model/amazon.nova-canvas-v1%3A0/invoke", "POST", body)
    assert status == 200
    assert len(payload["images"]) == 1


# ---- errors as botocore sees them -------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), sorted(ERROR_STATUS.items()))
def test_every_error_code_reaches_boto3_as_a_client_error(
    shared_emulator: BedrockEmulator, client: BedrockRuntimeClient, code: str, status: int
) -> None:
    shared_emulator.fail_next(code, message=f"forced {code}")
    error = invoke_error(client, NOVA, nova())
    assert error_code(error) == code
    assert error.response["Error"]["Message"] == f"forced {code}"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert uuid.UUID(error.response["ResponseMetadata"]["RequestId"])
    assert invoke(client, NOVA, nova())["images"]  # only the next request failed


def test_the_seven_documented_statuses() -> None:
    documented = {
        "ValidationException": 400,
        "AccessDeniedException": 403,
        "ResourceNotFoundException": 404,
        "ModelTimeoutException": 408,
        "ThrottlingException": 429,
        "InternalServerException": 500,
        "ServiceUnavailableException": 503,
    }
    assert documented.items() <= ERROR_STATUS.items()
    with pytest.raises(ValueError, match="unknown error code"):
        BedrockEmulator().fail_next("TeapotException")


def test_successful_replies_carry_a_request_id(client: BedrockRuntimeClient) -> None:
    response = client.invoke_model(modelId=TITAN, body=json.dumps(titan()))
    assert uuid.UUID(response["ResponseMetadata"]["RequestId"])
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/model/{TITAN}/invoke"),
        ("POST", f"/model/{TITAN}/invoke-with-response-stream"),
        ("POST", "/model/a/b/invoke"),
        ("POST", "/"),
        ("DELETE", "/_emulator/stats"),
    ],
)
def test_anything_but_invoke_model_is_an_unknown_operation(
    shared_emulator: BedrockEmulator, method: str, path: str
) -> None:
    status, headers, payload = http(shared_emulator.url + path, method, b"{}" if method == "POST" else None)
    assert status == 404
    assert headers["x-amzn-errortype"].startswith("UnknownOperationException:")
    assert uuid.UUID(headers["x-amzn-requestid"])
    assert "Unknown operation" in payload["message"]


def test_other_bedrock_operations_fail_with_a_client_error(client: BedrockRuntimeClient) -> None:
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=NOVA, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert error_code(caught.value) == "UnknownOperationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---- content filter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "body"),
    [
        (TITAN, titan("A GORY scene")),
        (NOVA, nova("calm lake", text_params={"negativeText": "no gory parts"})),
        (SD35, stability("a blood bath, oil painting")),
        (CORE, stability("meadow", negative_prompt="Gory")),
    ],
)
def test_blocked_words_trip_the_content_filter(start_emulator: StartEmulator, model_id: str, body: Any) -> None:
    emulator = start_emulator(EmulatorConfig(blocked_words=("gory", " Blood Bath ")))
    error = invoke_error(make_client(), model_id, body)
    assert error_code(error) == "ValidationException"
    assert error.response["Error"]["Message"] == CONTENT_FILTER_MESSAGE
    assert isinstance(classify_client_error(error), ContentFilteredError)
    assert emulator.stats["filtered"] == 1


def test_blocked_words_match_whole_words_only(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(blocked_words=("gory",)))
    client = make_client()
    for prompt in ("allegory of spring", "gorylla", "categoryless"):
        assert invoke(client, TITAN, titan(prompt))["images"]
    assert invoke_error(client, TITAN, titan("gory!"))
    assert emulator.stats["filtered"] == 1


def test_invalid_bodies_are_rejected_before_the_content_filter(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(blocked_words=("gory",)))
    error = invoke_error(make_client(), TITAN, titan("gory", numberOfImages=9))
    assert "numberOfImages" in error.response["Error"]["Message"]
    assert emulator.stats["invalid"] == 1
    assert emulator.stats["filtered"] == 0


# ---- quota, faults, latency -------------------------------------------------------------------


def test_requests_per_minute_quota_uses_a_sliding_window(start_emulator: StartEmulator) -> None:
    clock = FakeClock()
    emulator = start_emulator(EmulatorConfig(rpm=2), clock=clock)
    client = make_client()
    invoke(client, TITAN, titan())
    clock.now += 30
    invoke(client, TITAN, titan())
    error = invoke_error(client, TITAN, titan())
    assert error_code(error) == "ThrottlingException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Error"]["Message"] == THROTTLING_MESSAGE
    assert isinstance(classify_client_error(error), ThrottledError)

    clock.now += 29.9  # the first request is still inside the window
    assert error_code(invoke_error(client, TITAN, titan())) == "ThrottlingException"
    clock.now += 0.1  # 60 s after the first request: one slot frees up
    invoke(client, TITAN, titan())
    assert error_code(invoke_error(client, TITAN, titan())) == "ThrottlingException"
    clock.now += 60
    invoke(client, TITAN, titan())
    assert emulator.stats["throttled"] == 3
    assert emulator.stats["succeeded"] == 4


def test_invalid_and_filtered_requests_do_not_use_quota(start_emulator: StartEmulator) -> None:
    start_emulator(EmulatorConfig(rpm=1, blocked_words=("gory",)), clock=FakeClock())
    client = make_client()
    invoke_error(client, TITAN, titan(seed=-1))
    invoke_error(client, TITAN, titan("gory"))
    invoke(client, TITAN, titan())
    assert error_code(invoke_error(client, TITAN, titan())) == "ThrottlingException"


def test_fault_rate_one_injects_both_fault_codes(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(fault_rate=1.0, seed=1))
    client = make_client()
    seen: dict[str, int] = {}
    for _ in range(20):
        error = invoke_error(client, TITAN, titan())
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == ERROR_STATUS[error_code(error)]
        seen[error_code(error)] = seen.get(error_code(error), 0) + 1
    assert set(seen) == set(FAULT_CODES)
    assert emulator.stats["faults"] == 20
    assert emulator.stats["images"] == 0


def test_fault_rate_zero_never_faults(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(fault_rate=0.0, seed=1))
    client = make_client()
    for _ in range(10):
        invoke(client, TITAN, titan())
    assert emulator.stats["faults"] == 0
    assert emulator.stats["succeeded"] == 10


def test_faults_are_reproducible_with_a_seed(start_emulator: StartEmulator) -> None:
    def outcomes() -> list[str]:
        start_emulator(EmulatorConfig(fault_rate=0.5, seed=1234))
        client = make_client()
        result = []
        for _ in range(16):
            try:
                invoke(client, TITAN, titan())
                result.append("ok")
            except ClientError as error:
                result.append(error_code(error))
        return result

    first = outcomes()
    assert first == outcomes()
    assert "ok" in first
    assert set(first) - {"ok"}


def test_latency_is_added_to_successful_requests(start_emulator: StartEmulator) -> None:
    start_emulator(EmulatorConfig(latency_ms=150))
    client = make_client()
    started = time.perf_counter()
    response = client.invoke_model(modelId=TITAN, body=json.dumps(titan()))
    assert time.perf_counter() - started >= 0.15
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-invocation-latency"]) >= 150


def test_stats_count_every_outcome_and_can_be_reset(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(EmulatorConfig(rpm=2, blocked_words=("gory",)), clock=FakeClock())
    client = make_client()
    invoke(client, TITAN, titan(numberOfImages=3))
    invoke(client, SD35, stability())
    invoke_error(client, TITAN, titan(quality="best"))
    invoke_error(client, "x.y", titan())
    invoke_error(client, TITAN, titan("gory"))
    invoke_error(client, TITAN, titan())  # over quota
    emulator.fail_next("AccessDeniedException")
    invoke_error(client, TITAN, titan())
    assert emulator.stats == {
        "requests": 7,
        "images": 4,
        "succeeded": 2,
        "throttled": 1,
        "faults": 1,
        "filtered": 1,
        "invalid": 2,
    }
    emulator.reset_stats()
    assert set(emulator.stats.values()) == {0}


def test_admin_endpoints_expose_stats_reset_and_forced_errors(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    client = make_client()
    invoke(client, TITAN, titan())
    status, _, stats = http(f"{emulator.url}/_emulator/stats")
    assert (status, stats["requests"], stats["succeeded"]) == (200, 1, 1)
    body = json.dumps({"code": "ResourceNotFoundException", "times": 2}).encode()
    assert http(f"{emulator.url}/_emulator/fail-next", "POST", body)[0] == 200
    assert error_code(invoke_error(client, TITAN, titan())) == "ResourceNotFoundException"
    assert error_code(invoke_error(client, TITAN, titan())) == "ResourceNotFoundException"
    invoke(client, TITAN, titan())
    assert http(f"{emulator.url}/_emulator/fail-next", "POST", b'{"code": "Nope"}')[0] == 400
    status, _, stats = http(f"{emulator.url}/_emulator/reset", "POST", b"")
    assert (status, stats["requests"]) == (200, 0)


def test_concurrent_requests_are_served_and_counted(start_emulator: StartEmulator) -> None:
    emulator = start_emulator()
    client = make_client()
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: invoke(client, TITAN, titan(seed=i % 4)), range(24)))
    assert all(len(reply["images"]) == 1 for reply in replies)
    assert emulator.stats["requests"] == emulator.stats["succeeded"] == 24


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


# ---- configuration and command line -----------------------------------------------------------


def test_config_from_env_reads_every_variable() -> None:
    config = EmulatorConfig.from_env(
        {
            "BEDROCK_EMULATOR_LATENCY_MS": "250",
            "BEDROCK_EMULATOR_RPM": "60",
            "BEDROCK_EMULATOR_FAULT_RATE": "0.25",
            "BEDROCK_EMULATOR_BLOCKED_WORDS": "Gore, violence,,",
            "BEDROCK_EMULATOR_SEED": "7",
        }
    )
    assert config == EmulatorConfig(latency_ms=250, rpm=60, fault_rate=0.25, blocked_words=("gore", "violence"), seed=7)
    assert EmulatorConfig.from_env({}) == EmulatorConfig()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BEDROCK_EMULATOR_LATENCY_MS", "fast"),
        ("BEDROCK_EMULATOR_LATENCY_MS", "-1"),
        ("BEDROCK_EMULATOR_RPM", "1.5"),
        ("BEDROCK_EMULATOR_RPM", "-3"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "1.01"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "nan"),
        ("BEDROCK_EMULATOR_FAULT_RATE", "often"),
        ("BEDROCK_EMULATOR_SEED", "abc"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        EmulatorConfig.from_env({name: value})


@pytest.mark.parametrize(
    "kwargs", [{"latency_ms": -1}, {"rpm": -1}, {"fault_rate": 1.5}, {"fault_rate": -0.1}, {"latency_ms": True}]
)
def test_bad_config_values_name_the_field(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EmulatorConfig(**kwargs)


def test_cli_rejects_bad_values(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--fault-rate", "2"])
    assert caught.value.code == 2
    assert "fault_rate" in capsys.readouterr().err
    monkeypatch.setenv("BEDROCK_EMULATOR_LATENCY_MS", "soon")
    with pytest.raises(SystemExit):
        main([])
    assert "BEDROCK_EMULATOR_LATENCY_MS" in capsys.readouterr().err


def test_cli_serves_until_interrupted_and_exits_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "BEDROCK_EMULATOR_RPM": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bedrock_emulator.emulator", "--port", "0", "--rpm", "5", "--seed", "3"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("Bedrock emulator listening on http://127.0.0.1:"), first_line
        url = first_line.split()[-1]
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        client = make_client()
        for _ in range(2):  # the --rpm flag (5) overrides BEDROCK_EMULATOR_RPM (1)
            assert invoke(client, TITAN, titan())["images"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# ---- the placeholder renderer -----------------------------------------------------------------


def test_render_is_deterministic_and_depends_on_prompt_and_seed() -> None:
    first = render_placeholder("a lighthouse", 1, 320, 240)
    assert render_placeholder("a lighthouse", 1, 320, 240) == first
    assert render_placeholder("a lighthouse", 2, 320, 240) != first
    assert render_placeholder("a windmill", 1, 320, 240) != first
    image = Image.open(io.BytesIO(first))
    assert (image.format, image.size, image.mode) == ("PNG", (320, 240), "RGB")


def test_render_is_byte_identical_across_processes() -> None:
    code = (
        "import hashlib, sys; from bedrock_emulator.render import render_placeholder as r; "
        "sys.stdout.write(hashlib.sha256(r('a lighthouse', 7, 256, 192)).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert other.stdout == hashlib.sha256(render_placeholder("a lighthouse", 7, 256, 192)).hexdigest()


@pytest.mark.parametrize(("fmt", "pil_format"), [("PNG", "PNG"), ("jpeg", "JPEG"), ("WEBP", "WEBP")])
def test_render_encodes_each_format(fmt: str, pil_format: str) -> None:
    image = Image.open(io.BytesIO(render_placeholder("fox", 3, 200, 120, fmt)))
    assert (image.format, image.size) == (pil_format, (200, 120))


@pytest.mark.parametrize("size", [(1, 1), (16, 900), (4096, 320), (320, 1408)])
def test_render_handles_extreme_shapes(size: tuple[int, int]) -> None:
    assert Image.open(io.BytesIO(render_placeholder("x" * 2000, 0, *size))).size == size


def test_render_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="format"):
        render_placeholder("x", 0, 10, 10, "GIF")
    with pytest.raises(ValueError, match="positive"):
        render_placeholder("x", 0, 0, 10)


def test_the_caption_says_it_is_a_placeholder() -> None:
    assert "PLACEHOLDER" in CAPTION
    assert "not a generative model" in CAPTION
