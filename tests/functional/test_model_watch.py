"""The lifecycle watch's handler against moto's SNS: one message on the alert topic, read back through an SQS
subscription as an e-mail subscriber would get it, when the chain has a problem; none when all is well; a bad
MODEL_WATCH_DAYS fails the invocation. Bedrock's control plane is a fake per region, or the Bedrock emulator's
(in this process, real boto3 clients over HTTP) with its lifecycle and agreement overrides."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bedrock_emulator.config import EmulatorConfig
from bedrock_emulator.server import BedrockEmulator
from imagegen.errors import ConfigurationError
from model_watch import app
from tests.fakes import AVAILABLE_MODEL, FakeControlPlane, FakeLambdaContext

REGION = "eu-west-1"
TITAN, CORE = "amazon.titan-image-generator-v1", "stability.stable-image-core-v1:1"
CHAIN = f"{TITAN}@us-east-1,{CORE}@us-west-2"
AVAILABLE = AVAILABLE_MODEL
EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@dataclass
class Topic:
    arn: str
    queue_url: str

    def messages(self) -> list[dict[str, Any]]:
        """Every notification delivered so far (SNS's JSON envelope: Subject, Message, ...)."""
        sqs = boto3.client("sqs", region_name=REGION)
        received = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(message["Body"]) for message in received.get("Messages", [])]


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    with mock_aws():
        app._sns_client.cache_clear()
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="imagegen-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("ALERT_TOPIC_ARN", arn)
        monkeypatch.setenv("MODEL_ID", CHAIN)
        monkeypatch.delenv("MODEL_WATCH_DAYS", raising=False)
        yield Topic(arn, queue_url)
    app._sns_client.cache_clear()


def control_plane(monkeypatch: pytest.MonkeyPatch, **planes: FakeControlPlane) -> None:
    """The watch's control-plane clients, by region (us-east-1, us-west-2, ...: underscores for hyphens)."""
    by_region = {region.replace("_", "-"): plane for region, plane in planes.items()}
    monkeypatch.setattr(app, "control_client", by_region.__getitem__)


def invoke() -> dict[str, Any]:
    return app.lambda_handler(EVENT, FakeLambdaContext())  # type: ignore[arg-type]


def in_days(days: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=days), datetime.min.time(), UTC)


def test_all_is_well_sends_nothing(topic: Topic, monkeypatch: pytest.MonkeyPatch) -> None:
    control_plane(monkeypatch, us_east_1=FakeControlPlane(), us_west_2=FakeControlPlane())
    summary = invoke()
    assert summary["findings"] == [] and summary["message_id"] == ""
    assert topic.messages() == []


def test_a_legacy_model_near_its_end_of_life_is_one_message(topic: Topic, monkeypatch: pytest.MonkeyPatch) -> None:
    end = in_days(20)
    control_plane(monkeypatch, us_east_1=FakeControlPlane(),
                  us_west_2=FakeControlPlane({CORE: {"status": "LEGACY", "endOfLifeTime": end}}))  # fmt: skip
    summary = invoke()
    [message] = topic.messages()
    assert message["TopicArn"] == topic.arn
    assert message["MessageId"] == summary["message_id"]
    assert message["Subject"] == "imagegen model watch: 1 problem(s) with the model chain"
    lines = message["Message"].splitlines()
    assert lines[0] == f"The model chain (MODEL_ID) is {CHAIN}."
    assert lines[2] == (
        f"- {CORE}@us-west-2: Legacy, end of life in 20 days ({end.date().isoformat()}). "
        "Put an active model first in MODEL_ID (docs/models.md) and deploy both stacks."
    )


