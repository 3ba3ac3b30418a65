"""The control plane's replies (GetFoundationModel, GetFoundationModelAvailability, ListFoundationModels,
ListFoundationModelAgreementOffers, CreateFoundationModelAgreement's checks) from the lifecycle table, called
directly: each state, the region, the filters, and every reply checked against botocore's ``bedrock`` service
model. Over HTTP through boto3: tests/local/emulator/test_lifecycle_http.py and test_agreements_http.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from bedrock_emulator import control
from bedrock_emulator.errors import END_OF_LIFE_MESSAGE, INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.lifecycle import Lifecycle, parse_overrides
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, ULTRA

_MODEL = botocore.session.get_session().get_service_model("bedrock")
ACTIVE_STABILITY = [SD35, CORE, ULTRA]


def lifecycle(overrides: str = "") -> Lifecycle:
    return Lifecycle(parse_overrides(overrides, name="test"))


def conforms(reply: dict[str, Any], operation: str) -> dict[str, Any]:
    """``reply``, after checking it has exactly the members (and types) of ``operation``'s output shape."""
    shape = _MODEL.operation_model(operation).output_shape
    assert shape is not None
    report = ParamValidator().validate(reply, shape)
    assert not report.has_errors(), report.generate_report()
    return reply


def details(overrides: str, model_id: str, region: str | None = "us-west-2") -> dict[str, Any]:
    reply = conforms(control.get_foundation_model(lifecycle(overrides), model_id, region), "GetFoundationModel")
    result: dict[str, Any] = reply["modelDetails"]
    return result


def availability(overrides: str, model_id: str, region: str | None = "us-west-2") -> dict[str, Any]:
    reply = control.get_foundation_model_availability(lifecycle(overrides), model_id, region)
    return conforms(reply, "GetFoundationModelAvailability")


def listed(overrides: str = "", region: str | None = "us-west-2", **query: str) -> list[str]:
    parsed: dict[str, Sequence[str]] = {name: [value] for name, value in query.items()}
    reply = conforms(control.list_foundation_models(lifecycle(overrides), region, parsed), "ListFoundationModels")
    return [summary["modelId"] for summary in reply["modelSummaries"]]


def error_of(call: Any) -> tuple[int, str, str]:
    with pytest.raises(BedrockApiError) as caught:
        call()
    return caught.value.status, caught.value.code, caught.value.message


# ---- GetFoundationModel -----------------------------------------------------------------------


