"""The API Lambda end to end through ``lambda_handler``: moto S3 and a fake Bedrock."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from generate_image import app
from imagegen.config import Settings
from tests.conftest import BUCKET
from tests.fakes import (
    FakeBedrock,
    FakeLambdaContext,
    Reply,
    api_event,
    b64png,
    client_error,
    make_service,
    titan_reply,
)
from tests.tools import ROOT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ORIGINAL_PROMPT = (
    "A programmer sitting at a desk with multiple screens, wearing a hoodie, with a cup of coffee by their side. "
    "Code is displayed on the screens, and there are sticky notes on the wall with programming-related reminders."
)
AWS_SECRET_TEXT = "arn:aws:iam::123456789012:role/internal-detail"


@pytest.fixture
def bedrock() -> FakeBedrock:
    # Full-size PNGs, so the stored image can be checked for the requested size.
    def reply(body: dict[str, Any]) -> dict[str, Any]:
        config = body["imageGenerationConfig"]
        return {"images": [b64png(config["width"], config["height"])] * config["numberOfImages"], "error": None}

    return FakeBedrock(replies=[reply])


@pytest.fixture
def api(s3: S3Client, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBedrock]:
    service = make_service(Settings(bucket_name=BUCKET, key_prefix="candidate42"), bedrock, s3)
    monkeypatch.setattr(app, "service", lambda: service)
    yield bedrock


def invoke(body: str | None, **event_options: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = app.lambda_handler(api_event(body, **event_options), FakeLambdaContext())
    headers = dict(response.get("headers") or {})
    headers.update({name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], json.loads(response["body"]), headers


def test_original_example_prompt_stores_a_png_and_returns_uri_and_url(api: FakeBedrock, s3: S3Client) -> None:
    status, body, headers = invoke(json.dumps({"prompt": ORIGINAL_PROMPT}), request_id="req-42")

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["model"] == "amazon.titan-image-generator-v1"
    assert body["request_id"] == "req-42"
    [image] = body["images"]
    key = "candidate42/generated_images/req-42-0.png"
    assert image["s3_uri"] == f"s3://{BUCKET}/{key}"
    assert key in image["url"]
    assert "X-Amz-Signature=" in image["url"]

    png = Image.open(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    assert (png.format, png.size) == ("PNG", (1024, 1024))
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key=key.replace(".png", ".json"))["Body"].read())
    assert sidecar["prompt"] == ORIGINAL_PROMPT
    assert sidecar["seed"] == image["seed"]
    assert sidecar["request_id"] == "req-42"

    [call] = api.calls
    assert call["modelId"] == "amazon.titan-image-generator-v1"
    assert call["decoded_body"]["textToImageParams"]["text"] == ORIGINAL_PROMPT
    assert call["decoded_body"]["imageGenerationConfig"]["seed"] == image["seed"]


def test_options_reach_the_model_and_every_image_is_stored(api: FakeBedrock, s3: S3Client) -> None:
    request = {"prompt": "a cat in space", "numberOfImages": 3, "seed": 77, "width": 512, "height": 512}
    status, body, _ = invoke(json.dumps(request))
    assert status == 200
    assert [image["seed"] for image in body["images"]] == [77, 77, 77]
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(key for key in keys if key.endswith(".png")) == [
        f"candidate42/generated_images/req-0001-{index}.png" for index in range(3)
    ]


def test_base64_encoded_body_is_decoded(api: FakeBedrock) -> None:
    event = api_event(base64.b64encode(b'{"prompt": "a cat"}').decode())
    event["isBase64Encoded"] = True
    response = app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200


MALFORMED: list[tuple[str | None, str, str]] = [
    (None, "body", "JSON object is required"),
    ("", "body", "JSON object is required"),
    ("   ", "body", "JSON object is required"),
    ("{not json", "body", "must be valid JSON"),
    ('{"prompt": "a cat",}', "body", "must be valid JSON"),
    ('["a cat"]', "body", "must be a JSON object"),
    ('"a cat"', "body", "must be a JSON object"),
    ("null", "body", "must be a JSON object"),
    ("{}", "prompt", "is required"),
    ('{"prompt": null}', "prompt", "must be a string"),
    ('{"prompt": 12}', "prompt", "must be a string"),
    ('{"prompt": ""}', "prompt", "must not be empty"),
    ('{"prompt": "   \\n "}', "prompt", "must not be empty"),
    (json.dumps({"prompt": "x" * 513}), "prompt", "at most 512 characters"),
    ('{"prompt": "a cat", "colour": "red"}', "colour", "unknown field"),
    ('{"prompt": "a cat", "seed": "42"}', "seed", "must be a integer"),
    ('{"prompt": "a cat", "seed": -1}', "seed", "between 0 and 2147483646"),
    ('{"prompt": "a cat", "seed": 2147483647}', "seed", "between 0 and 2147483646"),
    ('{"prompt": "a cat", "width": 1000, "height": 1000}', "width", "not a supported"),
    ('{"prompt": "a cat", "width": 1024}', "height", "given together"),
    ('{"prompt": "a cat", "numberOfImages": 0}', "numberOfImages", "between 1 and 5"),
    ('{"prompt": "a cat", "numberOfImages": 6}', "numberOfImages", "between 1 and 5"),
    ('{"prompt": "a cat", "quality": "best"}', "quality", "one of standard, premium"),
    ('{"prompt": "a cat", "cfgScale": 11}', "cfgScale", "between 1.1 and 10"),
    ('{"prompt": "a cat", "cfgScale": true}', "cfgScale", "must be a number"),
    (json.dumps({"prompt": "a cat", "negativePrompt": "n" * 513}), "negativePrompt", "at most 512"),
]


@pytest.mark.parametrize(("body", "field", "rule_part"), MALFORMED)
def test_malformed_input_is_a_400_naming_field_and_rule_without_calling_bedrock(
    api: FakeBedrock, s3: S3Client, body: str | None, field: str, rule_part: str
) -> None:
    status, payload, _ = invoke(body, request_id="req-bad")
    assert status == 400
    assert payload["field"] == field
    assert rule_part in payload["message"]
    assert payload["message"].startswith(f"{field}: ")
    assert payload["code"] == "InvalidRequest"
    assert payload["request_id"] == "req-bad"
    assert api.calls == []
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


def test_at_least_fifteen_distinct_malformed_inputs_are_covered() -> None:
    assert len({body for body, _, _ in MALFORMED}) >= 15


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            client_error("ValidationException", f"blocked by our content filters {AWS_SECRET_TEXT}"),
            400,
            "ContentFiltered",
        ),
        ({"images": [], "error": f"moderated {AWS_SECRET_TEXT}"}, 400, "ContentFiltered"),
        (client_error("ThrottlingException", AWS_SECRET_TEXT, 429), 429, "Throttled"),
        (client_error("ModelTimeoutException", AWS_SECRET_TEXT, 408), 504, "ModelTimeout"),
        (client_error("ServiceUnavailableException", AWS_SECRET_TEXT, 503), 502, "BedrockUnavailable"),
        (client_error("InternalServerException", AWS_SECRET_TEXT, 500), 502, "BedrockUnavailable"),
        # The model itself cannot be used: every entry of the (default) chain answers so, so none is left.
        (client_error("AccessDeniedException", AWS_SECRET_TEXT, 403), 503, "NoModelAvailable"),
        (client_error("ResourceNotFoundException", AWS_SECRET_TEXT, 404), 503, "NoModelAvailable"),
        (client_error("ValidationException", f"Malformed input {AWS_SECRET_TEXT}"), 502, "BedrockRejected"),
        ({"images": ["bm90IGEgcG5n"]}, 502, "ModelResponseInvalid"),
    ],
)
def test_upstream_failures_map_to_statuses_without_echoing_aws_text(
    api: FakeBedrock, reply: Reply, status: int, code: str
) -> None:
    api.replies = [reply]
    got_status, body, headers = invoke('{"prompt": "a cat"}')
    assert (got_status, body["code"]) == (status, code)
    assert AWS_SECRET_TEXT not in json.dumps(body)
    assert body["message"]
    if code == "Throttled":
        assert int(headers["Retry-After"]) > 0
    if code == "ContentFiltered":
        assert "content filter" in body["message"]
        assert body["field"] == "prompt"


def test_a_stability_inference_error_is_a_503_to_retry_after_one_call(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's budget is one attempt (BEDROCK_MAX_ATTEMPTS=1): a model that says its inference failed is asked
    once, and the client is told to come back (Retry-After), not given a 502."""
    bedrock = FakeBedrock(replies=[{"finish_reasons": ["Inference error"]}])
    settings = Settings(
        bucket_name=BUCKET, model_id="stability.stable-image-core-v1:1@us-west-2", bedrock_max_attempts=1
    )
    service = make_service(settings, bedrock, s3)
    monkeypatch.setattr(app, "service", lambda: service)
    status, body, headers = invoke('{"prompt": "a cat"}')
    assert (status, body["code"], headers["Retry-After"]) == (503, "ModelInferenceFailed", "10")
    assert len(bedrock.calls) == 1


