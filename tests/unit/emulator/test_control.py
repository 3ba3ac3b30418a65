"""The control plane's replies (GetFoundationModel, GetFoundationModelAvailability, ListFoundationModels) from
the lifecycle table, called directly: each state, the region, the filters, and every reply checked against
botocore's ``bedrock`` service model. Over HTTP through boto3: tests/local/emulator/test_lifecycle_http.py."""

from __future__ import annotations

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


@pytest.mark.parametrize(("overrides", "model_id"), [("", TITAN), ("", NOVA), (f"{CORE}=EOL", CORE)])
def test_an_end_of_life_model_is_resource_not_found(overrides: str, model_id: str) -> None:
    call = lambda: details(overrides, model_id, "us-west-2")  # noqa: E731
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
    assert listed(overrides, "us-west-2") == [NOVA, TITAN, SD35]


def test_the_list_filters() -> None:
    assert listed(byOutputModality="IMAGE") == ACTIVE_STABILITY
    assert listed(byOutputModality="TEXT") == []
    assert listed(byInferenceType="ON_DEMAND") == ACTIVE_STABILITY
    assert listed(byInferenceType="PROVISIONED") == []
    assert listed(byCustomizationType="FINE_TUNING") == []
    assert listed(f"{NOVA}=ACTIVE", byProvider="stability") == ACTIVE_STABILITY
    assert listed(f"{NOVA}=ACTIVE", byProvider="Amazon") == [NOVA]


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
