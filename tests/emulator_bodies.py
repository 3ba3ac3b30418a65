"""InvokeModel bodies, model ids and lifecycle overrides for the Bedrock emulator's tests (unit and local)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bedrock_emulator.config import EmulatorConfig

TITAN = "amazon.titan-image-generator-v1"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
NOVA = "amazon.nova-canvas-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"

#: Every model id the tests of bodies, replies and behaviour invoke (the adapters' prefixes with ``:0`` too),
#: whatever the lifecycle table says of it today.
TESTED_MODEL_IDS = (
    TITAN, f"{TITAN}:0", TITAN_V2, NOVA, SD35, "stability.stable-image-core-v1:0", CORE,
    "stability.stable-image-ultra-v1:0", ULTRA,
)  # fmt: skip
#: ``BEDROCK_EMULATOR_LIFECYCLE`` making each of them ACTIVE in every region, so that those tests exercise the
#: bodies and replies, not the lifecycle (tested on its own in test_lifecycle.py and test_control_plane.py).
EVERY_MODEL_ACTIVE = ",".join(f"{model_id}=ACTIVE@*" for model_id in TESTED_MODEL_IDS)


def every_model_active(config: EmulatorConfig | None = None) -> EmulatorConfig:
    """``config`` (default: the defaults) with ``EVERY_MODEL_ACTIVE`` as its lifecycle overrides."""
    overrides = EmulatorConfig.from_env({}, lifecycle=EVERY_MODEL_ACTIVE).lifecycle
    return dataclasses.replace(config or EmulatorConfig(), lifecycle=overrides)


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
