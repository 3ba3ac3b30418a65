"""``imagegen models``: can each entry of the model chain be used? Asks Bedrock's control plane, before a deploy.

For each entry: GetFoundationModel (the lifecycle: ACTIVE, LEGACY, or end of life; not offered in the region)
and GetFoundationModelAvailability (model access, the AWS Marketplace agreement, the region); the verdict is the
core's (``imagegen.model_status``), shared with the lifecycle watch. One row per entry. Exit 1 with one line when
no entry is usable, or when the entry that would serve (the first one offered and not end of life) lacks its
agreement; else 0. A warning when the first entry is Legacy (it still works, until its end of life) or end of life
(every container then pays a failed call per cool-down before it fails over). A chain the service could not start
with (malformed, or naming a model it has no adapter for) is one line and exit 1, before any call.

``--accept-agreements`` first creates the missing agreements of the entries offered in their region:
ListFoundationModelAgreementOffers, CreateFoundationModelAgreement with the offer's token, then a bounded wait
with backoff (``AgreementWait``) until GetFoundationModelAvailability says AVAILABLE. It is idempotent: an
agreement in place is left alone, and one created meanwhile (ConflictException) is waited for like a new one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from imagegen.model_status import (
    ClientFactory,
    ModelCheck,
    check_chain,
    make_control_client,
    serving_check,
)
from imagegen.models import SUPPORTED_MODEL_PREFIXES, adapter_for
from imagegen_cli.common import CliError, aws_reason

__all__ = [
    "AgreementWait",
    "accept_agreement",
    "add_models_flags",
    "first_entry_warning",
    "resolve_chain",
    "run_models",
    "run_models_command",
    "table",
]

#: The lifecycle states of an entry whose agreement can be created (offered in its region, not end of life).
_OFFERED = frozenset({"ACTIVE", "LEGACY"})


@dataclass(frozen=True)
class AgreementWait:
    """How long ``--accept-agreements`` waits for a new agreement: polls after ``first_delay`` seconds, each delay
    ``factor`` times the last (at most ``max_delay``), until ``timeout`` seconds have passed. ``clock`` and
    ``sleep`` are injectable, so tests wait for nothing."""

    timeout: float = 300.0
    first_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], object] = time.sleep

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not 0 < self.first_delay <= self.max_delay or not self.factor >= 1:
            raise ValueError(
                "AgreementWait needs timeout > 0, 0 < first_delay <= max_delay and factor >= 1, got "
                f"timeout={self.timeout}, first_delay={self.first_delay}, max_delay={self.max_delay}, "
                f"factor={self.factor}"
            )


def add_models_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``imagegen models``."""
    parser.add_argument(
        "--model-id", help="the chain, e.g. 'a@us-east-1,b@us-west-2' (default: $MODEL_ID, else the default chain)"
    )
    parser.add_argument(
        "--accept-agreements",
        action="store_true",
        help="first create the missing AWS Marketplace agreements of the chain's models "
        "(ListFoundationModelAgreementOffers, CreateFoundationModelAgreement) and wait until they are AVAILABLE",
    )


def run_models_command(args: argparse.Namespace) -> int:
    """``imagegen models`` from the parsed flags (``add_models_flags``, and the global ``--region``)."""
    return run_models(args.model_id, args.region, accept_agreements=args.accept_agreements)


def table(checks: list[ModelCheck]) -> str:
    rows = [("MODEL", "REGION", "LIFECYCLE", "AGREEMENT", "ACCESS", "VERDICT")]
    rows += [(c.entry.model_id, c.entry.region, c.lifecycle, c.agreement, c.access, c.verdict) for c in checks]
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
            "it to accounts that have not used it in 30 days. Move to an active model."
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