def test_an_active_model_has_its_details() -> None:
    assert details("", CORE) == {
        "modelArn": f"arn:aws:bedrock:us-west-2::foundation-model/{CORE}",
        "modelId": CORE,
        "modelName": "Stable Image Core 1.1",
        "providerName": "Stability AI",
        "inputModalities": ["TEXT"],
        "outputModalities": ["IMAGE"],
        "responseStreamingSupported": False,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


@pytest.mark.parametrize(
    ("state", "status"), [("ACTIVE", "ACTIVE"), ("LEGACY", "LEGACY"), ("LEGACY_INACTIVE", "LEGACY"),
                          ("NO_ACCESS", "ACTIVE")],
)  # fmt: skip
def test_the_lifecycle_status_of_each_state_that_is_not_end_of_life(state: str, status: str) -> None:
    lifecycle_details = details(f"{NOVA}={state}", NOVA, "us-east-1")["modelLifecycle"]
    assert lifecycle_details == {
        "status": status,
        "legacyTime": "2026-03-30T00:00:00Z",
        "endOfLifeTime": "2026-09-30T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("overrides", "model_id", "region"),
    [("", TITAN, "us-west-2"), ("", NOVA, "eu-west-1"), (f"{CORE}=EOL", CORE, "us-west-2")],
)
def test_an_end_of_life_model_is_resource_not_found(overrides: str, model_id: str, region: str) -> None:
    call = lambda: details(overrides, model_id, region)  # noqa: E731
    assert error_of(call) == (404, "ResourceNotFoundException", END_OF_LIFE_MESSAGE)


@pytest.mark.parametrize(
    ("model_id", "region"),
    [(CORE, "us-east-1"), (TITAN, "eu-west-1"), ("x.y", "us-west-2"), (f"us.{NOVA}", "us-east-1")],
    ids=["not-in-region", "eol-never-offered-there", "unknown", "inference-profile"],
)
def test_a_model_bedrock_does_not_offer_there_is_an_invalid_identifier(model_id: str, region: str) -> None:
    call = lambda: details(f"{NOVA}=ACTIVE", model_id, region)  # noqa: E731
    assert error_of(call) == (400, "ValidationException", INVALID_MODEL_MESSAGE)


def test_a_foundation_model_arn_names_its_model_and_unsigned_requests_see_every_region() -> None:
    arn = f"arn:aws:bedrock:us-west-2::foundation-model/{SD35}"
    assert details("", arn)["modelId"] == SD35
    assert details("", SD35, None)["modelArn"] == f"arn:aws:bedrock:us-west-2::foundation-model/{SD35}"


# ---- GetFoundationModelAvailability -----------------------------------------------------------

_OK = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE", "regionAvailability": "AVAILABLE"}


@pytest.mark.parametrize(
    ("overrides", "model_id", "region", "agreement", "expected"),
    [
        ("", CORE, "us-west-2", "AVAILABLE", _OK),
        (f"{NOVA}=LEGACY", NOVA, "us-east-1", "AVAILABLE", _OK),
        (f"{NOVA}=LEGACY_INACTIVE", NOVA, "us-east-1", "AVAILABLE", {**_OK, "authorizationStatus": "NOT_AUTHORIZED"}),
        (f"{NOVA}=NO_ACCESS", NOVA, "us-east-1", "AVAILABLE",
         {**_OK, "authorizationStatus": "NOT_AUTHORIZED", "entitlementAvailability": "NOT_AVAILABLE"}),
        (f"{CORE}=NO_ACCESS", CORE, "us-west-2", "NOT_AVAILABLE",  # a Marketplace model: no agreement either
         {**_OK, "authorizationStatus": "NOT_AUTHORIZED", "entitlementAvailability": "NOT_AVAILABLE"}),
        ("", CORE, "us-east-1", "AVAILABLE",
         {**_OK, "entitlementAvailability": "NOT_AVAILABLE", "regionAvailability": "NOT_AVAILABLE"}),
        ("", TITAN, "eu-west-1", "AVAILABLE",
         {**_OK, "entitlementAvailability": "NOT_AVAILABLE", "regionAvailability": "NOT_AVAILABLE"}),
    ],
    ids=["active", "legacy", "legacy-inactive", "no-access", "no-access-marketplace", "not-in-region",
         "eol-never-offered-there"],
)  # fmt: skip
def test_availability_of_each_state(
    overrides: str, model_id: str, region: str, agreement: str, expected: dict[str, str]
) -> None:
    assert availability(overrides, model_id, region) == {
        "modelId": model_id,
        "agreementAvailability": {"status": agreement},
        **expected,
    }


def test_availability_of_an_end_of_life_or_unknown_model_is_an_error() -> None:
    assert error_of(lambda: availability("", TITAN, "us-east-1")) == (
        404,
        "ResourceNotFoundException",
        END_OF_LIFE_MESSAGE,
    )
    assert error_of(lambda: availability("", "x.y"))[:2] == (400, "ValidationException")


# ---- ListFoundationModels ---------------------------------------------------------------------


def test_the_list_holds_the_models_offered_in_the_region_and_not_end_of_life() -> None:
    assert listed(region="us-west-2") == ACTIVE_STABILITY
    assert listed(region="us-east-1") == []  # every Amazon image model is end of life (2026-11-30)
    assert listed(region=None) == ACTIVE_STABILITY
    overrides = f"{NOVA}=LEGACY,{TITAN}=LEGACY_INACTIVE,{CORE}=EOL,{ULTRA}=NO_ACCESS@us-east-1"
    assert listed(overrides, "us-east-1") == [NOVA, TITAN, ULTRA]
    assert listed(overrides, "us-west-2") == [TITAN, SD35]
    assert listed(overrides, "ap-northeast-1") == [NOVA]  # Nova Canvas: us-east-1, eu-west-1, ap-northeast-1


def test_the_list_filters() -> None:
    assert listed(byOutputModality="IMAGE") == ACTIVE_STABILITY
    assert listed(byOutputModality="TEXT") == []
    assert listed(byInferenceType="ON_DEMAND") == ACTIVE_STABILITY
    assert listed(byInferenceType="PROVISIONED") == []
    assert listed(byCustomizationType="FINE_TUNING") == []
    assert listed(f"{NOVA}=ACTIVE@*", byProvider="stability") == ACTIVE_STABILITY
    assert listed(f"{NOVA}=ACTIVE@*", byProvider="Amazon") == [NOVA]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"byOutputModality": ["PICTURE"]}, "Value 'PICTURE' at 'byOutputModality' failed to satisfy constraint"),
        ({"byInferenceType": ["BATCH"]}, "Value 'BATCH' at 'byInferenceType'"),
        ({"byOutputModality": ["IMAGE", "TEXT"]}, "byOutputModality may be given once, got 2 values"),
        ({"byModality": ["IMAGE"]}, "Unknown query parameter byModality"),
    ],
)
def test_a_bad_filter_is_a_validation_error_naming_it(query: dict[str, Sequence[str]], problem: str) -> None:
    status, code, message = error_of(lambda: control.list_foundation_models(lifecycle(), "us-west-2", query))
    assert (status, code) == (400, "ValidationException")
    assert problem in message


