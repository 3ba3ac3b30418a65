"""Amazon Titan Image Generator and Nova Canvas bodies: ``taskType`` / ``textToImageParams`` /
``imageGenerationConfig``. The limits are the adapters' in ``imagegen.models``."""

from __future__ import annotations

from typing import cast

from bedrock_emulator.wire.fields import Fields, Malformed
from bedrock_emulator.wire.job import Job
from imagegen.models import NovaCanvasAdapter, TitanImageAdapter
from imagegen.models.amazon import QUALITIES, AmazonImageAdapter

__all__ = ["DEFAULT_SEEDS", "NOVA_STYLES", "amazon_job"]

#: Seeds used when the body has none: Titan's and Nova Canvas's documented defaults.
DEFAULT_SEEDS: dict[type[AmazonImageAdapter], int] = {TitanImageAdapter: 42, NovaCanvasAdapter: 12}
#: Nova Canvas's optional ``textToImageParams.style`` presets.
NOVA_STYLES = (
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
)


def amazon_job(body: object, adapter: type[AmazonImageAdapter]) -> Job:
    """Validate a Titan or Nova Canvas text-to-image body; raises ``Malformed`` naming the JSON path."""
    root = Fields(body, "#", required=("taskType", "textToImageParams"), allowed=("imageGenerationConfig",))
    root.choice("taskType", ("TEXT_IMAGE",))
    is_nova = issubclass(adapter, NovaCanvasAdapter)
    text_params = Fields(
        root.values["textToImageParams"],
        "#/textToImageParams",
        required=("text",),
        allowed=("negativeText", "style") if is_nova else ("negativeText",),
    )
    prompt = text_params.string("text", min_length=1, max_length=adapter.max_prompt_chars)
    negative = text_params.string("negativeText", min_length=1, max_length=adapter.max_prompt_chars)
    text_params.choice("style", NOVA_STYLES)

    config = Fields(
        root.values.get("imageGenerationConfig", {}),
        "#/imageGenerationConfig",
        required=(),
        allowed=("numberOfImages", "quality", "cfgScale", "width", "height", "seed"),
    )
    count = config.integer("numberOfImages", 1, adapter.max_images)
    config.choice("quality", QUALITIES)
    config.number("cfgScale", adapter.min_cfg_scale, adapter.max_cfg_scale)
    seed = config.integer("seed", 0, adapter.max_seed)
    if is_nova:
        nova = cast("type[NovaCanvasAdapter]", adapter)
        low, high = nova.min_side, nova.max_side
    else:  # any side outside the table's range is a range error; a pair missing from it is checked below
        low = min(min(size) for size in TitanImageAdapter.sizes)
        high = max(max(size) for size in TitanImageAdapter.sizes)
    width = config.integer("width", low, high)
    height = config.integer("height", low, high)
    width = adapter.default_size[0] if width is None else width
    height = adapter.default_size[1] if height is None else height
    if is_nova:
        _check_nova_size(nova, width, height)
    elif (width, height) not in TitanImageAdapter.sizes:
        raise Malformed(
            "#/imageGenerationConfig", f"width x height {width}x{height} is not one of the supported image sizes"
        )
    assert prompt is not None  # required above
    return Job(
        prompt=prompt,
        negative_prompt=negative,
        seed=DEFAULT_SEEDS[adapter] if seed is None else seed,
        count=1 if count is None else count,
        width=width,
        height=height,
        fmt="PNG",
        stability=False,
    )


def _check_nova_size(nova: type[NovaCanvasAdapter], width: int, height: int) -> None:
    for key, side in (("width", width), ("height", height)):
        if side % nova.side_step:
            raise Malformed(f"#/imageGenerationConfig/{key}", f"{side} is not a multiple of {nova.side_step}")
    if max(width, height) > nova.max_aspect_ratio * min(width, height):
        raise Malformed(
            "#/imageGenerationConfig",
            f"aspect ratio {width}:{height} (width:height) must be between 1:{nova.max_aspect_ratio} "
            f"and {nova.max_aspect_ratio}:1",
        )
    if width * height >= nova.max_pixels:
        raise Malformed(
            "#/imageGenerationConfig",
            f"width x height {width}x{height} = {width * height} pixels must be less than {nova.max_pixels}",
        )
