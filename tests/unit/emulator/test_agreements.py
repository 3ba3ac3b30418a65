"""The AWS Marketplace agreements of the emulator, without sockets: ``agreements`` in ``EmulatorConfig`` (``all``,
``none``, model ids; from the flag or ``BEDROCK_EMULATOR_AGREEMENTS``, and back with ``to_env``) and the
backend's state (InvokeModel refused without one, CreateFoundationModelAgreement -> PENDING once -> AVAILABLE,
a conflict when it exists, reset)."""

from __future__ import annotations

import json

import pytest

from bedrock_emulator.backend import Backend
from bedrock_emulator.config import AGREEMENTS_VAR, EmulatorConfig
from bedrock_emulator.control import offer_token
from bedrock_emulator.errors import AGREEMENT_EXISTS_MESSAGE, MARKETPLACE_ACCESS_DENIED_MESSAGE, BedrockApiError
from tests.emulator_bodies import CORE, NOVA, SD35, ULTRA, raw, stability

REGION = "us-west-2"


def agreement_body(model_id: str, token: str | None = None) -> bytes:
    return json.dumps({"modelId": model_id, "offerToken": token or offer_token(model_id)}).encode()


def status(backend: Backend, model_id: str) -> str:
    return str(backend.get_foundation_model_availability(model_id, REGION)["agreementAvailability"]["status"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", "all"),
        (" ALL ", "all"),
        ("none", ()),
        (f"{CORE}, {SD35}", (CORE, SD35)),
        (CORE, (CORE,)),
    ],
)
def test_agreements_are_read_from_the_variable_or_the_flag(text: str, expected: object) -> None:
    assert EmulatorConfig.from_env({AGREEMENTS_VAR: text}).agreements == expected
    assert EmulatorConfig.from_env({AGREEMENTS_VAR: "none"}, agreements=text).agreements == expected


def test_agreements_default_to_all_and_survive_to_env() -> None:
    assert EmulatorConfig.from_env({}).agreements == "all"
    assert EmulatorConfig.from_env({AGREEMENTS_VAR: ""}).agreements == "all"
    for config in (EmulatorConfig(), EmulatorConfig(agreements=()), EmulatorConfig(agreements=(ULTRA, CORE))):
        assert EmulatorConfig.from_env(config.to_env()) == config
    assert EmulatorConfig(agreements=()).to_env()[AGREEMENTS_VAR] == "none"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"{CORE},{CORE}", "is listed twice"),
        ("stability.no-such-model-v1:0", "is not a model the lifecycle table knows"),
        (NOVA, "is Amazon's own model"),
        (f"all,{CORE}", "cannot be combined with model ids"),
        (" , ", "names no model"),
    ],
)
def test_a_bad_agreements_value_names_the_variable_the_entry_and_the_rule(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=AGREEMENTS_VAR) as caught:
        EmulatorConfig.from_env({AGREEMENTS_VAR: value})
    assert problem in str(caught.value)
    with pytest.raises(ValueError, match="agreements") as caught:
        EmulatorConfig(agreements=(value,))
    assert "expected all, none, or comma-separated" in str(caught.value)


def test_a_model_an_override_adds_is_sold_through_marketplace_like_its_family() -> None:
    added = "stability.stable-image-core-v1:2"
    overrides = f"{added}=ACTIVE@{REGION}"
    assert (
        status(Backend(EmulatorConfig.from_env({}, lifecycle=overrides, agreements="none")), added) == "NOT_AVAILABLE"
    )
    assert status(Backend(EmulatorConfig.from_env({}, lifecycle=overrides, agreements=added)), added) == "AVAILABLE"


def test_without_an_agreement_invoke_is_denied_and_a_new_one_is_pending_once() -> None:
    backend = Backend(EmulatorConfig(agreements=()))
    with pytest.raises(BedrockApiError) as caught:
        backend.invoke(CORE, raw(stability("x")), REGION)
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "AccessDeniedException",
        403,
        MARKETPLACE_ACCESS_DENIED_MESSAGE,
    )
    assert backend.create_foundation_model_agreement(agreement_body(CORE), REGION) == {"modelId": CORE}
    assert backend.agreement_status(CORE) == "PENDING"
    with pytest.raises(BedrockApiError, match="AWS Marketplace"):
        backend.invoke(CORE, raw(stability("x")), REGION)
    assert [status(backend, CORE), status(backend, CORE)] == ["PENDING", "AVAILABLE"]
    assert backend.invoke(CORE, raw(stability("x")), REGION)["images"]
    assert backend.stats["unavailable"] == 2


@pytest.mark.parametrize("read_first", [False, True], ids=["pending", "available"])
def test_an_existing_agreement_is_a_conflict(read_first: bool) -> None:
    backend = Backend(EmulatorConfig(agreements=()))
    backend.create_foundation_model_agreement(agreement_body(SD35), REGION)
    if read_first:
        status(backend, SD35)
    with pytest.raises(BedrockApiError) as caught:
        backend.create_foundation_model_agreement(agreement_body(SD35), REGION)
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "ConflictException",
        400,
        AGREEMENT_EXISTS_MESSAGE,
    )
    assert backend.stats["agreement_requests"] == 2


def test_configured_agreements_are_available_and_reset_restores_them() -> None:
    backend = Backend(EmulatorConfig(agreements=(ULTRA,)))
    assert backend.agreements == {ULTRA: "AVAILABLE"}
    backend.create_foundation_model_agreement(agreement_body(CORE), REGION)
    assert backend.agreements == {ULTRA: "AVAILABLE", CORE: "PENDING"}
    backend.reset()
    assert (backend.agreements, backend.stats["agreement_requests"]) == ({ULTRA: "AVAILABLE"}, 0)
    assert set(Backend(EmulatorConfig()).agreements) == {CORE, ULTRA, SD35} | {
        "stability.stable-image-core-v1:0",
        "stability.stable-image-ultra-v1:0",
        "stability.sd3-large-v1:0",
    }