def test_storage_failure_is_a_502(s3: S3Client, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    service = make_service(Settings(bucket_name="no-such-bucket"), bedrock, s3)
    monkeypatch.setattr(app, "service", lambda: service)
    status, body, _ = invoke('{"prompt": "a cat"}')
    assert (status, body["code"]) == (502, "StorageUnavailable")
    assert "no-such-bucket" not in json.dumps(body)


def test_a_bug_is_a_500_with_the_request_id_and_no_internals(api: FakeBedrock) -> None:
    api.replies = [RuntimeError("secret internal state")]
    status, body, _ = invoke('{"prompt": "a cat"}', request_id="req-bug")
    assert status == 500
    assert body == {"message": "Internal error.", "code": "InternalError", "request_id": "req-bug"}


def test_missing_configuration_is_a_500_naming_no_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    app.reset()
    try:
        status, body, _ = invoke('{"prompt": "a cat"}')
    finally:
        app.reset()
    assert (status, body["code"]) == (500, "ConfigurationError")
    assert "BUCKET_NAME" not in body["message"]


@pytest.mark.parametrize(("path", "method"), [("/generate-image", "GET"), ("/other", "POST")])
def test_other_routes_are_not_found(api: FakeBedrock, path: str, method: str) -> None:
    status, body, _ = invoke("{}", path=path, method=method)
    assert (status, body["code"]) == (404, "NotFound")
    assert api.calls == []


def test_titan_reply_helper_matches_request(api: FakeBedrock) -> None:
    api.replies = [titan_reply]
    status, body, _ = invoke('{"prompt": "a cat", "numberOfImages": 2}')
    assert status == 200
    assert len(body["images"]) == 2


# ---- the sample events in events/ (as `sam local invoke -e` would send them) -----------------------------


def test_the_sample_event_generates_the_original_prompt(api: FakeBedrock, s3: S3Client) -> None:
    event = json.loads((ROOT / "events" / "generate_image.json").read_text())
    response = app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    request_id = event["requestContext"]["requestId"]
    assert body["request_id"] == request_id
    assert [image["key"] for image in body["images"]] == [f"candidate42/generated_images/{request_id}-0.png"]
    assert api.calls[0]["decoded_body"]["textToImageParams"]["text"] == ORIGINAL_PROMPT


def test_the_invalid_sample_event_is_a_400_naming_the_prompt(api: FakeBedrock) -> None:
    event = json.loads((ROOT / "events" / "generate_image_invalid.json").read_text())
    response = app.lambda_handler(event, FakeLambdaContext())
    body = json.loads(response["body"])
    assert (response["statusCode"], body["field"], body["code"]) == (400, "prompt", "InvalidRequest")
    assert api.calls == []


# ---- hostile input: every class is a 400 naming the field and the rule, never a 500 ---------------------

HOSTILE_BODIES: list[tuple[str, str | bytes, str, str]] = [
    # (case, body, field, part of the rule)
    ("deeply nested JSON", "[" * 10_000 + "]" * 10_000, "body", "nested too deeply"),
    ("a 5,000-digit seed", '{"prompt": "a cat", "seed": ' + "9" * 5000 + "}", "body", "too many digits"),
    ("a huge cfgScale", '{"prompt": "a cat", "cfgScale": 1' + "0" * 400 + "}", "cfgScale", "ordinary size"),
    ("a body that is not UTF-8", b'{"prompt": "caf\xe9"}', "body", "UTF-8"),
    ("an unpaired surrogate", '{"prompt": "a \\ud800 cat"}', "prompt", "unpaired surrogate U+D800"),
    ("only invisible characters", '{"prompt": "\\u200b\\ufeff\\u2060"}', "prompt", "invisible characters"),
    ("a NUL character", '{"prompt": "a\\u0000cat"}', "prompt", "control characters (it holds U+0000)"),
    ("another control character", '{"prompt": "a\\u001bcat"}', "prompt", "control characters (it holds U+001B)"),
    ("a repeated key", '{"prompt": "a cat", "prompt": "a dog"}', "prompt", "appears more than once"),
    ("a repeated nested key", '{"prompt": "a", "x": {"k": 1, "k": 2}}', "k", "appears more than once"),
    ("base64 that is not", "%%%", "body", "valid base64"),
]


@pytest.mark.parametrize(("case", "body", "field", "rule"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
def test_hostile_input_is_a_400_naming_field_and_rule(
    api: FakeBedrock, case: str, body: str | bytes, field: str, rule: str
) -> None:
    if isinstance(body, bytes) or case == "base64 that is not":
        encoded = body if isinstance(body, str) else base64.b64encode(body).decode()
        event = api_event(encoded)
        event["isBase64Encoded"] = True
        response = app.lambda_handler(event, FakeLambdaContext())
        status, reply = response["statusCode"], json.loads(response["body"])
    else:
        status, reply, _ = invoke(body)
    assert status == 400, reply
    assert (reply["code"], reply["field"]) == ("InvalidRequest", field)
    assert rule in reply["message"]
    assert api.calls == []


def test_an_error_quotes_at_most_a_short_piece_of_what_was_sent(api: FakeBedrock) -> None:
    huge_name = "f" * 7_000_000
    status, reply, _ = invoke(json.dumps({"prompt": "a cat", huge_name: 1}))
    assert status == 400
    assert reply["field"] == "f" * 40 + "…"
    assert len(json.dumps(reply)) < 1_000  # not 14.7 MB


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_before_json_is_read_as_json(api: FakeBedrock, encoding: str) -> None:
    event = api_event(base64.b64encode('{"prompt": "a cat", "seed": 3}'.encode(encoding)).decode())
    event["isBase64Encoded"] = True
    response = app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert api.calls[0]["decoded_body"]["imageGenerationConfig"]["seed"] == 3
    status, _, _ = invoke('\ufeff{"prompt": "a cat"}')
    assert status == 200
