"""API Gateway's usage plan and stage throttle, as the local gateway enforces them: a token bucket per API key and
one for the stage (rate and burst), and a daily quota per key, with the values template.yaml gives its usage plan.

API Gateway answers a throttled request with 429 ``{"message": "Too Many Requests"}`` and one over the quota with
429 ``{"message": "Limit Exceeded"}`` (its THROTTLED and QUOTA_EXCEEDED gateway responses).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_stack.deployment import TEMPLATE, load_template

THROTTLED = "Too Many Requests"
QUOTA_EXCEEDED = "Limit Exceeded"


@dataclass(frozen=True)
class UsagePlan:
    """Requests per second, burst, and requests per day (per API key)."""

    rate: float
    burst: int
    quota_per_day: int

    @classmethod
    def from_template(cls, path: Path = TEMPLATE) -> UsagePlan:
        """The defaults of template.yaml's ApiThrottleRateLimit, ApiThrottleBurstLimit and ApiDailyQuota."""
        parameters: dict[str, Any] = load_template(path)["Parameters"]
        return cls(
            rate=float(parameters["ApiThrottleRateLimit"]["Default"]),
            burst=int(parameters["ApiThrottleBurstLimit"]["Default"]),
            quota_per_day=int(parameters["ApiDailyQuota"]["Default"]),
        )


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class UsagePlanLimiter:
    """Admits a request or says why API Gateway would not; safe to share between threads."""

    plan: UsagePlan
    clock: Callable[[], float] = time.monotonic
    today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat()
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _used: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refusal(self, api_key: str | None) -> str | None:
        """``None`` to admit the request (counting it), else the message of API Gateway's 429.

        Every request counts against the stage's throttle; a keyed one also against its key's, and its quota."""
        with self._lock:
            buckets = ["stage"] + ([f"key:{api_key}"] if api_key else [])
            if api_key and self._used.get((api_key, self.today()), 0) >= self.plan.quota_per_day:
                return QUOTA_EXCEEDED
            now = self.clock()
            for name in buckets:
                bucket = self._buckets.setdefault(name, _Bucket(float(self.plan.burst), now))
                bucket.tokens = min(float(self.plan.burst), bucket.tokens + (now - bucket.updated) * self.plan.rate)
                bucket.updated = now
            if any(self._buckets[name].tokens < 1 for name in buckets):
                return THROTTLED
            for name in buckets:
                self._buckets[name].tokens -= 1
            if api_key:
                day = (api_key, self.today())
                self._used[day] = self._used.get(day, 0) + 1
            return None
