"""The lifecycle table and its overrides, and what InvokeModel answers for each state, called directly (no
sockets). The same answers over HTTP, as boto3 sees them: tests/local/emulator/test_lifecycle_http.py."""

from __future__ import annotations

from typing import Any

import pytest

from bedrock_emulator.backend import STAT_NAMES, Backend
from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.errors import (
    END_OF_LIFE_MESSAGE,
    INVALID_MODEL_MESSAGE,
    LEGACY_INACTIVE_MESSAGE,
    NO_ACCESS_MESSAGE,
    UNRESOLVED_MODEL_MESSAGE,
    BedrockApiError,
)
from bedrock_emulator.lifecycle import SOURCES, TABLE, TABLE_DATE, Lifecycle, Override, State, Status, parse_overrides
from tests.emulator_bodies import CORE, NOVA, SD35, TITAN, TITAN_V2, ULTRA, nova, raw, stability, titan

SD3_LARGE = "stability.sd3-large-v1:0"
CORE_V0, ULTRA_V0 = "stability.stable-image-core-v1:0", "stability.stable-image-ultra-v1:0"
US, WEST = frozenset({"us-east-1", "us-west-2"}), frozenset({"us-west-2"})
NOVA_REGIONS = frozenset({"us-east-1", "eu-west-1", "ap-northeast-1"})

#: (state, HTTP status, error code, message) of every refusal; None: the model runs.
REFUSALS = {
    State.EOL: (404, "ResourceNotFoundException", END_OF_LIFE_MESSAGE),
    State.LEGACY_INACTIVE: (404, "ResourceNotFoundException", LEGACY_INACTIVE_MESSAGE),
    State.NO_ACCESS: (403, "AccessDeniedException", NO_ACCESS_MESSAGE),
    State.ACTIVE: None,
    State.LEGACY: None,
}


def backend(overrides: str = "", **config: Any) -> Backend:
    return Backend(EmulatorConfig.from_env({}, lifecycle=overrides, **config))


def refused(backend: Backend, model_id: str, body: Any, region: str | None = "us-west-2") -> BedrockApiError:
    with pytest.raises(BedrockApiError) as caught:
        backend.invoke(model_id, raw(body), region)
    return caught.value


def body_for(model_id: str) -> Any:
    return stability() if model_id.startswith("stability.") else titan() if "titan" in model_id else nova()


def region_of(model_id: str) -> str:
    """A region the table offers ``model_id`` in (every model it has is offered in one of these two)."""
    return "us-west-2" if model_id.startswith("stability.") else "us-east-1"


# ---- the table --------------------------------------------------------------------------------


def test_the_table_is_todays_with_its_date_and_sources() -> None:
    assert TABLE_DATE.isoformat() == "2026-11-30"
    assert {  # the two lifecycle pages since 2026: before and since 2026-09-07
        "https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html",
        "https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle-legacy.html",
    } <= set(SOURCES)
    assert {info.model_id: (info.status, frozenset(info.regions)) for info in TABLE} == {
        TITAN: (Status.END_OF_LIFE, US),
        TITAN_V2: (Status.END_OF_LIFE, US),
        NOVA: (Status.END_OF_LIFE, NOVA_REGIONS),
        CORE_V0: (Status.END_OF_LIFE, WEST),
        ULTRA_V0: (Status.END_OF_LIFE, WEST),
        SD3_LARGE: (Status.END_OF_LIFE, WEST),
        CORE: (Status.ACTIVE, WEST),
        ULTRA: (Status.ACTIVE, WEST),
        SD35: (Status.ACTIVE, WEST),
    }
    dates = {info.model_id: (info.legacy, info.end_of_life) for info in TABLE if info.legacy or info.end_of_life}
    assert {model: tuple(str(day) for day in pair) for model, pair in dates.items()} == {
        TITAN_V2: ("None", "2026-06-30"),
        NOVA: ("2026-03-30", "2026-09-30"),
    }


def test_no_model_is_active_past_its_end_of_life_date() -> None:
    for info in TABLE:
        if info.end_of_life is not None and info.end_of_life <= TABLE_DATE:
            assert info.status is Status.END_OF_LIFE, info.model_id
        assert info.marketplace == info.model_id.startswith("stability."), info.model_id


@pytest.mark.parametrize("model_id", [TITAN, TITAN_V2, NOVA, CORE_V0, ULTRA_V0, SD3_LARGE])
def test_by_default_an_end_of_life_model_answers_404_before_its_body_is_read(model_id: str) -> None:
    emulator = backend()
    error = refused(emulator, model_id, {"not": "a valid body"}, region_of(model_id))
    assert (error.status, error.code, error.message) == (404, "ResourceNotFoundException", END_OF_LIFE_MESSAGE)
    assert emulator.stats == {**dict.fromkeys(STAT_NAMES, 0), "requests": 1, "unavailable": 1}


