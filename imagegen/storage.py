"""Storing generated PNGs in S3 with a JSON sidecar each, and handing out presigned GET URLs.

Keys: ``{KEY_PREFIX}/generated_images/[{folder}/]{stem}-{index}.png`` and the same with ``.json``.
The sidecar is written after its PNG, so an existing sidecar means the image is complete. A queue message's
ending is recorded once, explicitly, in ``…/{folder}/.outcomes/{stem}.json`` (``write_outcome``).

Queue consumers also *claim* a message before paying for a model call: a small object under
``…/{folder}/.claims/{stem}`` written with ``If-None-Match: *`` (S3 conditional writes), so that two
concurrent deliveries of one message cannot both call the model. A claim expires (``expires_at``) so a
crashed holder never blocks a message for longer than one function timeout.
"""

from __future__ import annotations

import contextlib
import json
import time
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
#: Beside a folder's images: who is working on a message (claims), and how each message ended (outcomes).
CLAIMS, OUTCOMES = ".claims", ".outcomes"


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
    #: What its sidecar holds (empty for an image found again rather than stored now).
    sidecar: Mapping[str, Any] = field(default_factory=dict)


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
        images: Sequence[ModelImage],
        *,
        stem: str,
        sidecar: Mapping[str, Any],
        folder: str = "",
    ) -> list[StoredImage]:
        """Upload each image, then its sidecar (``sidecar`` plus the image's own seed, key and index)."""
        stored = []
        for index, image in enumerate(images):
            key = self.image_key(stem, index, folder)
            width, height = png_size(image.png)
            meta = {**sidecar, "seed": image.seed, "image_index": index, "image_key": key, "bucket": self.bucket,
                    "width": width, "height": height}  # fmt: skip
            self._put(key, image.png, "image/png")
            self._put(sidecar_key(key), json.dumps(meta, indent=2).encode(), "application/json")
            stored.append(replace(self._stored(key, image.seed), sidecar=meta))
        return stored

    def read_outcome(self, *, stem: str, folder: str = "") -> tuple[dict[str, Any], str] | None:
        """The recorded ending of ``stem`` (a queue message) and its ETag, or ``None`` while it has none."""
        try:
            reply = self._s3.get_object(Bucket=self.bucket, Key=self._state_key(OUTCOMES, stem, folder))
            return json.loads(reply["Body"].read()), reply["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        except (BotoCoreError, ValueError) as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc

    def write_outcome(
        self, *, stem: str, record: Mapping[str, Any], folder: str = "", replace_etag: str | None = None
    ) -> str | None:
        """Record how ``stem`` ended, once: create-only (``If-None-Match``), or replacing exactly the version
        ``replace_etag`` names (``If-Match``). Its ETag, or ``None`` when another writer got there first."""
        key = self._state_key(OUTCOMES, stem, folder)
        body = json.dumps(record).encode()
        condition = {"IfMatch": replace_etag} if replace_etag else {"IfNoneMatch": "*"}
        try:
            return self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, **condition)["ETag"]  # type: ignore[arg-type]
        except ClientError as exc:
            if _precondition_failed(exc):
                return None
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc

    def stored(self, images: Sequence[Mapping[str, Any]]) -> list[StoredImage]:
        """``StoredImage``s (with fresh presigned URLs) for ``{"key", "seed"}`` records."""
        return [self._stored(str(image["key"]), int(image["seed"])) for image in images]

    def claim(self, *, stem: str, owner: str, ttl_seconds: int, folder: str = "") -> str | None:
        """Take the claim on ``stem``: its ETag, or ``None`` while another owner holds an unexpired one."""
        key = self._claim_key(stem, folder)
        body = json.dumps({"owner": owner, "expires_at": time.time() + ttl_seconds}).encode()
        try:
            return self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
        except ClientError as exc:
            if not _precondition_failed(exc):
                raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        except BotoCoreError as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        try:  # held: take it over only if it has expired, and only if nobody else did first (If-Match)
            current = self._s3.get_object(Bucket=self.bucket, Key=key)
            if float(json.loads(current["Body"].read()).get("expires_at", 0)) > time.time():
                return None
            return self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfMatch=current["ETag"])["ETag"]
        except ClientError as exc:
            if _precondition_failed(exc) or exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                return None
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc
        except (BotoCoreError, ValueError) as exc:
            raise StorageError("Image storage is temporarily unavailable.", detail=str(exc)) from exc

    def release(self, *, stem: str, etag: str, folder: str = "") -> None:
        """Expire our claim now so a retry need not wait for it; best effort (it expires anyway)."""
        body = json.dumps({"owner": None, "expires_at": 0}).encode()
        with contextlib.suppress(ClientError, BotoCoreError):
            self._s3.put_object(Bucket=self.bucket, Key=self._claim_key(stem, folder), Body=body, IfMatch=etag)

    def _claim_key(self, stem: str, folder: str) -> str:
        return self._state_key(CLAIMS, stem, folder)

    def _state_key(self, kind: str, stem: str, folder: str) -> str:
        return f"{images_folder(self.key_prefix, folder)}{kind}/{stem}" + (".json" if kind == OUTCOMES else "")

    def _put(self, key: str, body: bytes, content_type: str) -> None:
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


def _precondition_failed(exc: ClientError) -> bool:
    # 412 when the condition fails; 409 when a concurrent conditional write to the same key is in flight.
    return exc.response.get("Error", {}).get("Code") in {"PreconditionFailed", "ConditionalRequestConflict"}
