"""Model-independent request parsing: body decoding, shape, types, prompt rules."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from imagegen.errors import InvalidRequestError
from imagegen.request import (
    DRAW_NOTHING,
    MAX_SAFE_INTEGER,
    ImageRequest,
    parse_json_body,
    parse_request,
    visible,
)


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


# ---- issue: hostile inputs found by trying (every one a 400 naming field and rule) ----------------------------

LOOK_BLANK = [
    ("three Hangul fillers U+3164", "\u3164\u3164\u3164"),
    ("a Hangul choseong filler U+115F", "\u115f"),
    ("a Hangul jungseong filler U+1160", "\u1160"),
    ("a halfwidth Hangul filler U+FFA0", "\uffa0"),
    ("two Braille blanks U+2800", "\u2800\u2800"),
    ("a musical null notehead U+1D159", "\U0001d159"),
    ("a combining acute accent alone", "\u0301"),
    ("combining marks alone", "\u0301\u0308\u20dd"),
    ("combining marks on spaces", " \u0301 \u0308 "),
    ("a combining grapheme joiner and a variation selector", "\u034f\ufe0f"),
    ("line and paragraph separators", "\u2028\u2029"),
    ("a Mongolian vowel separator U+180E", "\u180e"),
    ("an ideographic space", "\u3000"),
    ("fillers, marks and zero-width characters", "\u3164\u0301\u200b\u2800\ufeff"),
    ("a private-use character", "\ue000"),
]


@pytest.mark.parametrize(("case", "text"), LOOK_BLANK, ids=[case for case, _ in LOOK_BLANK])
@pytest.mark.parametrize("field", ["prompt", "negativePrompt"])
def test_a_text_without_a_visible_character_is_blank(case: str, text: str, field: str) -> None:
    payload = {"prompt": text} if field == "prompt" else {"prompt": "a cat", "negativePrompt": text}
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(payload)
    assert caught.value.field == field
    assert "must not be empty or blank" in caught.value.rule
    assert "visible letter, digit, symbol or punctuation mark" in caught.value.rule


@pytest.mark.parametrize(
    "text",
    [
        "e\u0301",  # a combining mark on a visible base
        "\u3164\u3164a",  # a filler next to a letter
        "\u2800\u2801",  # a Braille pattern with a dot
        "7",
        "!",
        "\u20ac",  # a symbol (euro sign)
        "\u732b",  # a CJK letter
        "\uac00",  # a Hangul syllable
        "\U0001f408",  # an emoji (So)
    ],
)
def test_a_text_with_one_visible_character_is_not_blank(text: str) -> None:
    request = parse_request({"prompt": text, "negativePrompt": text})
    assert request.prompt == text
    assert request.negative_prompt == text


def test_visible_is_defined_by_categories_minus_the_code_points_that_draw_nothing() -> None:
    assert frozenset("\u115f\u1160\u3164\uffa0\u2800\U0001d159") == DRAW_NOTHING
    assert [unicodedata.category(char) for char in sorted(DRAW_NOTHING)] == ["Lo", "Lo", "So", "Lo", "Lo", "So"]
    assert not any(visible(char) for char in DRAW_NOTHING)
    assert all(visible(char) for char in "aZ\u00e9\u0416\u732b0\u0663\u00bd+$\u00a9.,\u00bf\u300c")
    assert not any(visible(char) for char in " \t\u00a0\u2028\u2029\u180e\u200b\u2060\ufeff\u0301\u20dd\ue000")


NON_FINITE_BODIES = [
    ('{"prompt": "a cat", "cfgScale": NaN}', "cfgScale"),
    ('{"prompt": "a cat", "cfgScale": Infinity}', "cfgScale"),
    ('{"prompt": "a cat", "cfgScale": -Infinity}', "cfgScale"),
    ('{"prompt": "a cat", "cfgScale": 1e400}', "cfgScale"),
    ('{"prompt": "a cat", "cfgScale": -1e400}', "cfgScale"),
    ('{"prompt": "a cat", "seed": NaN}', "seed"),
    ('{"prompt": "a cat", "width": Infinity, "height": 1024}', "width"),
    ('{"prompt": "a cat", "numberOfImages": 1e999}', "numberOfImages"),
]


@pytest.mark.parametrize(("body", "field"), NON_FINITE_BODIES)
def test_a_non_finite_number_must_be_a_finite_number(body: str, field: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(parse_json_body(body))
    assert caught.value.field == field
    assert caught.value.rule.startswith("must be a finite number")
    assert "not a number" not in caught.value.rule


def test_an_integer_too_large_for_a_float_is_still_a_number_of_ordinary_size() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(parse_json_body('{"prompt": "a cat", "cfgScale": 1' + "0" * 400 + "}"))
    assert caught.value.field == "cfgScale"
    assert caught.value.rule.startswith("must be a number of ordinary size (a finite number")


@pytest.mark.parametrize("field", ["width", "height", "seed", "numberOfImages"])
@pytest.mark.parametrize("number", ["1e300", "-1e300", "1e16", "9007199254740992", "1" + "0" * 4000])
def test_an_integer_field_beyond_two_to_the_53_is_out_of_range(field: str, number: str) -> None:
    other = {"width": '"height": 1024', "height": '"width": 1024'}.get(field, '"quality": "standard"')
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(parse_json_body(f'{{"prompt": "a cat", {other}, "{field}": {number}}}'))
    assert caught.value.field == field
    assert caught.value.rule.startswith("is out of range")
    assert len(str(caught.value)) < 120  # the number is not echoed


def test_the_largest_safe_integer_is_in_range_for_the_parser() -> None:
    assert MAX_SAFE_INTEGER == 9_007_199_254_740_991
    assert parse_request({"prompt": "x", "seed": MAX_SAFE_INTEGER}).seed == MAX_SAFE_INTEGER
    assert parse_request({"prompt": "x", "seed": -MAX_SAFE_INTEGER}).seed == -MAX_SAFE_INTEGER
    assert parse_request(parse_json_body('{"prompt": "x", "seed": 1e15}')).seed == 10**15


UNMARKED_ENCODINGS = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
BODY = '{"prompt": "a cat", "seed": 3}'


@pytest.mark.parametrize("encoding", UNMARKED_ENCODINGS)
def test_utf16_and_utf32_without_a_byte_order_mark_are_read_as_bytes(encoding: str) -> None:
    assert parse_json_body(BODY.encode(encoding)) == {"prompt": "a cat", "seed": 3}
    assert parse_json_body(' \n{"prompt": "caf\u00e9 \u732b \U0001f408"}'.encode(encoding)) == {
        "prompt": "caf\u00e9 \u732b \U0001f408"
    }


@pytest.mark.parametrize("encoding", UNMARKED_ENCODINGS)
def test_utf16_and_utf32_without_a_byte_order_mark_are_read_from_the_str_a_gateway_decoded(encoding: str) -> None:
    # ASCII text in UTF-16/32 is valid UTF-8: API Gateway and the local gateway hand it over as a str full of NULs.
    as_the_gateway_passes_it = BODY.encode(encoding).decode("utf-8")
    assert "\x00" in as_the_gateway_passes_it[:2]
    assert parse_json_body(as_the_gateway_passes_it) == {"prompt": "a cat", "seed": 3}
    assert parse_request(parse_json_body(as_the_gateway_passes_it)) == ImageRequest(prompt="a cat", seed=3)


@pytest.mark.parametrize(
    "body",
    [
        "\x00\ud800{}",  # a lone surrogate: not a str any gateway decoded from bytes
        "{\x00}",  # odd length: neither UTF-16 nor UTF-32
        '{\x00"\x00',  # UTF-16LE cut short
        "\x00\x00\x00{\x00\x00\x00}\x00",  # UTF-32BE cut short by one byte
        "\x00",
        "\x00\x00\x00\x00",
    ],
)
def test_a_str_with_nuls_that_is_not_utf16_or_utf32_json_is_a_400_on_body(body: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_body(body)
    assert caught.value.field == "body"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_body_of_only_a_byte_order_mark_says_so(encoding: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_body("".encode(encoding))
    assert (caught.value.field, caught.value.rule) == ("body", "must be valid JSON (only a byte-order mark)")


@pytest.mark.parametrize("encoding", UNMARKED_ENCODINGS)
def test_a_blank_utf16_or_utf32_body_is_a_missing_body(encoding: str) -> None:
    for body in (" \n ".encode(encoding), " \n ".encode(encoding).decode("utf-8")):
        with pytest.raises(InvalidRequestError) as caught:
            parse_json_body(body)
        assert caught.value.field == "body"
        assert "JSON object is required" in caught.value.rule
