"""Stability AI bodies (SD3.5 Large, Stable Image Core and Ultra): ``prompt``, ``negative_prompt``,
``aspect_ratio``, ``seed``, ``output_format``, ``mode``. The limits are the adapter's in ``imagegen.models``."""

from __future__ import annotations

import hashlib

from bedrock_emulator.wire.fields import Fields
from bedrock_emulator.wire.job import Job
from imagegen.models import StabilityAdapter
from imagegen.models.stability import ASPECT_RATIOS

__all__ = ["STABILITY_FORMATS", "STABILITY_SIZES", "stability_job"]

#: Output size per Stability aspect ratio: about one megapixel, both sides multiples of 64.
STABILITY_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768), "9:16": (768, 1344),
    "21:9": (1536, 640), "9:21": (640, 1536),
    "3:2": (1216, 832), "2:3": (832, 1216),
    "5:4": (1152, 896), "4:5": (896, 1152),
}  # fmt: skip
#: ``output_format`` -> Pillow format name.
STABILITY_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


def stability_job(body: object) -> Job:
    """Validate a Stability text-to-image body; raises ``Malformed`` naming the JSON path.

    A seed of 0 means "random" to Stability; it is replaced by a seed derived from the prompt, so that
    replies stay reproducible.
    """
    root = Fields(
        body,
        "#",
        required=("prompt",),
        allowed=("negative_prompt", "aspect_ratio", "seed", "output_format", "mode"),
    )
    prompt = root.string("prompt", min_length=1, max_length=StabilityAdapter.max_prompt_chars)
    negative = root.string("negative_prompt", min_length=0, max_length=StabilityAdapter.max_prompt_chars)
    ratios = [f"{w}:{h}" for w, h in ASPECT_RATIOS]
    ratio = root.choice("aspect_ratio", ratios) or "1:1"
    seed = root.integer("seed", 0, StabilityAdapter.max_seed) or 0
    output_format = root.choice("output_format", tuple(STABILITY_FORMATS)) or "png"
    root.choice("mode", ("text-to-image",))
    assert prompt is not None  # required above
    if seed == 0:
        digest = hashlib.sha256(prompt.encode()).digest()
        seed = 1 + int.from_bytes(digest[:8], "big") % StabilityAdapter.max_seed
    width, height = STABILITY_SIZES[ratio]
    return Job(
        prompt=prompt,
        negative_prompt=negative or None,
        seed=seed,
        count=1,
        width=width,
        height=height,
        fmt=STABILITY_FORMATS[output_format],
        stability=True,
    )
