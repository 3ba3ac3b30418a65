"""The lifecycle watch without AWS: its settings, and one run against a fake control plane (what it asks, in which
region, and the one message it publishes, or none)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagegen.chain import ModelEntry
from imagegen.config import DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from model_watch.app import DEFAULT_WATCH_DAYS, WatchSettings, run
from tests.fakes import AVAILABLE_MODEL, FakeControlPlane

TOPIC = "arn:aws:sns:eu-west-1:123456789012:imagegen-alerts"
TITAN = "amazon.titan-image-generator-v1"
CORE = "stability.stable-image-core-v1:1"
CHAIN = f"{TITAN}@us-east-1,{CORE}@us-west-2"
TODAY = date(2026, 12, 3)
AVAILABLE = AVAILABLE_MODEL


def eol_error() -> ClientError:
    message = "This model version has reached the end of its life."
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": message}}, "GetFoundationModel")


@dataclass
class Outbox:
    messages: list[tuple[str, str, str]] = field(default_factory=list)

    def publish(self, topic_arn: str, subject: str, body: str) -> str:
        self.messages.append((topic_arn, subject, body))
        return f"message-{len(self.messages)}"


def settings(chain: str = CHAIN, days: int = DEFAULT_WATCH_DAYS) -> WatchSettings:
    return WatchSettings.from_env({"MODEL_ID": chain, "ALERT_TOPIC_ARN": TOPIC, "MODEL_WATCH_DAYS": str(days)})


def watch(planes: dict[str, FakeControlPlane], chain: str = CHAIN, days: int = 60) -> tuple[dict[str, Any], Outbox]:
    outbox = Outbox()
    return run(settings(chain, days), planes.__getitem__, outbox.publish, TODAY), outbox


def legacy(end: date) -> dict[str, Any]:
    return {"status": "LEGACY", "endOfLifeTime": datetime.combine(end, datetime.min.time(), UTC)}


# ---- settings -------------------------------------------------------------------------------------------
def test_the_defaults_are_the_other_functions_chain_and_sixty_days() -> None:
    read = WatchSettings.from_env({"ALERT_TOPIC_ARN": TOPIC})
    assert (read.chain, read.days, read.topic_arn) == (DEFAULT_MODEL_ID, 60, TOPIC)
    assert read.entries == (ModelEntry(TITAN, "us-east-1"), ModelEntry(CORE, "us-west-2"))


def test_an_entry_without_a_region_is_in_bedrock_region() -> None:
    read = WatchSettings.from_env({"ALERT_TOPIC_ARN": TOPIC, "MODEL_ID": f"{CORE},{TITAN}@us-east-1",
                                   "BEDROCK_REGION": "us-west-2", "MODEL_WATCH_DAYS": " 30 "})  # fmt: skip
    assert read.entries == (ModelEntry(CORE, "us-west-2"), ModelEntry(TITAN, "us-east-1"))
    assert read.days == 30


@pytest.mark.parametrize(
    ("value", "rule"),
    [("sixty", "must be an integer, got 'sixty'"), ("0", "must be between 1 and 365, got 0"),
     ("366", "must be between 1 and 365, got 366"), ("2.5", "must be an integer")],
)  # fmt: skip
def test_a_bad_model_watch_days_names_the_variable_and_the_rule(value: str, rule: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        WatchSettings.from_env({"ALERT_TOPIC_ARN": TOPIC, "MODEL_WATCH_DAYS": value})
    assert raised.value.detail.startswith(f"MODEL_WATCH_DAYS {rule}")


@pytest.mark.parametrize("topic", ["", "imagegen-alerts", "arn:aws:sqs:eu-west-1:123456789012:imagegen-alerts"])
def test_the_alert_topic_must_be_an_sns_topic_arn(topic: str) -> None:
    with pytest.raises(ConfigurationError, match="ALERT_TOPIC_ARN must be the ARN of an SNS topic"):
        WatchSettings.from_env({"ALERT_TOPIC_ARN": topic})


def test_a_malformed_chain_names_model_id() -> None:
    with pytest.raises(ConfigurationError, match="MODEL_ID entry 2"):
        WatchSettings.from_env({"ALERT_TOPIC_ARN": TOPIC, "MODEL_ID": f"{TITAN},not a model"})


# ---- a run ----------------------------------------------------------------------------------------------
def test_all_is_well_publishes_nothing_and_says_so() -> None:
    planes = {"us-east-1": FakeControlPlane(), "us-west-2": FakeControlPlane()}
    summary, outbox = watch(planes)
    assert outbox.messages == []
    assert summary["findings"] == [] and summary["message_id"] == ""
    assert summary["entries"] == {f"{TITAN}@us-east-1": "usable", f"{CORE}@us-west-2": "usable"}
    # Each entry's model, asked in the entry's region.
    assert (planes["us-east-1"].asked, planes["us-west-2"].asked) == ([TITAN], [CORE])


def test_a_legacy_model_with_a_near_end_of_life_is_one_message_with_the_model_its_date_and_what_to_do() -> None:
    planes = {"us-east-1": FakeControlPlane(), "us-west-2": FakeControlPlane({CORE: legacy(date(2027, 1, 15))})}
    summary, outbox = watch(planes)
    [(topic, subject, body)] = outbox.messages
    assert topic == TOPIC
    assert subject == "imagegen model watch: 1 problem(s) with the model chain"
    assert body.splitlines()[0] == f"The model chain (MODEL_ID) is {CHAIN}."
    line = f"- {CORE}@us-west-2: Legacy, end of life in 43 days (2027-01-15). Put an active model first in MODEL_ID"
    assert line in body
    assert summary["message_id"] == "message-1"
    assert summary["findings"] == [body.splitlines()[2]]


def test_an_active_model_is_reported_only_once_its_end_of_life_is_within_the_days() -> None:
    ending = {"status": "ACTIVE", "endOfLifeTime": datetime(2027, 2, 1, tzinfo=UTC)}  # in 60 days
    planes = {"us-east-1": FakeControlPlane(), "us-west-2": FakeControlPlane({CORE: ending})}
    assert len(watch(planes, days=60)[1].messages) == 1
    assert watch(planes, days=59)[1].messages == []


def test_every_problem_of_the_chain_is_in_one_message() -> None:
    no_agreement = {**AVAILABLE, "agreementAvailability": {"status": "NOT_AVAILABLE", "errorMessage": "offer expired"}}
    invalid = ClientError({"Error": {"Code": "ValidationException", "Message": "invalid"}}, "GetFoundationModel")
    chain = f"{TITAN}@us-east-1,{CORE}@us-west-2,{CORE}@eu-west-1"
    planes = {
        "us-east-1": FakeControlPlane({TITAN: eol_error()}),
        "us-west-2": FakeControlPlane(availability={CORE: no_agreement}),
        "eu-west-1": FakeControlPlane({CORE: invalid}),
    }
    summary, outbox = watch(planes, chain)
    [(_, subject, body)] = outbox.messages
    assert subject == "imagegen model watch: 3 problem(s) with the model chain"
    assert f"- {TITAN}@us-east-1: end of life. Remove it from MODEL_ID." in body
    assert f"- {CORE}@us-west-2: no AWS Marketplace agreement (NOT_AVAILABLE: offer expired)" in body
    assert "imagegen models --accept-agreements" in body
    assert f"- {CORE}@eu-west-1: not offered in eu-west-1. Name a region that offers it (@region) in MODEL_ID." in body
    assert len(summary["findings"]) == 3


def test_a_control_plane_the_watch_may_not_read_is_reported_not_hidden() -> None:
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetFoundationModel")
    planes = {"us-east-1": FakeControlPlane({TITAN: denied}), "us-west-2": FakeControlPlane()}
    [(_, _, body)] = watch(planes)[1].messages
    assert f"- {TITAN}@us-east-1: cannot read the model (AccessDeniedException: no). Check the watch's IAM" in body


def test_a_model_the_account_may_not_invoke_is_reported_with_what_to_grant() -> None:
    denied = {**AVAILABLE, "authorizationStatus": "NOT_AUTHORIZED"}
    planes = {"us-east-1": FakeControlPlane(), "us-west-2": FakeControlPlane(availability={CORE: denied})}
    summary, outbox = watch(planes)
    [(_, _, body)] = outbox.messages
    assert f"- {CORE}@us-west-2: no access (NOT_AUTHORIZED)" in body
    assert body.endswith("Grant it before requests need it.")
    assert summary["entries"][f"{CORE}@us-west-2"].startswith("unusable: no access")
