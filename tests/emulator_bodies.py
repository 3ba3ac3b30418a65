"""InvokeModel bodies and model ids for the Bedrock emulator's tests (unit and local)."""

from __future__ import annotations

import json
from typing import Any

TITAN = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"


def amazon(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    body: dict[str, Any] = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": text, **(text_params or {})}}
    if config:
        body["imageGenerationConfig"] = config
    return body


def titan(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    """A Titan body at a small size (fast to render) unless the test sets one."""
    return amazon(text, text_params=text_params, **{"width": 512, "height": 512, **config})


def nova(text: str = "a lighthouse at dusk", *, text_params: dict[str, Any] | None = None, **config: Any) -> Any:
    return amazon(text, text_params=text_params, **{"width": 320, "height": 320, **config})


def stability(prompt: str = "a lighthouse at dusk", **fields: Any) -> Any:
    return {"prompt": prompt, **fields}


def raw(body: Any) -> bytes:
    """``body`` as the bytes of a request."""
    return json.dumps(body).encode()
