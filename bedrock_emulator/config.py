"""``EmulatorConfig``: how the emulator misbehaves.

This is THE one place that resolves "command-line flag over ``BEDROCK_EMULATOR_*`` environment variable over
default" (``EmulatorConfig.from_env``), and the one place that turns a config back into those variables
(``EmulatorConfig.to_env``), for a parent process that starts the emulator as a subprocess.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bedrock_emulator.lifecycle import Override, parse_overrides
from imagegen.config import env_int

__all__ = ["ENV_VARS", "LIFECYCLE_VAR", "EmulatorConfig", "read_png"]

LATENCY_MS_VAR = "BEDROCK_EMULATOR_LATENCY_MS"
RPM_VAR = "BEDROCK_EMULATOR_RPM"
FAULT_RATE_VAR = "BEDROCK_EMULATOR_FAULT_RATE"
BLOCKED_WORDS_VAR = "BEDROCK_EMULATOR_BLOCKED_WORDS"
SEED_VAR = "BEDROCK_EMULATOR_SEED"
IMAGE_FILE_VAR = "BEDROCK_EMULATOR_IMAGE_FILE"
LIFECYCLE_VAR = "BEDROCK_EMULATOR_LIFECYCLE"
#: The environment variable of each ``EmulatorConfig`` field.
ENV_VARS: dict[str, str] = {
    "latency_ms": LATENCY_MS_VAR,
    "rpm": RPM_VAR,
    "fault_rate": FAULT_RATE_VAR,
    "blocked_words": BLOCKED_WORDS_VAR,
    "seed": SEED_VAR,
    "image_file": IMAGE_FILE_VAR,
    "lifecycle": LIFECYCLE_VAR,
}
_LIFECYCLE_FIELD = f"lifecycle (--lifecycle, {LIFECYCLE_VAR})"
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
    ) -> EmulatorConfig:
        """A config from the keyword overrides, else ``BEDROCK_EMULATOR_*`` in ``env`` (default ``os.environ``),
        else the defaults.

        An override of ``None`` means "not given" (the command line passes its argparse values straight
        through); the variable of an overridden field is not read. ``blocked_words`` may be a comma-separated
        string, and ``lifecycle`` a string in ``BEDROCK_EMULATOR_LIFECYCLE``'s syntax; ``blocked_words=""``,
        ``image_file=""`` and ``lifecycle=""`` clear what the environment sets. A bad
        value raises ``ValueError`` naming the variable or the field.
        """
        env = os.environ if env is None else env
        if blocked_words is None:
            blocked_words = env.get(BLOCKED_WORDS_VAR, "")
        if image_file is None:
            image_file = env.get(IMAGE_FILE_VAR, "").strip()
        overrides = (
            parse_overrides(env.get(LIFECYCLE_VAR, ""), name=LIFECYCLE_VAR)
            if lifecycle is None
            else parse_overrides(lifecycle, name=_LIFECYCLE_FIELD)
        )
        return cls(
            latency_ms=env_int(env, LATENCY_MS_VAR, 0, 0, MAX_LATENCY_MS) if latency_ms is None else latency_ms,
            rpm=env_int(env, RPM_VAR, 0, 0, MAX_RPM) if rpm is None else rpm,
            fault_rate=_env_fault_rate(env) if fault_rate is None else fault_rate,
            blocked_words=tuple(blocked_words.split(",") if isinstance(blocked_words, str) else blocked_words),
            seed=_env_seed(env) if seed is None else seed,
            image_file=Path(image_file) if os.fspath(image_file) else None,
            lifecycle=overrides,
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
        }


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


def _env_fault_rate(env: Mapping[str, str]) -> float:
    raw = env.get(FAULT_RATE_VAR, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{FAULT_RATE_VAR} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{FAULT_RATE_VAR} must be a number between 0 and 1, got {raw!r}")
    return value


def _env_seed(env: Mapping[str, str]) -> int | None:
    raw = env.get(SEED_VAR, "").strip()
    try:
        return int(raw) if raw else None
    except ValueError:
        raise ValueError(f"{SEED_VAR} must be an integer, got {raw!r}") from None
