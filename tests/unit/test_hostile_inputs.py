"""GET /images' inputs from the issue (limit and cursor), each a 400 naming its field and rule, never another
exception; and the cursor the index hands out still comes back in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagegen.errors import InvalidRequestError
from imagegen.index import (
    MAX_CURSOR_CHARS,
    MAX_PAGE,
    MAX_SORT_KEY_BYTES,
    _item,
    decode_cursor,
    encode_cursor,
    parse_limit,
)

CREATED_AT = "2026-11-30T10:35:23.819+00:00"  # as the service writes it
KEY = "candidate42/generated_images/from_queue/5f0c3e5a-8d0e-4c43-9a43-2f7d1f1f0a11-4.png"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(document: str) -> str:
    return b64url(document.encode())


def last_key(sort_key: str) -> dict[str, Any]:
    """The LastEvaluatedKey DynamoDB returns for an item of the index (its key attributes)."""
    return {"pk": {"S": "image"}, "sk": {"S": sort_key}}


# ---- limit ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "\u00b2",  # superscript two: str.isdigit() says yes, int() refuses it
        "\u2460",  # circled digit one: the same
        "\u00b9\u00b2",  # superscript one two
        "\uff15",  # fullwidth five: int() reads it as 5
        "\u0665",  # Arabic-Indic five: int() reads it too
        "1" * 4301,  # more digits than int() converts
        "9" * 10_000,
        "0" * 5000 + "1000",
        "",
        " 5",
        "5 ",
        "+5",
        "5.0",
        "1_0",
        "0",
        "000",
        "101",
        "-1",
    ],
)
def test_a_limit_that_is_not_ascii_digits_from_1_to_100_is_a_400(raw: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_limit(raw)
    assert caught.value.field == "limit"
    assert caught.value.rule == f"must be a whole number from 1 to {MAX_PAGE} (ASCII digits)"


@pytest.mark.parametrize(
    ("raw", "limit"), [(None, 24), ("1", 1), ("24", 24), ("100", 100), ("007", 7), ("0" * 50 + "1", 1)]
)
def test_a_limit_of_ascii_digits_is_read(raw: str | None, limit: int) -> None:
    assert parse_limit(raw) == limit


# ---- cursor -----------------------------------------------------------------------------------------------


def rejects_cursor(cursor: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_cursor(cursor)
    assert caught.value.field == "cursor"
    assert caught.value.rule.startswith("must be a next_cursor value from an earlier GET /images reply")
    assert reason in caught.value.rule
    assert len(str(caught.value)) < 200  # nothing of the cursor is echoed


def test_the_cursor_the_index_hands_out_round_trips() -> None:
    key = last_key(f"{CREATED_AT}#{KEY}")
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert len(cursor) <= MAX_CURSOR_CHARS


@pytest.mark.parametrize(
    "created_at",
    [CREATED_AT, "2026-11-30T10:00:00+00:00", "2026-11-30T10:00:00.123456+00:00", "2026-11-30T10:00:00Z",
     "2026-11-30T10:00:00", "2026-11-30T12:00:00.5-05:30"],
)  # fmt: skip
def test_a_cursor_from_any_iso_time_round_trips(created_at: str) -> None:
    key = last_key(f"{created_at}#generated_images/a#b.png")  # a "#" in the key is the key's
    assert decode_cursor(encode_cursor(key)) == key


def test_the_longest_sort_key_dynamodb_stores_round_trips_within_the_length_bound() -> None:
    # Each byte of the sort key as a six-character \u00XX escape: the longest JSON a cursor can hold.
    filler = MAX_SORT_KEY_BYTES - len(CREATED_AT) - 1
    for key in ["\x01" * filler, "k" * filler, "\u00e9" * (filler // 2), "\U0001f408" * (filler // 4)]:
        sort_key = f"{CREATED_AT}#{key}"
        assert len(sort_key.encode()) <= MAX_SORT_KEY_BYTES
        cursor = encode_cursor(last_key(sort_key))
        assert len(cursor) <= MAX_CURSOR_CHARS
        assert decode_cursor(cursor) == last_key(sort_key)
    assert len(encode_cursor(last_key("\x01" * MAX_SORT_KEY_BYTES))) == MAX_CURSOR_CHARS  # the bound is exact


def test_an_item_written_by_the_index_gives_a_cursor_that_decodes() -> None:
    item = _item({"created_at": CREATED_AT, "key": KEY})
    key = {"pk": item["pk"], "sk": item["sk"]}
    assert decode_cursor(encode_cursor(key)) == key


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


FORGED: list[tuple[str, str, str]] = [
    # (case, cursor, reason)
    ("1,100 nested brackets", cursor_of(nested(1100)), "nested too deeply"),
    ("100,000 nested brackets", cursor_of(nested(100_000)), "longer than"),
    ("nested objects in the sort key", cursor_of('{"pk": {"S": "image"}, "sk": {"S": {"S": "x"}}}'), "nested"),
    ("a second type on the sort key",
     cursor_of(f'{{"pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#{KEY}", "N": "1"}}}}'), 'not {"pk"'),
    ("a second type on the partition key",
     cursor_of(f'{{"pk": {{"S": "image", "B": "AA=="}}, "sk": {{"S": "{CREATED_AT}#{KEY}"}}}}'), 'not {"pk"'),
    ("a 2,000-character sort key", encode_cursor(last_key(f"{CREATED_AT}#{'k' * 1970}")), "longer than 1024 bytes"),
    ("a sort key of 1,025 bytes", encode_cursor(last_key(f"{CREATED_AT}#{'k' * 995}")), "longer than 1024 bytes"),
    ("a duplicate pk",
     cursor_of(f'{{"pk": {{"S": "other"}}, "pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#{KEY}"}}}}'),
     "a key appears twice"),
    ("a duplicate S", cursor_of(f'{{"pk": {{"S": "image"}}, "sk": {{"S": "x", "S": "{CREATED_AT}#{KEY}"}}}}'),
     "a key appears twice"),
    ("another partition", encode_cursor({"pk": {"S": "job"}, "sk": {"S": f"{CREATED_AT}#{KEY}"}}), 'not {"pk"'),
    ("a number as the sort key", encode_cursor({"pk": {"S": "image"}, "sk": {"N": "1"}}), 'not {"pk"'),
    ("a sort key that is not a string", encode_cursor({"pk": {"S": "image"}, "sk": {"S": 7}}), 'not {"pk"'),
    ("an extra attribute", encode_cursor({**last_key(f"{CREATED_AT}#{KEY}"), "doc": {"S": "{}"}}), 'not {"pk"'),
    ("a missing sort key", encode_cursor({"pk": {"S": "image"}}), 'not {"pk"'),
    ("an array", cursor_of("[]"), 'not {"pk"'),
    ("a string", cursor_of('"image"'), 'not {"pk"'),
    ("NaN", cursor_of("NaN"), 'not {"pk"'),
    ("a 5,000-digit number", cursor_of("9" * 5000), "not JSON"),
    ("a sort key without #", encode_cursor(last_key(CREATED_AT)), "{created_at}#{key}"),
    ("a sort key with an empty key", encode_cursor(last_key(f"{CREATED_AT}#")), "{created_at}#{key}"),
    ("a sort key without a time", encode_cursor(last_key(f"#{KEY}")), "{created_at}#{key}"),
    ("a sort key with another time", encode_cursor(last_key(f"30/11/2026#{KEY}")), "{created_at}#{key}"),
    ("a sort key with month 13", encode_cursor(last_key(f"2026-13-30T10:35:23+00:00#{KEY}")), "{created_at}#{key}"),
    ("a time in Arabic-Indic digits",
     encode_cursor(last_key(f"\u0662\u0660\u0662\u0666-11-30T10:35:23+00:00#{KEY}")), "{created_at}#{key}"),
    ("a lone surrogate in the sort key",
     cursor_of(f'{{"pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#\\ud800"}}}}'), "not valid Unicode"),
    ("JSON that is not ASCII", b64url(json.dumps(last_key(f"{CREATED_AT}#k\u00e9"), ensure_ascii=False).encode()),
     "not ASCII JSON"),
    ("UTF-16 JSON", b64url(json.dumps(last_key(f"{CREATED_AT}#{KEY}")).encode("utf-16")), "not ASCII JSON"),
    ("padding", encode_cursor(last_key(f"{CREATED_AT}#{KEY}x")) + "==", "not base64url"),
    ("standard base64", base64.b64encode(b'{"pk": {"S": "image"}, "sk": {"S": "???>>>"}}').decode(), "base64url"),
    ("one character too many for base64", "A" * 5, "not base64url"),
    ("not base64 at all", "not a cursor!", "not base64url"),
    ("non-ASCII letters", "\u00e9t\u00e9", "not base64url"),
    ("a fullwidth base64 digit", "\uff15AAA", "not base64url"),
    ("not JSON", b64url(b"{'pk': 1}"), "not JSON"),
    ("a longer cursor than any the index hands out", "A" * (MAX_CURSOR_CHARS + 1), "longer than"),
    ("ten megabytes", "A" * 10_000_000, "longer than"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "cursor", "reason"), FORGED, ids=[case for case, _, _ in FORGED])
def test_a_forged_cursor_is_a_400_on_cursor(case: str, cursor: str, reason: str) -> None:
    rejects_cursor(cursor, reason)


def test_the_nesting_bound_ignores_brackets_inside_strings() -> None:
    key = last_key(f'{CREATED_AT}#generated_images/[[[{{{{\\"]]].png')
    assert decode_cursor(encode_cursor(key)) == key
