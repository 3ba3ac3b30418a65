"""Can each entry of the model chain be used? What Bedrock's control plane says about it, and one verdict.

``imagegen models`` (before a deploy) and the ``model_watch`` function (daily) share this: for each entry,
GetFoundationModel (the lifecycle: ACTIVE, LEGACY with its end-of-life date, or end of life; not offered in the
region) and GetFoundationModelAvailability (model access, the Marketplace agreement, the region). ``check_entry``
is the verdict; ``watch_findings`` is what the watch warns about, from the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.chain import ModelEntry

_END_OF_LIFE = re.compile(r"end of (its )?life", re.IGNORECASE)
#: What GetFoundationModelAvailability says when the account may invoke the model, and how a row names a
#: field that says otherwise.
_AVAILABLE = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
              "regionAvailability": "AVAILABLE"}  # fmt: skip
_MISSING = {"authorizationStatus": "{}", "entitlementAvailability": "entitlement {}", "regionAvailability": "region {}"}
#: The control plane's clients: two attempts, short timeouts (a deploy or a daily check waits on them).
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=20)


def make_control_client(region: str) -> Any:
    """A ``bedrock`` (control plane) client for ``region``."""
    return boto3.client("bedrock", region_name=region, config=CLIENT_CONFIG)


@dataclass(frozen=True)
class ModelCheck:
    """What the control plane says about one entry."""

    entry: ModelEntry
    lifecycle: str  # ACTIVE, LEGACY, END_OF_LIFE, NOT_IN_REGION, NOT_FOUND, UNKNOWN
    access: str  # AVAILABLE, or what is missing
    problem: str = ""  # empty: usable
    #: The end-of-life date the control plane gives (YYYY-MM-DD), if any.
    end_of_life: str = ""
    #: The AWS Marketplace agreement (GetFoundationModelAvailability ``agreementAvailability``): AVAILABLE, PENDING,
    #: NOT_AVAILABLE or ERROR ("-" when the control plane could not say), and its ``errorMessage``.
    agreement: str = "-"
    agreement_error: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def verdict(self) -> str:
        if not self.usable:
            return f"unusable: {self.problem}"
        if self.lifecycle == "LEGACY":
            return f"usable (Legacy, end of life {self.end_of_life or 'not announced'})"
        return "usable"


ClientFactory = Callable[[str], Any]


def check_entry(entry: ModelEntry, client_for: ClientFactory) -> ModelCheck:
    """Ask the control plane of ``entry``'s region about its foundation model."""
    bedrock = client_for(entry.region)
    model_id = entry.base_model_id  # an inference profile is not a foundation model
    try:
        details = bedrock.get_foundation_model(modelIdentifier=model_id)["modelDetails"]
    except ClientError as exc:
        code, message = exc.response.get("Error", {}).get("Code", ""), exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException" and _END_OF_LIFE.search(message):
            return ModelCheck(entry, "END_OF_LIFE", "-", "end of life")
        if code == "ResourceNotFoundException":
            return ModelCheck(entry, "NOT_FOUND", "-", "not found")
        if code == "ValidationException":
            return ModelCheck(entry, "NOT_IN_REGION", "-", f"not offered in {entry.region}")
        return ModelCheck(entry, "UNKNOWN", "-", f"cannot read the model ({_reason(exc)})")
    lifecycle_details = details.get("modelLifecycle") or {}
    lifecycle = str(lifecycle_details.get("status", "ACTIVE"))
    end = lifecycle_details.get("endOfLifeTime")
    end_of_life = end.date().isoformat() if isinstance(end, datetime) else ""
    try:
        availability = bedrock.get_foundation_model_availability(modelId=model_id)
    except ClientError as exc:
        return ModelCheck(entry, lifecycle, "UNKNOWN", f"cannot read model access ({_reason(exc)})", end_of_life)
    missing = [
        _MISSING[name].format(availability.get(name))
        for name, good in _AVAILABLE.items()
        if availability.get(name) != good
    ]
    agreement_details = availability.get("agreementAvailability") or {}
    agreement = str(agreement_details.get("status", "AVAILABLE"))
    agreement_error = str(agreement_details.get("errorMessage") or "")
    if agreement != "AVAILABLE":
        missing.append(f"agreement {agreement}")
    if not missing:
        return ModelCheck(entry, lifecycle, "AVAILABLE", end_of_life=end_of_life, agreement=agreement)
    access = ", ".join(missing)
    if availability.get("regionAvailability") not in (None, "AVAILABLE"):
        problem = f"not offered in {entry.region}"
    elif lifecycle == "LEGACY" and availability.get("authorizationStatus") == "NOT_AUTHORIZED":
        problem = (
            "not authorized: a Legacy model refuses accounts that have not used it in the last 30 days "
            "(or its access was never granted)"
        )
    elif agreement != "AVAILABLE":
        detail = f": {agreement_error}" if agreement_error else ""
        problem = (
            f"no AWS Marketplace agreement ({agreement}{detail}); create it once with "
            f"`imagegen models --accept-agreements` (CreateFoundationModelAgreement) in {entry.region}"
        )
    else:
        problem = (
            f"no access ({access}): the caller may not invoke it, or its Marketplace subscription failed; see "
            "docs/models.md, Access"
        )
    return ModelCheck(entry, lifecycle, access, problem, end_of_life, agreement, agreement_error)


