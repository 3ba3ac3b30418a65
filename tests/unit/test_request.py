"""Model-independent request parsing: body decoding, shape, types, prompt rules."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen.errors import InvalidRequestError
from imagegen.request import ImageRequest, parse_json_body, parse_request


@pytest.mark.parametrize("body", [None, "", "   ", b""])
def test_missing_body_is_rejected_on_body(body: str | bytes | None) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_body(body)
    assert caught.value.field == "body"
    assert "JSON object is required" in caught.value.rule


@pytest.mark.parametrize("body", ["{", "prompt=cat", '{"prompt": "x",}', b"\xff\xfe"])
def test_malformed_json_is_rejected_on_body(body: str | bytes) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_body(body)
    assert caught.value.field == "body"
    assert caught.value.rule.startswith("must be valid JSON")


def test_valid_json_is_decoded() -> None:
    assert parse_json_body('{"prompt": "a cat"}') == {"prompt": "a cat"}


@pytest.mark.parametrize(
    ("payload", "field", "rule_part"),
    [
        ([], "body", "must be a JSON object, not an array"),
        ("a cat", "body", "not a string"),
        (None, "body", "not null"),
        ({}, "prompt", "is required"),
        ({"prompt": None}, "prompt", "must be a string, not null"),
        ({"prompt": 42}, "prompt", "must be a string, not a number"),
        ({"prompt": ""}, "prompt", "must not be empty"),
        ({"prompt": " \n\t "}, "prompt", "must not be empty"),
        ({"prompt": "x", "negativePrompt": "  "}, "negativePrompt", "must not be empty"),
        ({"prompt": "x", "seed": "7"}, "seed", "must be a integer, not a string"),
        ({"prompt": "x", "seed": 1.5}, "seed", "must be a integer"),
        ({"prompt": "x", "width": True}, "width", "not a boolean"),
        ({"prompt": "x", "cfgScale": "high"}, "cfgScale", "must be a number"),
        ({"prompt": "x", "quality": 1}, "quality", "must be a string"),
        ({"prompt": "x", "numberOfImages": [1]}, "numberOfImages", "not an array"),
        ({"prompt": "x", "style": "anime"}, "style", "unknown field"),
        ({"prompt": "x", "Prompt": "y"}, "Prompt", "unknown field"),
    ],
)
def test_invalid_payloads_name_field_and_rule(payload: Any, field: str, rule_part: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(payload)
    assert caught.value.field == field
    assert rule_part in caught.value.rule


def test_prompt_is_trimmed_and_options_converted() -> None:
    request = parse_request(
        {"prompt": "  a cat in space \n", "seed": 7.0, "cfgScale": 5, "width": 512, "height": 512, "quality": None}
    )
    assert request == ImageRequest(prompt="a cat in space", seed=7, cfg_scale=5.0, width=512, height=512)
    assert isinstance(request.cfg_scale, float)
    assert isinstance(request.seed, int)


def test_options_lists_only_what_was_set_under_api_names() -> None:
    request = parse_request({"prompt": "x", "negativePrompt": "blur", "numberOfImages": 2})
    assert request.options() == {"negativePrompt": "blur", "numberOfImages": 2}
