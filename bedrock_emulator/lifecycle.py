"""THE lifecycle table of Bedrock's text-to-image models, and the overrides that change it.

One table (``TABLE``), as of ``TABLE_DATE``, read from ``SOURCES``: per model its lifecycle status (ACTIVE,
LEGACY, END_OF_LIFE), the dates known, the regions it is (or was) offered in, provider, name, whether it is sold
through AWS Marketplace and its price. Everything the emulator says about a model comes from here: InvokeModel's
refusals (``Entry.refusal``) and the control plane's GetFoundationModel, GetFoundationModelAvailability,
ListFoundationModels and agreement offers (``bedrock_emulator.control``).

An override (``BEDROCK_EMULATOR_LIFECYCLE``, ``--lifecycle``, ``EmulatorConfig.lifecycle``) is
``MODEL_ID=STATE[:YYYY-MM-DD][@REGION[+REGION...]]`` or ``MODEL_ID=STATE@*`` (every region), comma-separated.
STATE is what the model does for this account: ``ACTIVE``, ``LEGACY`` (still invocable), ``LEGACY_INACTIVE``
(Legacy and not used by the account in 30 days: refused), ``EOL`` (refused everywhere) or ``NO_ACCESS`` (model
access not enabled: refused). A Legacy state may carry its end-of-life date (``LEGACY:2027-01-15``), which
GetFoundationModel then returns as ``modelLifecycle.endOfLifeTime``. Without ``@`` a model keeps the table's
regions; a model the table lacks (any id the adapters in ``imagegen.models`` support) is then offered in every
region.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from bedrock_emulator.errors import (
    END_OF_LIFE_MESSAGE,
    INVALID_MODEL_MESSAGE,
    LEGACY_INACTIVE_MESSAGE,
    NO_ACCESS_MESSAGE,
    BedrockApiError,
)
from imagegen.chain import INFERENCE_PROFILE_PREFIXES
from imagegen.errors import ConfigurationError
from imagegen.models import StabilityAdapter, adapter_for

__all__ = [
    "EVERY_REGION",
    "FOUNDATION_MODEL_ID",
    "OVERRIDE_SYNTAX",
    "SOURCES",
    "TABLE",
    "TABLE_DATE",
    "Entry",
    "Lifecycle",
    "ModelInfo",
    "Override",
    "State",
    "Status",
    "foundation_model_id",
    "parse_overrides",
]

#: The day the table below was last checked against its sources.
TABLE_DATE = date(2026, 11, 30)
#: Where the table comes from (besides users' reports of what Bedrock answers, quoted in ``errors``). AWS split its
#: lifecycle policy in two in 2026: models launched before 2026-09-07 (all of these) follow the Legacy page, those
#: launched since the other.
SOURCES = (
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle-legacy.html",
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-lifecycle.html",
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-amazon-titan-image-generator-g1-v2.html",
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-amazon-nova-canvas.html",
    "https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html",
    "https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-stability-diffusion.html",
    "https://aws.amazon.com/bedrock/pricing/",
    "ListFoundationModels (us-east-1, us-west-2): amazon.titan-image-generator-v1 is no longer listed",
)


class Status(StrEnum):
    """A model's lifecycle status as AWS publishes it."""

    ACTIVE = "ACTIVE"
    LEGACY = "LEGACY"
    END_OF_LIFE = "END_OF_LIFE"


class State(StrEnum):
    """What a model does for this account: the table's status, or what an override sets."""

    ACTIVE = "ACTIVE"
    LEGACY = "LEGACY"
    LEGACY_INACTIVE = "LEGACY_INACTIVE"
    EOL = "EOL"
    NO_ACCESS = "NO_ACCESS"


