"""Properties of the parsers that face the internet: any input gives a value or a 400 (``InvalidRequestError``),
never another exception (hypothesis; bounded example counts so the unit suite stays fast)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from imagegen.errors import InvalidRequestError
from imagegen.index import MAX_CURSOR_CHARS, MAX_PAGE, MAX_SORT_KEY_BYTES, decode_cursor, encode_cursor, parse_limit
from imagegen.models import ModelAdapter, adapter_for
from imagegen.models.base import MAX_IMAGES, Invocation
from imagegen.request import MAX_SIDE, QUOTE_CHARS, ImageRequest, parse_json_body, parse_request, visible

#: No example database (no failing examples kept in .hypothesis/) and no deadline (a slow CI machine is not a
#: failure).
FAST = settings(max_examples=150, deadline=None, database=None)

ADAPTERS: list[ModelAdapter] = [
    adapter_for(model_id)
    for model_id in ("amazon.titan-image-generator-v1", "amazon.nova-canvas-v1:0", "stability.stable-image-core-v1:1")
]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]

# ---- strategies -------------------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    ["", " ", "\u3164\u3164\u3164", "\u115f", "\u2800\u2800", "\u0301", "e\u0301", "\u200b", "\x00", "\x1b",
     "\ud800", "a cat", "x" * 600, "\ufeff", "\U0001f408"]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-5, max_value=5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -16, -9, 1, 16, 9, 1024, 4096, 4097, 2**53, 2**53 - 1, 1e300, -1e300, 7.0, 1.5, 10**400]),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20), HOSTILE_TEXT)
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
TEXT_FIELD = st.one_of(st.text(max_size=60), HOSTILE_TEXT, JSON_VALUE)
NUMBER_FIELD = st.one_of(NUMBERS, JSON_VALUE)
#: Payloads of the right shape and types, so that most reach the adapters with sizes, seeds and scales to judge.
PLAUSIBLE = st.fixed_dictionaries(
    {"prompt": st.one_of(st.just("a cat"), st.text(min_size=1, max_size=40), HOSTILE_TEXT)},
    optional={
        "negativePrompt": st.one_of(st.just("blurry"), HOSTILE_TEXT),
        "seed": st.one_of(st.integers(min_value=-2, max_value=2**33), NUMBERS),
        "width": st.one_of(st.sampled_from([0, 1, 16, 320, 512, 1024, 1152, 1920, 4096, 4097]), NUMBERS),
        "height": st.one_of(st.sampled_from([0, 1, 9, 320, 512, 768, 1024, 1080, 4096, 4097]), NUMBERS),
        "numberOfImages": st.one_of(st.integers(min_value=-1, max_value=7), NUMBERS),
        "quality": st.sampled_from(["standard", "premium", "best"]),
        "cfgScale": st.one_of(st.floats(min_value=0, max_value=12), NUMBERS),
    },
)
PAYLOADS = st.one_of(
    PLAUSIBLE,
    st.fixed_dictionaries(
        {"prompt": TEXT_FIELD},
        optional={
            "negativePrompt": TEXT_FIELD,
            "seed": NUMBER_FIELD,
            "width": NUMBER_FIELD,
            "height": NUMBER_FIELD,
            "numberOfImages": st.one_of(st.integers(min_value=-1, max_value=7), NUMBER_FIELD),
            "quality": st.one_of(st.sampled_from(["standard", "premium", "best"]), JSON_VALUE),
            "cfgScale": NUMBER_FIELD,
            "style": JSON_VALUE,
        },
    ),
    JSON_VALUE,
)


def serialized(payload: object, *, ensure_ascii: bool = True) -> str:
    try:
        return json.dumps(payload, ensure_ascii=ensure_ascii)  # NaN and Infinity as Python writes them
    except ValueError:  # an integer beyond sys.get_int_max_str_digits()
        return json.dumps({"prompt": "a cat", "seed": 1})


# ---- checks every property shares -------------------------------------------------------------------------


def parsed_or_refused(body: str | bytes) -> object:
    """``parse_json_body(body)``, or ``None`` when it was refused with a 400."""
    try:
        return parse_json_body(body)
    except InvalidRequestError as error:
        assert len(error.field) <= 8 * QUOTE_CHARS + 1  # quote(): 40 characters, each at most \u10ffff, and "…"
        return None


def request_or_refused(payload: object) -> ImageRequest | None:
    try:
        request = parse_request(payload)
    except InvalidRequestError as error:
        assert len(str(error)) < 2_000
        return None
    assert any(visible(char) for char in request.prompt)
    if request.negative_prompt is not None:
        assert any(visible(char) for char in request.negative_prompt)
    return request


def prepared_or_refused(adapter: ModelAdapter, request: ImageRequest) -> Invocation | None:
    try:
        invocation = adapter.prepare(request, lambda upper: upper)
    except InvalidRequestError as error:
        assert len(str(error)) < 2_000
        return None
    assert 0 <= invocation.seed <= adapter.max_seed
    for call in invocation.calls():
        body = call.body
        config = body.get("imageGenerationConfig")
        if config is not None:
            assert 1 <= config["width"] <= MAX_SIDE and 1 <= config["height"] <= MAX_SIDE
            assert 1 <= config["numberOfImages"] <= MAX_IMAGES
        json.dumps(body, allow_nan=False)  # a body Bedrock can read: no NaN, no Infinity
    return invocation


# ---- request parser and model adapters ----------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300))
@example(b"\xff\xfe")
@example('{"prompt": "a cat"}'.encode("utf-16-le"))
@example(b"[" * 5000)
def test_any_bytes_give_a_request_or_a_400(body: bytes) -> None:
    payload = parsed_or_refused(body)
    if payload is not None:
        request_or_refused(payload)


@FAST
@given(st.text(max_size=300))
@example("\x00{\x00}")
@example("\x00\ud800")
@example('{"prompt": NaN}')
def test_any_str_gives_a_request_or_a_400(body: str) -> None:
    payload = parsed_or_refused(body)
    if payload is not None:
        request_or_refused(payload)


@FAST
@given(PAYLOADS, st.sampled_from(ENCODINGS))
@example({"prompt": "\u3164\u3164\u3164"}, "utf-8")
@example({"prompt": "a cat", "width": 1e300, "height": 1e300}, "utf-16-le")
@example({"prompt": "a cat", "width": -16, "height": -9}, "utf-8")
@example({"prompt": "a cat", "width": 0, "height": 0}, "utf-32-be")
@example({"prompt": "a cat", "cfgScale": float("nan")}, "utf-8")
def test_any_json_payload_gives_a_prepared_request_or_a_400_on_every_model(payload: object, encoding: str) -> None:
    parsed = parsed_or_refused(serialized(payload, ensure_ascii=False).encode(encoding, "surrogatepass"))
    if parsed is None:
        return
    request = request_or_refused(parsed)
    if request is None:
        return
    for adapter in ADAPTERS:
        prepared_or_refused(adapter, request)


@settings(FAST, max_examples=300)
@given(PLAUSIBLE)
@example({"prompt": "a cat", "width": 4096, "height": 4096})
@example({"prompt": "a cat", "width": 1, "height": 1, "seed": 2**32})
def test_any_request_of_the_right_types_is_prepared_or_a_400_on_every_model(payload: dict[str, Any]) -> None:
    request = request_or_refused(parse_json_body(serialized(payload)))
    if request is not None:
        for adapter in ADAPTERS:
            prepared_or_refused(adapter, request)


@FAST
@given(PAYLOADS, st.sampled_from(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]))
def test_utf16_and_utf32_without_a_byte_order_mark_read_the_same_as_utf8_from_bytes_or_str(
    payload: object, encoding: str
) -> None:
    text = serialized(payload)  # ASCII: in UTF-16/32 it is valid UTF-8, so a gateway hands it over as a str
    expected = parsed_or_refused(text)
    raw = text.encode(encoding)
    for body in (raw, raw.decode("utf-8")):
        got = parsed_or_refused(body)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


# ---- GET /images: cursor and limit ------------------------------------------------------------------------

JSON_DOCUMENTS = JSON_VALUE.map(serialized)
ALMOST_CURSORS = st.fixed_dictionaries(
    {"pk": st.one_of(st.just({"S": "image"}), JSON_VALUE), "sk": st.one_of(st.builds(lambda s: {"S": s}, st.text()),
                                                                             JSON_VALUE)},
    optional={"doc": JSON_VALUE},
).map(serialized)  # fmt: skip


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@FAST
@given(
    st.one_of(
        st.text(max_size=200),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=200),
        st.binary(max_size=200).map(b64url),
        JSON_DOCUMENTS.map(lambda doc: b64url(doc.encode())),
        ALMOST_CURSORS.map(lambda doc: b64url(doc.encode())),
    )
)
@example(b64url(b"[" * 1100 + b"]" * 1100))
@example("A" * (MAX_CURSOR_CHARS + 1))
def test_any_cursor_gives_an_exclusive_start_key_or_a_400(cursor: str) -> None:
    try:
        key = decode_cursor(cursor)
    except InvalidRequestError as error:
        assert error.field == "cursor"
        return
    assert key.keys() == {"pk", "sk"}
    assert key["pk"] == {"S": "image"}
    assert key["sk"].keys() == {"S"}
    assert len(key["sk"]["S"].encode()) <= MAX_SORT_KEY_BYTES


@FAST
@given(
    st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["milliseconds", "microseconds", "seconds", "auto"]),
    st.text(min_size=1, max_size=300),
)
def test_every_cursor_the_index_can_hand_out_round_trips(moment: datetime, timespec: str, key: str) -> None:
    sort_key = f"{moment.isoformat(timespec=timespec)}#{key}"
    assume(len(sort_key.encode()) <= MAX_SORT_KEY_BYTES)
    last_key: dict[str, Any] = {"pk": {"S": "image"}, "sk": {"S": sort_key}}
    cursor = encode_cursor(last_key)
    assert len(cursor) <= MAX_CURSOR_CHARS
    assert decode_cursor(cursor) == last_key


@FAST
@given(st.one_of(st.text(max_size=30), st.integers(min_value=-10, max_value=10**6).map(str)))
@example("\u00b2")
@example("\u2460")
@example("\uff15")
@example("1" * 4301)
def test_any_limit_gives_a_page_size_or_a_400(raw: str) -> None:
    try:
        limit = parse_limit(raw)
    except InvalidRequestError as error:
        assert error.field == "limit"
        return
    assert 1 <= limit <= MAX_PAGE
    assert raw.isascii() and raw.isdigit() and int(raw) == limit


@pytest.mark.parametrize("limit", range(1, MAX_PAGE + 1))
def test_every_page_size_is_read(limit: int) -> None:
    assert parse_limit(str(limit)) == limit