# ---- Legacy with an end-of-life date ----------------------------------------------------------


def test_a_legacy_override_with_a_date_is_the_end_of_life_time_get_foundation_model_returns() -> None:
    assert details(f"{CORE}=LEGACY:2027-01-15", CORE)["modelLifecycle"] == {
        "status": "LEGACY",
        "endOfLifeTime": "2027-01-15T00:00:00Z",
    }
    dated = details(f"{NOVA}=LEGACY_INACTIVE:2027-03-01", NOVA, "eu-west-1")["modelLifecycle"]
    assert dated == {"status": "LEGACY", "legacyTime": "2026-03-30T00:00:00Z", "endOfLifeTime": "2027-03-01T00:00:00Z"}


# ---- agreements: availability, offers, CreateFoundationModelAgreement's checks -----------------


@pytest.mark.parametrize("status", ["AVAILABLE", "PENDING"])
def test_a_marketplace_models_agreement_is_the_accounts(status: str) -> None:
    reply = control.get_foundation_model_availability(lifecycle(), CORE, "us-west-2", agreements={CORE: status})
    assert conforms(reply, "GetFoundationModelAvailability")["agreementAvailability"] == {"status": status}
    other = control.get_foundation_model_availability(lifecycle(), ULTRA, "us-west-2", agreements={CORE: status})
    assert other["agreementAvailability"] == {"status": "NOT_AVAILABLE"}
    assert (other["authorizationStatus"], other["entitlementAvailability"]) == ("AUTHORIZED", "AVAILABLE")


def test_an_amazon_model_needs_no_agreement() -> None:
    reply = control.get_foundation_model_availability(lifecycle(f"{NOVA}=ACTIVE"), NOVA, "us-east-1", agreements={})
    assert reply["agreementAvailability"] == {"status": "AVAILABLE"}
    offers = control.list_foundation_model_agreement_offers(lifecycle(f"{NOVA}=ACTIVE"), NOVA, "us-east-1", {})
    assert conforms(offers, "ListFoundationModelAgreementOffers") == {"modelId": NOVA, "offers": []}


