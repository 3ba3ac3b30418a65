"""What the page's browser tests share: Chromium, a local stack per model latency, the page in a fresh browser
context, and helpers that read the page's state and the requests it sends.

Chromium: `.ci/run` installs Debian's `chromium` when it is missing (GitHub's runners use their Google Chrome).
Elsewhere these tests skip when no such browser is installed, unless IMAGEGEN_REQUIRE_BROWSER=1 (set by `.ci/run`
and the CI workflow) makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import StackConfig, StackEndpoints
from local_stack.stack import LocalStack
from tests.tools import ROOT

MODEL = "stability.stable-image-core-v1:1"
SCREENSHOT = ROOT / "docs" / "images" / "page.png"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: The slow stack's model time: a job there takes about this plus ~1.5 s (the queue's pickup).
SLOW_LATENCY_MS = 5_000
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
JOB_WAIT_MS = 30_000
#: A word the emulator's content filter blocks (a job with it fails at the model, after it was accepted).
BLOCKED = "forbidden"


def chromium() -> str:
    """Debian's Chromium here; GitHub's runners have Google Chrome preinstalled."""
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found:
        return found
    if os.environ.get("IMAGEGEN_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required here (IMAGEGEN_REQUIRE_BROWSER=1): apt-get install chromium")
    pytest.skip("no Chromium installed (apt-get install chromium); .ci/run installs it")


@contextmanager
def local_stack(directory: Path, latency_ms: int) -> Iterator[StackEndpoints]:
    executable = chromium()
    assert executable
    emulator = EmulatorConfig(latency_ms=latency_ms, blocked_words=(BLOCKED,))
    config = StackConfig(
        api_port=0, aws_port=0, bedrock_port=0, state_file=None, log_dir=directory / "logs",
        model_id=f"{MODEL}@us-west-2", batching_window_seconds=0.2, emulator=emulator,
    )  # fmt: skip
    with LocalStack(config) as running:
        assert running.endpoints is not None
        yield running.endpoints


@contextmanager
def open_page(browser: Any, stack: StackEndpoints) -> Iterator[Any]:
    """The page in a fresh context (its own localStorage), with its dialogs recorded and dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", record)
    opened.dialogs = dialogs
    opened.goto(page_url(stack))
    try:
        yield opened
    finally:
        context.close()


def page_url(stack: StackEndpoints) -> str:
    return stack.api_url.removesuffix("generate-image")


def enter_key(page: Any, key: str) -> None:
    page.get_by_role("textbox", name="API key").fill(key)
    page.get_by_role("button", name="Save key").click()


def api_post(stack: StackEndpoints, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        stack.api_url, data=json.dumps(body).encode(), method="POST",
        headers={"x-api-key": stack.api_key, "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as reply:
        result: dict[str, Any] = json.loads(reply.read())
        return result


def wait_loaded(page: Any, selector: str, count: int = 1) -> None:
    """Until the first ``count`` images under ``selector`` have loaded. Polled from here: Playwright's
    wait_for_function evaluates a string in the page, which the page's CSP (rightly) forbids."""
    deadline = time.monotonic() + 30
    script = "(images, n) => images.length >= n && images.slice(0, n).every(i => i.complete && i.naturalWidth > 0)"
    while not page.locator(selector).evaluate_all(script, count):
        assert time.monotonic() < deadline, f"{selector}: images did not load"
        page.wait_for_timeout(100)  # lets the page run; the condition is the page's own state


def card_prompts(page: Any) -> list[str]:
    return [str(text) for text in page.locator("#gallery .card .prompt").all_inner_texts()]


def submit(page: Any, prompt: str, seed: int | None = None) -> None:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    if seed is not None:
        page.get_by_label("Seed").fill(str(seed))
    page.get_by_role("button", name="Generate").click()


def job_entry(page: Any, prompt: str) -> Any:
    return page.locator("#jobs .job", has=page.locator(".job-prompt", has_text=prompt))


def wait_status(entry: Any, *statuses: str, timeout: float = JOB_WAIT_MS) -> str:
    """Until the job entry shows one of ``statuses`` (its data-status); returns the one it shows."""
    wanted = ", ".join(f'[data-status="{status}"]' for status in statuses)
    entry.and_(entry.page.locator(f"#jobs .job:is({wanted})")).wait_for(timeout=timeout)
    return str(entry.get_attribute("data-status"))


def elapsed_seconds(entry: Any) -> int:
    text = entry.locator(".elapsed").inner_text()
    found = re.fullmatch(r"(?:took )?(?:(\d+) min )?(\d+) s(?: so far)?", text)
    assert found, text
    return int(found.group(1) or 0) * 60 + int(found.group(2))


def stored_jobs(page: Any) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = json.loads(page.evaluate("localStorage.getItem('imagegen.jobs') || '[]'"))
    return stored


@dataclass
class Seen:
    """One request of the page, as Playwright reported it (monotonic seconds)."""

    method: str
    path: str
    headers: dict[str, str]
    started: float
    ended: float | None = None


@dataclass
class Traffic:
    """Every request the page sends (across reloads of the same page)."""

    requests: list[Seen] = field(default_factory=list)
    _open: dict[int, Seen] = field(default_factory=dict)

    @classmethod
    def of(cls, page: Any) -> Traffic:
        traffic = cls()
        page.on("request", traffic._start)
        page.on("requestfinished", traffic._end)
        page.on("requestfailed", traffic._end)
        return traffic

    def _start(self, request: Any) -> None:
        path = urllib.parse.urlsplit(request.url).path
        seen = Seen(request.method, path, dict(request.headers), time.monotonic())
        self.requests.append(seen)
        self._open[id(request)] = seen

    def _end(self, request: Any) -> None:
        seen = self._open.pop(id(request), None)
        if seen is not None:
            seen.ended = time.monotonic()

    def polls(self, job_id: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.method == "GET" and seen.path.endswith(f"/jobs/{job_id}")]

    def page_loads(self) -> list[float]:
        return [seen.started for seen in self.requests if seen.method == "GET" and seen.path.endswith("/")]

    def posts(self, resource: str = "/jobs") -> list[Seen]:
        return [seen for seen in self.requests if seen.method == "POST" and seen.path.endswith(resource)]


def assert_one_in_flight(polls: list[Seen]) -> None:
    """Never two requests of one job at once: each starts after the previous one finished."""
    for earlier, later in pairwise(polls):
        assert earlier.ended is not None and later.started >= earlier.ended, (earlier, later)
