"""``imagegen status --wait`` / ``enqueue --wait``: how the CLI polls a job without spending the usage plan."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen_cli.api import ApiTarget
from imagegen_cli.common import CliError
from imagegen_cli.jobs import MAX_DELAY_SECONDS, JobWatcher, describe, save_images

Reply = tuple[int, dict[str, Any], float | None]


class ScriptedWatcher(JobWatcher):
    """Answers GETs from a script; time passes only when it pauses."""

    def __init__(self, replies: list[Reply]) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        super().__init__(ApiTarget("http://api/Prod/generate-image", "k"), pause=self._pause, clock=lambda: self.now)
        self.replies = replies

    def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def get(self, job_id: str) -> Reply:
        self.requests += 1
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def job(status: str, **extra: Any) -> Reply:
    return 200, {"job_id": "j", "status": status, **extra}, None


def test_waiting_backs_off_to_ten_seconds_between_requests() -> None:
    watcher = ScriptedWatcher([*(job("running") for _ in range(9)), job("succeeded")])
    assert watcher.wait("j", timeout=300)["status"] == "succeeded"
    assert watcher.pauses == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0, 10.0])
    assert max(watcher.pauses) == MAX_DELAY_SECONDS
    assert watcher.requests == 10


def test_a_429_waits_as_long_as_retry_after_says() -> None:
    watcher = ScriptedWatcher([(429, {"message": "Too Many Requests"}, 30.0), job("succeeded")])
    watcher.wait("j", timeout=300)
    assert watcher.pauses == [30.0]


def test_a_message_not_yet_received_by_the_worker_is_waited_for() -> None:
    watcher = ScriptedWatcher([(404, {"code": "NotFound"}, None), job("queued"), job("failed", error={})])
    assert watcher.wait("j", timeout=300)["status"] == "failed"
    assert watcher.requests == 3


@pytest.mark.parametrize(("status", "expected"), [(403, "check the API key"), (400, "must be a job id")])
def test_a_refusal_ends_the_wait_at_once(status: int, expected: str) -> None:
    watcher = ScriptedWatcher([(status, {"message": "job_id: must be a job id"}, None)])
    with pytest.raises(CliError, match=expected):
        watcher.wait("j", timeout=300)
    assert watcher.requests == 1


def test_waiting_gives_up_at_its_timeout_and_says_what_it_last_saw() -> None:
    watcher = ScriptedWatcher([job("running")])
    with pytest.raises(CliError, match=r"did not end within 20 s \(last seen: running\)"):
        watcher.wait("j", timeout=20)
    assert sum(watcher.pauses) <= 20


def test_a_failed_job_is_one_line_with_its_reason() -> None:
    failed = {"job_id": "j", "status": "failed", "error": {"code": "ContentFiltered", "message": "Blocked."}}
    with pytest.raises(CliError, match=r"^job j failed: Blocked\. \[ContentFiltered\]$"):
        save_images(failed, out=None)  # type: ignore[arg-type]


def test_a_job_is_described_in_words() -> None:
    text = describe({"job_id": "j", "status": "succeeded", "source": "queue", "attempts": 2, "created_at": "t",
                     "model": "m", "images": [{"index": 0, "key": "k-0.png", "seed": 5, "width": 8, "height": 8}],
                     "failures": [{"index": 1, "code": "ContentFiltered", "message": "Blocked."}]})  # fmt: skip
    assert text.splitlines() == [
        "job j: succeeded (from the queue, 2 attempt(s), created t)",
        "  model: m",
        "  image 0: k-0.png (seed 5, 8x8)",
        "  image 1 not made [ContentFiltered]: Blocked.",
    ]