_STATE_OF_STATUS = {Status.ACTIVE: State.ACTIVE, Status.LEGACY: State.LEGACY, Status.END_OF_LIFE: State.EOL}
_US = ("us-east-1", "us-west-2")
_US_WEST_2 = ("us-west-2",)
_NOVA_CANVAS_REGIONS = ("ap-northeast-1", "eu-west-1", "us-east-1")
_AMAZON, _STABILITY = "Amazon", "Stability AI"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One row of the table: what AWS publishes about a foundation model."""

    model_id: str
    name: str
    provider: str
    status: Status
    #: The regions it is offered in (for an end-of-life model: was offered in).
    regions: tuple[str, ...]
    input_modalities: tuple[str, ...] = ("TEXT",)
    #: Sold through AWS Marketplace: model access needs the provider's agreement, once per account.
    marketplace: bool = False
    legacy: date | None = None
    end_of_life: date | None = None
    #: The on-demand price per image in USD (``"0.04"``) as of ``TABLE_DATE``, for a Marketplace offer's rate card;
    #: empty when no longer sold.
    price: str = ""


#: The text-to-image models as of ``TABLE_DATE``. Nova Canvas's end-of-life date (2026-09-30) has passed, so it
#: is END_OF_LIFE here although its card calls it Legacy since 2026-03-30.
TABLE: tuple[ModelInfo, ...] = (
    ModelInfo("amazon.titan-image-generator-v1", "Titan Image Generator G1", _AMAZON, Status.END_OF_LIFE, _US,
              ("TEXT", "IMAGE")),
    ModelInfo("amazon.titan-image-generator-v2:0", "Titan Image Generator G1 v2", _AMAZON, Status.END_OF_LIFE, _US,
              ("TEXT", "IMAGE"), end_of_life=date(2026, 6, 30)),
    ModelInfo("amazon.nova-canvas-v1:0", "Nova Canvas", _AMAZON, Status.END_OF_LIFE, _NOVA_CANVAS_REGIONS,
              ("TEXT", "IMAGE"), legacy=date(2026, 3, 30), end_of_life=date(2026, 9, 30)),
    ModelInfo("stability.stable-image-core-v1:0", "Stable Image Core 1.0", _STABILITY, Status.END_OF_LIFE,
              _US_WEST_2, marketplace=True),
    ModelInfo("stability.stable-image-ultra-v1:0", "Stable Image Ultra 1.0", _STABILITY, Status.END_OF_LIFE,
              _US_WEST_2, marketplace=True),
    ModelInfo("stability.sd3-large-v1:0", "SD3 Large 1.0", _STABILITY, Status.END_OF_LIFE, _US_WEST_2,
              ("TEXT", "IMAGE"), marketplace=True),
    ModelInfo("stability.stable-image-core-v1:1", "Stable Image Core 1.1", _STABILITY, Status.ACTIVE, _US_WEST_2,
              marketplace=True, price="0.04"),
    ModelInfo("stability.stable-image-ultra-v1:1", "Stable Image Ultra 1.1", _STABILITY, Status.ACTIVE, _US_WEST_2,
              marketplace=True, price="0.14"),
    ModelInfo("stability.sd3-5-large-v1:0", "Stable Diffusion 3.5 Large", _STABILITY, Status.ACTIVE, _US_WEST_2,
              ("TEXT", "IMAGE"), marketplace=True, price="0.08"),
)  # fmt: skip

#: An override's region list that means "every region".
EVERY_REGION = "*"
OVERRIDE_SYNTAX = "MODEL_ID=STATE[:YYYY-MM-DD][@REGION[+REGION...]|@*], comma-separated"
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$")
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: The states that take an end-of-life date (``LEGACY:2027-01-15``).
_DATED_STATES = frozenset({"LEGACY", "LEGACY_INACTIVE"})
#: A model id shaped like a foundation model's (``provider.name[:version[:variant]]``, inference-profile prefix
#: removed); InvokeModel cannot resolve one Bedrock lacks, and finds any other id invalid.
FOUNDATION_MODEL_ID = re.compile(r"^[a-z0-9-]{1,63}\.[a-z0-9.-]{1,63}(:[a-z0-9-]{1,63}){0,2}$")


def foundation_model_id(model_id: str) -> str:
    """The foundation model behind an inference-profile id (``us.amazon.nova-canvas-v1:0``), else the id."""
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


@dataclass(frozen=True, slots=True)
class Override:
    """``model_id`` behaves as ``state`` in ``regions`` (empty: the table's; ``("*",)``: every region), with
    ``end_of_life`` (a Legacy state's date; ``None``: the table's)."""

    model_id: str
    state: State
    regions: tuple[str, ...] = ()
    end_of_life: date | None = None

    def __str__(self) -> str:
        day = f":{self.end_of_life.isoformat()}" if self.end_of_life else ""
        return f"{self.model_id}={self.state}{day}" + (f"@{'+'.join(self.regions)}" if self.regions else "")


@dataclass(frozen=True, slots=True)
class Entry:
    """A model as this emulator serves it: the table's row with any override applied."""

    info: ModelInfo
    state: State
    #: The regions it is offered in; ``None``: every region.
    regions: frozenset[str] | None

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def offered_in(self, region: str | None) -> bool:
        """``region`` ``None`` (an unsigned request: region unknown) is everywhere."""
        return region is None or self.regions is None or region in self.regions

    @property
    def lifecycle_status(self) -> str:
        """``modelLifecycle.status`` on the control plane (never asked of an end-of-life model)."""
        if self.state in {State.LEGACY, State.LEGACY_INACTIVE}:
            return "LEGACY"
        if self.state is State.NO_ACCESS and self.info.status is Status.LEGACY:
            return "LEGACY"
        return "ACTIVE"

    def refusal(self, region: str | None) -> BedrockApiError | None:
        """What Bedrock answers instead of running the model, in this order: not offered in ``region``
        (400 ValidationException), end of life (404), Legacy and inactive (404), no model access (403)."""
        if not self.offered_in(region):
            return BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
        if self.state is State.EOL:
            return BedrockApiError("ResourceNotFoundException", END_OF_LIFE_MESSAGE)
        if self.state is State.LEGACY_INACTIVE:
            return BedrockApiError("ResourceNotFoundException", LEGACY_INACTIVE_MESSAGE)
        if self.state is State.NO_ACCESS:
            return BedrockApiError("AccessDeniedException", NO_ACCESS_MESSAGE)
        return None


class Lifecycle:
    """``TABLE`` with ``overrides`` applied (later ones win); immutable."""

    def __init__(self, overrides: Iterable[Override] = ()) -> None:
        entries = {info.model_id: Entry(info, _STATE_OF_STATUS[info.status], frozenset(info.regions)) for info in TABLE}
        for override in overrides:
            known = entries.get(override.model_id)
            info = known.info if known is not None else _added(override.model_id)
            if override.regions == (EVERY_REGION,) or (known is None and not override.regions):
                regions = None
            elif override.regions:
                regions = frozenset(override.regions)
            else:
                regions = known.regions if known is not None else None
            if override.end_of_life is not None:
                info = dataclasses.replace(info, end_of_life=override.end_of_life)
            entries[override.model_id] = Entry(info, override.state, regions)
        self._entries = entries

    def entry(self, model_id: str, *, resolve_profiles: bool = True) -> Entry | None:
        """The model ``model_id`` names (an inference-profile id names its foundation model unless
        ``resolve_profiles`` is false, as on the control plane); ``None`` when Bedrock knows no such model."""
        return self._entries.get(foundation_model_id(model_id) if resolve_profiles else model_id)

    def entries(self) -> list[Entry]:
        """Every model, by id."""
        return [self._entries[model_id] for model_id in sorted(self._entries)]

    def marketplace_ids(self) -> frozenset[str]:
        """The models sold through AWS Marketplace (their agreement is needed once per account)."""
        return frozenset(model_id for model_id, entry in self._entries.items() if entry.info.marketplace)


def _added(model_id: str) -> ModelInfo:
    adapter = adapter_for(model_id)  # checked by parse_overrides
    provider = _STABILITY if isinstance(adapter, StabilityAdapter) else _AMAZON
    return ModelInfo(model_id, model_id, provider, Status.ACTIVE, (), ("TEXT",), marketplace=provider == _STABILITY)


def parse_overrides(value: str | Sequence[Override], *, name: str) -> tuple[Override, ...]:
    """``"a=EOL,b=ACTIVE@us-west-2"`` (or overrides) -> checked overrides; ``ValueError`` naming ``name`` (the
    variable or the field), the entry and the rule otherwise."""
    if not isinstance(value, str):
        texts = [str(item) if isinstance(item, Override) else item for item in value]
        if not all(isinstance(text, str) for text in texts):
            raise ValueError(f"{name} must be a string or a sequence of Override, got {value!r}")
    else:
        texts = [text for text in value.split(",") if text.strip()] if value.strip() else []
    overrides: list[Override] = []
    for position, text in enumerate(texts, start=1):
        override = _parse_one(text.strip(), position, name)
        if any(seen.model_id == override.model_id for seen in overrides):
            raise ValueError(f"{name} lists {override.model_id!r} twice; expected {OVERRIDE_SYNTAX}")
        overrides.append(override)
    return tuple(overrides)


def _parse_one(text: str, position: int, name: str) -> Override:
    def bad(problem: str) -> ValueError:
        return ValueError(f"{name} entry {position} ({text!r}) {problem}; expected {OVERRIDE_SYNTAX}")

    model_id, equals, rest = text.partition("=")
    model_id = model_id.strip()
    state_and_day, at, region_text = rest.partition("@")
    state_text, colon, day_text = state_and_day.partition(":")
    if not equals or not model_id:
        raise bad("is not MODEL_ID=STATE")
    try:
        state = State(state_text.strip().upper())
    except ValueError:
        raise bad(f"has state {state_text.strip()!r}, not one of {', '.join(State)}") from None
    end_of_life = _end_of_life(day_text.strip(), state, bad) if colon else None
    if foundation_model_id(model_id) != model_id:
        raise bad(f"names the inference profile {model_id!r}; name its foundation model")
    if model_id not in {info.model_id for info in TABLE}:
        try:
            adapter_for(model_id)
        except ConfigurationError:
            raise bad(
                f"names {model_id!r}, neither in the lifecycle table nor an image model imagegen supports"
            ) from None
    regions: tuple[str, ...] = ()
    if at:
        parts = [part.strip() for part in region_text.split("+")]
        if parts == [EVERY_REGION]:
            regions = (EVERY_REGION,)
        else:
            wrong = [part for part in parts if not _REGION.fullmatch(part)]
            if wrong:
                raise bad(f"has {wrong[0]!r}, not an AWS region (or '*' for every region)")
            regions = tuple(sorted(set(parts)))
    return Override(model_id, state, regions, end_of_life)


def _end_of_life(text: str, state: State, bad: Callable[[str], ValueError]) -> date:
    """The end-of-life date after ``STATE:``; ``bad(problem)`` when it is no date or the state takes none."""
    if state not in _DATED_STATES:
        raise bad(f"gives {state} a date; only {' and '.join(sorted(_DATED_STATES))} take an end-of-life date")
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise bad(f"has end-of-life date {text!r}, not a calendar date YYYY-MM-DD") from None
