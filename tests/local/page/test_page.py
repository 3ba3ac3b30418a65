"""The web page in a real headless Chromium (Debian's, driven by Playwright) against the local stack: key entry, the
gallery with queue images, newest first, paging, the keyboard, error messages, prompts shown as text, and the README's
screenshot (the job flow: test_page_jobs.py; the shared stacks and helpers: conftest.py, support.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from local_stack.config import StackEndpoints
from tests.local.page.support import (
    SCREENSHOT,
    api_post,
    card_prompts,
    enter_key,
    job_entry,
    submit,
    wait_loaded,
    wait_status,
)
from tests.tools import ROOT

pytestmark = pytest.mark.browser


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
    assert page.locator("#jobs .job").count() == 0


def test_a_script_in_a_prompt_is_shown_as_text(page: Any, stack: StackEndpoints) -> None:
    hostile = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
    api_post(stack, {"prompt": hostile})
    enter_key(page, stack.api_key)
    card = page.locator("#gallery .card", has_text="onerror=alert(1)").first
    card.wait_for()
    assert card.locator(".prompt").inner_text() == hostile
    submit(page, hostile + " (a job)")
    entry = job_entry(page, "onerror=alert(1)")
    wait_status(entry, "succeeded")
    assert entry.locator(".job-prompt").inner_text() == hostile + " (a job)"
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
    """Taken by this run (docs/images/page.png, shown in the README): the form, a job in flight and a finished
    one, the gallery."""
    for prompt in ("a red fox in snow", "a lighthouse at dusk", "a cat in space"):
        api_post(stack, {"prompt": prompt})
    enter_key(page, stack.api_key)
    submit(page, "a cat in space, watercolour", seed=7)
    wait_status(job_entry(page, "a cat in space, watercolour"), "succeeded")
    page.locator("#gallery .card", has_text="a cat in space, watercolour").first.wait_for()
    wait_loaded(page, "#jobs .job img")
    wait_loaded(page, "#gallery img", 4)
    submit(page, "a red fox in snow, at night")  # and one in flight (the screenshot is taken before it ends)
    wait_status(job_entry(page, "a red fox in snow, at night"), "queued", "running")
    page.set_viewport_size({"width": 1280, "height": 1000})
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 10_000
    assert "docs/images/page.png" in (ROOT / "README.md").read_text()


def test_the_screenshot_file_is_a_png(tmp_path: Path) -> None:
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- jobs that take a while (the slow stack: 5 s of model time) -----------------------------------
