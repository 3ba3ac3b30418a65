"""``EmulatorConfig``: how the emulator misbehaves.

This is THE one place that resolves "command-line flag over ``BEDROCK_EMULATOR_*`` environment variable over
default" (``EmulatorConfig.from_env``), and the one place that turns a config back into those variables
(``EmulatorConfig.to_env``), for a parent process that starts the emulator as a subprocess. Every default is
written here once: the fields' (and ``DEFAULT_HOST``, ``DEFAULT_PORT`` for ``python -m bedrock_emulator``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bedrock_emulator.lifecycle import Lifecycle, Override, foundation_model_id, parse_overrides
from imagegen.config import env_int

__all__ = [
    "AGREEMENTS_SYNTAX",
    "AGREEMENTS_VAR",
    "ALL_AGREEMENTS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENV_VARS",
    "LIFECYCLE_VAR",
    "NO_AGREEMENTS",
    "Agreements",
    "EmulatorConfig",
    "parse_agreements",
    "read_png",
]

#: Where ``python -m bedrock_emulator`` listens unless told otherwise (the local stack uses the same port).
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4567

LATENCY_MS_VAR = "BEDROCK_EMULATOR_LATENCY_MS"
RPM_VAR = "BEDROCK_EMULATOR_RPM"
FAULT_RATE_VAR = "BEDROCK_EMULATOR_FAULT_RATE"
BLOCKED_WORDS_VAR = "BEDROCK_EMULATOR_BLOCKED_WORDS"
SEED_VAR = "BEDROCK_EMULATOR_SEED"
IMAGE_FILE_VAR = "BEDROCK_EMULATOR_IMAGE_FILE"
LIFECYCLE_VAR = "BEDROCK_EMULATOR_LIFECYCLE"
AGREEMENTS_VAR = "BEDROCK_EMULATOR_AGREEMENTS"
#: The environment variable of each ``EmulatorConfig`` field.
ENV_VARS: dict[str, str] = {
    "latency_ms": LATENCY_MS_VAR,
    "rpm": RPM_VAR,
    "fault_rate": FAULT_RATE_VAR,
    "blocked_words": BLOCKED_WORDS_VAR,
    "seed": SEED_VAR,
    "image_file": IMAGE_FILE_VAR,
    "lifecycle": LIFECYCLE_VAR,
    "agreements": AGREEMENTS_VAR,
}
_LIFECYCLE_FIELD = f"lifecycle (--lifecycle, {LIFECYCLE_VAR})"
_AGREEMENTS_FIELD = f"agreements (--agreements, {AGREEMENTS_VAR})"
#: ``agreements``: every AWS Marketplace model has its agreement (an account that has used them), or none has (a
#: fresh account).
ALL_AGREEMENTS: Literal["all"] = "all"
NO_AGREEMENTS = "none"
AGREEMENTS_SYNTAX = "all, none, or comma-separated AWS Marketplace model ids"
#: The Marketplace models whose agreement the account has: ``"all"``, or their ids (``()``: none).
Agreements = tuple[str, ...] | Literal["all"]
MAX_LATENCY_MS = 3_600_000
MAX_RPM = 1_000_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulator misbehaves. Every field defaults to "like a healthy, idle Bedrock"."""

    #: Emulated model time added to every successful request, in milliseconds.
    latency_ms: int = 0
    #: Accepted requests per sliding 60-second window; 0 = unlimited.
    rpm: int = 0
    #: Share (0..1) of valid requests answered with ModelTimeoutException or ServiceUnavailableException.
    fault_rate: float = 0.0
    #: Words (or phrases) that trip the content filter, matched case-insensitively as whole words.
    blocked_words: tuple[str, ...] = ()
    #: Seed of the fault-injection RNG; ``None`` seeds it from the OS.
    seed: int | None = None
    #: A PNG file whose bytes are every generated image, instead of a rendered placeholder (made absolute).
    image_file: Path | None = None
    #: Overrides of the lifecycle table (``bedrock_emulator.lifecycle``); empty: the table as of its date.
    #: ``from_env`` and ``parse_overrides`` read them from ``"model-id=EOL,model-id=ACTIVE@us-east-1+us-west-2"``.
    lifecycle: tuple[Override, ...] = ()
    #: The AWS Marketplace models (Stability AI's) whose agreement the account has: ``"all"``, or their ids
    #: (``()``: a fresh account). Without it InvokeModel answers AccessDeniedException with the Marketplace message,
    #: until CreateFoundationModelAgreement. ``from_env`` and ``parse_agreements`` also read ``"none"`` and
    #: ``"id,id"``; Amazon's own models need no agreement.
    agreements: Agreements = ALL_AGREEMENTS

    def __post_init__(self) -> None:
        if not _is_int(self.latency_ms) or not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be an integer from 0 to {MAX_LATENCY_MS}, got {self.latency_ms!r}")
        if not _is_int(self.rpm) or not 0 <= self.rpm <= MAX_RPM:
            raise ValueError(f"rpm must be an integer from 0 to {MAX_RPM} (0 = unlimited), got {self.rpm!r}")
        rate = self.fault_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault_rate must be a number between 0 and 1, got {rate!r}")
        object.__setattr__(self, "fault_rate", float(rate))
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}")
        if isinstance(self.blocked_words, str):
            raise ValueError("blocked_words must be a sequence of words, not a string (from_env splits one at commas)")
        words = tuple(word.strip().lower() for word in self.blocked_words if word.strip())
        if any("," in word for word in words):  # BEDROCK_EMULATOR_BLOCKED_WORDS could not carry it
            raise ValueError(f"blocked_words must not contain commas, got {words!r}")
        object.__setattr__(self, "blocked_words", words)
        if self.image_file is not None:
            path = Path(self.image_file).expanduser().absolute()
            read_png(path)  # fail here, with the variable's name, rather than on the first request
            object.__setattr__(self, "image_file", path)
        object.__setattr__(self, "lifecycle", parse_overrides(self.lifecycle, name=_LIFECYCLE_FIELD))
        lifecycle = Lifecycle(self.lifecycle)
        object.__setattr__(self, "agreements", parse_agreements(self.agreements, lifecycle, name=_AGREEMENTS_FIELD))

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        latency_ms: int | None = None,
        rpm: int | None = None,
        fault_rate: float | None = None,
        blocked_words: str | Iterable[str] | None = None,
        seed: int | None = None,
        image_file: str | os.PathLike[str] | None = None,
        lifecycle: str | Sequence[Override] | None = None,
        agreements: str | Sequence[str] | None = None,
    ) -> EmulatorConfig:
        """A config from the keyword overrides, else ``BEDROCK_EMULATOR_*`` in ``env`` (default ``os.environ``),
        else the defaults.

        An override of ``None`` means "not given" (the command line passes its argparse values straight
        through); the variable of an overridden field is not read. ``blocked_words`` may be a comma-separated
        string, ``lifecycle`` a string in ``BEDROCK_EMULATOR_LIFECYCLE``'s syntax and ``agreements`` one in
        ``BEDROCK_EMULATOR_AGREEMENTS``' (``all``, ``none`` or model ids); ``blocked_words=""``, ``image_file=""``
        and ``lifecycle=""`` clear what the environment sets. A bad value raises ``ValueError`` naming the variable
        or the field.
        """
        env = os.environ if env is None else env
        default = _DEFAULTS
        if blocked_words is None:
            blocked_words = env.get(BLOCKED_WORDS_VAR, "")
        if image_file is None:
            image_file = env.get(IMAGE_FILE_VAR, "").strip()
        overrides = (
            parse_overrides(env.get(LIFECYCLE_VAR, ""), name=LIFECYCLE_VAR)
            if lifecycle is None
            else parse_overrides(lifecycle, name=_LIFECYCLE_FIELD)
        )
        if agreements is None:
            raw_agreements = env.get(AGREEMENTS_VAR, "").strip()
            agreed = (
                parse_agreements(raw_agreements, Lifecycle(overrides), name=AGREEMENTS_VAR)
                if raw_agreements
                else default["agreements"]
            )
        else:
            agreed = parse_agreements(agreements, Lifecycle(overrides), name=_AGREEMENTS_FIELD)
        return cls(
            latency_ms=(
                env_int(env, LATENCY_MS_VAR, default["latency_ms"], 0, MAX_LATENCY_MS)
                if latency_ms is None
                else latency_ms
            ),
            rpm=env_int(env, RPM_VAR, default["rpm"], 0, MAX_RPM) if rpm is None else rpm,
            fault_rate=_env_fault_rate(env, default["fault_rate"]) if fault_rate is None else fault_rate,
            blocked_words=tuple(blocked_words.split(",") if isinstance(blocked_words, str) else blocked_words),
            seed=_env_seed(env, default["seed"]) if seed is None else seed,
            image_file=Path(image_file) if os.fspath(image_file) else None,
            lifecycle=overrides,
            agreements=agreed,
        )

    def to_env(self) -> dict[str, str]:
        """Every ``BEDROCK_EMULATOR_*`` variable, so that ``from_env(config.to_env()) == config``.

        Unset fields are there too, as empty strings, so they also replace whatever an inherited
        environment holds: ``from_env({**os.environ, **config.to_env()}) == config``.
        """
        return {
            LATENCY_MS_VAR: str(self.latency_ms),
            RPM_VAR: str(self.rpm),
            FAULT_RATE_VAR: repr(self.fault_rate),
            BLOCKED_WORDS_VAR: ",".join(self.blocked_words),
            SEED_VAR: "" if self.seed is None else str(self.seed),
            IMAGE_FILE_VAR: "" if self.image_file is None else str(self.image_file),
            LIFECYCLE_VAR: ",".join(map(str, self.lifecycle)),
            AGREEMENTS_VAR: _agreements_text(self.agreements),
        }


