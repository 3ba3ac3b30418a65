"""AWS Marketplace agreements over real HTTP, as unmodified boto3 clients see them: ``--agreements``
(``all``, ``none``, model ids), InvokeModel's AccessDeniedException without one, ListFoundationModelAgreementOffers
and CreateFoundationModelAgreement in botocore's shapes, GetFoundationModelAvailability going PENDING (once) then
AVAILABLE, the admin reset, a dated lifecycle override, and a bad ``--agreements`` naming the flag and the variable.

The decisions themselves are tested without sockets in tests/unit/emulator/test_agreements.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bedrock_emulator.admin import EmulatorAdmin
from bedrock_emulator.cli import main
from bedrock_emulator.config import AGREEMENTS_VAR, EmulatorConfig
from bedrock_emulator.control import offer_token
from bedrock_emulator.errors import MARKETPLACE_ACCESS_DENIED_MESSAGE
from imagegen.bedrock import classify_client_error
from imagegen.errors import ModelAccessDeniedError
from tests.emulator_bodies import CORE, NOVA, SD35, ULTRA, nova, stability
from tests.local.emulator.client import StartEmulator, error_code, invoke, invoke_error
from tests.local.emulator.test_cli import UNBINDABLE

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

_ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
REGION = "us-west-2"  # where the Stability models live


def runtime(region: str = REGION) -> BedrockRuntimeClient:
    return boto3.client("bedrock-runtime", region_name=region, config=_ONE_ATTEMPT)


def control(region: str = REGION) -> BedrockClient:
    return boto3.client("bedrock", region_name=region, config=_ONE_ATTEMPT)


def agreements(value: str) -> EmulatorConfig:
    return EmulatorConfig.from_env({}, agreements=value)


def agreement_status(model_id: str) -> str:
    return control().get_foundation_model_availability(modelId=model_id)["agreementAvailability"]["status"]


def test_a_fresh_account_is_denied_with_the_marketplace_text_until_it_creates_the_agreement(
    start_emulator: StartEmulator,
) -> None:
    emulator = start_emulator(agreements("none"), table=True)
    error = invoke_error(runtime(), CORE, stability("x"))
    assert (error_code(error), error.response["Error"]["Message"]) == (
        "AccessDeniedException",
        MARKETPLACE_ACCESS_DENIED_MESSAGE,
    )
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert isinstance(classify_client_error(error), ModelAccessDeniedError)  # what the service's failover sees
    assert agreement_status(CORE) == "NOT_AVAILABLE"

    [offer] = control().list_foundation_model_agreement_offers(modelId=CORE, offerType="PUBLIC")["offers"]
    assert offer["offerToken"] == offer_token(CORE)
    assert offer["termDetails"]["usageBasedPricingTerm"]["rateCard"][0]["price"] == "0.04"
    reply = control().create_foundation_model_agreement(modelId=CORE, offerToken=offer["offerToken"])
    assert (reply["modelId"], reply["ResponseMetadata"]["HTTPStatusCode"]) == (CORE, 202)

    assert error_code(invoke_error(runtime(), CORE, stability("x"))) == "AccessDeniedException"  # still PENDING
    assert [agreement_status(CORE), agreement_status(CORE)] == ["PENDING", "AVAILABLE"]
    assert invoke(runtime(), CORE, stability("x"))["images"]
    assert emulator.stats["agreement_requests"] == 1
    assert emulator.stats["unavailable"] == 2


def test_creating_an_agreement_twice_is_a_conflict(start_emulator: StartEmulator) -> None:
    start_emulator(agreements("none"), table=True)
    control().create_foundation_model_agreement(modelId=SD35, offerToken=offer_token(SD35))
    with pytest.raises(ClientError) as caught:
        control().create_foundation_model_agreement(modelId=SD35, offerToken=offer_token(SD35))
    assert error_code(caught.value) == "ConflictException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "already exists" in caught.value.response["Error"]["Message"]


def test_a_wrong_offer_token_is_refused(start_emulator: StartEmulator) -> None:
    start_emulator(agreements("none"), table=True)
    with pytest.raises(ClientError) as caught:
        control().create_foundation_model_agreement(modelId=CORE, offerToken=offer_token(ULTRA))
    assert error_code(caught.value) == "ValidationException"
    assert agreement_status(CORE) == "NOT_AVAILABLE"


def test_listed_agreements_are_the_only_ones(start_emulator: StartEmulator) -> None:
    start_emulator(agreements(f"{CORE},{SD35}"), table=True)
    assert invoke(runtime(), CORE, stability("x"))["images"]
    assert invoke(runtime(), SD35, stability("x"))["images"]
    assert error_code(invoke_error(runtime(), ULTRA, stability("x"))) == "AccessDeniedException"
    assert [agreement_status(model) for model in (CORE, SD35, ULTRA)] == ["AVAILABLE", "AVAILABLE", "NOT_AVAILABLE"]


def test_every_agreement_is_in_place_by_default_and_amazon_models_need_none(start_emulator: StartEmulator) -> None:
    start_emulator(EmulatorConfig.from_env({}, lifecycle=f"{NOVA}=ACTIVE@*", agreements="none"))
    assert invoke(runtime("us-east-1"), NOVA, nova())["images"]  # no agreement needed, even in a fresh account
    assert control("us-east-1").list_foundation_model_agreement_offers(modelId=NOVA)["offers"] == []
    start_emulator(table=True)
    assert invoke(runtime(), ULTRA, stability("x"))["images"]
    assert agreement_status(ULTRA) == "AVAILABLE"


def test_the_admin_reset_restores_the_configured_agreements(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(agreements("none"), table=True)
    control().create_foundation_model_agreement(modelId=CORE, offerToken=offer_token(CORE))
    EmulatorAdmin(emulator.url).reset()
    assert agreement_status(CORE) == "NOT_AVAILABLE"
    assert emulator.stats["agreement_requests"] == 0


def test_a_dated_legacy_override_is_the_end_of_life_time(start_emulator: StartEmulator) -> None:
    start_emulator(EmulatorConfig.from_env({}, lifecycle=f"{CORE}=LEGACY:2027-01-15"), table=True)
    lifecycle = control().get_foundation_model(modelIdentifier=CORE)["modelDetails"]["modelLifecycle"]
    assert lifecycle == {"status": "LEGACY", "endOfLifeTime": datetime(2027, 1, 15, tzinfo=UTC)}
    assert invoke(runtime(), CORE, stability("x"))["images"]  # Legacy is still invocable


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("some", "('some') is not a model the lifecycle table knows"),
        (NOVA, "is Amazon's own model, which needs no AWS Marketplace agreement"),
        (f"{CORE},none", "cannot be combined with model ids"),
        (f"us.{CORE}", "names an inference profile"),
    ],
)
def test_a_bad_agreements_value_names_the_flag_or_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, problem: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--agreements", value, *UNBINDABLE])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert "--agreements" in error and AGREEMENTS_VAR in error and problem in error
    monkeypatch.setenv(AGREEMENTS_VAR, value)
    with pytest.raises(SystemExit):
        main(UNBINDABLE)
    error = capsys.readouterr().err
    assert f"{AGREEMENTS_VAR} entry" in error and problem in error
