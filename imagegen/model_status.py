"""Can each entry of the model chain be used? What Bedrock's control plane says about it, and one verdict.

``imagegen models`` (before a deploy) and the ``model_watch`` function (daily) share this: for each entry,
GetFoundationModel (the lifecycle: ACTIVE, LEGACY with its end-of-life date, or end of life; not offered in the
region) and GetFoundationModelAvailability (model access, the Marketplace agreement, the region).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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
    agreement = (availability.get("agreementAvailability") or {}).get("status", "AVAILABLE")
    if agreement != "AVAILABLE":
        missing.append(f"agreement {agreement}")
    if not missing:
        return ModelCheck(entry, lifecycle, "AVAILABLE", end_of_life=end_of_life)
    access = ", ".join(missing)
    if availability.get("regionAvailability") not in (None, "AVAILABLE"):
        problem = f"not offered in {entry.region}"
    elif lifecycle == "LEGACY" and availability.get("authorizationStatus") == "NOT_AUTHORIZED":
        problem = (
            "not authorized: a Legacy model refuses accounts that have not used it in the last 15 days "
            "(or model access is not enabled)"
        )
    else:
        problem = f"no model access: enable it once in the Bedrock console (Model access) in {entry.region}"
    return ModelCheck(entry, lifecycle, access, problem, end_of_life)


def check_chain(entries: tuple[ModelEntry, ...], client_for: ClientFactory) -> list[ModelCheck]:
    return [check_entry(entry, client_for) for entry in entries]


def _reason(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)
