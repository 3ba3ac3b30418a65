"""Wire-format validation of InvokeModel bodies, called directly: no HTTP, no state.

The HTTP mapping of these errors (status 400, ``x-amzn-ErrorType``, boto3's ``ValidationException``) is
tested in tests/local/emulator/test_server.py. Longer than ~350 lines because ``VALIDATION_CASES`` is one
row per bound (at and just past it) of every field of every model family: splitting the table would not
make it easier to check against Bedrock's documented limits.
"""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from bedrock_emulator.backend import Backend
from bedrock_emulator.errors import INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.wire import Job, Malformed, validate
from bedrock_emulator.wire.rules import (
    MODELS,
    NOVA_CANVAS,
    SD3_5_LARGE,
    STABILITY_ASPECT_RATIOS,
    STABLE_IMAGE_CORE,
    STABLE_IMAGE_ULTRA,
    TITAN_IMAGE_GENERATOR,
)
from bedrock_emulator.wire.stability import STABILITY_SIZES
from imagegen.models import StabilityAdapter, TitanImageAdapter
from tests.emulator_bodies import (
    CORE,
    NOVA,
    SD35,
    TITAN,
    TITAN_V2,
    ULTRA,
    amazon,
    every_model_active,
    nova,
    raw,
    stability,
    titan,
)


def rejection(model_id: str, body: Any) -> BedrockApiError:
    with pytest.raises(BedrockApiError) as caught:
        validate(model_id, raw(body))
    return caught.value


_TITAN_MAX, _NOVA_MAX = TITAN_IMAGE_GENERATOR.max_seed, NOVA_CANVAS.max_seed
_ULTRA_MAX, _SD35_MAX = STABLE_IMAGE_ULTRA.max_seed, SD3_5_LARGE.max_seed
_T_TEXT, _N_TEXT = TITAN_IMAGE_GENERATOR.max_text_chars, NOVA_CANVAS.max_text_chars
_S_TEXT = STABLE_IMAGE_CORE.max_prompt_chars

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
    pytest.param(CORE, stability(""), None, id="sd-prompt-empty"),  # AWS publishes a minimum of 0
    pytest.param(CORE, stability(negative_prompt="n" * _S_TEXT), None, id="sd-negative-max"),
    pytest.param(
        CORE,
        stability(negative_prompt="n" * (_S_TEXT + 1)),
        "#/negative_prompt: expected maxLength: 10000",
        id="sd-negative-long",
    ),
    pytest.param(ULTRA, stability(seed=_ULTRA_MAX), None, id="sd-seed-max"),
    pytest.param(
        ULTRA,
        stability(seed=_ULTRA_MAX + 1),
        "#/seed: 4294967296 is not less or equal to 4294967295",
        id="sd-seed-high",
    ),
    pytest.param(SD35, stability(seed=_SD35_MAX), None, id="sd35-seed-max"),
    pytest.param(
        SD35,
        stability(seed=_SD35_MAX + 1),
        "#/seed: 4294967295 is not less or equal to 4294967294",
        id="sd35-seed-high",
    ),
    pytest.param(ULTRA, stability(seed=-1), "#/seed: -1 is not greater or equal to 0", id="sd-seed-low"),
    pytest.param(SD35, stability(aspect_ratio="21:9"), None, id="sd-ratio-ok"),
    pytest.param(
        SD35, stability(aspect_ratio="7:3"), "#/aspect_ratio: 7:3 is not a valid enum value", id="sd-ratio-bad"
    ),
    pytest.param(SD35, stability(output_format="jpeg"), None, id="sd-format-ok"),
    pytest.param(SD35, stability(output_format="webp"), None, id="sd35-format-webp"),
    pytest.param(
        CORE, stability(output_format="webp"), "#/output_format: webp is not a valid enum value", id="core-format-webp"
    ),
    pytest.param(
        SD35, stability(output_format="gif"), "#/output_format: gif is not a valid enum value", id="sd-format-bad"
    ),
    pytest.param(SD35, stability(mode="text-to-image"), None, id="sd-mode-ok"),
    pytest.param(ULTRA, stability(mode="text-to-image"), None, id="ultra-mode-ok"),
    pytest.param(
        SD35,
        stability(mode="image-to-image"),
        "#/mode: image-to-image is not served by the Bedrock emulator (only text-to-image)",
        id="sd35-mode-unserved",
    ),
    pytest.param(
        CORE, stability(mode="image-to-image"), "#/mode: image-to-image is not a valid enum value", id="core-mode-bad"
    ),
    pytest.param(SD35, {"aspect_ratio": "1:1"}, "#: required key [prompt] not found", id="sd-no-prompt"),
    pytest.param(SD35, stability(cfg_scale=7), "#: extraneous key [cfg_scale] is not permitted", id="sd-extra"),
    pytest.param(SD35, {"prompt": 42}, "#/prompt: expected type: String, found: Integer", id="sd-prompt-type"),
]


