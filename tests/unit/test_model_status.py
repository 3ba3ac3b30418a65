"""The one verdict on the model chain (``imagegen models`` and the lifecycle watch) from what Bedrock's control plane
answers, and what the watch warns about. A fake control plane: no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagegen.chain import ModelEntry
from imagegen.model_status import ModelCheck, alert_text, check_entry, serving_check, watch_findings

CORE = ModelEntry("stability.stable-image-core-v1:1", "us-west-2")
TITAN = ModelEntry("amazon.titan-image-generator-v1", "us-east-1")
AVAILABLE = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
             "regionAvailability": "AVAILABLE", "agreementAvailability": {"status": "AVAILABLE"}}  # fmt: skip
TODAY = date(2026, 12, 3)
EOL_MESSAGE = "This model version has reached the end of its life."


class ControlPlane:
    def __init__(self, lifecycle: dict[str, Any] | Exception, availability: dict[str, Any] | None = None) -> None:
        self.lifecycle, self.availability = lifecycle, availability or AVAILABLE

    def get_foundation_model(self, modelIdentifier: str) -> dict[str, Any]:
        if isinstance(self.lifecycle, Exception):
            raise self.lifecycle
        return {"modelDetails": {"modelId": modelIdentifier, "modelLifecycle": self.lifecycle}}

    def get_foundation_model_availability(self, modelId: str) -> dict[str, Any]:
        return self.availability


def check(plane: ControlPlane, entry: ModelEntry = CORE) -> ModelCheck:
    return check_entry(entry, lambda _region: plane)


def error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetFoundationModel")


def test_an_active_model_with_its_agreement_is_usable() -> None:
    result = check(ControlPlane({"status": "ACTIVE"}))
    assert (result.usable, result.agreement, result.verdict) == (True, "AVAILABLE", "usable")


@pytest.mark.parametrize("status", ["PENDING", "NOT_AVAILABLE", "ERROR"])
def test_a_missing_agreement_names_its_status_its_error_and_the_command(status: str) -> None:
    availability = {**AVAILABLE, "agreementAvailability": {"status": status, "errorMessage": "offer expired"}}
    result = check(ControlPlane({"status": "ACTIVE"}, availability))
    assert not result.usable
    assert (result.agreement, result.agreement_error) == (status, "offer expired")
    assert f"no AWS Marketplace agreement ({status}: offer expired)" in result.problem
    assert "imagegen models --accept-agreements" in result.problem
    assert "console" not in result.problem  # the model-access page is retired


def test_the_entry_that_would_serve_is_the_first_offered_and_alive() -> None:
    dead = check(ControlPlane(error("ResourceNotFoundException", EOL_MESSAGE)), TITAN)
    blocked = check(ControlPlane({"status": "ACTIVE"}, {**AVAILABLE, "agreementAvailability": {"status": "PENDING"}}))
    assert serving_check([dead, blocked]) is blocked  # it would serve, but has no agreement yet
    assert serving_check([dead]) is None


def test_all_is_well_is_no_finding() -> None:
    checks = [check(ControlPlane({"status": "ACTIVE"}))]
    assert watch_findings(checks, today=TODAY, days=60) == []


def test_a_legacy_model_is_a_finding_with_its_date_and_days_left() -> None:
    legacy = check(ControlPlane({"status": "LEGACY", "endOfLifeTime": datetime(2027, 1, 15, tzinfo=UTC)}))
    [finding] = watch_findings([legacy], today=TODAY, days=60)
    assert (finding.entry, finding.when) == (CORE, "2027-01-15")
    assert finding.state == "Legacy, end of life in 43 days"
    assert "Put an active model first in MODEL_ID" in finding.action


WINDOW = [(date(2027, 1, 31), 60, True), (date(2027, 2, 1), 60, True), (date(2027, 2, 2), 60, False),
          (date(2027, 1, 31), 30, False)]  # fmt: skip


@pytest.mark.parametrize(("end", "days", "found"), WINDOW)
def test_an_active_model_is_a_finding_once_its_end_of_life_is_within_the_window(
    end: date, days: int, found: bool
) -> None:
    active = check(ControlPlane({"status": "ACTIVE", "endOfLifeTime": datetime.combine(end, datetime.min.time(), UTC)}))
    assert bool(watch_findings([active], today=TODAY, days=days)) is found


def test_every_unusable_state_is_a_finding_and_the_message_names_each() -> None:
    checks = [
        check(ControlPlane(error("ResourceNotFoundException", EOL_MESSAGE)), TITAN),
        check(ControlPlane(error("ValidationException", "The provided model identifier is invalid."))),
        check(ControlPlane({"status": "ACTIVE"}, {**AVAILABLE, "authorizationStatus": "NOT_AUTHORIZED"})),
        check(ControlPlane({"status": "ACTIVE"}, {**AVAILABLE, "agreementAvailability": {"status": "NOT_AVAILABLE"}})),
    ]  # fmt: skip
    findings = watch_findings(checks, today=TODAY, days=60)
    assert [finding.state.split(" ")[0] for finding in findings] == ["end", "not", "no", "no"]
    subject, body = alert_text(findings, "a,b")
    assert subject == "imagegen model watch: 4 problem(s) with the model chain"
    assert body.splitlines()[0] == "The model chain (MODEL_ID) is a,b."
    assert [line for line in body.splitlines() if line.startswith("- ")] == [finding.line() for finding in findings]
    assert "amazon.titan-image-generator-v1@us-east-1: end of life" in body
