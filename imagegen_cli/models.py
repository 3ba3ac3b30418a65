"""``imagegen models``: can each entry of the model chain be used? Asks Bedrock's control plane, before a deploy.

For each entry: GetFoundationModel (the lifecycle: ACTIVE, LEGACY, or end of life; not offered in the region)
and GetFoundationModelAvailability (model access, the Marketplace agreement, the region). One row per entry;
exit 0 when at least one entry is usable, 1 with one line otherwise; a warning when the first entry is Legacy
(it still works, until its end of life) or end of life (every container then pays a failed call per cool-down
before it fails over). A chain the service could not start with (malformed, or naming a model it has no
adapter for) is one line and exit 1, before any call.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from imagegen.models import SUPPORTED_MODEL_PREFIXES, adapter_for
from imagegen_cli.common import CliError, aws_reason

_END_OF_LIFE = re.compile(r"end of (its )?life", re.IGNORECASE)
#: What GetFoundationModelAvailability says when the account may invoke the model, and how a row names a
#: field that says otherwise.
_AVAILABLE = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
              "regionAvailability": "AVAILABLE"}  # fmt: skip
_MISSING = {"authorizationStatus": "{}", "entitlementAvailability": "entitlement {}", "regionAvailability": "region {}"}
_CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=20)


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
        return ModelCheck(entry, "UNKNOWN", "-", f"cannot read the model ({aws_reason(exc)})")
    lifecycle_details = details.get("modelLifecycle") or {}
    lifecycle = str(lifecycle_details.get("status", "ACTIVE"))
    end = lifecycle_details.get("endOfLifeTime")
    end_of_life = end.date().isoformat() if isinstance(end, datetime) else ""
    try:
        availability = bedrock.get_foundation_model_availability(modelId=model_id)
    except ClientError as exc:
        return ModelCheck(entry, lifecycle, "UNKNOWN", f"cannot read model access ({aws_reason(exc)})", end_of_life)
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


def table(checks: list[ModelCheck]) -> str:
    rows = [("MODEL", "REGION", "LIFECYCLE", "ACCESS", "VERDICT")]
    rows += [(c.entry.model_id, c.entry.region, c.lifecycle, c.access, c.verdict) for c in checks]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in rows)  # fmt: skip


def first_entry_warning(first: ModelCheck) -> str | None:
    """The warning when the chain starts with a Legacy or end-of-life model; ``None`` otherwise."""
    if first.lifecycle == "END_OF_LIFE":
        return (
            f"warning: the first model, {first.entry}, is end of life: every container pays a failed call per "
            "cool-down before it fails over. Put a usable model first in MODEL_ID."
        )
    if first.lifecycle == "LEGACY":
        until = f" on {first.end_of_life}" if first.end_of_life else ""
        return (
            f"warning: the first model, {first.entry}, is Legacy: it reaches end of life{until}, and Bedrock refuses "
            "it to accounts that have not used it in 15 days. Move to an active model."
        )
    return None


def resolve_chain(model_chain: str | None, region: str | None) -> tuple[str, tuple[ModelEntry, ...]]:
    """The chain to check (``--model-id``, else ``MODEL_ID``, else the default) and its entries; ``CliError``
    naming where it came from when the service could not run with it."""
    env_chain = os.environ.get("MODEL_ID", "").strip()
    source, value = (
        ("--model-id", model_chain) if model_chain else ("MODEL_ID", env_chain) if env_chain else
        ("the default MODEL_ID", DEFAULT_MODEL_ID)
    )  # fmt: skip
    default_region = region or os.environ.get("BEDROCK_REGION", "").strip() or DEFAULT_BEDROCK_REGION
    try:
        entries = parse_chain(value, default_region, variable=source)
    except ConfigurationError as error:
        raise CliError(str(error.detail)) from None
    for position, entry in enumerate(entries, start=1):
        try:
            adapter_for(entry.model_id)
        except ConfigurationError:
            supported = ", ".join(SUPPORTED_MODEL_PREFIXES)
            raise CliError(
                f"{source} entry {position} ({entry.model_id!r}) is not an image model this service supports; "
                f"supported ids start with: {supported}"
            ) from None
    return value, entries


def run_models(model_chain: str | None, region: str | None) -> int:
    """Print the table; exit status 0 when an entry is usable, else ``CliError`` (one line, status 1)."""
    chain_value, entries = resolve_chain(model_chain, region)
    clients: dict[str, Any] = {}

    def client_for(entry_region: str) -> Any:
        if entry_region not in clients:
            clients[entry_region] = boto3.client("bedrock", region_name=entry_region, config=_CLIENT_CONFIG)
        return clients[entry_region]

    try:
        checks = check_chain(entries, client_for)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot ask Bedrock about the models: {aws_reason(exc)}") from None
    print(table(checks), flush=True)
    warning = first_entry_warning(checks[0])
    if warning:
        print(warning, file=sys.stderr)
    if not any(check.usable for check in checks):
        raise CliError(f"no usable model in {chain_value}: requests would fail with NoModelAvailable")
    return 0