@pytest.mark.parametrize(("model_id", "body", "problem"), VALIDATION_CASES)
def test_wire_bodies_are_validated_at_and_just_past_every_bound(model_id: str, body: Any, problem: str | None) -> None:
    if problem is None:
        assert isinstance(validate(model_id, raw(body)), Job)
        assert Backend(every_model_active()).invoke(model_id, raw(body))["images"]
        return
    error = rejection(model_id, body)
    assert error.code == "ValidationException"
    assert error.status == 400
    message = error.message
    assert message.startswith("Malformed input request: #")
    assert message.endswith(", please reformat your input and try again.")
    assert problem in message
    assert isinstance(error, Malformed)
    assert message.startswith(f"Malformed input request: {error.path}: ")


def test_limits_come_from_the_emulators_own_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODELS, "amazon.titan-image-generator-v1", replace(TITAN_IMAGE_GENERATOR, max_text_chars=20))
    monkeypatch.setitem(MODELS, "stability.sd3-5-large-v1", replace(SD3_5_LARGE, max_seed=100))
    assert "expected maxLength: 20, actual: 21" in rejection(TITAN, titan("x" * 21)).message
    assert "#/seed: 101 is not less or equal to 100" in str(rejection(SD35, stability(seed=101)))


def test_the_services_limits_do_not_change_what_the_emulator_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TitanImageAdapter, "max_prompt_chars", 20)
    monkeypatch.setattr(StabilityAdapter, "max_seed", 100)
    assert validate(TITAN, raw(titan("x" * 21))).prompt == "x" * 21
    assert validate(CORE, raw(stability(seed=101))).seed == 101
    assert "expected maxLength: 512, actual: 513" in rejection(TITAN, titan("x" * 513)).message


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
def test_a_body_that_is_not_json_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(BedrockApiError) as caught:
        validate(TITAN, body)
    assert caught.value.code == "ValidationException"
    assert "not valid JSON" in caught.value.message


@pytest.mark.parametrize(
    "model_id", ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-express-v1", "nova-canvas", "x"]
)
def test_an_unknown_model_id_is_rejected_like_bedrock_does(model_id: str) -> None:
    error = rejection(model_id, titan())
    assert error.code == "ValidationException"
    assert error.message == INVALID_MODEL_MESSAGE


def test_the_model_id_is_checked_before_the_body() -> None:
    with pytest.raises(BedrockApiError, match="model identifier"):
        validate("x", b"{not json")


def test_stability_sizes_cover_every_aspect_ratio_at_about_a_megapixel() -> None:
    assert set(STABILITY_SIZES) == set(STABILITY_ASPECT_RATIOS)
    for ratio, (width, height) in STABILITY_SIZES.items():
        ratio_w, ratio_h = map(int, ratio.split(":"))
        assert width % 64 == 0
        assert height % 64 == 0
        assert 0.9e6 < width * height < 1.1e6
        assert abs(width / height - ratio_w / ratio_h) < 0.08 * ratio_w / ratio_h


@pytest.mark.parametrize(
    ("model_id", "body", "expected"),
    [
        (TITAN, titan(numberOfImages=3, seed=7), Job("a lighthouse at dusk", None, 7, 3, 512, 512, "PNG", False)),
        (TITAN_V2, amazon("fox"), Job("fox", None, TITAN_IMAGE_GENERATOR.default_seed, 1, 1024, 1024, "PNG", False)),
        (
            NOVA,
            nova("fox", text_params={"negativeText": "fog"}, width=640, height=384),
            Job("fox", "fog", NOVA_CANVAS.default_seed, 1, 640, 384, "PNG", False),
        ),
        (
            ULTRA,
            stability("fox", aspect_ratio="9:21", output_format="jpeg", negative_prompt="", seed=5),
            Job("fox", None, 5, 1, 640, 1536, "JPEG", True),
        ),
    ],
)
def test_a_valid_body_becomes_the_job_it_asks_for(model_id: str, body: Any, expected: Job) -> None:
    assert validate(model_id, raw(body)) == expected


def test_stability_seed_zero_becomes_a_seed_derived_from_the_prompt() -> None:
    first = validate(CORE, raw(stability("a lighthouse")))
    assert first.seed == validate(CORE, raw(stability("a lighthouse", seed=0))).seed
    assert 0 < first.seed <= STABLE_IMAGE_CORE.max_seed
    assert validate(CORE, raw(stability("a windmill"))).seed != first.seed


def test_the_images_of_a_job_differ_and_have_its_size() -> None:
    reply = Backend(every_model_active()).invoke(NOVA, raw(nova(numberOfImages=2, width=336, height=320)))
    images = [Image.open(io.BytesIO(base64.b64decode(data))) for data in reply["images"]]
    assert [image.size for image in images] == [(336, 320)] * 2
    assert images[0].tobytes() != images[1].tobytes()
