"""The model chain: parsing MODEL_ID, marking entries unavailable for a cool-down, and one probe at a time."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from imagegen.chain import ModelChain, ModelEntry, parse_chain
from imagegen.config import DEFAULT_MODEL_ID, Settings
from imagegen.errors import ConfigurationError, ModelNotFoundError, ModelUnavailableError, NoModelAvailableError

TITAN = ModelEntry("amazon.titan-image-generator-v1", "us-east-1")
CORE = ModelEntry("stability.stable-image-core-v1:1", "us-west-2")
ULTRA = ModelEntry("stability.stable-image-ultra-v1:1", "us-west-2")
EOL = ModelNotFoundError("gone", aws_code="ResourceNotFoundException", reason="end of life")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def chain(*entries: ModelEntry, clock: FakeClock | None = None, **kwargs: Any) -> ModelChain:
    return ModelChain(entries or (TITAN, CORE), cooldown_seconds=900, clock=clock or FakeClock(), **kwargs)


# ---- parsing ------------------------------------------------------------------------------------


def test_the_default_chain_is_the_original_model_then_one_bedrock_serves_today() -> None:
    assert parse_chain(DEFAULT_MODEL_ID, "eu-north-1") == (TITAN, CORE)
    assert Settings(bucket_name="b").models == (TITAN, CORE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("amazon.titan-image-generator-v1", (ModelEntry("amazon.titan-image-generator-v1", "eu-west-1"),)),
        (" stability.sd3-5-large-v1:0@us-west-2 , amazon.nova-canvas-v1:0 ",
         (ModelEntry("stability.sd3-5-large-v1:0", "us-west-2"), ModelEntry("amazon.nova-canvas-v1:0", "eu-west-1"))),
        ("us.amazon.nova-canvas-v1:0@us-east-1", (ModelEntry("us.amazon.nova-canvas-v1:0", "us-east-1"),)),
    ],
)  # fmt: skip
def test_entries_are_model_at_region_and_a_single_id_keeps_working(
    value: str, expected: tuple[ModelEntry, ...]
) -> None:
    assert parse_chain(value, "eu-west-1") == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "entry 1 ('') is empty"),
        ("amazon.titan-image-generator-v1,,x", "entry 2 ('') is empty"),
        ("amazon.titan-image-generator-v1@mars", "entry 1 ('amazon.titan-image-generator-v1@mars') 'mars' is not"),
        ("Titan Image Generator", "is not a Bedrock model id"),
        ("a.b@us-east-1,a.b@us-east-1", "lists a.b@us-east-1 twice"),
    ],
)
def test_a_malformed_chain_names_the_variable_and_the_entry(value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_chain(value, "us-east-1")
    assert caught.value.detail.startswith("MODEL_ID")
    assert problem in caught.value.detail


def test_an_inference_profile_entry_knows_its_foundation_model() -> None:
    profile = ModelEntry("us.amazon.nova-canvas-v1:0", "us-east-1")
    assert (profile.base_model_id, profile.is_inference_profile) == ("amazon.nova-canvas-v1:0", True)
    assert (TITAN.base_model_id, TITAN.is_inference_profile) == (TITAN.model_id, False)


# ---- marks and cool-down --------------------------------------------------------------------------


def test_a_marked_entry_is_skipped_until_its_cool_down_ends() -> None:
    clock = FakeClock()
    models = chain(clock=clock)
    assert models.current() == TITAN
    assert models.mark_unavailable(TITAN, EOL) is True
    assert models.current() == CORE
    assert models.acquire() == CORE
    clock.now += 899
    assert models.current() == CORE
    clock.now += 1
    assert models.current() == TITAN  # worth one more try


def test_the_listener_hears_each_mark_once() -> None:
    heard: list[tuple[ModelEntry, ModelUnavailableError]] = []
    models = chain(on_unavailable=lambda entry, error: heard.append((entry, error)))
    assert models.mark_unavailable(TITAN, EOL) is True
    assert models.mark_unavailable(TITAN, EOL) is False  # a concurrent request learnt the same
    assert heard == [(TITAN, EOL)]


def test_with_every_entry_marked_there_is_no_model() -> None:
    models = chain()
    models.mark_unavailable(TITAN, EOL)
    models.mark_unavailable(CORE, EOL)
    for call in (models.current, models.acquire):
        with pytest.raises(NoModelAvailableError) as caught:
            call()
        assert caught.value.transient
        assert caught.value.code == "NoModelAvailable"
        assert "amazon.titan-image-generator-v1@us-east-1" in caught.value.detail


def test_acquire_after_an_entry_never_goes_back_to_it() -> None:
    models = chain(TITAN, CORE, ULTRA)
    assert models.acquire(after=TITAN) == CORE
    assert models.acquire(after=CORE) == ULTRA
    with pytest.raises(NoModelAvailableError):
        models.acquire(after=ULTRA)


def test_a_success_after_a_concurrent_mark_does_not_undo_it() -> None:
    models = chain()
    models.succeeded(models.acquire())
    models.mark_unavailable(TITAN, EOL)
    models.succeeded(TITAN)
    assert models.current() == CORE


# ---- one probe at a time ------------------------------------------------------------------------


def _acquire_in_thread(models: ModelChain) -> tuple[threading.Thread, list[ModelEntry]]:
    got: list[ModelEntry] = []
    thread = threading.Thread(target=lambda: got.append(models.acquire()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while models.waiting == 0:  # until it waits on the probe (observable state, not a sleep)
        assert thread.is_alive() and time.monotonic() < deadline, "the second request did not wait"
    return thread, got


@pytest.mark.parametrize(
    ("outcome", "second_gets"),
    [("succeeded", TITAN), ("mark_unavailable", CORE), ("released", TITAN)],
)
def test_concurrent_requests_wait_for_the_probe_of_an_entry_that_has_not_answered(
    outcome: str, second_gets: ModelEntry
) -> None:
    models = chain()
    assert models.acquire() == TITAN  # the prober
    thread, got = _acquire_in_thread(models)
    assert got == []
    if outcome == "mark_unavailable":
        models.mark_unavailable(TITAN, EOL)
    else:
        getattr(models, outcome)(TITAN)
    thread.join(timeout=10)
    assert got == [second_gets]
    assert models.waiting == 0


def test_an_entry_that_answered_is_used_concurrently_without_waiting() -> None:
    models = chain()
    models.succeeded(models.acquire())
    assert [models.acquire() for _ in range(5)] == [TITAN] * 5
    assert models.waiting == 0
