"""This week's hostile inputs through the API Lambda and the queue worker (moto, a fake Bedrock): every one a 400
naming its field and rule (or a dead letter with it), never a 500, and never a Bedrock call (nothing billed)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from generate_image import app
from imagegen.config import Settings
from imagegen.jobs import JobStore
from imagegen.queue import QueueMessage
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, FakeLambdaContext, api_event, make_service, stability_reply, titan_reply
from tests.functional.test_queue_endings import Queue, worker
from tests.functional.test_queue_endings import queue as queue  # the fixture  # noqa: PLC0414

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STABILITY = "stability.stable-image-core-v1:1"


def serve(s3: S3Client, monkeypatch: pytest.MonkeyPatch, model_id: str | None = None) -> FakeBedrock:
    bedrock = FakeBedrock(replies=[stability_reply if model_id == STABILITY else titan_reply])
    settings = Settings(bucket_name=BUCKET) if model_id is None else Settings(bucket_name=BUCKET, model_id=model_id)
    service = make_service(settings, bedrock, s3)
    monkeypatch.setattr(app, "service", lambda: service)
    return bedrock


@pytest.fixture
def titan(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    yield serve(s3, monkeypatch)


@pytest.fixture
def stability(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    yield serve(s3, monkeypatch, STABILITY)


def call(body: str | None, *, base64_encoded: bool = False) -> tuple[int, dict[str, Any]]:
    event = api_event(body)
    event["isBase64Encoded"] = base64_encoded
    response = app.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def assert_400(status: int, reply: dict[str, Any], field: str, rule: str) -> None:
    assert status == 400, reply
    assert (reply["code"], reply["field"]) == ("InvalidRequest", field)
    assert rule in reply["message"], reply["message"]


# ---- look-blank prompts -----------------------------------------------------------------------------------

LOOK_BLANK = [
    ("U+3164 three times", "\u3164\u3164\u3164"),
    ("U+115F", "\u115f"),
    ("U+2800 twice", "\u2800\u2800"),
    ("combining marks alone", "\u0301\u0308"),
]


@pytest.mark.parametrize(("case", "text"), LOOK_BLANK, ids=[case for case, _ in LOOK_BLANK])
@pytest.mark.parametrize("field", ["prompt", "negativePrompt"])
def test_a_prompt_that_only_looks_like_text_is_a_400_and_not_billed(
    titan: FakeBedrock, case: str, text: str, field: str
) -> None:
    payload = {"prompt": text} if field == "prompt" else {"prompt": "a cat", "negativePrompt": text}
    status, reply = call(json.dumps(payload))
    assert_400(status, reply, field, "must not be empty or blank")
    assert titan.calls == []


def test_a_combining_mark_on_a_letter_is_a_prompt(titan: FakeBedrock) -> None:
    status, reply = call(json.dumps({"prompt": "cafe\u0301 \u3164"}))
    assert status == 200, reply
    assert titan.calls[0]["decoded_body"]["textToImageParams"]["text"] == "cafe\u0301 \u3164"


@pytest.mark.parametrize(("case", "text"), LOOK_BLANK, ids=[case for case, _ in LOOK_BLANK])
def test_a_queue_message_that_only_looks_like_text_is_dead_lettered_with_the_rule(
    s3: S3Client, jobs: JobStore, queue: Queue, case: str, text: str
) -> None:
    bedrock = FakeBedrock()
    message = QueueMessage(f"blank-{len(text)}-{ord(text[0])}", text, "", 1, queue.arn)
    assert worker(s3, queue, bedrock).process(message).outcome.value == "dead_lettered"
    [letter] = queue.dead_letters()
    assert "prompt: must not be empty or blank" in letter["error_message"]
    assert bedrock.calls == []


# ---- sizes on Stability, non-finite numbers ------------------------------------------------------------------

SIZES = [
    ("0x0", '{"prompt": "a cat", "width": 0, "height": 0}', "width", "between 1 and 4096 on every model"),
    ("-16x-9", '{"prompt": "a cat", "width": -16, "height": -9}', "width", "between 1 and 4096 on every model"),
    ("1e300x1e300", '{"prompt": "a cat", "width": 1e300, "height": 1e300}', "width", "is out of range"),
    ("4097x4097", '{"prompt": "a cat", "width": 4097, "height": 4097}', "width", "between 1 and 4096"),
]


@pytest.mark.parametrize(("case", "body", "field", "rule"), SIZES, ids=[case for case, *_ in SIZES])
def test_stability_refuses_sizes_that_are_not_sizes(
    stability: FakeBedrock, case: str, body: str, field: str, rule: str
) -> None:
    status, reply = call(body)
    assert_400(status, reply, field, rule)
    assert stability.calls == []


def test_stability_still_picks_the_ratio_of_a_real_size(stability: FakeBedrock) -> None:
    status, reply = call('{"prompt": "a cat", "width": 1920, "height": 1080}')
    assert status == 200, reply
    assert stability.calls[0]["decoded_body"]["aspect_ratio"] == "16:9"


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_non_finite_cfg_scale_must_be_a_finite_number(titan: FakeBedrock, number: str) -> None:
    status, reply = call(f'{{"prompt": "a cat", "cfgScale": {number}}}')
    assert_400(status, reply, "cfgScale", "cfgScale: must be a finite number")
    assert "not a number" not in reply["message"]
    assert titan.calls == []


# ---- UTF-16/32 without a byte-order mark -------------------------------------------------------------------

UNMARKED = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
BODY = '{"prompt": "a cat", "seed": 3}'


@pytest.mark.parametrize("encoding", UNMARKED)
def test_utf16_and_utf32_without_a_bom_as_the_gateway_passes_text_are_read(titan: FakeBedrock, encoding: str) -> None:
    # ASCII JSON in UTF-16/32 is valid UTF-8: API Gateway (and the local gateway) pass it as text, a str with NULs.
    status, reply = call(BODY.encode(encoding).decode("utf-8"))
    assert status == 200, reply
    assert titan.calls[0]["decoded_body"]["imageGenerationConfig"]["seed"] == 3


@pytest.mark.parametrize("encoding", UNMARKED)
def test_utf16_and_utf32_without_a_bom_as_base64_bytes_are_read(titan: FakeBedrock, encoding: str) -> None:
    body = '{"prompt": "caf\u00e9 \u732b", "seed": 3}'.encode(encoding)  # not valid UTF-8: the gateway base64s it
    status, reply = call(base64.b64encode(body).decode(), base64_encoded=True)
    assert status == 200, reply
    assert titan.calls[0]["decoded_body"]["textToImageParams"]["text"] == "caf\u00e9 \u732b"
