"""The state and behaviour of one emulated Bedrock (Runtime and control plane), without sockets.

``Backend.invoke(model_id, raw_body, region)`` takes each request through, in order: forced errors
(``fail_next``) -> the model id (one Bedrock cannot resolve: 404; not shaped like a model id: 400) -> the model's
lifecycle in ``region`` (``bedrock_emulator.lifecycle``: not offered there, end of life, Legacy and inactive, no
model access) -> its AWS Marketplace agreement (``EmulatorConfig.agreements``; without it, 403 with the
Marketplace message) -> wire-body validation (``bedrock_emulator.wire``) -> blocked
words (content filter: Titan and Nova Canvas answer ValidationException, Stability models a 200 reply whose
``finish_reasons`` is ``["Filter reason: prompt"]``) -> requests-per-minute quota (a sliding 60-second window on
an injectable clock) -> fault injection (a seeded RNG) -> latency (the emulated model time, on an injectable
wait) -> render. It returns the reply's JSON document, or raises ``BedrockApiError``. ``control`` answers the
control plane from the same lifecycle and the agreements held here.

Agreements: the configured ones are AVAILABLE. CreateFoundationModelAgreement makes one PENDING; the first
GetFoundationModelAvailability after that reads PENDING and moves it to AVAILABLE (so a client's wait is exercised
once); until then InvokeModel is still refused, as AWS does while a subscription completes. ``reset`` restores the
configured agreements.
"""

from __future__ import annotations

import base64
import collections
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bedrock_emulator import control
from bedrock_emulator.config import ALL_AGREEMENTS, EmulatorConfig, read_png
from bedrock_emulator.errors import (
    AGREEMENT_EXISTS_MESSAGE,
    CONTENT_FILTER_MESSAGE,
    ERROR_STATUS,
    INVALID_MODEL_MESSAGE,
    MARKETPLACE_ACCESS_DENIED_MESSAGE,
    THROTTLING_MESSAGE,
    UNRESOLVED_MODEL_MESSAGE,
    BedrockApiError,
)
from bedrock_emulator.lifecycle import FOUNDATION_MODEL_ID, Lifecycle, foundation_model_id
from bedrock_emulator.render import render_placeholder
from bedrock_emulator.wire import Job, validate

__all__ = ["FAULT_CODES", "PROMPT_FILTERED", "QUOTA_WINDOW_SECONDS", "STAT_NAMES", "Backend"]

#: What ``fault_rate`` draws from, in equal shares.
FAULT_CODES = ("ModelTimeoutException", "ServiceUnavailableException")
QUOTA_WINDOW_SECONDS = 60.0
#: The counters of ``Backend.stats``: InvokeModel's (``unavailable``: refused for the model's lifecycle, region,
#: access or agreement), and ``agreement_requests``, the CreateFoundationModelAgreement calls (whatever they
#: answered).
STAT_NAMES = (
    "requests", "images", "succeeded", "throttled", "faults", "filtered", "invalid", "unavailable",
    "agreement_requests",
)  # fmt: skip
#: An agreement's ``agreementAvailability.status`` after CreateFoundationModelAgreement, and once it is in place.
PENDING, AVAILABLE = "PENDING", "AVAILABLE"
#: A Stability model's ``finish_reasons`` entry for a blocked prompt. Its whole reply (HTTP 200) is
#: ``{"finish_reasons": [PROMPT_FILTERED]}``, no image and no seed, as documented for Stable Image Ultra:
#: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-diffusion-stable-ultra-text-image-request-response.html
PROMPT_FILTERED = "Filter reason: prompt"


