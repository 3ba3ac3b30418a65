"""The ordered model chain (``MODEL_ID``) and which of its entries this container may use right now.

``MODEL_ID`` is a comma-separated list of ``model-id`` or ``model-id@region`` (no region: ``BEDROCK_REGION``).
A request is served by the first entry not marked unavailable. When Bedrock answers that a model itself cannot
be used (end of life, Legacy and inactive, not found, not offered in the region, access not enabled), the entry
is marked unavailable for a cool-down and the request moves to the next entry at once.

So that a container pays for one failed call per entry and cool-down, not one per concurrent request, an entry
that has not answered yet is *probed* by one request at a time: concurrent requests for it wait for the probe's
outcome (a success, or a mark), then go on.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from imagegen.errors import ConfigurationError, ModelUnavailableError, NoModelAvailableError

#: A Bedrock model or inference-profile id (``amazon.titan-image-generator-v1``, ``us.amazon.nova-canvas-v1:0``).
_MODEL_ID = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+(:[A-Za-z0-9_.-]+)*$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$")
#: Prefixes of cross-region inference profiles (``us.amazon.nova-canvas-v1:0``).
INFERENCE_PROFILE_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One entry of the chain: a model (or inference profile) in a region."""

    model_id: str
    region: str

    @property
    def base_model_id(self) -> str:
        """The foundation model behind an inference-profile id (the id itself otherwise)."""
        for prefix in INFERENCE_PROFILE_PREFIXES:
            if self.model_id.startswith(prefix):
                return self.model_id.removeprefix(prefix)
        return self.model_id

    @property
    def is_inference_profile(self) -> bool:
        return self.base_model_id != self.model_id

    def __str__(self) -> str:
        return f"{self.model_id}@{self.region}"


def parse_chain(value: str, default_region: str, *, variable: str = "MODEL_ID") -> tuple[ModelEntry, ...]:
    """``"a@r1,b"`` -> entries; a malformed chain is a ``ConfigurationError`` naming the variable and the entry."""
    entries: list[ModelEntry] = []
    for position, raw in enumerate(value.split(","), start=1):
        text = raw.strip()
        model_id, _, region = text.partition("@")
        model_id, region = model_id.strip(), (region.strip() or default_region)
        problem = (
            "is empty"
            if not model_id
            else f"{model_id!r} is not a Bedrock model id"
            if not _MODEL_ID.fullmatch(model_id)
            else f"{region!r} is not an AWS region"
            if not _REGION.fullmatch(region)
            else ""
        )
        if problem:
            raise ConfigurationError(
                "The service is misconfigured.", detail=f"{variable} entry {position} ({text!r}) {problem}"
            )
        entry = ModelEntry(model_id, region)
        if entry in entries:
            raise ConfigurationError("The service is misconfigured.", detail=f"{variable} lists {entry} twice")
        entries.append(entry)
    return tuple(entries)


class _State(Enum):
    UNKNOWN = "unknown"  # not answered since the container started or since its mark expired
    PROBING = "probing"  # one request is finding out; others wait
    USABLE = "usable"
    UNAVAILABLE = "unavailable"


#: Called once per mark: the entry, and Bedrock's answer. Handlers log it and emit a metric.
UnavailableListener = Callable[[ModelEntry, ModelUnavailableError], None]


class ModelChain:
    """The entries in order, with this container's view of which can be used; safe to share between threads."""

    def __init__(
        self,
        entries: Sequence[ModelEntry],
        *,
        cooldown_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
        on_unavailable: UnavailableListener | None = None,
    ) -> None:
        if not entries:
            raise ConfigurationError("The service is misconfigured.", detail="MODEL_ID lists no model")
        self.entries = tuple(entries)
        self.cooldown_seconds = cooldown_seconds
        self.on_unavailable = on_unavailable
        self._clock = clock
        self._state = dict.fromkeys(self.entries, _State.UNKNOWN)
        self._until: dict[ModelEntry, float] = {}
        self._changed = threading.Condition()
        #: Requests waiting for a probe's outcome right now.
        self.waiting = 0

    def current(self) -> ModelEntry:
        """The entry a request would be served by now (without waiting for a probe)."""
        with self._changed:
            for entry in self.entries:
                if self._refresh(entry) is not _State.UNAVAILABLE:
                    return entry
        raise self._none_available()

    def acquire(self, after: ModelEntry | None = None) -> ModelEntry:
        """The first entry (after ``after``) that may be used; waits while another request probes it.

        When it returns an entry that has not answered yet, the caller is its prober and must report with
        ``succeeded``, ``mark_unavailable`` or ``released``."""
        start = 0 if after is None else self.entries.index(after) + 1
        with self._changed:
            while True:
                for entry in self.entries[start:]:
                    state = self._refresh(entry)
                    if state is _State.UNAVAILABLE:
                        continue
                    if state is _State.PROBING:
                        break  # wait for its outcome
                    if state is _State.UNKNOWN:
                        self._state[entry] = _State.PROBING
                    return entry
                else:
                    raise self._none_available()
                self.waiting += 1
                try:
                    self._changed.wait()
                finally:
                    self.waiting -= 1

    def succeeded(self, entry: ModelEntry) -> None:
        """The entry answered: it is usable until Bedrock says otherwise (a mark made meanwhile stands)."""
        with self._changed:
            if self._state[entry] is not _State.UNAVAILABLE:
                self._state[entry] = _State.USABLE
                self._changed.notify_all()

    def released(self, entry: ModelEntry) -> None:
        """The call failed for a reason that says nothing about the model (throttling, a bad request, …)."""
        with self._changed:
            if self._state[entry] is _State.PROBING:
                self._state[entry] = _State.UNKNOWN
                self._changed.notify_all()

    def mark_unavailable(self, entry: ModelEntry, error: ModelUnavailableError) -> bool:
        """Bedrock says the model cannot be used: skip it for the cool-down. True when this call marked it
        (concurrent calls may learn the same at once; the listener hears it once)."""
        with self._changed:
            if self._refresh(entry) is _State.UNAVAILABLE:
                return False
            self._state[entry] = _State.UNAVAILABLE
            self._until[entry] = self._clock() + self.cooldown_seconds
            self._changed.notify_all()
        if self.on_unavailable is not None:
            self.on_unavailable(entry, error)
        return True

    def _refresh(self, entry: ModelEntry) -> _State:
        if self._state[entry] is _State.UNAVAILABLE and self._clock() >= self._until[entry]:
            self._state[entry] = _State.UNKNOWN  # the cool-down is over: worth one more try
        return self._state[entry]

    def _none_available(self) -> NoModelAvailableError:
        listed = ", ".join(str(entry) for entry in self.entries)
        return NoModelAvailableError(
            "No image model is available right now. Try again later.",
            detail=f"every entry of MODEL_ID is marked unavailable: {listed}",
        )
