"""Amazon Titan Image Generator and Nova Canvas bodies: ``taskType`` / ``textToImageParams`` /
``imageGenerationConfig``, checked against the model's published rules (``bedrock_emulator.wire.rules``)."""

from __future__ import annotations

from bedrock_emulator.wire.fields import Fields, Malformed
from bedrock_emulator.wire.job import Job
from bedrock_emulator.wire.rules import AmazonRules, ListedSizes, SizeRange

__all__ = ["amazon_job"]


def amazon_job(body: object, rules: AmazonRules) -> Job:
    """Validate a Titan or Nova Canvas text-to-image body; raises ``Malformed`` naming the JSON path."""
    root = Fields(body, "#", required=("taskType", "textToImageParams"), allowed=("imageGenerationConfig",))
    root.choice("taskType", ("TEXT_IMAGE",))
    text_params = Fields(
        root.values["textToImageParams"],
        "#/textToImageParams",
        required=("text",),
        allowed=("negativeText", "style") if rules.styles else ("negativeText",),
    )
    prompt = text_params.string("text", min_length=1, max_length=rules.max_text_chars)
    negative = text_params.string("negativeText", min_length=1, max_length=rules.max_text_chars)
    text_params.choice("style", rules.styles)

    config = Fields(
        root.values.get("imageGenerationConfig", {}),
        "#/imageGenerationConfig",
        required=(),
        allowed=("numberOfImages", "quality", "cfgScale", "width", "height", "seed"),
    )
    count = config.integer("numberOfImages", 1, rules.max_images)
    config.choice("quality", rules.qualities)
    config.number("cfgScale", rules.min_cfg_scale, rules.max_cfg_scale)
    seed = config.integer("seed", 0, rules.max_seed)
    # Any side outside the model's range is a range error on that side; a listed-size model then checks the pair.
    width = config.integer("width", rules.sizes.min_side, rules.sizes.max_side)
    height = config.integer("height", rules.sizes.min_side, rules.sizes.max_side)
    width = rules.default_size[0] if width is None else width
    height = rules.default_size[1] if height is None else height
    if isinstance(rules.sizes, SizeRange):
        _check_range(rules.sizes, width, height)
    else:
        _check_listed(rules.sizes, width, height)
    assert prompt is not None  # required above
    return Job(
        prompt=prompt,
        negative_prompt=negative,
        seed=rules.default_seed if seed is None else seed,
        count=1 if count is None else count,
        width=width,
        height=height,
        fmt="PNG",
        stability=False,
    )


def _check_listed(sizes: ListedSizes, width: int, height: int) -> None:
    if (width, height) not in sizes.sizes:
        raise Malformed(
            "#/imageGenerationConfig", f"width x height {width}x{height} is not one of the supported image sizes"
        )


def _check_range(sizes: SizeRange, width: int, height: int) -> None:
    for key, side in (("width", width), ("height", height)):
        if side % sizes.step:
            raise Malformed(f"#/imageGenerationConfig/{key}", f"{side} is not a multiple of {sizes.step}")
    if max(width, height) > sizes.max_aspect_ratio * min(width, height):
        raise Malformed(
            "#/imageGenerationConfig",
            f"aspect ratio {width}:{height} (width:height) must be between 1:{sizes.max_aspect_ratio} "
            f"and {sizes.max_aspect_ratio}:1",
        )
    if width * height >= sizes.max_pixels:
        raise Malformed(
            "#/imageGenerationConfig",
            f"width x height {width}x{height} = {width * height} pixels must be less than {sizes.max_pixels}",
        )