#: Each field's default, for ``from_env`` (written once, in the class).
_DEFAULTS: dict[str, Any] = {field.name: field.default for field in dataclasses.fields(EmulatorConfig)}


def parse_agreements(value: str | Sequence[str], lifecycle: Lifecycle, *, name: str) -> Agreements:
    """``"all"``, ``"none"``, ``"id,id"`` (or ids) -> ``"all"`` or the checked ids; ``ValueError`` naming ``name``
    (the variable or the field), the entry and the rule otherwise. An id must name an AWS Marketplace model of
    ``lifecycle`` (Amazon's own models need no agreement)."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == ALL_AGREEMENTS:
            return ALL_AGREEMENTS
        if text.lower() == NO_AGREEMENTS:
            return ()
        if not text:
            raise ValueError(f"{name} is empty; expected {AGREEMENTS_SYNTAX}")
        texts = [part.strip() for part in text.split(",") if part.strip()]
        if not texts:
            raise ValueError(f"{name} names no model ({text!r}); expected {AGREEMENTS_SYNTAX}")
    elif all(isinstance(item, str) for item in value):
        texts = [item.strip() for item in value]
    else:
        raise ValueError(f"{name} must be 'all', a string or a sequence of model ids, got {value!r}")
    marketplace = lifecycle.marketplace_ids()
    ids: list[str] = []
    for position, model_id in enumerate(texts, start=1):
        problem = _agreement_problem(model_id, lifecycle, marketplace, ids)
        if problem:
            raise ValueError(f"{name} entry {position} ({model_id!r}) {problem}; expected {AGREEMENTS_SYNTAX}")
        ids.append(model_id)
    return tuple(ids)


def _agreement_problem(model_id: str, lifecycle: Lifecycle, marketplace: frozenset[str], seen: list[str]) -> str:
    """What is wrong with ``model_id`` as an entry of ``agreements``; empty when nothing is."""
    if model_id.lower() in {ALL_AGREEMENTS, NO_AGREEMENTS}:
        return f"cannot be combined with model ids: {model_id.lower()!r} stands alone"
    if foundation_model_id(model_id) != model_id:
        return "names an inference profile; name its foundation model"
    entry = lifecycle.entry(model_id, resolve_profiles=False)
    if entry is None:
        return f"is not a model the lifecycle table knows; its Marketplace models: {', '.join(sorted(marketplace))}"
    if model_id not in marketplace:
        return f"is {entry.info.provider}'s own model, which needs no AWS Marketplace agreement"
    if model_id in seen:
        return "is listed twice"
    return ""


def _agreements_text(agreements: Agreements) -> str:
    if agreements == ALL_AGREEMENTS:
        return ALL_AGREEMENTS
    return ",".join(agreements) or NO_AGREEMENTS


def read_png(path: Path) -> bytes:
    """The bytes of the PNG file at ``path``; ``ValueError`` naming ``BEDROCK_EMULATOR_IMAGE_FILE`` otherwise."""
    problem = f"{IMAGE_FILE_VAR} (image_file, --image-file) must name a readable PNG file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{problem}; cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"{problem}; {str(path)!r} is not a PNG file")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _env_fault_rate(env: Mapping[str, str], default: float) -> float:
    raw = env.get(FAULT_RATE_VAR, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{FAULT_RATE_VAR} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{FAULT_RATE_VAR} must be a number between 0 and 1, got {raw!r}")
    return value


def _env_seed(env: Mapping[str, str], default: int | None) -> int | None:
    raw = env.get(SEED_VAR, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{SEED_VAR} must be an integer, got {raw!r}") from None
