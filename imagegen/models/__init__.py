"""Model adapters: one per Bedrock image-model family, chosen by model id."""

from __future__ import annotations

from imagegen.errors import ConfigurationError
from imagegen.models.amazon import NovaCanvasAdapter, TitanImageAdapter
from imagegen.models.base import Invocation, ModelAdapter, ModelImage
from imagegen.models.stability import StabilityAdapter, StableDiffusion35Adapter

__all__ = [
    "SUPPORTED_MODEL_PREFIXES",
    "Invocation",
    "ModelAdapter",
    "ModelImage",
    "NovaCanvasAdapter",
    "StabilityAdapter",
    "StableDiffusion35Adapter",
    "TitanImageAdapter",
    "adapter_for",
]

#: Model-id prefixes (after any cross-region inference-profile prefix such as ``us.``) per adapter.
SUPPORTED_MODEL_PREFIXES: dict[str, type[ModelAdapter]] = {
    "amazon.titan-image-generator-v1": TitanImageAdapter,
    "amazon.titan-image-generator-v2": TitanImageAdapter,
    "amazon.nova-canvas-v1": NovaCanvasAdapter,
    "stability.sd3-5-large-v1": StableDiffusion35Adapter,
    "stability.stable-image-core-v1": StabilityAdapter,
    "stability.stable-image-ultra-v1": StabilityAdapter,
}

_INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")


def adapter_for(model_id: str) -> ModelAdapter:
    """Return the adapter for a Bedrock model id or inference-profile id."""
    base_id = model_id.strip()
    for prefix in _INFERENCE_PROFILE_PREFIXES:
        if base_id.startswith(prefix):
            base_id = base_id.removeprefix(prefix)
            break
    for model_prefix, adapter_type in SUPPORTED_MODEL_PREFIXES.items():
        if base_id.startswith(model_prefix):
            return adapter_type(model_id)
    supported = ", ".join(SUPPORTED_MODEL_PREFIXES)
    raise ConfigurationError(
        "The service is misconfigured.",
        detail=f"MODEL_ID {model_id!r} is not a supported image model; supported ids start with: {supported}",
    )
