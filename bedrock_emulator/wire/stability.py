"""Stability AI bodies (SD3.5 Large, Stable Image Core and Ultra): ``prompt``, ``negative_prompt``,
``aspect_ratio``, ``seed``, ``output_format``, ``mode``, checked against the model's published rules
(``bedrock_emulator.wire.rules``)."""

from __future__ import annotations

import hashlib

from bedrock_emulator.wire.fields import Fields, Malformed
from bedrock_emulator.wire.job import Job
from bedrock_emulator.wire.rules import SERVED_MODE, StabilityRules

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


def stability_job(body: object, rules: StabilityRules) -> Job:
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
    prompt = root.string("prompt", min_length=rules.min_prompt_chars, max_length=rules.max_prompt_chars)
    negative = root.string("negative_prompt", min_length=0, max_length=rules.max_negative_prompt_chars)
    ratio = root.choice("aspect_ratio", rules.aspect_ratios) or "1:1"
    seed = root.integer("seed", 0, rules.max_seed) or 0
    output_format = root.choice("output_format", rules.output_formats) or "png"
    mode = root.choice("mode", rules.modes)
    if mode not in {None, SERVED_MODE}:
        raise Malformed("#/mode", f"{mode} is not served by the Bedrock emulator (only {SERVED_MODE})")
    assert prompt is not None  # required above
    if seed == 0:
        digest = hashlib.sha256(prompt.encode()).digest()
        seed = 1 + int.from_bytes(digest[:8], "big") % rules.max_seed
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
