"""Model adapters: request bodies, replies, and every documented limit at and just past its bound."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from imagegen.errors import (
    ConfigurationError,
    ContentFilteredError,
    InvalidRequestError,
    ModelInferenceError,
    ModelResponseError,
)
from imagegen.models import (
    ModelAdapter,
    NovaCanvasAdapter,
    StabilityAdapter,
    StableDiffusion35Adapter,
    TitanImageAdapter,
    adapter_for,
)
from imagegen.request import MAX_SIDE, MIN_SIDE, ImageRequest, parse_request
from tests.fakes import b64png, make_png

TITAN = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"


def fixed_seed(upper: int) -> int:
    return upper  # the top of the range, so a wrong bound shows up


def prepare(model_id: str, **payload: Any) -> dict[str, Any]:
    return adapter_for(model_id).prepare(parse_request({"prompt": "a cat", **payload}), fixed_seed).body


def rejects(model_id: str, field: str, rule_part: str, **payload: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        prepare(model_id, **payload)
    assert caught.value.field == field
    assert rule_part in caught.value.rule


# ---- selection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "adapter_type"),
    [
        (TITAN, TitanImageAdapter),
        (TITAN_V2, TitanImageAdapter),
        (NOVA, NovaCanvasAdapter),
        ("us.amazon.nova-canvas-v1:0", NovaCanvasAdapter),
        (SD35, StableDiffusion35Adapter),
        (CORE, StabilityAdapter),
        ("stability.stable-image-ultra-v1:1", StabilityAdapter),
    ],
)
def test_adapter_is_chosen_by_model_id(model_id: str, adapter_type: type[ModelAdapter]) -> None:
    adapter = adapter_for(model_id)
    assert type(adapter) is adapter_type
    assert adapter.model_id == model_id


@pytest.mark.parametrize("model_id", ["amazon.titan-text-express-v1", "", "openai.dall-e"])
def test_unsupported_model_is_a_configuration_error(model_id: str) -> None:
    with pytest.raises(ConfigurationError, match="not a supported image model"):
        adapter_for(model_id)


# ---- Titan ------------------------------------------------------------------------------------


def test_titan_body_has_documented_shape_and_defaults() -> None:
    assert prepare(TITAN) == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a cat"},
        "imageGenerationConfig": {
            "numberOfImages": 1,
            "quality": "standard",
            "cfgScale": 8.0,
            "width": 1024,
            "height": 1024,
            "seed": 2_147_483_646,
        },
    }


def test_titan_body_carries_every_option() -> None:
    body = prepare(
        TITAN_V2,
        negativePrompt="blurry",
        seed=5,
        width=1173,
        height=640,
        numberOfImages=5,
        quality="premium",
        cfgScale=1.1,
    )
    assert body["textToImageParams"] == {"text": "a cat", "negativeText": "blurry"}
    assert body["imageGenerationConfig"] == {
        "numberOfImages": 5,
        "quality": "premium",
        "cfgScale": 1.1,
        "width": 1173,
        "height": 640,
        "seed": 5,
    }


@pytest.mark.parametrize(
    ("ok", "bad", "field", "rule_part"),
    [
        ({"prompt": "p" * 512}, {"prompt": "p" * 513}, "prompt", "at most 512 characters"),
        ({"negativePrompt": "n" * 512}, {"negativePrompt": "n" * 513}, "negativePrompt", "at most 512"),
        ({"numberOfImages": 5}, {"numberOfImages": 6}, "numberOfImages", "between 1 and 5"),
        ({"numberOfImages": 1}, {"numberOfImages": 0}, "numberOfImages", "between 1 and 5"),
        ({"cfgScale": 10}, {"cfgScale": 10.01}, "cfgScale", "between 1.1 and 10"),
        ({"cfgScale": 1.1}, {"cfgScale": 1.09}, "cfgScale", "between 1.1 and 10"),
        ({"seed": 0}, {"seed": -1}, "seed", "between 0 and 2147483646"),
        ({"seed": 2_147_483_646}, {"seed": 2_147_483_647}, "seed", "between 0 and 2147483646"),
        ({"quality": "premium"}, {"quality": "ultra"}, "quality", "one of standard, premium"),
        ({"width": 1408, "height": 640}, {"width": 1408, "height": 656}, "width", "not a supported"),
        ({"width": 320, "height": 704}, {"width": 304, "height": 704}, "width", "not a supported"),
        ({"width": 512, "height": 512}, {"width": 512}, "height", "given together"),
    ],
)
def test_titan_limits_at_and_past_the_bound(
    ok: dict[str, Any], bad: dict[str, Any], field: str, rule_part: str
) -> None:
    prepare(TITAN, **ok)
    rejects(TITAN, field, rule_part, **bad)


def test_titan_reply_gives_png_bytes_with_the_request_seed() -> None:
    adapter = adapter_for(TITAN)
    invocation = adapter.prepare(parse_request({"prompt": "x", "seed": 9, "numberOfImages": 2}))
    images = adapter.parse_response({"images": [b64png(), b64png(2, 2)], "error": None}, invocation)
    assert [image.png for image in images] == [make_png(), make_png(2, 2)]
    assert [image.seed for image in images] == [9, 9]


def test_titan_error_field_is_a_content_filter_error_not_an_empty_success() -> None:
    adapter = adapter_for(TITAN)
    invocation = adapter.prepare(parse_request({"prompt": "x"}))
    with pytest.raises(ContentFilteredError):
        adapter.parse_response({"images": [], "error": "blocked by content moderation"}, invocation)


@pytest.mark.parametrize(
    "reply",
    [
        {},
        {"images": None},
        {"images": "abc"},
        {"images": ["not base64!"]},
        {"images": [base64.b64encode(b"GIF89a....").decode()]},
        {"images": [17]},
    ],
)
def test_titan_unusable_reply_is_a_model_response_error(reply: dict[str, Any]) -> None:
    adapter = adapter_for(TITAN)
    invocation = adapter.prepare(parse_request({"prompt": "x"}))
    with pytest.raises(ModelResponseError):
        adapter.parse_response(reply, invocation)


# ---- Nova Canvas ------------------------------------------------------------------------------


def test_nova_body_defaults() -> None:
    config = prepare(NOVA)["imageGenerationConfig"]
    assert config == {
        "numberOfImages": 1,
        "quality": "standard",
        "cfgScale": 6.5,
        "width": 1024,
        "height": 1024,
        "seed": 858_993_459,
    }


@pytest.mark.parametrize(
    ("ok", "bad", "field", "rule_part"),
    [
        ({"prompt": "p" * 1024}, {"prompt": "p" * 1025}, "prompt", "at most 1024 characters"),
        ({"negativePrompt": "n" * 1024}, {"negativePrompt": "n" * 1025}, "negativePrompt", "at most 1024"),
        ({"seed": 858_993_459}, {"seed": 858_993_460}, "seed", "between 0 and 858993459"),
        ({"width": 320, "height": 320}, {"width": 304, "height": 320}, "width", "multiple of 16 between 320"),
        ({"width": 1280, "height": 320}, {"width": 1296, "height": 320}, "width", "aspect ratio"),
        ({"width": 320, "height": 1280}, {"width": 320, "height": 1296}, "width", "aspect ratio"),
        ({"width": 2048, "height": 2032}, {"width": 2048, "height": 2048}, "width", "below 4,194,304 pixels"),
        ({"width": 1008, "height": 4032}, {"width": 1024, "height": 4112}, "height", "between 320 and 4096"),
        ({"width": 1024, "height": 1024}, {"width": 1024, "height": 1000}, "height", "multiple of 16"),
        ({"cfgScale": 10}, {"cfgScale": 10.5}, "cfgScale", "between 1.1 and 10"),
        ({"numberOfImages": 5}, {"numberOfImages": 6}, "numberOfImages", "between 1 and 5"),
    ],
)
def test_nova_limits_at_and_past_the_bound(ok: dict[str, Any], bad: dict[str, Any], field: str, rule_part: str) -> None:
    prepare(NOVA, **ok)
    rejects(NOVA, field, rule_part, **bad)


def test_nova_partial_block_keeps_the_images_that_passed() -> None:
    adapter = adapter_for(NOVA)
    invocation = adapter.prepare(parse_request({"prompt": "x", "numberOfImages": 3}))
    reply = {"images": [b64png()], "error": "Some of the generated images have been blocked by our content filters."}
    assert len(adapter.parse_response(reply, invocation)) == 1


# ---- Stability --------------------------------------------------------------------------------


def test_sd35_body_has_mode_and_png_output() -> None:
    assert prepare(SD35, negativePrompt="blur") == {
        "prompt": "a cat",
        "negative_prompt": "blur",
        "aspect_ratio": "1:1",
        "seed": 4_294_967_294,
        "output_format": "png",
        "mode": "text-to-image",
    }


def test_stable_image_core_body_has_no_mode() -> None:
    assert "mode" not in prepare(CORE)


@pytest.mark.parametrize(
    ("width", "height", "ratio"),
    [(1024, 1024, "1:1"), (1920, 1080, "16:9"), (1080, 1920, "9:16"), (2100, 900, "21:9"), (800, 1000, "4:5")],
)
def test_stability_width_and_height_select_the_aspect_ratio(width: int, height: int, ratio: str) -> None:
    assert prepare(SD35, width=width, height=height)["aspect_ratio"] == ratio


@pytest.mark.parametrize(
    ("ok", "bad", "field", "rule_part"),
    [
        ({"prompt": "p" * 10_000}, {"prompt": "p" * 10_001}, "prompt", "at most 10000 characters"),
        ({"seed": 4_294_967_294}, {"seed": 4_294_967_295}, "seed", "between 0 and 4294967294"),
        ({"numberOfImages": 5}, {"numberOfImages": 6}, "numberOfImages", "between 1 and 5"),
        ({"width": 1600, "height": 900}, {"width": 1600, "height": 901}, "width", "aspect ratios"),
        ({}, {"cfgScale": 5}, "cfgScale", "not supported by Stability AI"),
        ({}, {"quality": "premium"}, "quality", "not supported"),
        ({}, {"height": 512}, "width", "given together"),
    ],
)
def test_stability_limits(ok: dict[str, Any], bad: dict[str, Any], field: str, rule_part: str) -> None:
    prepare(SD35, **ok)
    rejects(SD35, field, rule_part, **bad)


@pytest.mark.parametrize("model_id", [CORE, "stability.stable-image-ultra-v1:1"])
def test_stable_image_core_and_ultra_take_one_seed_more_than_sd35(model_id: str) -> None:
    assert prepare(model_id, seed=4_294_967_295)["seed"] == 4_294_967_295
    rejects(model_id, "seed", "between 0 and 4294967295", seed=4_294_967_296)
    assert prepare(model_id)["seed"] == 4_294_967_295  # the top of the range the random seed is drawn from


def test_stability_reply_uses_the_returned_seed() -> None:
    adapter = adapter_for(CORE)
    invocation = adapter.prepare(parse_request({"prompt": "x"}), fixed_seed)
    images = adapter.parse_response({"images": [b64png()], "seeds": [123], "finish_reasons": [None]}, invocation)
    assert [(image.png, image.seed) for image in images] == [(make_png(), 123)]


@pytest.mark.parametrize(
    ("reason", "error_type"),
    [
        ("Filter reason: prompt", ContentFilteredError),
        ("Filter reason: output image", ContentFilteredError),
        ("Inference error", ModelInferenceError),
        ("Something new", ModelResponseError),
    ],
)
def test_stability_finish_reason_is_an_error(reason: str, error_type: type[Exception]) -> None:
    adapter = adapter_for(SD35)
    invocation = adapter.prepare(parse_request({"prompt": "x"}))
    with pytest.raises(error_type) as caught:
        adapter.parse_response({"images": [b64png()], "seeds": [1], "finish_reasons": [reason]}, invocation)
    assert type(caught.value) is error_type


def test_a_stability_inference_error_is_transient_with_its_own_code() -> None:
    adapter = adapter_for(CORE)
    invocation = adapter.prepare(parse_request({"prompt": "x"}))
    with pytest.raises(ModelInferenceError) as caught:
        adapter.parse_response({"finish_reasons": ["Inference error"]}, invocation)
    assert caught.value.transient
    assert caught.value.code == "ModelInferenceFailed"
    assert caught.value.detail == "finish_reasons: Inference error"


def test_default_seed_is_random_within_the_model_range() -> None:
    adapter = adapter_for(NOVA)
    seeds = {adapter.prepare(parse_request({"prompt": "x"})).seed for _ in range(50)}
    assert len(seeds) > 40
    assert all(0 <= seed <= 858_993_459 for seed in seeds)


# ---- issue: sizes that are not sizes (every model: 1-4096 before any ratio matching) ------------------------

ALL_MODELS = [TITAN, TITAN_V2, NOVA, SD35, CORE]


@pytest.mark.parametrize("model_id", ALL_MODELS)
@pytest.mark.parametrize(("width", "height"), [(0, 0), (-16, -9), (-1024, -1024), (0, 1024), (1024, -1)])
def test_a_side_that_is_not_positive_is_a_400_on_every_model(model_id: str, width: int, height: int) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        prepare(model_id, width=width, height=height)
    assert caught.value.field in {"width", "height"}


@pytest.mark.parametrize("model_id", [SD35, CORE])
@pytest.mark.parametrize(
    ("width", "height", "field"), [(0, 0, "width"), (-16, -9, "width"), (1024, 0, "height"), (4097, 4097, "width")]
)
def test_stability_bounds_both_sides_before_matching_a_ratio(
    model_id: str, width: int, height: int, field: str
) -> None:
    # 0x0 and -16x-9 match 1:1 and 16:9 arithmetically; 4097x4097 is 1:1 but larger than any model renders.
    rejects(model_id, field, "must be between 1 and 4096 on every model", width=width, height=height)


@pytest.mark.parametrize("model_id", ALL_MODELS)
@pytest.mark.parametrize("number", [1e300, -1e300, 2**53])
def test_a_huge_size_is_refused_as_out_of_range_before_any_model_sees_it(model_id: str, number: float) -> None:
    rejects(model_id, "width", "is out of range", width=number, height=number)


def test_stability_accepts_both_sides_at_the_bound() -> None:
    assert prepare(SD35, width=4096, height=4096)["aspect_ratio"] == "1:1"
    assert prepare(SD35, width=1, height=1)["aspect_ratio"] == "1:1"
    assert prepare(CORE, width=16, height=9)["aspect_ratio"] == "16:9"


@pytest.mark.parametrize(("model_id", "field"), [(TITAN, "width"), (NOVA, "width"), (SD35, "width")])
def test_a_request_built_without_the_parser_is_still_bounded_and_quoted_briefly(model_id: str, field: str) -> None:
    # The adapters never trust that parse_request ran: an ImageRequest made in code with absurd sides is a 400 too,
    # and its message quotes at most 40 characters of the number.
    with pytest.raises(InvalidRequestError) as caught:
        adapter_for(model_id).prepare(ImageRequest(prompt="a cat", width=10**300, height=10**300), fixed_seed)
    assert caught.value.field == field
    assert "0" * 41 not in str(caught.value)


def test_the_bound_every_model_shares_is_the_largest_side_any_model_renders() -> None:
    assert (MIN_SIDE, MAX_SIDE) == (1, 4096)
    assert max(max(size) for size in TitanImageAdapter.sizes) <= MAX_SIDE
    assert NovaCanvasAdapter.max_side == MAX_SIDE  # documented; with 4:1 and < 4,194,304 pixels 4080 is reachable
    assert prepare(NOVA, width=4080, height=1024)["imageGenerationConfig"]["width"] == 4080
