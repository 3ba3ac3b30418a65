"""The local gateway's usage plan: API Gateway's token buckets (rate, burst) per key and for the stage, and the daily
quota per key (that these are the template's values: tests/infra/test_openapi.py)."""

from __future__ import annotations

import pytest

from local_stack.usage_plan import QUOTA_EXCEEDED, THROTTLED, UsagePlan, UsagePlanLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.day = "2026-12-03"

    def __call__(self) -> float:
        return self.now


def limiter(rate: float = 5, burst: int = 10, quota: int = 1000) -> tuple[UsagePlanLimiter, Clock]:
    clock = Clock()
    return UsagePlanLimiter(UsagePlan(rate, burst, quota), clock=clock, today=lambda: clock.day), clock


def test_a_burst_is_admitted_then_throttled_until_tokens_come_back() -> None:
    plan, clock = limiter()
    assert [plan.refusal("k") for _ in range(10)] == [None] * 10
    assert plan.refusal("k") == THROTTLED
    clock.now += 0.19  # 5 a second: less than one token back
    assert plan.refusal("k") == THROTTLED
    clock.now += 0.02
    assert plan.refusal("k") is None
    assert plan.refusal("k") == THROTTLED


def test_tokens_never_exceed_the_burst() -> None:
    plan, clock = limiter()
    clock.now += 3600
    assert [plan.refusal("k") for _ in range(11)].count(None) == 10


def test_the_stage_throttle_counts_every_request_the_key_counts_its_own() -> None:
    plan, _ = limiter()
    assert [plan.refusal(None) for _ in range(10)] == [None] * 10  # the page: no key, the stage's bucket
    assert plan.refusal("k") == THROTTLED  # the stage is spent, so the key's request is throttled too


def test_the_quota_is_per_key_and_per_day_and_refused_requests_do_not_count() -> None:
    plan, clock = limiter(rate=1000, burst=1000, quota=3)
    assert [plan.refusal("k") for _ in range(4)] == [None, None, None, QUOTA_EXCEEDED]
    assert plan.refusal("other") is None
    clock.day = "2026-12-04"
    assert plan.refusal("k") is None


@pytest.mark.parametrize(("rate", "burst", "quota"), [(5, 10, 1000), (1, 1, 1)])
def test_throttled_requests_spend_no_quota(rate: float, burst: int, quota: int) -> None:
    plan, clock = limiter(rate, burst, quota)
    for _ in range(burst):
        plan.refusal("k")
    for _ in range(50):
        plan.refusal("k")  # throttled
    clock.now += burst / rate + 1
    expected = None if quota > burst else QUOTA_EXCEEDED
    assert plan.refusal("k") == expected