def check_chain(entries: tuple[ModelEntry, ...], client_for: ClientFactory) -> list[ModelCheck]:
    return [check_entry(entry, client_for) for entry in entries]


def serving_check(checks: list[ModelCheck]) -> ModelCheck | None:
    """The entry that would serve: the first one offered in its region and not at its end of life (whether or not
    its access and agreement are in place), or ``None``."""
    return next((check for check in checks if check.lifecycle in {"ACTIVE", "LEGACY"}), None)


@dataclass(frozen=True)
class Finding:
    """Something the operators must act on for one entry of the chain."""

    entry: ModelEntry
    state: str
    #: The date it happens or happened (YYYY-MM-DD), if known.
    when: str
    action: str

    def line(self) -> str:
        when = f" ({self.when})" if self.when else ""
        return f"- {self.entry}: {self.state}{when}. {self.action}"


_REPLACE = "Put an active model first in MODEL_ID (docs/models.md) and deploy both stacks."


def watch_findings(checks: list[ModelCheck], *, today: date, days: int) -> list[Finding]:
    """What the lifecycle watch warns about: an entry that is Legacy, reaches its end of life within ``days``, is
    past it or unknown, is not offered in its region, or lacks access or its Marketplace agreement. Empty when all
    is well."""
    findings: list[Finding] = []
    horizon = today + timedelta(days=days)
    for check in checks:
        end = date.fromisoformat(check.end_of_life) if check.end_of_life else None
        if check.lifecycle in {"END_OF_LIFE", "NOT_FOUND"}:
            findings.append(
                Finding(check.entry, check.problem, check.end_of_life, f"Remove it from MODEL_ID. {_REPLACE}")
            )
        elif check.lifecycle == "NOT_IN_REGION":
            findings.append(
                Finding(check.entry, check.problem, "", "Name a region that offers it (@region) in MODEL_ID.")
            )
        elif check.lifecycle == "UNKNOWN":
            findings.append(Finding(check.entry, check.problem, "", "Check the watch's IAM and Bedrock's health."))
        else:
            if check.lifecycle == "LEGACY" or (end is not None and end <= horizon):
                state = "Legacy" if check.lifecycle == "LEGACY" else "reaches its end of life"
                if end is not None:
                    state += f", end of life in {(end - today).days} days"
                findings.append(Finding(check.entry, state, check.end_of_life, _REPLACE))
            if not check.usable:
                findings.append(Finding(check.entry, check.problem, "", "Grant it before requests need it."))
    return findings


def alert_text(findings: list[Finding], chain: str) -> tuple[str, str]:
    """(subject, body) of the watch's one message for ``findings``."""
    subject = f"imagegen model watch: {len(findings)} problem(s) with the model chain"
    body = "\n".join([f"The model chain (MODEL_ID) is {chain}.", "", *(finding.line() for finding in findings)])
    return subject[:100], body


def _reason(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)
