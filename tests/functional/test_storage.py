"""S3 storage: key layout, sidecars, presigned URLs, and finding an earlier complete save."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pytest

from imagegen.models import ModelImage
from imagegen.storage import ImageStore
from tests.conftest import BUCKET
from tests.fakes import make_png

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.mark.parametrize(
    ("prefix", "folder", "expected"),
    [
        ("", "", "generated_images/req-1-0.png"),
        ("candidate42", "", "candidate42/generated_images/req-1-0.png"),
        ("/candidate42/", "from_queue", "candidate42/generated_images/from_queue/req-1-0.png"),
    ],
)
def test_keys_live_under_the_prefix(s3: S3Client, prefix: str, folder: str, expected: str) -> None:
    store = ImageStore(s3, BUCKET, prefix)
    [stored] = store.save([ModelImage(make_png(), 7)], stem="req-1", sidecar={"prompt": "p"}, folder=folder)
    assert stored.key == expected
    assert stored.s3_uri == f"s3://{BUCKET}/{expected}"
    obj = s3.get_object(Bucket=BUCKET, Key=expected)
    assert obj["Body"].read() == make_png()
    assert obj["ContentType"] == "image/png"


def test_each_image_gets_a_sidecar_with_its_own_seed(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    images = [ModelImage(make_png(), 1), ModelImage(make_png(4, 4), 2)]
    store.save(images, stem="req-2", sidecar={"prompt": "a cat", "model": "m", "request_id": "req-2"})
    sidecar = json.loads(s3.get_object(Bucket=BUCKET, Key="generated_images/req-2-1.json")["Body"].read())
    assert sidecar == {
        "prompt": "a cat",
        "model": "m",
        "request_id": "req-2",
        "seed": 2,
        "image_index": 1,
        "image_key": "generated_images/req-2-1.png",
        "bucket": BUCKET,
        "width": 4,  # read from the PNG itself: the gallery shows the real size of every model's image
        "height": 4,
    }


def test_presigned_url_points_at_the_object_and_expires(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET, url_expiry_seconds=900)
    [stored] = store.save([ModelImage(make_png(), 1)], stem="req-3", sidecar={})
    url = urlparse(stored.url)
    assert url.path.endswith("/generated_images/req-3-0.png")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_an_ending_is_recorded_once_explicitly_never_inferred_from_the_images(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    assert store.read_outcome(stem="msg-1", folder="from_queue") is None
    store.save([ModelImage(make_png(), 5)], stem="msg-1", sidecar={}, folder="from_queue")
    assert store.read_outcome(stem="msg-1", folder="from_queue") is None  # stored images are not an ending
    record = {"outcome": "generated", "images": [{"key": "generated_images/from_queue/msg-1-0.png", "seed": 5}]}
    etag = store.write_outcome(stem="msg-1", record=record, folder="from_queue")
    assert etag is not None
    # Create-only: a second writer finds the first and changes nothing.
    assert store.write_outcome(stem="msg-1", record={"outcome": "dead_lettered"}, folder="from_queue") is None
    found = store.read_outcome(stem="msg-1", folder="from_queue")
    assert found is not None and found[0] == record
    [image] = store.stored(found[0]["images"])
    assert (image.key, image.seed) == ("generated_images/from_queue/msg-1-0.png", 5)
    assert s3.head_object(Bucket=BUCKET, Key="generated_images/from_queue/.outcomes/msg-1.json")
    # Replacing needs the exact version read.
    assert (
        store.write_outcome(stem="msg-1", record={**record, "x": 1}, folder="from_queue", replace_etag='"stale"')
        is None
    )
    assert store.write_outcome(stem="msg-1", record={**record, "x": 1}, folder="from_queue", replace_etag=etag)


def test_a_claim_is_exclusive_until_released_or_expired(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    first = store.claim(stem="msg-9", owner="a", ttl_seconds=300, folder="from_queue")
    assert first is not None
    assert store.claim(stem="msg-9", owner="b", ttl_seconds=300, folder="from_queue") is None
    store.release(stem="msg-9", etag=first, folder="from_queue")
    second = store.claim(stem="msg-9", owner="b", ttl_seconds=0, folder="from_queue")  # expires at once
    assert second is not None
    assert store.claim(stem="msg-9", owner="c", ttl_seconds=300, folder="from_queue") is not None
    assert s3.head_object(Bucket=BUCKET, Key="generated_images/from_queue/.claims/msg-9")


def test_only_one_of_two_takeovers_of_an_expired_claim_wins(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(s3, BUCKET)
    assert store.claim(stem="msg-10", owner="dead", ttl_seconds=0) is not None
    stale = s3.get_object(Bucket=BUCKET, Key="generated_images/.claims/msg-10")
    # Both contenders read the same expired claim; the first If-Match write wins, the second must lose.
    assert store.claim(stem="msg-10", owner="a", ttl_seconds=300) is not None
    with pytest.raises(Exception, match="PreconditionFailed"):
        s3.put_object(Bucket=BUCKET, Key="generated_images/.claims/msg-10", Body=b"{}", IfMatch=stale["ETag"])
    assert store.claim(stem="msg-10", owner="b", ttl_seconds=300) is None
