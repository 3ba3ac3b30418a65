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
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imagegen.chain import ModelEntry, parse_chain
from imagegen.config import DEFAULT_BEDROCK_REGION, DEFAULT_MODEL_ID
from imagegen.errors import ConfigurationError
from imagegen.model_status import ModelCheck, check_chain, make_control_client
from imagegen.models import SUPPORTED_MODEL_PREFIXES, adapter_for
from imagegen_cli.common import CliError, aws_reason


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
            clients[entry_region] = make_control_client(entry_region)
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
