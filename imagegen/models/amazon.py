"""Amazon's image models: Titan Image Generator G1 v1/v2 and Nova Canvas share one body shape.

Body: ``{"taskType": "TEXT_IMAGE", "textToImageParams": {...}, "imageGenerationConfig": {...}}``;
reply: ``{"images": [base64, ...], "error": str | null}``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from imagegen.errors import ContentFilteredError, InvalidRequestError, ModelResponseError
from imagegen.models.base import (
    MAX_IMAGES,
    Invocation,
    ModelAdapter,
    ModelImage,
    SeedSource,
    decode_png,
    random_seed,
)
from imagegen.request import ImageRequest, check_side_bounds, quote

QUALITIES = ("standard", "premium")


class AmazonImageAdapter(ModelAdapter):
    """Shared request/response handling of Titan Image Generator and Nova Canvas."""

    max_prompt_chars: ClassVar[int]
    min_cfg_scale: ClassVar[float] = 1.1
    max_cfg_scale: ClassVar[float] = 10.0
    default_cfg_scale: ClassVar[float]
    max_images: ClassVar[int] = MAX_IMAGES
    default_size: ClassVar[tuple[int, int]] = (1024, 1024)

    @abstractmethod
    def check_size(self, width: int, height: int) -> None:
        """Raise ``InvalidRequestError`` when the model cannot render ``width`` x ``height``."""

    def prepare(self, request: ImageRequest, seed_source: SeedSource = random_seed) -> Invocation:
        self.check_length("prompt", request.prompt, self.max_prompt_chars)
        self.check_length("negativePrompt", request.negative_prompt, self.max_prompt_chars)
        self.check_range("numberOfImages", request.number_of_images, 1, self.max_images)
        self.check_choice("quality", request.quality, QUALITIES)
        self.check_range("cfgScale", request.cfg_scale, self.min_cfg_scale, self.max_cfg_scale)
        if (request.width is None) != (request.height is None):
            missing = "height" if request.height is None else "width"
            raise InvalidRequestError(missing, "width and height must be given together")
        width, height = (
            (request.width, request.height)
            if request.width is not None and request.height is not None
            else self.default_size
        )
        self.check_size(width, height)
        check_side_bounds(width, height)  # every model's bound; each model's own rule above is narrower
        seed = self.pick_seed(request, seed_source)

        text_params: dict[str, Any] = {"text": request.prompt}
        if request.negative_prompt is not None:
            text_params["negativeText"] = request.negative_prompt
        count = request.number_of_images or 1
        config = {
            "numberOfImages": count,
            "quality": request.quality or "standard",
            "cfgScale": request.cfg_scale if request.cfg_scale is not None else self.default_cfg_scale,
            "width": width,
            "height": height,
            "seed": seed,
        }
        body = {"taskType": "TEXT_IMAGE", "textToImageParams": text_params, "imageGenerationConfig": config}
        return Invocation(body=body, seed=seed, parameters=dict(config), indexes=tuple(range(count)))

    def restrict(self, invocation: Invocation, indexes: Sequence[int]) -> tuple[Invocation, ...]:
        """One call making only ``indexes`` (the same body and seed, fewer images)."""
        if not indexes:
            return ()
        config = {**invocation.body["imageGenerationConfig"], "numberOfImages": len(indexes)}
        body = {**invocation.body, "imageGenerationConfig": config}
        return (Invocation(body=body, seed=invocation.seed, parameters=invocation.parameters, indexes=tuple(indexes)),)

    def parse_response(self, payload: Mapping[str, Any], invocation: Invocation) -> list[ModelImage]:
        images = payload.get("images") or []
        error = payload.get("error")
        if not isinstance(images, list):
            raise ModelResponseError("The model returned an unusable reply.", detail="'images' is not a list")
        if not images:
            if error:
                # Documented meaning of `error`: input or output flagged by content moderation.
                raise ContentFilteredError(_FILTERED_MESSAGE, aws_code="OutputBlocked", detail=str(error))
            raise ModelResponseError("The model returned no image.", detail=f"reply without images: {error!r}")
        # Nova Canvas drops blocked images and sets `error` ("Some of the generated images have been
        # blocked ..."); the remaining ones are still valid results.
        return [ModelImage(png=decode_png(encoded), seed=invocation.seed) for encoded in images]


_FILTERED_MESSAGE = "The image was blocked by the model's content filter. Rephrase the prompt and try again."


class TitanImageAdapter(AmazonImageAdapter):
    """Amazon Titan Image Generator G1 v1 and v2 (legacy on Bedrock).

    Limits: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html
    (text and negativeText at most 512 characters, numberOfImages 1-5, cfgScale 1.1-10 default 8.0,
    seed 0-2147483646, the fixed list of sizes below; both versions share the table).
    """

    family = "Titan Image Generator"
    max_seed = 2_147_483_646
    max_prompt_chars = 512
    default_cfg_scale = 8.0
    #: (width, height) pairs from the "Supported image sizes" table of the page above.
    sizes: ClassVar[frozenset[tuple[int, int]]] = frozenset(
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

    def check_size(self, width: int, height: int) -> None:
        if (width, height) not in self.sizes:
            listed = ", ".join(f"{w}x{h}" for w, h in sorted(self.sizes, reverse=True))
            size = quote(f"{width}x{height}")
            raise InvalidRequestError("width", f"{size} is not a supported size for {self.label}: {listed}")


class NovaCanvasAdapter(AmazonImageAdapter):
    """Amazon Nova Canvas.

    Limits: https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html and
    https://docs.aws.amazon.com/nova/latest/userguide/image-gen-access.html (text and negativeText
    1-1024 characters; width and height 320-4096 in steps of 16, aspect ratio within 1:4..4:1, fewer than
    4,194,304 pixels; numberOfImages 1-5; cfgScale 1.1-10 default 6.5). Seed 0-858993459 as in AWS's
    Nova Canvas code examples (the narrower of the two documented ranges).
    """

    family = "Nova Canvas"
    max_seed = 858_993_459
    max_prompt_chars = 1024
    default_cfg_scale = 6.5
    min_side, max_side, side_step = 320, 4096, 16
    max_aspect_ratio = 4
    max_pixels = 4_194_304

    def check_size(self, width: int, height: int) -> None:
        for field, side in (("width", width), ("height", height)):
            if not self.min_side <= side <= self.max_side or side % self.side_step:
                raise InvalidRequestError(
                    field,
                    f"must be a multiple of {self.side_step} between {self.min_side} and {self.max_side} "
                    f"for {self.label}",
                )
        if max(width, height) > self.max_aspect_ratio * min(width, height):
            raise InvalidRequestError("width", f"aspect ratio must be between 1:4 and 4:1 for {self.label}")
        if width * height >= self.max_pixels:
            raise InvalidRequestError(
                "width", f"width x height must be below {self.max_pixels:,} pixels for {self.label}"
            )
