"""The gallery's index: one DynamoDB item per stored image, newest first, a page at a constant cost.

S3 stays the truth: an item is written after its PNG and sidecar are in S3, an index write that fails never fails
the request (the caller logs and counts it), and ``imagegen reindex`` rebuilds the index from the sidecars.

Layout (table ``IMAGES_TABLE_NAME``): partition key ``pk`` = ``"image"`` for every item, sort key ``sk`` =
``{created_at}#{key}``, so one Query (``ScanIndexForward=False``, ``Limit``) returns a page newest first however
many images exist. One partition takes 1,000 writes a second, far above what the API's usage plan and the
worker's concurrency allow. The cursor is the page's ``LastEvaluatedKey``, base64url-encoded JSON.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import InvalidRequestError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION = "image"
DEFAULT_PAGE = 24
MAX_PAGE = 100
#: The sidecar fields the gallery shows (and the index keeps), by their API names.
FIELDS = ("key", "prompt", "negativePrompt", "model", "region", "seed", "width", "height", "source", "created_at")


def make_dynamodb_client(*, max_attempts: int = 3) -> DynamoDBClient:
    return boto3.client("dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}))


def entry_from_sidecar(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """The gallery's view of one image, from its sidecar (what the service writes, or what reindex reads)."""
    return {
        "key": sidecar.get("image_key", ""),
        "prompt": sidecar.get("prompt", ""),
        "negativePrompt": sidecar.get("negativePrompt"),
        "model": sidecar.get("model", ""),
        "region": sidecar.get("region", ""),
        "seed": sidecar.get("seed"),
        "width": sidecar.get("width"),
        "height": sidecar.get("height"),
        "source": sidecar.get("source", ""),
        "created_at": sidecar.get("created_at", ""),
    }


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments of the index (the local stack and the tests; template.yaml declares the same keys)."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "BillingMode": "PAY_PER_REQUEST",
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the gallery, newest first, and the cursor of the next one (``None``: the last page)."""

    entries: list[dict[str, Any]]
    next_cursor: str | None


class ImageIndex:
    """Writes and pages the gallery's items in one table."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._dynamodb = dynamodb
        self.table_name = table_name

    def put(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """One item per image (idempotent: the same image overwrites its own item). Raises ``StorageError``."""
        for entry in entries:
            try:
                self._dynamodb.put_item(TableName=self.table_name, Item=_item(entry))
            except (ClientError, BotoCoreError) as exc:
                raise StorageError("The gallery index is temporarily unavailable.", detail=str(exc)) from exc

    def put_many(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Many items, 25 per BatchWriteItem (``imagegen reindex``, with the operator's credentials; the functions
        may only PutItem). Unprocessed items are sent again."""
        for start in range(0, len(entries), 25):
            requests: list[Any] = [{"PutRequest": {"Item": _item(entry)}} for entry in entries[start : start + 25]]
            try:
                while requests:
                    reply = self._dynamodb.batch_write_item(RequestItems={self.table_name: requests})
                    requests = list(reply.get("UnprocessedItems", {}).get(self.table_name, []))
            except (ClientError, BotoCoreError) as exc:
                raise StorageError("The gallery index is temporarily unavailable.", detail=str(exc)) from exc

    def page(self, *, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> Page:
        """Up to ``limit`` entries, newest first, from ``cursor`` on: one Query, whatever the table holds."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = decode_cursor(cursor)
        try:
            reply = self._dynamodb.query(**query)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("The gallery index is temporarily unavailable.", detail=str(exc)) from exc
        entries = [json.loads(item["doc"]["S"]) for item in reply.get("Items", [])]
        last = reply.get("LastEvaluatedKey")
        return Page(entries, encode_cursor(last) if last else None)


def _item(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"pk": {"S": PARTITION}, "sk": {"S": f"{entry['created_at']}#{entry['key']}"},
            "doc": {"S": json.dumps(entry)}}  # fmt: skip


#: DynamoDB's limit on a sort key value, in UTF-8 bytes: no item with a longer ``sk`` can be written, so no cursor
#: the index hands out holds one ("Sort key length" in
#: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-partition-sort-keys).
#: Every real sort key is far shorter: ``{created_at}#{key}`` is a 29-character time, "#", and a key such as
#: ``{KEY_PREFIX}/generated_images/from_queue/{job_id}-{n}.png`` (70 characters and the prefix).
MAX_SORT_KEY_BYTES = 1024
#: A cursor's JSON with an empty sort key; ``encode_cursor`` writes ASCII, each byte of the sort key at most as the
#: six characters of a ``\u00XX`` escape.
_CURSOR_ENVELOPE = '{"pk": {"S": "image"}, "sk": {"S": ""}}'
#: The longest cursor the index can hand out (unpadded base64 of the longest JSON): anything longer is refused
#: before it is decoded.
MAX_CURSOR_CHARS = -(-4 * (len(_CURSOR_ENVELOPE) + 6 * MAX_SORT_KEY_BYTES) // 3)
#: A cursor's JSON nests two levels (an object of objects); deeper nesting is refused before it is parsed.
_CURSOR_DEPTH = 2
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
#: ``created_at`` as the service writes it (``datetime.isoformat``, UTC, milliseconds) or a sidecar may hold it.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_NOT_A_CURSOR = "must be a next_cursor value from an earlier GET /images reply"


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """A cursor this index handed out; anything else is a 400 on ``cursor``, never another exception.

    Checked in order: at most ``MAX_CURSOR_CHARS`` characters; unpadded base64url; ASCII JSON nested at most two
    levels, without a key given twice; exactly ``{"pk": {"S": "image"}, "sk": {"S": <string>}}`` (each value with
    the one type key ``S``); the sort key ``{created_at}#{key}``: an ISO 8601 time, ``#``, a key that is not empty,
    all of it valid Unicode and at most ``MAX_SORT_KEY_BYTES`` bytes of UTF-8.
    """
    if len(cursor) > MAX_CURSOR_CHARS:
        _refuse_cursor(f"longer than {MAX_CURSOR_CHARS} characters")
    if not _BASE64URL.fullmatch(cursor) or len(cursor) % 4 == 1:
        _refuse_cursor("not base64url")
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    try:
        document = text.decode("ascii")
    except UnicodeDecodeError:
        _refuse_cursor("not ASCII JSON")
    if _nesting(document) > _CURSOR_DEPTH:
        _refuse_cursor("nested too deeply")
    try:
        decoded = json.loads(document, object_pairs_hook=_unique_keys)
    except _DuplicateKeyError:
        _refuse_cursor("a key appears twice")
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; RecursionError cannot happen at depth 2
        _refuse_cursor("not JSON")
    if not (
        isinstance(decoded, dict)
        and decoded.keys() == {"pk", "sk"}
        and decoded["pk"] == {"S": PARTITION}
        and isinstance(decoded["sk"], dict)
        and decoded["sk"].keys() == {"S"}
        and isinstance(decoded["sk"]["S"], str)
    ):
        _refuse_cursor('not {"pk": {"S": "image"}, "sk": {"S": "..."}}')
    _check_sort_key(decoded["sk"]["S"])
    return dict(decoded)


def _check_sort_key(sort_key: str) -> None:
    try:
        size = len(sort_key.encode("utf-8"))
    except UnicodeEncodeError:
        _refuse_cursor("its sort key is not valid Unicode")
    if size > MAX_SORT_KEY_BYTES:
        _refuse_cursor(f"its sort key is longer than {MAX_SORT_KEY_BYTES} bytes")
    created_at, hash_sign, key = sort_key.partition("#")
    if not hash_sign or not key or not _TIMESTAMP.fullmatch(created_at):
        _refuse_cursor("its sort key is not {created_at}#{key}")
    try:
        datetime.fromisoformat(created_at)
    except ValueError:
        _refuse_cursor("its sort key is not {created_at}#{key}")


def _refuse_cursor(reason: str) -> NoReturn:
    raise InvalidRequestError("cursor", f"{_NOT_A_CURSOR} ({reason})")


def _nesting(document: str) -> int:
    """How deeply arrays and objects nest in ``document`` (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in document:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def parse_limit(raw: str | None) -> int:
    """``limit`` from a query string: 1-100, default 24, in ASCII digits only (``str.isdigit`` also says yes to
    U+00B2 superscript two, U+2460 circled one and U+FF15 fullwidth five, which ``int`` reads or refuses); anything
    else is a 400 on ``limit``. Leading zeros are fine; the digits are read only once at most three are significant
    (``int`` refuses 4,301 digits)."""
    if raw is None:
        return DEFAULT_PAGE
    digits = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit() and len(digits) <= 3 and 1 <= int(digits or "0") <= MAX_PAGE):
        raise InvalidRequestError("limit", f"must be a whole number from 1 to {MAX_PAGE} (ASCII digits)")
    return int(digits)