@pytest.mark.parametrize("model_id", ACTIVE_STABILITY)
@pytest.mark.parametrize("offer_type", [None, "PUBLIC", "ALL"])
def test_a_marketplace_model_has_one_public_offer_with_its_price(model_id: str, offer_type: str | None) -> None:
    query = {} if offer_type is None else {"offerType": [offer_type]}
    reply = control.list_foundation_model_agreement_offers(lifecycle(), model_id, "us-west-2", query)
    [offer] = conforms(reply, "ListFoundationModelAgreementOffers")["offers"]
    assert reply["modelId"] == model_id
    assert offer["offerToken"] == control.offer_token(model_id)
    [rate] = offer["termDetails"]["usageBasedPricingTerm"]["rateCard"]
    price = {CORE: "0.04", SD35: "0.08", ULTRA: "0.14"}[model_id]  # docs/models.md, as of 2026-11-30
    assert (rate["price"], rate["unit"]) == (price, "Images")
    assert offer["termDetails"]["legalTerm"]["url"].startswith("https://marketplace.emulator.invalid/")
    assert len({control.offer_token(other) for other in ACTIVE_STABILITY}) == 3  # one token per model


@pytest.mark.parametrize(
    ("overrides", "model_id", "region", "query", "expected"),
    [
        ("", CORE, "us-east-1", {}, (400, "ValidationException", INVALID_MODEL_MESSAGE)),
        ("", "x.y", "us-west-2", {}, (400, "ValidationException", INVALID_MODEL_MESSAGE)),
        (f"{CORE}=EOL", CORE, "us-west-2", {}, (404, "ResourceNotFoundException", END_OF_LIFE_MESSAGE)),
        ("", CORE, "us-west-2", {"offerType": ["PRIVATE"]},
         (400, "ValidationException", "Value 'PRIVATE' at 'offerType'")),
        ("", CORE, "us-west-2", {"type": ["ALL"]}, (400, "ValidationException", "Unknown query parameter type")),
    ],
    ids=["not-in-region", "unknown", "end-of-life", "bad-offer-type", "unknown-parameter"],
)  # fmt: skip
def test_offers_of_a_model_bedrock_does_not_offer_or_a_bad_query_are_errors(
    overrides: str, model_id: str, region: str, query: dict[str, Sequence[str]], expected: tuple[int, str, str]
) -> None:
    status, code, message = error_of(
        lambda: control.list_foundation_model_agreement_offers(lifecycle(overrides), model_id, region, query)
    )
    assert (status, code) == expected[:2]
    assert expected[2] in message


def agreement_body(model_id: object, token: object) -> bytes:
    return json.dumps({"modelId": model_id, "offerToken": token}).encode()


def test_an_agreement_request_names_the_model_and_its_offers_token() -> None:
    body = agreement_body(SD35, control.offer_token(SD35))
    assert control.check_agreement_request(lifecycle(), body, "us-west-2") == SD35


@pytest.mark.parametrize(
    ("body", "region", "expected"),
    [
        (agreement_body(SD35, control.offer_token(CORE)), "us-west-2", (400, control.INVALID_OFFER_MESSAGE)),
        (agreement_body(NOVA, control.offer_token(NOVA)), "us-east-1", (400, control.INVALID_OFFER_MESSAGE)),
        (agreement_body(SD35, control.offer_token(SD35)), "us-east-1", (400, INVALID_MODEL_MESSAGE)),
        (agreement_body(CORE, control.offer_token(CORE)), "us-west-2", (404, END_OF_LIFE_MESSAGE)),
        (agreement_body(None, "t"), "us-west-2", (400, "Value at 'modelId' failed to satisfy constraint")),
        (agreement_body(SD35, ""), "us-west-2", (400, "Value at 'offerToken' failed to satisfy constraint")),
        (b"[]", "us-west-2", (400, "must be a JSON object")),
        (b"{not json", "us-west-2", (400, "not valid JSON")),
    ],
    ids=["another-models-token", "amazon-model", "not-in-region", "end-of-life", "no-model", "empty-token",
         "not-an-object", "not-json"],
)  # fmt: skip
def test_a_bad_agreement_request_is_refused(body: bytes, region: str, expected: tuple[int, str]) -> None:
    overrides = f"{CORE}=EOL,{NOVA}=ACTIVE"
    status, _code, message = error_of(lambda: control.check_agreement_request(lifecycle(overrides), body, region))
    assert status == expected[0]
    assert expected[1] in message
