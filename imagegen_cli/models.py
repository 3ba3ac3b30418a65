"""``imagegen models``: can each entry of the model chain be used? Asks Bedrock's control plane, before a deploy.

For each entry: GetFoundationModel (the lifecycle: ACTIVE, LEGACY, or end of life) and
GetFoundationModelAvailability (model access, the Marketplace agreement, the region). One row per entry;
exit 0 when at least one entry is usable, 1 with one line otherwise; a warning when the first entry is Legacy
or end of life (every container then pays a failed call per cool-down before it fails over).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from imagegen_cli.common import CliError, aws_reason

_END_OF_LIFE = re.compile(r"end of (its )?life", re.IGNORECASE)
_AVAILABLE = {"authorizationStatus": "AUTHORIZED", "entitlementAvailability": "AVAILABLE",
              "regionAvailability": "AVAILABLE"}  # fmt: skip


@dataclass(frozen=True)
class ModelCheck:
    """What the control plane says about one entry."""

    entry: ModelEntry
    lifecycle: str  # ACTIVE, LEGACY, END_OF_LIFE, NOT_IN_REGION, NOT_FOUND, UNKNOWN
    access: str  # AVAILABLE, or what is missing
    problem: str = ""  # empty: usable

    @property
    def usable(self) -> bool:
        return not self.problem

    @property
    def verdict(self) -> str:
        return "usable" if self.usable else f"unusable: {self.problem}"


ClientFactory = Callable[[str], Any]


def check_entry(entry: ModelEntry, client_for: ClientFactory) -> ModelCheck:
    """Ask the control plane of ``entry``'s region about its foundation model."""
    bedrock = client_for(entry.region)
    model_id = entry.base_model_id
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
    lifecycle = str((details.get("modelLifecycle") or {}).get("status", "ACTIVE"))
    try:
        availability = bedrock.get_foundation_model_availability(modelId=model_id)
    except ClientError as exc:
        return ModelCheck(entry, lifecycle, "UNKNOWN", f"cannot read model access ({aws_reason(exc)})")
    missing = [
        f"{name} {availability.get(name)}" for name, good in _AVAILABLE.items() if availability.get(name) != good
    ]
    agreement = (availability.get("agreementAvailability") or {}).get("status", "AVAILABLE")
    if agreement != "AVAILABLE":
        missing.append(f"agreement {agreement}")
    if missing:
        return ModelCheck(entry, lifecycle, ", ".join(missing), "no access (enable model access in the console)")
    return ModelCheck(entry, lifecycle, "AVAILABLE")


def check_chain(entries: tuple[ModelEntry, ...], client_for: ClientFactory) -> list[ModelCheck]:
    return [check_entry(entry, client_for) for entry in entries]


def table(checks: list[ModelCheck]) -> str:
    rows = [("MODEL", "REGION", "LIFECYCLE", "ACCESS", "VERDICT")]
    rows += [(c.entry.model_id, c.entry.region, c.lifecycle, c.access, c.verdict) for c in checks]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in rows)  # fmt: skip


def run_models(model_chain: str | None, region: str | None) -> int:
    """Print the table; exit status 0 when an entry is usable, else ``CliError`` (one line, status 1)."""
    chain_value = model_chain or os.environ.get("MODEL_ID") or DEFAULT_MODEL_ID
    default_region = region or os.environ.get("BEDROCK_REGION") or DEFAULT_BEDROCK_REGION
    try:
        entries = parse_chain(chain_value, default_region, variable="--model-id")
    except ConfigurationError as error:
        raise CliError(error.detail) from None
    clients: dict[str, Any] = {}

    def client_for(entry_region: str) -> Any:
        if entry_region not in clients:
            clients[entry_region] = boto3.client("bedrock", region_name=entry_region)
        return clients[entry_region]

    try:
        checks = check_chain(entries, client_for)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot ask Bedrock about the models: {aws_reason(exc)}") from None
    print(table(checks))
    first = checks[0]
    if first.lifecycle in {"LEGACY", "END_OF_LIFE"}:
        state = "Legacy" if first.lifecycle == "LEGACY" else "end of life"
        print(
            f"warning: the first model, {first.entry}, is {state}: every container pays a failed call per cool-down "
            "before it fails over. Put a usable model first in MODEL_ID.",
            file=sys.stderr,
        )
    if not any(check.usable for check in checks):
        raise CliError(f"no usable model in {chain_value}: requests would fail with NoModelAvailable")
    return 0