@pytest.mark.parametrize("model_id", [CORE, ULTRA, SD35])
def test_by_default_the_active_stability_models_run_in_us_west_2_only(model_id: str) -> None:
    emulator = backend()
    reply = emulator.invoke(model_id, raw(stability()), "us-west-2")
    assert reply["finish_reasons"] == [None]
    for region in ("us-east-1", "eu-west-1"):
        error = refused(emulator, model_id, stability(), region)
        assert (error.status, error.code, error.message) == (400, "ValidationException", INVALID_MODEL_MESSAGE)
    assert emulator.stats["unavailable"] == 2
    assert emulator.invoke(model_id, raw(stability()), None)["images"]  # unsigned: region unknown, not checked


# ---- every state on InvokeModel ---------------------------------------------------------------


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("model_id", [TITAN, NOVA, CORE])
def test_each_state_answers_as_bedrock_does(model_id: str, state: State) -> None:
    emulator = backend(f"{model_id}={state}")
    expected = REFUSALS[state]
    if expected is None:
        assert emulator.invoke(model_id, raw(body_for(model_id)), region_of(model_id))["images"]
        assert emulator.stats["unavailable"] == 0
        return
    error = refused(emulator, model_id, body_for(model_id), region_of(model_id))
    assert (error.status, error.code, error.message) == expected
    assert emulator.stats["unavailable"] == 1
    assert emulator.stats["succeeded"] == 0


def test_the_region_is_checked_first_then_the_state() -> None:
    emulator = backend(f"{CORE}=EOL,{NOVA}=NO_ACCESS")
    assert refused(emulator, CORE, stability(), "us-east-1").message == INVALID_MODEL_MESSAGE
    assert refused(emulator, CORE, stability(), "us-west-2").message == END_OF_LIFE_MESSAGE
    assert refused(emulator, NOVA, nova(), "eu-central-1").code == "ValidationException"
    assert refused(emulator, NOVA, nova(), "us-east-1").code == "AccessDeniedException"


def test_the_lifecycle_comes_after_forced_errors_and_before_validation_and_the_content_filter() -> None:
    emulator = backend(f"{TITAN}=LEGACY_INACTIVE", blocked_words="gory")
    emulator.fail_next("ThrottlingException")
    assert refused(emulator, TITAN, titan()).code == "ThrottlingException"
    assert refused(emulator, TITAN, titan("gory", seed=-1)).message == LEGACY_INACTIVE_MESSAGE
    assert emulator.stats == {**dict.fromkeys(STAT_NAMES, 0), "requests": 2, "faults": 1, "unavailable": 1}


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", (404, "ResourceNotFoundException", UNRESOLVED_MODEL_MESSAGE)),
        ("x.y", (404, "ResourceNotFoundException", UNRESOLVED_MODEL_MESSAGE)),
        (f"us.{TITAN}:9", (404, "ResourceNotFoundException", UNRESOLVED_MODEL_MESSAGE)),
        ("nova-canvas", (400, "ValidationException", INVALID_MODEL_MESSAGE)),
        ("Stability.Core", (400, "ValidationException", INVALID_MODEL_MESSAGE)),
    ],
    ids=["text-model", "unknown", "unknown-behind-a-profile", "not-an-id", "upper-case"],
)
def test_an_unknown_model_is_unresolved_when_shaped_like_a_model_id_else_invalid_and_never_unavailable(
    model_id: str, expected: tuple[int, str, str]
) -> None:
    emulator = backend()
    error = refused(emulator, model_id, titan())
    assert (error.status, error.code, error.message) == expected
    assert (emulator.stats["invalid"], emulator.stats["unavailable"]) == (1, 0)


@pytest.mark.parametrize("profile", [f"us.{NOVA}", f"eu.{NOVA}", f"global.{NOVA}"])
def test_an_inference_profile_answers_for_its_foundation_model(profile: str) -> None:
    assert refused(backend(), profile, nova(), "us-east-1").message == END_OF_LIFE_MESSAGE
    assert refused(backend(f"{NOVA}=NO_ACCESS"), profile, nova(), "us-east-1").code == "AccessDeniedException"
    assert backend(f"{NOVA}=ACTIVE").invoke(profile, raw(nova()), "us-east-1")["images"]


# ---- override regions and added models ----------------------------------------------------------


