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
    [stored] = store.save([(0, ModelImage(make_png(), 7))], stem="req-1", sidecar={"prompt": "p"}, folder=folder)
    assert stored.key == expected
    assert stored.s3_uri == f"s3://{BUCKET}/{expected}"
    obj = s3.get_object(Bucket=BUCKET, Key=expected)
    assert obj["Body"].read() == make_png()
    assert obj["ContentType"] == "image/png"


def test_each_image_gets_a_sidecar_with_its_own_seed(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    images = [(0, ModelImage(make_png(), 1)), (1, ModelImage(make_png(4, 4), 2))]
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
    [stored] = store.save([(0, ModelImage(make_png(), 1))], stem="req-3", sidecar={})
    url = urlparse(stored.url)
    assert url.path.endswith("/generated_images/req-3-0.png")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_images_are_stored_at_their_own_index(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    [stored] = store.save([(3, ModelImage(make_png(), 9))], stem="req-4", sidecar={})
    assert (stored.key, stored.index, stored.seed) == ("generated_images/req-4-3.png", 3, 9)
    assert (
        json.loads(s3.get_object(Bucket=BUCKET, Key="generated_images/req-4-3.json")["Body"].read())["image_index"] == 3
    )


def test_an_image_stored_completely_is_recovered_and_a_missing_one_is_not(s3: S3Client) -> None:
    store = ImageStore(s3, BUCKET)
    store.save([(1, ModelImage(make_png(6, 6), 42))], stem="job-1", sidecar={"model": "m"}, folder="from_queue")
    found = store.recover(stem="job-1", index=1, folder="from_queue")
    assert found is not None
    assert (found.key, found.index, found.seed, found.width, found.height) == (
        "generated_images/from_queue/job-1-1.png", 1, 42, 6, 6)  # fmt: skip
    assert found.sidecar["model"] == "m"
    assert store.recover(stem="job-1", index=0, folder="from_queue") is None
    # A PNG without its sidecar is not complete (the sidecar is written after the PNG).
    s3.put_object(Bucket=BUCKET, Key="generated_images/from_queue/job-1-2.png", Body=make_png())
    assert store.recover(stem="job-1", index=2, folder="from_queue") is None