def test_each_kind_of_problem_is_named_with_what_to_do_in_one_message(
    topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    eol_message = "This model version has reached the end of its life."
    eol = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": eol_message}}, "GetFoundationModel")
    no_agreement = {**AVAILABLE, "agreementAvailability": {"status": "NOT_AVAILABLE"}}
    not_here = {**AVAILABLE, "regionAvailability": "NOT_AVAILABLE"}
    monkeypatch.setenv("MODEL_ID", f"{CHAIN},{CORE}@eu-west-1,amazon.nova-canvas-v1:0@us-east-1")
    control_plane(
        monkeypatch,
        us_east_1=FakeControlPlane({TITAN: eol}, {"amazon.nova-canvas-v1:0": not_here}),
        us_west_2=FakeControlPlane(availability={CORE: no_agreement}),
        eu_west_1=FakeControlPlane({CORE: {"status": "ACTIVE", "endOfLifeTime": in_days(59)}}),
    )
    invoke()
    [message] = topic.messages()
    assert message["Subject"] == "imagegen model watch: 4 problem(s) with the model chain"
    body = message["Message"]
    assert f"- {TITAN}@us-east-1: end of life. Remove it from MODEL_ID." in body
    assert f"- {CORE}@us-west-2: no AWS Marketplace agreement (NOT_AVAILABLE)" in body
    assert "`imagegen models --accept-agreements`" in body
    assert f"- {CORE}@eu-west-1: reaches its end of life, end of life in 59 days" in body
    assert "- amazon.nova-canvas-v1:0@us-east-1: not offered in us-east-1. Grant it before" in body


def test_model_watch_days_moves_the_horizon(topic: Topic, monkeypatch: pytest.MonkeyPatch) -> None:
    ending = FakeControlPlane({CORE: {"status": "ACTIVE", "endOfLifeTime": in_days(90)}})
    control_plane(monkeypatch, us_east_1=FakeControlPlane(), us_west_2=ending)
    invoke()
    assert topic.messages() == []  # 90 days away, the default horizon is 60
    monkeypatch.setenv("MODEL_WATCH_DAYS", "90")
    invoke()
    assert len(topic.messages()) == 1


@pytest.mark.parametrize("days", ["0", "ninety", "400"])
def test_a_bad_model_watch_days_fails_the_invocation_and_sends_nothing(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    control_plane(monkeypatch, us_east_1=FakeControlPlane({TITAN: {"status": "LEGACY"}}), us_west_2=FakeControlPlane())
    monkeypatch.setenv("MODEL_WATCH_DAYS", days)
    with pytest.raises(ConfigurationError) as raised:
        invoke()
    assert raised.value.detail.startswith("MODEL_WATCH_DAYS must be")
    assert topic.messages() == []


def test_the_date_in_the_message_is_todays(topic: Topic, monkeypatch: pytest.MonkeyPatch) -> None:
    control_plane(monkeypatch, us_east_1=FakeControlPlane(), us_west_2=FakeControlPlane({CORE: {"status": "LEGACY"}}))
    summary = invoke()
    assert summary["today"] == datetime.now(UTC).date().isoformat()
    [message] = topic.messages()
    assert f"- {CORE}@us-west-2: Legacy. Put an active model first" in message["Message"]


# ---- against the Bedrock emulator's control plane -------------------------------------------------------
@pytest.fixture
def emulated_control_plane(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., BedrockEmulator]]:
    """Starts an emulator with the given lifecycle and agreement overrides and points the watch's real control-plane
    clients (``AWS_ENDPOINT_URL_BEDROCK``) at it; stopped at the end."""
    started: list[BedrockEmulator] = []

    def start(*, lifecycle: str = "", agreements: str = "all") -> BedrockEmulator:
        emulator = BedrockEmulator(EmulatorConfig.from_env({}, lifecycle=lifecycle, agreements=agreements)).start()
        started.append(emulator)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK", emulator.url)
        app.control_client.cache_clear()
        return emulator

    yield start
    app.control_client.cache_clear()
    for emulator in started:
        emulator.stop()


EOL_DATE = date(2027, 1, 15)


def test_a_legacy_model_with_an_end_of_life_date_from_the_emulator_is_reported(
    topic: Topic, emulated_control_plane: Callable[..., BedrockEmulator]
) -> None:
    emulated_control_plane(lifecycle=f"{TITAN}=ACTIVE@*,{CORE}=LEGACY:{EOL_DATE.isoformat()}")
    summary = invoke()
    assert summary["entries"] == {
        f"{TITAN}@us-east-1": "usable",
        f"{CORE}@us-west-2": f"usable (Legacy, end of life {EOL_DATE.isoformat()})",
    }
    [message] = topic.messages()
    days = (EOL_DATE - datetime.now(UTC).date()).days
    assert message["Message"].splitlines()[2:] == [
        f"- {CORE}@us-west-2: Legacy, end of life in {days} days ({EOL_DATE.isoformat()}). "
        "Put an active model first in MODEL_ID (docs/models.md) and deploy both stacks."
    ]


def test_a_fresh_account_without_agreements_is_told_to_accept_them(
    topic: Topic, emulated_control_plane: Callable[..., BedrockEmulator]
) -> None:
    emulated_control_plane(lifecycle=f"{TITAN}=ACTIVE@*,{CORE}=ACTIVE@*", agreements="none")
    invoke()
    [message] = topic.messages()
    [line] = message["Message"].splitlines()[2:]
    assert line.startswith(f"- {CORE}@us-west-2: no AWS Marketplace agreement (")
    assert "`imagegen models --accept-agreements`" in line


def test_the_emulators_chain_as_it_is_today_names_the_retired_model(
    topic: Topic, emulated_control_plane: Callable[..., BedrockEmulator]
) -> None:
    emulated_control_plane()  # the lifecycle table as of its date: Titan G1 has reached its end of life
    invoke()
    [message] = topic.messages()
    # One finding: Stable Image Core, active and agreed, is not named.
    [line] = message["Message"].splitlines()[2:]
    assert line.startswith(f"- {TITAN}@us-east-1: end of life. Remove it from MODEL_ID.")