def test_override_regions_replace_the_tables_or_open_every_region() -> None:
    emulator = backend(f"{CORE}=ACTIVE@us-east-1+eu-west-1,{ULTRA}=ACTIVE@*,{SD35}=LEGACY")
    assert emulator.invoke(CORE, raw(stability()), "eu-west-1")["images"]
    assert refused(emulator, CORE, stability(), "us-west-2").message == INVALID_MODEL_MESSAGE
    assert emulator.invoke(ULTRA, raw(stability()), "ap-south-1")["images"]
    assert emulator.invoke(SD35, raw(stability()), "us-west-2")["images"]  # no @: the table's regions
    assert refused(emulator, SD35, stability(), "us-east-1").code == "ValidationException"


def test_a_model_the_table_lacks_can_be_added_and_is_offered_everywhere() -> None:
    added = f"{TITAN}:0"
    assert Lifecycle().entry(added) is None
    assert refused(backend(), added, titan()).message == UNRESOLVED_MODEL_MESSAGE
    emulator = backend(f"{added}=ACTIVE")
    assert emulator.invoke(added, raw(titan()), "sa-east-1")["images"]
    entry = Lifecycle(parse_overrides(f"{added}=NO_ACCESS@us-east-1", name="test")).entry(added)
    assert entry is not None
    assert (entry.state, entry.regions, entry.info.provider) == (State.NO_ACCESS, frozenset({"us-east-1"}), "Amazon")


def test_a_model_set_active_that_no_adapter_supports_is_an_invalid_model() -> None:
    emulator = backend(f"{SD3_LARGE}=ACTIVE")
    assert refused(emulator, SD3_LARGE, stability()).message == INVALID_MODEL_MESSAGE
    assert emulator.stats["invalid"] == 1


# ---- override parsing ---------------------------------------------------------------------------


def test_overrides_parse_states_case_insensitively_and_regions_sorted() -> None:
    parsed = parse_overrides(f" {TITAN}=eol , {CORE}=Active@us-west-2+us-east-1+us-west-2,,", name="X")
    assert parsed == (Override(TITAN, State.EOL), Override(CORE, State.ACTIVE, ("us-east-1", "us-west-2")))
    assert [str(item) for item in parsed] == [f"{TITAN}=EOL", f"{CORE}=ACTIVE@us-east-1+us-west-2"]
    assert parse_overrides(parsed, name="X") == parsed
    assert parse_overrides("", name="X") == parse_overrides(" ", name="X") == ()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (TITAN, "is not MODEL_ID=STATE"),
        ("=EOL", "is not MODEL_ID=STATE"),
        (f"{TITAN}=RETIRED", "has state 'RETIRED', not one of ACTIVE, LEGACY, LEGACY_INACTIVE, EOL, NO_ACCESS"),
        (f"{TITAN}=", "has state ''"),
        (f"{CORE}=ACTIVE@us-west", "has 'us-west', not an AWS region (or '*' for every region)"),
        (f"{CORE}=ACTIVE@", "has '', not an AWS region"),
        (f"{CORE}=ACTIVE@*+us-east-1", "has '*', not an AWS region"),
        (
            "anthropic.claude-v2=ACTIVE",
            "names 'anthropic.claude-v2', neither in the lifecycle table nor an image model imagegen supports",
        ),
        (f"us.{NOVA}=EOL", f"names the inference profile 'us.{NOVA}'; name its foundation model"),
    ],
)
def test_a_bad_override_is_a_value_error_naming_the_variable_the_entry_and_the_rule(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match="BEDROCK_EMULATOR_LIFECYCLE") as caught:
        EmulatorConfig.from_env({"BEDROCK_EMULATOR_LIFECYCLE": f"{NOVA}=LEGACY,{value}"})
    message = str(caught.value)
    assert f"BEDROCK_EMULATOR_LIFECYCLE entry 2 ({value!r}) {problem}" in message
    assert "expected MODEL_ID=STATE[:YYYY-MM-DD][@REGION[+REGION...]|@*], comma-separated" in message


def test_a_model_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=f"BEDROCK_EMULATOR_LIFECYCLE lists '{CORE}' twice"):
        EmulatorConfig.from_env({"BEDROCK_EMULATOR_LIFECYCLE": f"{CORE}=EOL,{CORE}=ACTIVE"})


def test_bad_overrides_given_as_the_field_or_the_flag_name_both() -> None:
    field = r"lifecycle \(--lifecycle, BEDROCK_EMULATOR_LIFECYCLE\)"
    with pytest.raises(ValueError, match=field):
        EmulatorConfig.from_env({}, lifecycle=f"{TITAN}=GONE")
    with pytest.raises(ValueError, match=field):
        EmulatorConfig(lifecycle=(Override("x.y", State.EOL),))
    with pytest.raises(ValueError, match=field):
        EmulatorConfig(lifecycle=("not an override",))  # type: ignore[arg-type]
