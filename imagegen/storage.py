"""Storing generated PNGs in S3 with a JSON sidecar each, and handing out presigned GET URLs.

Keys: ``{KEY_PREFIX}/generated_images/[{folder}/]{stem}-{index}.png`` and the same with ``.json``, where ``stem``
is the job id and ``index`` the image's place in the request. The sidecar is written after its PNG, so an existing
sidecar means the image is complete: a retry of a job whose earlier attempt stored images but could not record
them in the job record (``imagegen.jobs``) finds them again (``recover``) instead of paying for them twice.
Whether a job is done is never read from S3: the job record says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.errors import StorageError
from imagegen.models import ModelImage
from imagegen.models.base import png_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

IMAGES_FOLDER = "generated_images"
#: Sub-folder of the images written by the queue worker (``…/generated_images/from_queue/``).
QUEUE_FOLDER = "from_queue"


def images_base(key_prefix: str = "") -> str:
    """``{key_prefix}/generated_images``, or ``generated_images`` without a prefix."""
    prefix = key_prefix.strip("/")
    return f"{prefix}/{IMAGES_FOLDER}" if prefix else IMAGES_FOLDER


def images_folder(key_prefix: str = "", folder: str = "") -> str:
    """``{key_prefix}/generated_images/[{folder}/]``: where ``image_key`` puts images (listing prefixes)."""
    return f"{images_base(key_prefix)}/{folder}/" if folder else f"{images_base(key_prefix)}/"


def image_key(key_prefix: str, stem: str, index: int, folder: str = "") -> str:
    """The S3 key of image ``index`` of ``stem``: the one place the key layout is written.

    ``{key_prefix}/generated_images/[{folder}/]{stem}-{index}.png``; its sidecar is the same with ``.json``.
    """
    return f"{images_folder(key_prefix, folder)}{stem}-{index}.png"


def sidecar_key(image_key: str) -> str:
    """The JSON sidecar next to an image."""
    return image_key.removesuffix(".png") + ".json"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where one image landed."""

    key: str
    s3_uri: str
    url: str
    seed: int
    #: What its sidecar holds.
    sidecar: Mapping[str, Any] = field(default_factory=dict)
    #: Its place in the request (0 … numberOfImages - 1).
    index: int = 0

    @property
    def width(self) -> int:
        return int(self.sidecar.get("width", 0))

    @property
    def height(self) -> int:
        return int(self.sidecar.get("height", 0))


def make_s3_client(*, max_attempts: int = 3) -> S3Client:
    """A plain S3 client (SigV4, so presigned URLs work in every region) with bounded retries."""
    config = Config(signature_version="s3v4", retries={"mode": "standard", "total_max_attempts": max_attempts})
    return boto3.client("s3", config=config)


class ImageStore:
    """Writes images and sidecars under one bucket and key prefix."""

    def __init__(self, s3: S3Client, bucket: str, key_prefix: str = "", url_expiry_seconds: int = 3600) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.base = images_base(key_prefix)
        self.url_expiry_seconds = url_expiry_seconds

    def image_key(self, stem: str, index: int, folder: str = "") -> str:
        return image_key(self.key_prefix, stem, index, folder)

    def save(
        self,
        images: Sequence[tuple[int, ModelImage]],
        *,
        stem: str,
        sidecar: Mapping[str, Any],
        folder: str = "",
    ) -> list[StoredImage]:
        """Upload each ``(index, image)``, then its sidecar (``sidecar`` plus the image's seed, key, index, size)."""
        stored = []
        for index, image in images:
            key = self.image_key(stem, index, folder)
            width, height = png_size(image.png)
            meta = {**sidecar, "seed": image.seed, "image_index": index, "image_key": key, "bucket": self.bucket,
                    "width": width, "height": height}  # fmt: skip
            self.put(key, image.png, "image/png")
            self.put(sidecar_key(key), json.dumps(meta, indent=2).encode(), "application/json")
            stored.append(replace(self._stored(key, image.seed), sidecar=meta, index=index))
        return stored

    def recover(self, *, stem: str, index: int, folder: str = "") -> StoredImage | None:
        """Image ``index`` of ``stem`` if an earlier attempt stored it completely (its sidecar exists), else None."""
        key = self.image_key(stem, index, folder)
        try:
            reply = self._s3.get_object(Bucket=self.bucket, Key=sidecar_key(key))
            meta = json.loads(reply["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        except (BotoCoreError, ValueError) as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        return replace(self._stored(key, int(meta.get("seed", 0))), sidecar=meta, index=index)

    def stored(self, key: str, seed: int, *, index: int = 0, width: int = 0, height: int = 0) -> StoredImage:
        """A ``StoredImage`` (with fresh presigned URLs) for an image a job record lists."""
        return replace(self._stored(key, seed), index=index, sidecar={"width": width, "height": height})

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Store one object (``StorageError`` when S3 fails after botocore's retries)."""
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc

    def urls(self, key: str) -> dict[str, str]:
        """Presigned GET URLs of ``key``: ``url`` to show it, ``download_url`` to save it (attachment)."""
        name = key.rsplit("/", 1)[-1]
        download = self._s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": f'attachment; filename="{name}"'},
            ExpiresIn=self.url_expiry_seconds,
        )
        return {"url": self._stored(key, 0).url, "download_url": download}

    def url_origin(self) -> str:
        """Scheme and host of the presigned URLs (the page's Content-Security-Policy allows images from it)."""
        parts = urlsplit(self._stored("origin-probe", 0).url)
        return f"{parts.scheme}://{parts.netloc}"

    def _stored(self, key: str, seed: int) -> StoredImage:
        url = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_expiry_seconds
        )
        return StoredImage(key=key, s3_uri=f"s3://{self.bucket}/{key}", url=url, seed=seed)
