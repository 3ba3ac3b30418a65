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
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """A cursor this index handed out; anything else is a 400 on ``cursor``."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = None
    valid = (
        isinstance(decoded, dict)
        and set(decoded) == {"pk", "sk"}
        and decoded["pk"] == {"S": PARTITION}
        and isinstance(decoded["sk"], dict)
        and isinstance(decoded["sk"].get("S"), str)
    )
    if not valid:
        raise InvalidRequestError("cursor", "must be a next_cursor value from an earlier GET /images reply")
    return dict(decoded)


def parse_limit(raw: str | None) -> int:
    """``limit`` from a query string: 1-100, default 24; anything else is a 400 on ``limit``."""
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequestError("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)
