"""``GET /images``: a page of the gallery, newest first, from the DynamoDB index (one Query however many images
exist), each image with fresh presigned URLs. Loaded only on its route."""

from __future__ import annotations

from typing import Any

from imagegen.errors import ConfigurationError
from imagegen.index import decode_cursor, parse_limit
from imagegen.service import ImageService

#: The fields of each image in the reply (docs/api.md).
IMAGE_FIELDS = ("key", "prompt", "negativePrompt", "model", "seed", "width", "height", "source", "created_at")


def list_images(service: ImageService, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """``{"images": [...], "next_cursor": ...}``; a bad ``limit`` or ``cursor`` is a 400 naming it."""
    page_size = parse_limit(limit)
    if cursor:
        decode_cursor(cursor)  # a bad cursor is a 400 before anything else (the index decodes it again to query)
    if service.index is None:
        raise ConfigurationError("The service is misconfigured.", detail="IMAGES_TABLE_NAME is not set")
    page = service.index.page(limit=page_size, cursor=cursor)
    images = []
    for entry in page.entries:
        urls = service.store.urls(str(entry["key"]))
        images.append({**{field: entry.get(field) for field in IMAGE_FIELDS}, **urls})
    return {"images": images, "next_cursor": page.next_cursor}
