"""Scheduled Lambda: asks Bedrock's control plane about every entry of the model chain, once a day, and e-mails the
team (one SNS message to ``ALERT_TOPIC_ARN``) when an entry is Legacy, reaches its end of life within
``MODEL_WATCH_DAYS``, is past it, is not offered in its region, or lacks access or its Marketplace agreement.

The verdict is the core's (``imagegen.model_status``), the same ``imagegen models`` prints before a deploy; this
module reads the settings, wires the clients and publishes. Nothing is sent when all is well. A misconfiguration
or an unreachable control plane fails the invocation, which the watch's own Errors alarm reports.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_ID, env_int
from imagegen.errors import ConfigurationError
from imagegen.model_status import ClientFactory, alert_text, check_chain, make_control_client, watch_findings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_sns import SNSClient

logger = Logger(service="imagegen-model-watch")

DAYS_VARIABLE = "MODEL_WATCH_DAYS"
TOPIC_VARIABLE = "ALERT_TOPIC_ARN"
#: How far ahead an announced end of life is reported, in days, and the range ``MODEL_WATCH_DAYS`` may take.
DEFAULT_WATCH_DAYS = 60
WATCH_DAYS_RANGE = (1, 365)
_TOPIC_ARN = re.compile(
    r"^arn:aws[a-z-]*:sns:[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$"
)

#: Publishes one message: (topic ARN, subject, body) -> message id.
Publisher = Callable[[str, str, str], str]


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """What the watch reads from its environment."""

    chain: str
    entries: tuple[ModelEntry, ...]
    topic_arn: str
    days: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WatchSettings:
        """The settings in ``env`` (default ``os.environ``); a bad value is a ``ConfigurationError`` naming the
        variable and its rule."""
        env = os.environ if env is None else env
        chain = env.get("MODEL_ID", "").strip() or DEFAULT_MODEL_ID
        region = env.get("BEDROCK_REGION", "").strip() or DEFAULT_BEDROCK_REGION
        entries = parse_chain(chain, region)
        topic_arn = env.get(TOPIC_VARIABLE, "").strip()
        if not _TOPIC_ARN.fullmatch(topic_arn):
            raise _bad(f"{TOPIC_VARIABLE} must be the ARN of an SNS topic, got {topic_arn!r}")
        try:
            days = env_int(env, DAYS_VARIABLE, DEFAULT_WATCH_DAYS, *WATCH_DAYS_RANGE)
        except ValueError as exc:
            raise _bad(f"{exc} (days before an announced end of life that the watch reports it)") from None
        return cls(chain, entries, topic_arn, days)


def run(settings: WatchSettings, client_for: ClientFactory, publish: Publisher, today: date) -> dict[str, Any]:
    """One watch: check the chain, publish one message when there are findings; returns the summary."""
    checks = check_chain(settings.entries, client_for)
    findings = watch_findings(checks, today=today, days=settings.days)
    message_id = ""
    if findings:
        subject, body = alert_text(findings, settings.chain)
        message_id = publish(settings.topic_arn, subject, body)
    return {
        "chain": settings.chain,
        "days": settings.days,
        "today": today.isoformat(),
        "entries": {str(check.entry): check.verdict for check in checks},
        "findings": [finding.line() for finding in findings],
        "message_id": message_id,
    }


@functools.cache
def control_client(region: str) -> Any:
    """One control-plane client per region and container."""
    return make_control_client(region)


@functools.cache
def _sns_client(region: str) -> SNSClient:
    return boto3.client("sns", region_name=region)


def publish_to_sns(topic_arn: str, subject: str, body: str) -> str:
    """Publish to the topic, in the topic's own region; returns the message id."""
    region = topic_arn.split(":")[3]  # from_env checked the ARN's shape
    return _sns_client(region).publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"]


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The EventBridge schedule's target: the event carries nothing the watch needs."""
    try:
        settings = WatchSettings.from_env()
    except ConfigurationError as exc:
        logger.error("model watch misconfigured", extra={"detail": exc.detail})
        raise
    summary = run(settings, control_client, publish_to_sns, datetime.now(UTC).date())
    if summary["findings"]:
        logger.warning("model watch: problems with the model chain, alert sent", extra=summary)
    else:
        logger.info("model watch: every entry is fine", extra=summary)
    return summary


def _bad(detail: str) -> ConfigurationError:
    return ConfigurationError("The model watch is misconfigured.", detail=detail)
