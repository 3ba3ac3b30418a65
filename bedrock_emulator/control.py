"""Bedrock's control plane for the image models, from the lifecycle table: pure functions, no HTTP, no state.

``get_foundation_model`` (GetFoundationModel), ``get_foundation_model_availability``
(GetFoundationModelAvailability) and ``list_foundation_models`` (ListFoundationModels) return the reply's JSON
document in the shapes of botocore's ``bedrock`` service model, or raise ``BedrockApiError``. ``region`` is the
request's (from its SigV4 credential scope); ``None`` (an unsigned request) is every region.

What each lifecycle state answers:

* GetFoundationModel — not offered in the region or unknown: 400 ValidationException; end of life: 404
  ResourceNotFoundException (the end-of-life message); otherwise ``modelDetails`` with ``modelLifecycle.status``
  ACTIVE or LEGACY (LEGACY_INACTIVE is LEGACY; NO_ACCESS keeps the table's status).
* GetFoundationModelAvailability — unknown: 400; end of life: 404; not offered in the region:
  ``regionAvailability`` NOT_AVAILABLE; LEGACY_INACTIVE: ``authorizationStatus`` NOT_AUTHORIZED; NO_ACCESS:
  NOT_AUTHORIZED, entitlement NOT_AVAILABLE and, for an AWS Marketplace model, agreement NOT_AVAILABLE.
* ListFoundationModels — the models offered in the region and not end of life, filtered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bedrock_emulator.errors import END_OF_LIFE_MESSAGE, INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.lifecycle import Entry, Lifecycle, State

__all__ = ["get_foundation_model", "get_foundation_model_availability", "list_foundation_models"]

_OUTPUT_MODALITIES = ("TEXT", "IMAGE", "EMBEDDING")
_INFERENCE_TYPES = ("ON_DEMAND", "PROVISIONED")
_CUSTOMIZATION_TYPES = ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION")
_FILTERS = ("byProvider", "byCustomizationType", "byOutputModality", "byInferenceType", "projectIdentifier")
#: The region named in an ARN when the request's region is unknown and the model is offered everywhere.
_FALLBACK_REGION = "us-east-1"


def get_foundation_model(lifecycle: Lifecycle, model_identifier: str, region: str | None) -> dict[str, Any]:
    """GetFoundationModel: ``{"modelDetails": {...}}``."""
    entry = _known(lifecycle, model_identifier)
    if not entry.offered_in(region):
        raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
    if entry.state is State.EOL:
        raise BedrockApiError("ResourceNotFoundException", END_OF_LIFE_MESSAGE)
    return {"modelDetails": _summary(entry, region)}


def get_foundation_model_availability(lifecycle: Lifecycle, model_id: str, region: str | None) -> dict[str, Any]:
    """GetFoundationModelAvailability: agreement, authorization, entitlement and region availability."""
    entry = _known(lifecycle, model_id)
    if entry.state is State.EOL and entry.offered_in(region):
        raise BedrockApiError("ResourceNotFoundException", END_OF_LIFE_MESSAGE)
    no_access = entry.state is State.NO_ACCESS
    authorized = entry.state not in {State.NO_ACCESS, State.LEGACY_INACTIVE}
    in_region = entry.offered_in(region) and entry.state is not State.EOL
    agreement = "NOT_AVAILABLE" if no_access and entry.info.marketplace else "AVAILABLE"
    return {
        "modelId": entry.model_id,
        "agreementAvailability": {"status": agreement},
        "authorizationStatus": "AUTHORIZED" if authorized else "NOT_AUTHORIZED",
        "entitlementAvailability": "NOT_AVAILABLE" if no_access or not in_region else "AVAILABLE",
        "regionAvailability": "AVAILABLE" if in_region else "NOT_AVAILABLE",
    }


def list_foundation_models(
    lifecycle: Lifecycle, region: str | None, query: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """ListFoundationModels with its filters (``query``: the parsed query string)."""
    unknown = sorted(set(query) - set(_FILTERS))
    if unknown:
        known = ", ".join(_FILTERS)
        raise BedrockApiError("ValidationException", f"Unknown query parameter {unknown[0]}; known: {known}")
    modality = _choice(query, "byOutputModality", _OUTPUT_MODALITIES)
    inference = _choice(query, "byInferenceType", _INFERENCE_TYPES)
    customization = _choice(query, "byCustomizationType", _CUSTOMIZATION_TYPES)
    provider = _single(query, "byProvider")
    summaries = [
        _summary(entry, region)
        for entry in lifecycle.entries()
        if entry.offered_in(region)
        and entry.state is not State.EOL
        and (modality is None or modality == "IMAGE")
        and (inference is None or inference == "ON_DEMAND")
        and customization is None  # none of these models can be customised
        and (provider is None or _provider_matches(entry, provider))
    ]
    return {"modelSummaries": summaries}


def _known(lifecycle: Lifecycle, identifier: str) -> Entry:
    """The entry a model id or foundation-model ARN names; inference profiles are not foundation models."""
    model_id = identifier.rsplit("foundation-model/", 1)[-1] if identifier.startswith("arn:") else identifier
    entry = lifecycle.entry(model_id, resolve_profiles=False)
    if entry is None:
        raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
    return entry


def _summary(entry: Entry, region: str | None) -> dict[str, Any]:
    info = entry.info
    arn_region = region or (min(entry.regions) if entry.regions else _FALLBACK_REGION)
    lifecycle: dict[str, Any] = {"status": entry.lifecycle_status}
    for key, day in (("legacyTime", info.legacy), ("endOfLifeTime", info.end_of_life)):
        if day is not None:
            lifecycle[key] = _timestamp(day)
    return {
        "modelArn": f"arn:aws:bedrock:{arn_region}::foundation-model/{info.model_id}",
        "modelId": info.model_id,
        "modelName": info.name,
        "providerName": info.provider,
        "inputModalities": list(info.input_modalities),
        "outputModalities": ["IMAGE"],
        "responseStreamingSupported": False,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": lifecycle,
    }


def _timestamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _single(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BedrockApiError("ValidationException", f"{name} may be given once, got {len(values)} values")
    return values[0]


def _choice(query: Mapping[str, Sequence[str]], name: str, choices: Sequence[str]) -> str | None:
    value = _single(query, name)
    if value is not None and value not in choices:
        raise BedrockApiError(
            "ValidationException",
            f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(choices)}]",
        )
    return value


def _provider_matches(entry: Entry, provider: str) -> bool:
    wanted = provider.strip().lower()
    return wanted in {entry.info.provider.lower(), entry.model_id.split(".", 1)[0]}
