"""The gallery: the DynamoDB index both functions write, ``GET /images`` paging it newest first at a constant
cost, and ``GET /`` serving the page with its security headers (moto S3 and DynamoDB, a fake Bedrock)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from generate_image import app
from imagegen.config import Settings
from imagegen.errors import StorageError
from imagegen.index import (
    MAX_CURSOR_CHARS,
    MAX_SORT_KEY_BYTES,
    ImageIndex,
    encode_cursor,
    make_dynamodb_client,
    table_definition,
)
from imagegen.jobs import JobStore
from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, FakeLambdaContext, api_event, make_service

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

TABLE = "imagegen-test-images"


@pytest.fixture
def dynamodb(s3: S3Client) -> Iterator[DynamoDBClient]:  # inside the s3 fixture's moto context
    client = make_dynamodb_client()
    client.create_table(**table_definition(TABLE))
    yield client


@pytest.fixture
def service(s3: S3Client, dynamodb: DynamoDBClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    counted: list[tuple[str, dict[str, str]]] = []
    built = make_service(Settings(bucket_name=BUCKET, images_table_name=TABLE), FakeBedrock(), s3)
    built.count = lambda name, **dimensions: counted.append((name, dimensions))
    built.counted = counted  # type: ignore[attr-defined]
    monkeypatch.setattr(app, "service", lambda: built)
    return built


def get(path: str, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    event = api_event(None, path=path, method="GET")
    event["queryStringParameters"] = query
    response = app.lambda_handler(event, FakeLambdaContext())
    body = json.loads(response["body"]) if response["body"].startswith("{") else {"html": response["body"]}
    return response["statusCode"], body, response["multiValueHeaders"]


def post(prompt: str, request_id: str, **options: Any) -> dict[str, Any]:
    event = api_event(json.dumps({"prompt": prompt, **options}), request_id=request_id)
    response = app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    reply: dict[str, Any] = json.loads(response["body"])
    return reply


def test_images_from_the_api_and_the_queue_are_listed_newest_first(service: Any, s3: S3Client, jobs: JobStore) -> None:
    post("a red fox", "req-1", seed=5)
    worker = QueueWorker(service, jobs, make_sqs_client(), "unused")
    assert worker.process(QueueMessage("msg-1", '{"prompt": "a blue whale", "seed": 6}')).outcome.value == "generated"
    post("a green frog", "req-2", seed=7, width=1152, height=768)
    status, body, _ = get("/images")
    assert status == 200
    assert [image["prompt"] for image in body["images"]] == ["a green frog", "a blue whale", "a red fox"]
    frog, whale, _ = body["images"]
    assert set(frog) == {"key", "url", "download_url", "prompt", "negativePrompt", "model", "seed", "width",
                         "height", "source", "created_at"}  # fmt: skip
    assert (frog["seed"], frog["source"], frog["model"]) == (7, "api", "amazon.titan-image-generator-v1")
    assert (frog["width"], frog["height"]) == (18, 12)  # the stored PNG's own size (the fake draws 1/64 scale)
    assert (whale["source"], whale["key"]) == ("queue", "generated_images/from_queue/msg-1-0.png")
    query = parse_qs(urlsplit(frog["url"]).query)
    assert query["X-Amz-Expires"] == ["3600"]  # presigned URLs keep their expiry
    assert "attachment" in parse_qs(urlsplit(frog["download_url"]).query)["response-content-disposition"][0]
    assert body["next_cursor"] is None


def test_paging_with_a_cursor_walks_every_image_once(service: Any) -> None:
    for index in range(5):
        post(f"image {index}", f"req-{index}", seed=index)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        status, body, _ = get("/images", {"limit": "2", **({"cursor": cursor} if cursor else {})})
        assert status == 200
        assert len(body["images"]) <= 2
        seen += [image["prompt"] for image in body["images"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"image {index}" for index in reversed(range(5))]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": "-1"}, "limit"),
     ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": base64.urlsafe_b64encode(b'{"pk": 1}').decode()}, "cursor")],
)  # fmt: skip
def test_a_bad_limit_or_cursor_is_a_400_naming_it(service: Any, query: dict[str, str], field: str) -> None:
    status, body, _ = get("/images", query)
    assert (status, body["field"], body["code"]) == (400, field, "InvalidRequest")


def test_a_page_is_one_query_however_many_images_exist(service: Any, dynamodb: DynamoDBClient) -> None:
    index = ImageIndex(dynamodb, TABLE)
    entries = [{"key": f"generated_images/k{i}.png", "prompt": f"p{i}", "created_at": f"2026-11-30T10:{i // 60:02d}:"
                f"{i % 60:02d}+00:00", "seed": i} for i in range(300)]  # fmt: skip
    index.put(entries)
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    service.index = ImageIndex(dynamodb, TABLE)
    status, body, _ = get("/images", {"limit": "24"})
    assert status == 200
    assert [image["prompt"] for image in body["images"]][:2] == ["p299", "p298"]
    assert calls == ["Query"]


def test_an_index_write_that_fails_never_fails_the_request(
    service: Any, s3: S3Client, caplog: pytest.LogCaptureFixture
) -> None:
    service.index = ImageIndex(make_dynamodb_client(), "no-such-table")
    body = post("a stored cat", "req-9")
    key = body["images"][0]["key"]
    assert s3.head_object(Bucket=BUCKET, Key=key)  # the image is in S3: the truth
    assert service.counted == [("IndexWriteFailed", {})]
    assert any("gallery index write failed" in record.getMessage() for record in caplog.records)


def test_the_page_is_public_self_contained_and_locked_down(service: Any) -> None:
    status, body, headers = get("/")
    assert status == 200
    html = body["html"]
    policy = headers["Content-Security-Policy"][0]
    assert headers["X-Content-Type-Options"] == ["nosniff"]
    assert headers["Referrer-Policy"] == ["no-referrer"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
    [script] = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy  # the only script that may run is this one
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN
    assert "x-api-key" in script and "localStorage" in script and ".innerHTML" not in script


def test_json_replies_are_not_sniffed(service: Any) -> None:
    _, _, headers = get("/images")
    assert headers["X-Content-Type-Options"] == ["nosniff"]


# ---- issue: this week's hostile inputs to GET /images are 400s naming the field, never 500s ------------------

CREATED_AT = "2026-11-30T10:35:23.819+00:00"


def forged(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


HOSTILE_QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("limit superscript two", {"limit": "\u00b2"}, "limit"),
    ("limit circled one", {"limit": "\u2460"}, "limit"),
    ("limit superscript one two", {"limit": "\u00b9\u00b2"}, "limit"),
    ("limit fullwidth five", {"limit": "\uff15"}, "limit"),
    ("limit of 4,301 digits", {"limit": "1" * 4301}, "limit"),
    ("limit of 10,000 digits", {"limit": "9" * 10_000}, "limit"),
    ("cursor of 1,100 nested brackets", {"cursor": forged("[" * 1100 + "]" * 1100)}, "cursor"),
    ("cursor with a second type on the sort key",
     {"cursor": forged(f'{{"pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#k.png", "N": "1"}}}}')}, "cursor"),
    ("cursor with a 2,000-character sort key",
     {"cursor": encode_cursor({"pk": {"S": "image"}, "sk": {"S": f"{CREATED_AT}#{'k' * 1970}"}})}, "cursor"),
    ("cursor with a duplicate pk",
     {"cursor": forged(f'{{"pk": {{"S": "x"}}, "pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#k.png"}}}}')},
     "cursor"),
    ("cursor with a lone surrogate",
     {"cursor": forged(f'{{"pk": {{"S": "image"}}, "sk": {{"S": "{CREATED_AT}#\\udfff"}}}}')}, "cursor"),
    ("cursor of ten megabytes", {"cursor": "A" * 10_000_000}, "cursor"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "query", "field"), HOSTILE_QUERIES, ids=[case for case, _, _ in HOSTILE_QUERIES])
def test_hostile_limits_and_cursors_are_400s_naming_them(
    service: Any, caplog: pytest.LogCaptureFixture, case: str, query: dict[str, str], field: str
) -> None:
    status, body, _ = get("/images", query)
    assert (status, body["field"], body["code"]) == (400, field, "InvalidRequest"), body
    assert len(body["message"]) < 200
    messages = [record.getMessage() for record in caplog.records if record.name == "imagegen-api"]
    assert "invalid request" in messages
    assert "unexpected error" not in messages  # the 500 path, which logged the traceback


def test_a_cursor_for_the_longest_sort_key_dynamodb_stores_pages_on(service: Any, dynamodb: DynamoDBClient) -> None:
    index = ImageIndex(dynamodb, TABLE)
    prefix = f"{CREATED_AT}#generated_images/"
    # Non-ASCII keys make the longest cursors (each byte of UTF-8 up to a 6-character escape); S3 allows them.
    longest_key = "generated_images/" + "\u00e9" * ((MAX_SORT_KEY_BYTES - len(prefix.encode())) // 2) + ".png"
    longest_key = longest_key[: len(longest_key) - (len(f"{CREATED_AT}#{longest_key}".encode()) - 1024)]
    assert len(f"{CREATED_AT}#{longest_key}".encode()) == MAX_SORT_KEY_BYTES
    older = {"key": "generated_images/older.png", "prompt": "older", "created_at": "2026-11-29T00:00:00.000+00:00"}
    index.put([{"key": longest_key, "prompt": "longest", "created_at": CREATED_AT}, older])
    with pytest.raises(StorageError):  # DynamoDB itself refuses one byte more: no cursor can hold a longer sort key
        index.put([{"key": longest_key + "x", "prompt": "too long", "created_at": CREATED_AT}])

    status, first, _ = get("/images", {"limit": "1"})
    assert status == 200
    assert [image["prompt"] for image in first["images"]] == ["longest"]
    assert len(first["next_cursor"]) <= MAX_CURSOR_CHARS
    status, second, _ = get("/images", {"limit": "1", "cursor": first["next_cursor"]})
    assert status == 200, second
    assert [image["prompt"] for image in second["images"]] == ["older"]
