"""Stability AI models on Bedrock: Stable Diffusion 3.5 Large, Stable Image Core and Stable Image Ultra.

Body: ``{"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"}`` (+ ``"mode"`` for SD3.5);
reply: ``{"images": [base64], "seeds": [int], "finish_reasons": [null | "Filter reason: ..." | "Inference error"]}``.
Limits: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-image-core-text-image-request-response.html
and .../model-parameters-diffusion-stable-ultra-text-image-request-response.html (Stable Image Core and Ultra: seed
0-4,294,967,295), .../model-parameters-diffusion-3-5-large.html (SD3.5 Large: seed 0-4,294,967,294); on all three
prompt and negative_prompt at most 10,000 characters, the aspect ratios below, one image per call (a request for
``numberOfImages`` n makes n calls, seeds seed .. seed + n - 1). Width and height only select the aspect ratio;
they must be 1-4096 like on every model (``imagegen.request.MAX_SIDE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from imagegen.errors import ContentFilteredError, InvalidRequestError, ModelInferenceError, ModelResponseError
from imagegen.models.base import (
    MAX_IMAGES,
    Invocation,
    ModelAdapter,
    ModelImage,
    SeedSource,
    decode_png,
    random_seed,
)
from imagegen.request import ImageRequest, check_side_bounds

ASPECT_RATIOS: tuple[tuple[int, int], ...] = (
    (1, 1), (16, 9), (9, 16), (21, 9), (9, 21), (3, 2), (2, 3), (5, 4), (4, 5),
)  # fmt: skip


#: The ``finish_reasons`` entry of a reply whose inference failed: worth another try.
INFERENCE_ERROR = "Inference error"


class StabilityAdapter(ModelAdapter):
    """Stable Image Core and Ultra (and, as ``StableDiffusion35Adapter``, SD3.5 Large); width/height select the
    aspect ratio."""

    family = "Stability AI"
    max_seed = 4_294_967_295
    max_prompt_chars = 10_000
    #: Whether the body names its ``mode`` (``text-to-image``).
    sends_mode: ClassVar[bool] = False

    def prepare(self, request: ImageRequest, seed_source: SeedSource = random_seed) -> Invocation:
        """One body per image (these models make one image per call): seeds seed, seed + 1, …"""
        self.check_length("prompt", request.prompt, self.max_prompt_chars)
        self.check_length("negativePrompt", request.negative_prompt, self.max_prompt_chars)
        self.check_unsupported(request, "quality", "cfgScale")
        self.check_range("numberOfImages", request.number_of_images, 1, MAX_IMAGES)
        aspect_ratio = self._aspect_ratio(request.width, request.height)
        seed = self.pick_seed(request, seed_source)
        count = request.number_of_images or 1
        calls = [self._call(request, aspect_ratio, (seed + index) % (self.max_seed + 1), index)
                 for index in range(count)]  # fmt: skip
        parameters = {"aspect_ratio": aspect_ratio, "seed": seed, "output_format": "png", "numberOfImages": count}
        return Invocation(body=calls[0].body, seed=seed, parameters=parameters, more=tuple(calls[1:]), indexes=(0,))

    def _call(self, request: ImageRequest, aspect_ratio: str, seed: int, index: int) -> Invocation:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": aspect_ratio,
            "seed": seed,
            "output_format": "png",
        }
        if self.sends_mode:
            body["mode"] = "text-to-image"
        if request.negative_prompt is not None:
            body["negative_prompt"] = request.negative_prompt
        return Invocation(body=body, seed=seed, parameters={}, indexes=(index,))

    def _aspect_ratio(self, width: int | None, height: int | None) -> str:
        if width is None and height is None:
            return "1:1"
        if width is None or height is None:
            missing = "height" if height is None else "width"
            raise InvalidRequestError(missing, "width and height must be given together")
        check_side_bounds(width, height)  # 0x0 and -16x-9 match 1:1 and 16:9 as well as 1024x1024 and 1920x1080
        for ratio_w, ratio_h in ASPECT_RATIOS:
            if width * ratio_h == height * ratio_w:
                return f"{ratio_w}:{ratio_h}"
        allowed = ", ".join(f"{w}:{h}" for w, h in ASPECT_RATIOS)
        raise InvalidRequestError("width", f"width:height must be one of the aspect ratios {allowed} for {self.label}")

    def parse_response(self, payload: Mapping[str, Any], invocation: Invocation) -> list[ModelImage]:
        reasons = payload.get("finish_reasons") or []
        blocking = [reason for reason in reasons if reason]
        if blocking:
            reason = str(blocking[0])
            if reason.lower().startswith("filter reason"):
                # "Filter reason: prompt" (the input was blocked) or "Filter reason: output" (the image was).
                blocked = "prompt" if "prompt" in reason.lower() else "image"
                fix = "it" if blocked == "prompt" else "the prompt"
                raise ContentFilteredError(
                    f"The {blocked} was blocked by the model's content filter. Rephrase {fix} and try again.",
                    aws_code="OutputBlocked",
                    detail=reason,
                )
            if reason.strip().lower() == INFERENCE_ERROR.lower():
                raise ModelInferenceError(
                    "The model failed to make the image (an inference error).",
                    aws_code="InferenceError",
                    detail=f"finish_reasons: {reason}",
                )
            raise ModelResponseError("The model failed to generate the image.", detail=reason)
        images = payload.get("images")
        if not isinstance(images, list) or not images:
            raise ModelResponseError("The model returned no image.", detail="reply without images")
        seeds = payload.get("seeds") or []
        return [
            ModelImage(
                png=decode_png(encoded),
                seed=seeds[index] if index < len(seeds) and isinstance(seeds[index], int) else invocation.seed,
            )
            for index, encoded in enumerate(images)
        ]


class StableDiffusion35Adapter(StabilityAdapter):
    """Stable Diffusion 3.5 Large: a narrower seed range, and the body names its ``mode``."""

    max_seed = 4_294_967_294
    sends_mode = True