def run_models(
    model_chain: str | None,
    region: str | None,
    *,
    accept_agreements: bool = False,
    wait: AgreementWait | None = None,
    client_for: ClientFactory | None = None,
) -> int:
    """Print the table (after creating the missing agreements, with ``accept_agreements``); exit status 0, else
    ``CliError`` (one line, status 1). ``client_for(region)``: the control plane's client (default: boto3's)."""
    chain_value, entries = resolve_chain(model_chain, region)
    client_for = client_for or _cached(make_control_client)
    try:
        checks = check_chain(entries, client_for)
        if accept_agreements:
            accepted: set[tuple[str, str]] = set()
            for check in checks:
                key = (check.entry.base_model_id, check.entry.region)
                if check.lifecycle in _OFFERED and key not in accepted:
                    accepted.add(key)
                    line = accept_agreement(client_for(check.entry.region), check, wait or AgreementWait())
                    print(line, flush=True)
            checks = check_chain(entries, client_for)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot ask Bedrock about the models: {aws_reason(exc)}") from None
    print(table(checks), flush=True)
    warning = first_entry_warning(checks[0])
    if warning:
        print(warning, file=sys.stderr)
    serving = serving_check(checks)
    if serving is not None and serving.agreement not in {"AVAILABLE", "-"}:  # "-": unread, a problem already
        raise CliError(
            f"the model that would serve, {serving.entry}, has no AWS Marketplace agreement ({serving.agreement}): "
            "run `imagegen models --accept-agreements` once, as a principal allowed "
            "bedrock:CreateFoundationModelAgreement (see docs/models.md, Access)"
        )
    if not any(check.usable for check in checks):
        raise CliError(f"no usable model in {chain_value}: requests would fail with NoModelAvailable")
    return 0


def accept_agreement(bedrock: Any, check: ModelCheck, wait: AgreementWait) -> str:
    """Make sure ``check``'s model has its AWS Marketplace agreement; one line saying what was done. Waits while
    the agreement is PENDING (or not yet visible: NOT_AVAILABLE). Raises ``CliError`` when the model has no offer,
    the agreement is in ERROR, or it is not AVAILABLE in time."""
    entry, model_id = check.entry, check.entry.base_model_id
    if check.agreement == "AVAILABLE":
        return f"agreement {model_id} in {entry.region}: AVAILABLE already"
    done = "already requested (PENDING)"
    if check.agreement != "PENDING":
        offers = bedrock.list_foundation_model_agreement_offers(modelId=model_id, offerType="PUBLIC")["offers"]
        if not offers:
            raise CliError(f"{entry}: Bedrock offers no AWS Marketplace agreement for {model_id}")
        offer = offers[0]
        try:
            bedrock.create_foundation_model_agreement(modelId=model_id, offerToken=offer["offerToken"])
            done = f"created from offer {offer.get('offerId', '?')}"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            done = "already exists (ConflictException)"
    started, delay = wait.clock(), 0.0
    while True:
        agreement = bedrock.get_foundation_model_availability(modelId=model_id).get("agreementAvailability") or {}
        status = str(agreement.get("status", "AVAILABLE"))
        waited = wait.clock() - started
        if status == "AVAILABLE":
            return f"agreement {model_id} in {entry.region}: {done}; AVAILABLE after {waited:.0f} s"
        if status == "ERROR":
            detail = agreement.get("errorMessage") or "no error message"
            raise CliError(f"{entry}: the AWS Marketplace agreement is {status} ({detail})")
        delay = min(wait.max_delay, delay * wait.factor) if delay else wait.first_delay
        if waited + delay > wait.timeout:
            raise CliError(
                f"{entry}: the AWS Marketplace agreement is still {status} after {waited:.0f} s "
                f"(waited up to {wait.timeout:.0f} s); run again later"
            )
        wait.sleep(delay)


def _cached(factory: ClientFactory) -> ClientFactory:
    """``factory``, making one client per region."""
    clients: dict[str, Any] = {}

    def client_for(region: str) -> Any:
        if region not in clients:
            clients[region] = factory(region)
        return clients[region]

    return client_for
