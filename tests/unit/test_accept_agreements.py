"""``imagegen models --accept-agreements``' wait for one agreement, against a fake control plane on a fake clock:
the backoff, its bound, an ERROR with its message, a model without an offer, and a bad wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from imagegen.chain import ModelEntry
from imagegen.model_status import ModelCheck
from imagegen_cli.common import CliError
from imagegen_cli.models import AgreementWait, accept_agreement
from tests.fakes import FakeTime

CORE = ModelEntry("stability.stable-image-core-v1:1", "us-west-2")


class ControlPlane:
    """Answers each availability read with the next of ``statuses`` (the last one for ever)."""

    def __init__(self, statuses: list[dict[str, str]], offers: list[dict[str, Any]] | None = None) -> None:
        self.statuses = statuses
        self.offers = [{"offerId": "o-1", "offerToken": "token-1"}] if offers is None else offers
        self.created: list[tuple[str, str]] = []

    def list_foundation_model_agreement_offers(self, modelId: str, offerType: str) -> dict[str, Any]:
        assert offerType == "PUBLIC"
        return {"modelId": modelId, "offers": self.offers}

    def create_foundation_model_agreement(self, modelId: str, offerToken: str) -> dict[str, Any]:
        self.created.append((modelId, offerToken))
        return {"modelId": modelId}

    def get_foundation_model_availability(self, modelId: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"modelId": modelId, "agreementAvailability": status}


def missing(agreement: str = "NOT_AVAILABLE") -> ModelCheck:
    return ModelCheck(CORE, "ACTIVE", f"agreement {agreement}", "no agreement", agreement=agreement)


def test_the_wait_backs_off_until_available() -> None:
    plane = ControlPlane([{"status": "PENDING"}] * 5 + [{"status": "AVAILABLE"}])
    time = FakeTime()
    line = accept_agreement(plane, missing(), AgreementWait(max_delay=10, clock=time.clock, sleep=time.sleep))
    assert plane.created == [(CORE.model_id, "token-1")]
    assert time.sleeps == [2, 4, 8, 10, 10]
    assert line == f"agreement {CORE.model_id} in us-west-2: created from offer o-1; AVAILABLE after 34 s"


def test_the_wait_is_bounded() -> None:
    time = FakeTime()
    wait = AgreementWait(timeout=60, clock=time.clock, sleep=time.sleep)
    with pytest.raises(CliError, match=r"still PENDING after 60 s \(waited up to 60 s\); run again later"):
        accept_agreement(ControlPlane([{"status": "PENDING"}]), missing(), wait)
    assert time.sleeps == [2, 4, 8, 16, 30]
    assert sum(time.sleeps) <= wait.timeout


def test_a_pending_agreement_is_waited_for_without_creating_another() -> None:
    plane = ControlPlane([{"status": "AVAILABLE"}])
    time = FakeTime()
    line = accept_agreement(plane, missing("PENDING"), AgreementWait(clock=time.clock, sleep=time.sleep))
    assert (plane.created, time.sleeps) == ([], [])
    assert line.endswith("already requested (PENDING); AVAILABLE after 0 s")


def test_an_agreement_in_error_is_reported_with_its_message() -> None:
    plane = ControlPlane([{"status": "PENDING"}, {"status": "ERROR", "errorMessage": "payment method missing"}])
    time = FakeTime()
    with pytest.raises(CliError, match=r"agreement is ERROR \(payment method missing\)"):
        accept_agreement(plane, missing(), AgreementWait(clock=time.clock, sleep=time.sleep))


def test_a_model_without_an_offer_is_an_error() -> None:
    with pytest.raises(CliError, match="offers no AWS Marketplace agreement"):
        accept_agreement(ControlPlane([{"status": "NOT_AVAILABLE"}], offers=[]), missing(), AgreementWait())


@pytest.mark.parametrize(
    "make",
    [
        lambda: AgreementWait(timeout=0),
        lambda: AgreementWait(first_delay=0),
        lambda: AgreementWait(first_delay=40, max_delay=30),
        lambda: AgreementWait(factor=0.5),
    ],
    ids=["no-timeout", "no-delay", "delay-over-max", "shrinking"],
)
def test_a_bad_wait_is_refused(make: Callable[[], AgreementWait]) -> None:
    with pytest.raises(ValueError, match="AgreementWait needs"):
        make()
