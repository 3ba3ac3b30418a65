"""The web page in a real headless Chromium (Debian's, driven by Playwright) against the local stack: key entry,
generating, the gallery with queue images, newest first, paging, error messages, and prompts shown as text.

Chromium: `.ci/run` installs Debian's `chromium` when it is missing (GitHub's runners use their Google Chrome).
Elsewhere these tests skip when no such browser is installed, unless IMAGEGEN_REQUIRE_BROWSER=1 (set by `.ci/run`
and the CI workflow) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bedrock_emulator.config import EmulatorConfig
from local_stack.config import StackConfig, StackEndpoints
from local_stack.stack import LocalStack
from tests.tools import ROOT

pytestmark = pytest.mark.browser

MODEL = "stability.stable-image-core-v1:1"
SCREENSHOT = ROOT / "docs" / "images" / "page.png"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium() -> str:
    """Debian's Chromium here; GitHub's runners have Google Chrome preinstalled."""
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found:
        return found
    if os.environ.get("IMAGEGEN_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium is required here (IMAGEGEN_REQUIRE_BROWSER=1): apt-get install chromium")
    pytest.skip("no Chromium installed (apt-get install chromium); .ci/run installs it")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    executable = chromium()
    assert executable
    directory = tmp_path_factory.mktemp("page-stack")
    config = StackConfig(
        api_port=0, aws_port=0, bedrock_port=0, state_file=None, log_dir=directory / "logs",
        model_id=f"{MODEL}@us-west-2", batching_window_seconds=0.2, emulator=EmulatorConfig(latency_ms=300),
    )  # fmt: skip
    with LocalStack(config) as running:
        assert running.endpoints is not None
        yield running.endpoints


@pytest.fixture(scope="module")
def browser(stack: StackEndpoints) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, stack: StackEndpoints) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", record)
    opened.dialogs = dialogs
    opened.goto(page_url(stack))
    yield opened
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
    script = "(images, n) => images.slice(0, n).every(i => i.complete && i.naturalWidth > 0)"
    while not page.locator(selector).evaluate_all(script, count):
        assert time.monotonic() < deadline, f"{selector}: images did not load"
        page.wait_for_timeout(100)  # lets the page run; the condition is the page's own state


def card_prompts(page: Any) -> list[str]:
    return [str(text) for text in page.locator("#gallery .card .prompt").all_inner_texts()]


# ---- the tests ---------------------------------------------------------------------------------


def test_the_page_asks_for_the_key_once_and_keeps_it_out_of_urls(page: Any, stack: StackEndpoints) -> None:
    assert page.locator("#key-dialog").is_visible()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    enter_key(page, stack.api_key)
    page.get_by_text("API key set.").wait_for()
    page.reload()
    assert not page.locator("#key-dialog").is_visible()  # remembered (localStorage)
    page.locator("#gallery-status").filter(has_text="shown").or_(page.get_by_text("No images yet.")).wait_for()
    assert requests and not [url for url in requests if stack.api_key in url]


def test_generate_shows_progress_then_the_image_and_its_model(page: Any, stack: StackEndpoints) -> None:
    enter_key(page, stack.api_key)
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk, painted")
    page.get_by_label("Seed").fill("42")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Generating…").wait_for()  # the elapsed seconds while the request runs
    page.get_by_text(f"by {MODEL}").wait_for()
    image = page.locator("#results img").first
    assert image.get_attribute("alt") == "a lighthouse at dusk, painted"
    wait_loaded(page, "#results img")
    assert "seed 42" in page.locator("#results .facts").first.inner_text()


def test_a_prompt_sent_to_the_queue_appears_in_the_gallery_newest_first(page: Any, stack: StackEndpoints) -> None:
    api_post(stack, {"prompt": "an older picture from the API"})
    message_id = stack.client("sqs").send_message(QueueUrl=stack.queue_url, MessageBody="a whale from the queue")[
        "MessageId"
    ]
    key = f"generated_images/from_queue/{message_id}-0.json"
    deadline = time.monotonic() + 30
    while not stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=key).get("KeyCount"):
        assert time.monotonic() < deadline, "the worker did not store the queue's image"
        time.sleep(0.2)  # polls S3 (another process), not a synchronisation of our own code
    enter_key(page, stack.api_key)
    page.locator("#gallery .card").first.wait_for()
    prompts = card_prompts(page)
    assert prompts.index("a whale from the queue") < prompts.index("an older picture from the API")
    whale = page.locator("#gallery .card", has_text="a whale from the queue")
    assert "queue" in whale.locator(".facts").inner_text()


def test_load_more_pages_through_the_gallery(page: Any, stack: StackEndpoints) -> None:
    for index in range(26):
        api_post(stack, {"prompt": f"paging picture {index}", "seed": index})
    enter_key(page, stack.api_key)
    page.locator("#gallery .card").nth(23).wait_for()
    assert page.locator("#gallery .card").count() == 24
    assert card_prompts(page)[0] == "paging picture 25"
    page.get_by_role("button", name="Load more").click()
    page.locator("#gallery .card").nth(24).wait_for()
    prompts = card_prompts(page)
    assert len(prompts) == len(set(prompts)) > 24  # the next page, no repeats


def test_a_wrong_key_is_said_in_words(page: Any) -> None:
    enter_key(page, "not-the-key")
    page.get_by_label("Prompt", exact=True).fill("a cat")
    page.get_by_role("button", name="Generate").click()
    page.get_by_role("alert").filter(has_text="The API key was refused").wait_for()


def test_a_too_long_prompt_names_the_field_and_the_rule(page: Any, stack: StackEndpoints) -> None:
    enter_key(page, stack.api_key)
    page.get_by_label("Prompt", exact=True).fill("p" * 10_001)
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="The request was rejected: prompt: must be at most 10000 characters").wait_for()
    assert MODEL in alert.inner_text()


def test_a_script_in_a_prompt_is_shown_as_text(page: Any, stack: StackEndpoints) -> None:
    hostile = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
    api_post(stack, {"prompt": hostile})
    enter_key(page, stack.api_key)
    card = page.locator("#gallery .card", has_text="onerror=alert(1)").first
    card.wait_for()
    assert card.locator(".prompt").inner_text() == hostile
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []  # no alert ran


def test_the_gallery_works_from_the_keyboard(page: Any, stack: StackEndpoints) -> None:
    api_post(stack, {"prompt": "a keyboard-friendly kite", "seed": 77})
    enter_key(page, stack.api_key)
    page.locator("#gallery .card").first.wait_for()
    for _ in range(40):  # Tab through the page until the first gallery card has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#gallery .card') !== null"):
            break
    else:
        pytest.fail("no gallery card is reachable with Tab")
    page.keyboard.press("Enter")
    assert page.locator("#detail").is_visible()
    assert page.locator("#detail-download").get_attribute("href")
    page.get_by_role("button", name="Use this prompt and seed").click()
    assert page.get_by_label("Prompt", exact=True).input_value() == card_prompts(page)[0]
    assert page.get_by_label("Seed").input_value() != ""


def test_screenshot_for_the_readme(page: Any, stack: StackEndpoints) -> None:
    """Taken by this run (docs/images/page.png, shown in the README)."""
    for prompt in ("a red fox in snow", "a lighthouse at dusk", "a cat in space"):
        api_post(stack, {"prompt": prompt})
    enter_key(page, stack.api_key)
    page.get_by_label("Prompt", exact=True).fill("a cat in space")
    page.locator("#gallery .card").nth(2).wait_for()
    wait_loaded(page, "#gallery img", 3)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 10_000
    assert "docs/images/page.png" in (ROOT / "README.md").read_text()


def test_the_screenshot_file_is_a_png(tmp_path: Path) -> None:
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
