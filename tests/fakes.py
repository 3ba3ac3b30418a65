"""Test doubles: a fake Bedrock Runtime client and a small PNG encoder."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


def make_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    """A valid RGB PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def b64png(width: int = 8, height: int = 8) -> str:
    return base64.b64encode(make_png(width, height)).decode()


def client_error(code: str, message: str = "upstream said no", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeModel",
    )


Reply = dict[str, Any] | Exception | Callable[[dict[str, Any]], dict[str, Any]]


def titan_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What Titan/Nova answer: one PNG per requested image, of the requested size."""
    config = body["imageGenerationConfig"]
    return {"images": [b64png(config["width"] // 64, config["height"] // 64)] * config["numberOfImages"]}


@dataclass
class FakeBedrock:
    """Stands in for ``boto3.client("bedrock-runtime")``: records calls, answers from a script."""

    replies: list[Reply] = field(default_factory=lambda: [titan_reply])
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke_model(self, **kwargs: Any) -> dict[str, Any]:
        body = json.loads(kwargs["body"])
        self.calls.append({**kwargs, "decoded_body": body})
        reply = self.replies[0] if len(self.replies) == 1 else self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        payload = reply(body) if callable(reply) else reply
        return {"body": io.BytesIO(json.dumps(payload).encode()), "contentType": "application/json"}
