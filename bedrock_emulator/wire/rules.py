"""AWS's published request rules for the image models the emulator serves: one entry per model, each with the
documentation pages it is copied from.

This table is the emulator's own on purpose. The service keeps its limits in ``imagegen.models``; if the emulator
read those, a wrong limit there would be shared and no end-to-end test could catch it. Here it is refused as
Bedrock would refuse it. ``tests/unit/emulator/test_rules.py`` compares the two tables, so a drift shows up.

Only text-to-image is served (Titan's and Nova Canvas's ``TEXT_IMAGE`` without a condition image, Stability's
``text-to-image`` mode). A published option the emulator does not serve is listed here and refused with a message
that says so (``SERVED_MODE``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AMAZON",
    "INFERENCE_PROFILE_PREFIXES",
    "MODELS",
    "NOVA_CANVAS",
    "SD3_5_LARGE",
    "SERVED_MODE",
    "STABILITY",
    "STABILITY_ASPECT_RATIOS",
    "STABLE_IMAGE_CORE",
    "STABLE_IMAGE_ULTRA",
    "TITAN_IMAGE_GENERATOR",
    "AmazonRules",
    "ListedSizes",
    "ModelRules",
    "SizeRange",
    "StabilityRules",
    "foundation_model",
    "rules_for",
]

AMAZON, STABILITY = "Amazon", "Stability AI"
#: Cross-region inference-profile prefixes: ``us.amazon.nova-canvas-v1:0`` runs ``amazon.nova-canvas-v1:0``.
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")


@dataclass(frozen=True, slots=True)
class ListedSizes:
    """Only the (width, height) pairs of a published table are accepted (Titan Image Generator)."""

    sizes: frozenset[tuple[int, int]]

    @property
    def min_side(self) -> int:
        return min(min(size) for size in self.sizes)

    @property
    def max_side(self) -> int:
        return max(max(size) for size in self.sizes)


@dataclass(frozen=True, slots=True)
class SizeRange:
    """Any width and height within bounds (Nova Canvas): both sides ``min_side``-``max_side`` in steps of ``step``,
    the longer side at most ``max_aspect_ratio`` times the shorter, and fewer than ``max_pixels`` pixels."""

    min_side: int
    max_side: int
    step: int
    max_aspect_ratio: int
    max_pixels: int


@dataclass(frozen=True, slots=True)
class AmazonRules:
    """A ``taskType``/``textToImageParams``/``imageGenerationConfig`` model (Titan Image Generator, Nova Canvas)."""

    name: str
    sources: tuple[str, ...]
    #: ``text`` and ``negativeText``: 1 to this many characters.
    max_text_chars: int
    max_seed: int
    #: The seed used when the body names none.
    default_seed: int
    sizes: ListedSizes | SizeRange
    #: ``textToImageParams.style`` presets; empty when the model has no ``style``.
    styles: tuple[str, ...] = ()
    max_images: int = 5
    min_cfg_scale: float = 1.1
    max_cfg_scale: float = 10.0
    qualities: tuple[str, ...] = ("standard", "premium")
    default_size: tuple[int, int] = (1024, 1024)
    provider: str = AMAZON


@dataclass(frozen=True, slots=True)
class StabilityRules:
    """A Stability AI model: a flat body of ``prompt``, ``negative_prompt``, ``aspect_ratio``, ``seed``,
    ``output_format`` and ``mode``; one image per call."""

    name: str
    sources: tuple[str, ...]
    #: ``seed`` is 0 (random) to this.
    max_seed: int
    #: ``output_format`` values, as the body spells them.
    output_formats: tuple[str, ...]
    #: ``mode`` values AWS publishes (only ``SERVED_MODE`` is served).
    modes: tuple[str, ...] = ("text-to-image",)
    #: ``prompt``: this many characters at least (AWS publishes 0) and at most.
    min_prompt_chars: int = 0
    max_prompt_chars: int = 10_000
    max_negative_prompt_chars: int = 10_000
    aspect_ratios: tuple[str, ...] = ()
    provider: str = STABILITY


ModelRules = AmazonRules | StabilityRules

#: The only Stability ``mode`` the emulator renders.
SERVED_MODE = "text-to-image"
#: Stability's ``aspect_ratio`` values (the same on the three models' pages).
STABILITY_ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")

_TITAN_PAGE = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html"
_NOVA_PAGES = (
    "https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html",
    "https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html",
)

#: Titan's "Supported image sizes" table, (width, height).
_TITAN_SIZES = frozenset(
    {
        (1024, 1024), (768, 768), (512, 512),
        (768, 1152), (384, 576), (1152, 768), (576, 384),
        (768, 1280), (384, 640), (1280, 768), (640, 384),
        (896, 1152), (448, 576), (1152, 896), (576, 448),
        (768, 1408), (384, 704), (1408, 768), (704, 384),
        (640, 1408), (320, 704), (1408, 640), (704, 320),
        (1152, 640), (1173, 640),
    }
)  # fmt: skip

#: Titan Image Generator G1 v1 and v2 (one page for both): text and negativeText at most 512 characters,
#: numberOfImages 1-5, cfgScale 1.1-10, seed 0-2,147,483,646 (default 42), the listed sizes.
TITAN_IMAGE_GENERATOR = AmazonRules(
    name="Titan Image Generator G1",
    sources=(_TITAN_PAGE,),
    max_text_chars=512,
    max_seed=2_147_483_646,
    default_seed=42,
    sizes=ListedSizes(_TITAN_SIZES),
)

#: Nova Canvas: text and negativeText 1-1024 characters; width and height 320-4096 in steps of 16, aspect ratio
#: within 1:4..4:1, fewer than 4,194,304 pixels; numberOfImages 1-5; cfgScale 1.1-10; seed 0-858,993,459 (default
#: 12; the narrower of the two documented ranges, as in AWS's examples); the style presets.
NOVA_CANVAS = AmazonRules(
    name="Nova Canvas",
    sources=_NOVA_PAGES,
    max_text_chars=1024,
    max_seed=858_993_459,
    default_seed=12,
    sizes=SizeRange(min_side=320, max_side=4096, step=16, max_aspect_ratio=4, max_pixels=4_194_304),
    styles=(
        "3D_ANIMATED_FAMILY_FILM",
        "DESIGN_SKETCH",
        "FLAT_VECTOR_ILLUSTRATION",
        "GRAPHIC_NOVEL_ILLUSTRATION",
        "MAXIMALISM",
        "MIDCENTURY_RETRO",
        "PHOTOREALISM",
        "SOFT_DIGITAL_PAINTING",
    ),
)

#: Stable Image Core: prompt 0-10,000 characters, negative_prompt at most 10,000, the nine aspect ratios, seed
#: 0-4,294,967,295, output_format jpeg or png, mode text-to-image.
STABLE_IMAGE_CORE = StabilityRules(
    name="Stable Image Core",
    sources=(
        "https://docs.aws.amazon.com/bedrock/latest/userguide/"
        "model-parameters-diffusion-stable-image-core-text-image-request-response.html",
    ),
    max_seed=4_294_967_295,
    output_formats=("jpeg", "png"),
    aspect_ratios=STABILITY_ASPECT_RATIOS,
)

#: Stable Image Ultra: as Stable Image Core (its image-to-image fields ``image`` and ``strength`` are not served).
STABLE_IMAGE_ULTRA = StabilityRules(
    name="Stable Image Ultra",
    sources=(
        "https://docs.aws.amazon.com/bedrock/latest/userguide/"
        "model-parameters-diffusion-stable-ultra-text-image-request-response.html",
    ),
    max_seed=4_294_967_295,
    output_formats=("jpeg", "png"),
    aspect_ratios=STABILITY_ASPECT_RATIOS,
)

#: Stable Diffusion 3.5 Large: prompt 0-10,000 characters, negative_prompt at most 10,000, the nine aspect ratios,
#: seed 0-4,294,967,294, output_format jpeg, png or webp, mode text-to-image or image-to-image (not served).
SD3_5_LARGE = StabilityRules(
    name="Stable Diffusion 3.5 Large",
    sources=("https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-3-5-large.html",),
    max_seed=4_294_967_294,
    output_formats=("jpeg", "png", "webp"),
    modes=("text-to-image", "image-to-image"),
    aspect_ratios=STABILITY_ASPECT_RATIOS,
)

#: The rules of each model the emulator serves, by foundation-model id without its version suffix.
MODELS: dict[str, ModelRules] = {
    "amazon.titan-image-generator-v1": TITAN_IMAGE_GENERATOR,
    "amazon.titan-image-generator-v2": TITAN_IMAGE_GENERATOR,
    "amazon.nova-canvas-v1": NOVA_CANVAS,
    "stability.sd3-5-large-v1": SD3_5_LARGE,
    "stability.stable-image-core-v1": STABLE_IMAGE_CORE,
    "stability.stable-image-ultra-v1": STABLE_IMAGE_ULTRA,
}


def foundation_model(model_id: str) -> str:
    """The foundation model an inference-profile id runs (``us.amazon.nova-canvas-v1:0``), else the id."""
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


def rules_for(model_id: str) -> ModelRules | None:
    """The rules of the model ``model_id`` names (a model id or an inference-profile id, any version); ``None`` when
    the emulator serves no such model."""
    base = foundation_model(model_id)
    for prefix, rules in MODELS.items():
        if base == prefix or base.startswith(f"{prefix}:"):
            return rules
    return None