class Backend:
    """One emulated Bedrock: its counters, quota window, fault RNG and forced errors. Thread-safe.

    ``clock`` (seconds, monotonic) drives the RPM window; ``wait(seconds)`` spends the emulated model time
    (the HTTP server passes an event's ``wait`` so that stopping it cuts the wait short). Tests replace both.
    A configured ``image_file`` is read once, here.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        self.config = config or EmulatorConfig()
        #: The lifecycle table with the config's overrides: what InvokeModel and ``control`` answer from.
        self.lifecycle = Lifecycle(self.config.lifecycle)
        self.clock = clock
        self.wait = wait
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._window: collections.deque[float] = collections.deque()
        self._rng = random.Random(self.config.seed)  # noqa: S311 - fault injection, not crypto
        self._forced: collections.deque[BedrockApiError] = collections.deque()
        words = self.config.blocked_words
        self._blocked = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE) if words else None
        )
        image_file = self.config.image_file
        self._image = None if image_file is None else base64.b64encode(read_png(image_file)).decode()
        #: The Marketplace models' agreements: model id -> PENDING or AVAILABLE (absent: NOT_AVAILABLE).
        self._agreements = self._configured_agreements()

    # ---- observation and control --------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters: requests, images, succeeded, throttled, faults, filtered, invalid,
        unavailable."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        """Zero the counters (the RPM window, the fault RNG and queued forced errors are left as they are)."""
        with self._lock:
            self._stats = dict.fromkeys(STAT_NAMES, 0)

    def reset(self) -> None:
        """Zero the counters and restore the configured agreements (what ``POST /_emulator/reset`` does)."""
        with self._lock:
            self._stats = dict.fromkeys(STAT_NAMES, 0)
            self._agreements = self._configured_agreements()

    @property
    def agreements(self) -> dict[str, str]:
        """A snapshot of the Marketplace models' agreements: model id -> PENDING or AVAILABLE."""
        with self._lock:
            return dict(self._agreements)

    def _configured_agreements(self) -> dict[str, str]:
        agreed = self.config.agreements
        model_ids = self.lifecycle.marketplace_ids() if agreed == ALL_AGREEMENTS else agreed
        return dict.fromkeys(sorted(model_ids), AVAILABLE)

    def fail_next(self, code: str, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` InvokeModel requests with error ``code``, before any other check."""
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown error code {code!r}; expected one of {', '.join(ERROR_STATUS)}")
        with self._lock:
            self._forced.extend(BedrockApiError(code, message) for _ in range(times))

    # ---- InvokeModel --------------------------------------------------------------------------

    def invoke(self, model_id: str, raw_body: bytes, region: str | None = None) -> dict[str, Any]:
        """Handle one InvokeModel call made in ``region`` (``None``: unknown, offered everywhere); raises
        ``BedrockApiError`` for every error reply."""
        with self._lock:
            self._stats["requests"] += 1
            forced = self._forced.popleft() if self._forced else None
            if forced is not None:
                self._stats["faults"] += 1
        if forced is not None:
            raise forced
        entry = self.lifecycle.entry(model_id)
        if entry is None:  # neither in the table nor added by an override: Bedrock knows no such model
            self._count("invalid")
            if FOUNDATION_MODEL_ID.fullmatch(foundation_model_id(model_id)):
                raise BedrockApiError("ResourceNotFoundException", UNRESOLVED_MODEL_MESSAGE)
            raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
        refusal = entry.refusal(region)
        if refusal is None and entry.info.marketplace and self.agreement_status(entry.model_id) != AVAILABLE:
            refusal = BedrockApiError("AccessDeniedException", MARKETPLACE_ACCESS_DENIED_MESSAGE)
        if refusal is not None:
            self._count("unavailable")
            raise refusal
        try:
            job = validate(model_id, raw_body)
        except BedrockApiError:
            self._count("invalid")
            raise
        if self._blocked is not None and any(
            self._blocked.search(text) for text in (job.prompt, job.negative_prompt) if text
        ):
            self._count("filtered")
            if job.stability:
                return {"finish_reasons": [PROMPT_FILTERED]}
            raise BedrockApiError("ValidationException", CONTENT_FILTER_MESSAGE)
        self._take_quota()
        self._maybe_fault()
        if self.config.latency_ms:
            self.wait(self.config.latency_ms / 1000)
        reply = self._reply(job)
        with self._lock:
            self._stats["images"] += job.count
            self._stats["succeeded"] += 1
        return reply

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def _take_quota(self) -> None:
        if not self.config.rpm:
            return
        with self._lock:
            now = self.clock()
            while self._window and self._window[0] <= now - QUOTA_WINDOW_SECONDS:
                self._window.popleft()
            if len(self._window) >= self.config.rpm:
                self._stats["throttled"] += 1
                raise BedrockApiError("ThrottlingException", THROTTLING_MESSAGE)
            self._window.append(now)

    def _maybe_fault(self) -> None:
        if not self.config.fault_rate:
            return
        with self._lock:
            if self._rng.random() >= self.config.fault_rate:
                return
            code = FAULT_CODES[0] if self._rng.random() < 0.5 else FAULT_CODES[1]
            self._stats["faults"] += 1
        raise BedrockApiError(code)

    def _reply(self, job: Job) -> dict[str, Any]:
        if self._image is not None:
            images = [self._image] * job.count
        else:
            images = [
                base64.b64encode(render_placeholder(job.prompt, job.seed + i, job.width, job.height, job.fmt)).decode()
                for i in range(job.count)
            ]
        if job.stability:
            return {"seeds": [job.seed], "finish_reasons": [None], "images": images}
        return {"images": images, "error": None}

    # ---- control plane ------------------------------------------------------------------------

    def get_foundation_model(self, model_identifier: str, region: str | None = None) -> dict[str, Any]:
        """GetFoundationModel (``bedrock_emulator.control``)."""
        return control.get_foundation_model(self.lifecycle, model_identifier, region)

    def get_foundation_model_availability(self, model_id: str, region: str | None = None) -> dict[str, Any]:
        """GetFoundationModelAvailability (``bedrock_emulator.control``); a PENDING agreement reads PENDING once,
        then AVAILABLE."""
        with self._lock:
            reply = control.get_foundation_model_availability(
                self.lifecycle, model_id, region, agreements=self._agreements
            )
            if reply["agreementAvailability"]["status"] == PENDING:
                self._agreements[reply["modelId"]] = AVAILABLE
        return reply

    def agreement_status(self, model_id: str) -> str:
        """The agreement of the Marketplace model ``model_id``: PENDING, AVAILABLE or NOT_AVAILABLE."""
        with self._lock:
            return self._agreements.get(model_id, "NOT_AVAILABLE")

    def list_foundation_model_agreement_offers(
        self, model_id: str, region: str | None = None, query: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """ListFoundationModelAgreementOffers (``bedrock_emulator.control``)."""
        return control.list_foundation_model_agreement_offers(self.lifecycle, model_id, region, query or {})

    def create_foundation_model_agreement(self, raw_body: bytes, region: str | None = None) -> dict[str, Any]:
        """CreateFoundationModelAgreement: the model's agreement becomes PENDING; ConflictException when it is
        PENDING or AVAILABLE already."""
        self._count("agreement_requests")
        model_id = control.check_agreement_request(self.lifecycle, raw_body, region)
        with self._lock:
            if model_id in self._agreements:
                raise BedrockApiError("ConflictException", AGREEMENT_EXISTS_MESSAGE)
            self._agreements[model_id] = PENDING
        return {"modelId": model_id}

    def list_foundation_models(
        self, region: str | None = None, query: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """ListFoundationModels (``bedrock_emulator.control``); ``query``: the filters, as parsed query strings."""
        return control.list_foundation_models(self.lifecycle, region, query or {})
