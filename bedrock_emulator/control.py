"""Bedrock's control plane for the image models, from the lifecycle table: pure functions, no HTTP, no state.

``get_foundation_model`` (GetFoundationModel), ``get_foundation_model_availability``
(GetFoundationModelAvailability), ``list_foundation_models`` (ListFoundationModels) and
``list_foundation_model_agreement_offers`` (ListFoundationModelAgreementOffers) return the reply's JSON document in
the shapes of botocore's ``bedrock`` service model, or raise ``BedrockApiError``; ``check_agreement_request`` is
the pure half of CreateFoundationModelAgreement (the agreements themselves are ``bedrock_emulator.backend``'s
state). ``region`` is the request's (from its SigV4 credential scope); ``None`` (an unsigned request) is every
region.

What each lifecycle state answers:

* GetFoundationModel — not offered in the region or unknown: 400 ValidationException; end of life: 404
  ResourceNotFoundException (the end-of-life message); otherwise ``modelDetails`` with ``modelLifecycle.status``
  ACTIVE or LEGACY (LEGACY_INACTIVE is LEGACY; NO_ACCESS keeps the table's status).
* GetFoundationModelAvailability — unknown: 400; end of life: 404; not offered in the region:
  ``regionAvailability`` NOT_AVAILABLE; LEGACY_INACTIVE: ``authorizationStatus`` NOT_AUTHORIZED; NO_ACCESS:
  NOT_AUTHORIZED, entitlement NOT_AVAILABLE and, for an AWS Marketplace model, agreement NOT_AVAILABLE. Otherwise
  an AWS Marketplace model's ``agreementAvailability.status`` is its agreement's (NOT_AVAILABLE without one); an
  Amazon model's is always AVAILABLE (Amazon's models are not sold through Marketplace).
* ListFoundationModels — the models offered in the region and not end of life, filtered.
* ListFoundationModelAgreementOffers — unknown or not offered in the region: 400; end of life: 404; an AWS
  Marketplace model: its one public offer (whatever ``offerType``), an Amazon model: no offer. The terms are the
  emulator's placeholders (the legal term's URL is under ``.invalid``), the rate card the table's price.
* CreateFoundationModelAgreement — a ``modelId`` and the ``offerToken`` of that model's offer; otherwise 400 (an
  Amazon model has no offer, so no token is right for it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bedrock_emulator.errors import END_OF_LIFE_MESSAGE, INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.lifecycle import Entry, Lifecycle, State

__all__ = [
    "INVALID_OFFER_MESSAGE",
    "check_agreement_request",
    "get_foundation_model",
    "get_foundation_model_availability",
    "list_foundation_model_agreement_offers",
    "list_foundation_models",
    "offer_token",
]

#: CreateFoundationModelAgreement's answer to a token that is not the model's offer's (the emulator's wording).
INVALID_OFFER_MESSAGE = "The provided offer token is invalid."
_OFFER_TYPES = ("ALL", "PUBLIC")
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


def get_foundation_model_availability(
    lifecycle: Lifecycle, model_id: str, region: str | None, *, agreements: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """GetFoundationModelAvailability: agreement, authorization, entitlement and region availability.

    ``agreements``: the AWS Marketplace models' agreement statuses (absent: NOT_AVAILABLE); ``None``: every one
    AVAILABLE."""
    entry = _known(lifecycle, model_id)
    if entry.state is State.EOL and entry.offered_in(region):
        raise BedrockApiError("ResourceNotFoundException", END_OF_LIFE_MESSAGE)
    no_access = entry.state is State.NO_ACCESS
    authorized = entry.state not in {State.NO_ACCESS, State.LEGACY_INACTIVE}
    in_region = entry.offered_in(region) and entry.state is not State.EOL
    agreement = "AVAILABLE"
    if entry.info.marketplace and no_access:
        agreement = "NOT_AVAILABLE"
    elif entry.info.marketplace and agreements is not None:
        agreement = agreements.get(entry.model_id, "NOT_AVAILABLE")
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


def list_foundation_model_agreement_offers(
    lifecycle: Lifecycle, model_id: str, region: str | None, query: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """ListFoundationModelAgreementOffers (``offerType`` ALL or PUBLIC: the same one public offer)."""
    unknown = sorted(set(query) - {"offerType"})
    if unknown:
        raise BedrockApiError("ValidationException", f"Unknown query parameter {unknown[0]}; known: offerType")
    _choice(query, "offerType", _OFFER_TYPES)
    entry = _offered(lifecycle, model_id, region)
    return {"modelId": entry.model_id, "offers": [_offer(entry)] if entry.info.marketplace else []}


def check_agreement_request(lifecycle: Lifecycle, raw_body: bytes, region: str | None) -> str:
    """The model a CreateFoundationModelAgreement body (``{"modelId": ..., "offerToken": ...}``) asks for, once
    its model and token are right; ``BedrockApiError`` otherwise."""
    try:
        body = json.loads(raw_body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BedrockApiError("ValidationException", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BedrockApiError("ValidationException", "The request body must be a JSON object.")
    for name in ("modelId", "offerToken"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BedrockApiError(
                "ValidationException",
                f"1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must not be "
                "null or empty",
            )
    entry = _offered(lifecycle, body["modelId"], region)
    if not entry.info.marketplace or body["offerToken"] != offer_token(entry.model_id):
        raise BedrockApiError("ValidationException", INVALID_OFFER_MESSAGE)
    return entry.model_id


def offer_token(model_id: str) -> str:
    """The opaque token of ``model_id``'s public offer (stable across runs, so a test may compute it)."""
    return "emulator-offer-token-" + _digest(model_id, 32)


def _offer(entry: Entry) -> dict[str, Any]:
    info = entry.info
    rate_card = (
        [{"dimension": "images", "price": info.price, "description": f"{info.name}: one image", "unit": "Images"}]
        if info.price
        else []
    )
    return {
        "offerId": "offer-" + _digest(info.model_id, 13),
        "offerToken": offer_token(info.model_id),
        "termDetails": {
            "usageBasedPricingTerm": {"rateCard": rate_card},
            "legalTerm": {"url": f"https://marketplace.emulator.invalid/eula/{info.model_id}"},
            "supportTerm": {"refundPolicyDescription": "Usage-based pricing: no upfront charge, nothing to refund."},
        },
    }


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _offered(lifecycle: Lifecycle, model_id: str, region: str | None) -> Entry:
    """The entry ``model_id`` names, offered in ``region`` and not end of life; 400 or 404 otherwise."""
    entry = _known(lifecycle, model_id)
    if not entry.offered_in(region):
        raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
    if entry.state is State.EOL:
        raise BedrockApiError("ResourceNotFoundException", END_OF_LIFE_MESSAGE)
    return entry


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
