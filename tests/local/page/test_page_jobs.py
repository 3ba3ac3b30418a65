"""The page's jobs in a real headless Chromium against the local stack: submitting returns at once, the jobs list,
polling with backoff, surviving a reload, retries and errors in words.

A job longer than API Gateway's 29 s is covered by the local-stack tests (tests/local/test_jobs_local.py), not here:
each such job would add half a minute.
"""

from __future__ import annotations

import re
import time
from itertools import pairwise
from typing import Any

import pytest

from bedrock_emulator.admin import EmulatorAdmin
from local_stack.config import StackEndpoints
from tests.local.page.support import (
    BLOCKED,
    JOB_WAIT_MS,
    MODEL,
    SLOW_LATENCY_MS,
    UUID,
    Traffic,
    assert_one_in_flight,
    elapsed_seconds,
    enter_key,
    job_entry,
    stored_jobs,
    submit,
    wait_loaded,
    wait_status,
)

pytestmark = pytest.mark.browser


def test_a_job_shows_its_status_then_its_image_and_model(page: Any, stack: StackEndpoints) -> None:
    traffic = Traffic.of(page)
    enter_key(page, stack.api_key)
    submit(page, "a lighthouse at dusk, painted", seed=42)
    entry = job_entry(page, "a lighthouse at dusk, painted")
    assert wait_status(entry, "queued", "running") in {"queued", "running"}
    assert re.fullmatch(r"(Queued|Running): .+", entry.locator(".status").inner_text())
    assert wait_status(entry, "succeeded") == "succeeded"
    assert entry.locator(".status").inner_text() == "Succeeded"
    assert f"1 image by {MODEL}" in entry.inner_text()
    image = entry.locator("img").first
    assert image.get_attribute("alt") == "a lighthouse at dusk, painted"
    wait_loaded(page, "#jobs .job img")
    assert "seed 42" in entry.locator(".facts").first.inner_text()
    assert entry.locator(".elapsed").inner_text().startswith("took ")
    # Through POST /jobs with a fresh Idempotency-Key, not the synchronous POST /generate-image.
    [post] = traffic.posts()
    assert UUID.match(post.headers.get("idempotency-key", ""))
    assert traffic.posts("/generate-image") == []
    # The finished job's image is in the gallery too (its first page is loaded again once the job succeeds).
    page.locator("#gallery .card", has_text="a lighthouse at dusk, painted").first.wait_for()
    # The list is announced politely; its ticking seconds are not.
    assert page.locator("#jobs").get_attribute("aria-live") == "polite"
    assert entry.locator(".elapsed").get_attribute("aria-live") == "off"


def test_a_too_long_prompt_names_the_field_and_the_rule_and_makes_no_job(page: Any, stack: StackEndpoints) -> None:
    traffic = Traffic.of(page)
    enter_key(page, stack.api_key)
    page.get_by_label("Prompt", exact=True).fill("p" * 10_001)
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    alert.filter(has_text="The request was rejected: prompt: must be at most 10000 characters").wait_for()
    assert MODEL in alert.inner_text()
    assert len(traffic.posts()) == 1  # a 400 is not retried
    assert page.locator("#jobs .job").count() == 0
    assert page.locator("#jobs-empty").is_visible()
    assert stored_jobs(page) == []


def test_a_job_is_submitted_and_cleared_from_the_keyboard(page: Any, stack: StackEndpoints) -> None:
    enter_key(page, stack.api_key)
    page.get_by_label("Prompt", exact=True).focus()
    page.keyboard.type("a typed-in teapot")
    page.keyboard.press("Tab")  # to the negative prompt; Enter there submits the form
    page.keyboard.press("Enter")
    entry = job_entry(page, "a typed-in teapot")
    wait_status(entry, "succeeded")
    page.get_by_role("button", name="Clear finished jobs").focus()
    page.keyboard.press("Enter")
    assert page.locator("#jobs .job").count() == 0
    assert stored_jobs(page) == []
    assert page.get_by_label("Prompt", exact=True).evaluate("element => element === document.activeElement")


def test_a_submission_whose_reply_is_lost_is_retried_as_the_same_job(page: Any, stack: StackEndpoints) -> None:
    """The first POST /jobs reaches the API, but its reply never reaches the page: the page sends it again with the
    same Idempotency-Key, and the API answers with the job it already made."""
    keys: list[str] = []
    lost: list[str] = []

    def lose_the_first_reply(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers["idempotency-key"])
        if lost:
            route.continue_()
            return
        lost.append(route.fetch().json()["job_id"])  # made on the server...
        route.abort("connectionreset")  # ...but the page never hears of it

    page.route("**/jobs", lose_the_first_reply)
    enter_key(page, stack.api_key)
    submit(page, "a twice-sent postcard")
    entry = job_entry(page, "a twice-sent postcard")
    wait_status(entry, "succeeded")
    assert len(keys) == 2 and keys[0] == keys[1] and UUID.match(keys[0])
    assert [entry.get_attribute("data-job-id")] == lost
    assert page.locator("#jobs .job").count() == 1


def test_polling_rides_out_a_network_error_a_404_and_a_429(page: Any, stack: StackEndpoints) -> None:
    """The first three GETs of the job fail (no network, 404, 429 with Retry-After: 4): the page says so in words,
    keeps its backoff, waits out the Retry-After, and the job still ends."""
    polled: list[float] = []

    def answer(route: Any) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        polled.append(time.monotonic())
        if len(polled) == 1:
            route.abort("internetdisconnected")
        elif len(polled) == 2:
            route.fulfill(status=404, json={"code": "NotFound", "message": "No job."})
        elif len(polled) == 3:
            route.fulfill(status=429, headers={"Retry-After": "4"}, json={"message": "Too Many Requests"})
        else:
            route.continue_()

    page.route("**/jobs/*", answer)
    enter_key(page, stack.api_key)
    submit(page, "a kite in a storm")
    entry = job_entry(page, "a kite in a storm")
    entry.locator(".problem", has_text="the API could not be reached; checking again in 2 s").wait_for()
    entry.locator(".problem", has_text="does not show this job yet; checking again in 2 s").wait_for()
    entry.locator(".problem", has_text="too many requests right now; checking again in 4 s").wait_for()
    wait_status(entry, "succeeded")
    assert entry.locator(".problem").count() == 0
    assert len(polled) == 4  # the fourth saw the job ended: no more
    gaps = [later - earlier for earlier, later in pairwise(polled)]
    assert 1.3 <= gaps[0] <= 2.2, gaps  # 1.5 s: the same backoff after a network error
    assert gaps[1] >= 1.3 * gaps[0], gaps  # 2.25 s after the 404
    assert 3.9 <= gaps[2] <= 5.0, gaps  # max(3.375 s, Retry-After 4 s)


def test_a_retried_job_shows_its_attempts_and_last_error(page: Any, stack: StackEndpoints) -> None:
    """Bedrock throttles the job's first two attempts (three calls each); the worker retries it, and the page
    says so while it does."""
    enter_key(page, stack.api_key)
    EmulatorAdmin(stack.bedrock_endpoint_url).fail_next("ThrottlingException", times=6)
    submit(page, "a patient tortoise")
    entry = job_entry(page, "a patient tortoise")
    retry = entry.locator(".retry", has_text="Retrying (attempts so far: ")
    retry.wait_for(timeout=JOB_WAIT_MS)
    assert "Too many image requests right now" in retry.inner_text() and "(Throttled)" in retry.inner_text()
    wait_status(entry, "succeeded")
    assert re.fullmatch(r"After [2-5] attempts\.", entry.locator(".retry").inner_text())
    wait_loaded(page, "#jobs .job img")


def test_a_failed_job_and_a_missing_image_are_said_in_words(page: Any, stack: StackEndpoints) -> None:
    enter_key(page, stack.api_key)
    submit(page, f"a {BLOCKED} fruit")
    failed = job_entry(page, f"a {BLOCKED} fruit")
    wait_status(failed, "failed")
    assert failed.locator(".status").inner_text() == "Failed"
    assert failed.locator(".job-error").inner_text() == (
        "The job failed: The prompt was blocked by the model's content filter. Rephrase it and try again. "
        "(ContentFiltered)"
    )
    assert failed.locator("img").count() == 0
    EmulatorAdmin(stack.bedrock_endpoint_url).fail_next("ValidationException", times=1)  # one of the two calls
    page.get_by_label("Images", exact=True).select_option("2")
    submit(page, "two pears on a plate")
    partial = job_entry(page, "two pears on a plate")
    wait_status(partial, "succeeded")
    assert f"1 image by {MODEL}" in partial.inner_text()
    [failure] = partial.locator(".failures li").all_inner_texts()
    assert re.fullmatch(r"Image [12] was not made: The image model rejected the request\. \(BedrockRejected\)", failure)
    wait_loaded(page, "#jobs .job img")
    assert partial.locator("img").count() == 1


def test_submitting_returns_at_once_and_the_job_runs_in_the_background(
    slow_page: Any, slow_stack: StackEndpoints
) -> None:
    page, traffic = slow_page, Traffic.of(slow_page)
    enter_key(page, slow_stack.api_key)
    started = time.monotonic()
    submit(page, "a slow sunrise over the sea")
    entry = job_entry(page, "a slow sunrise over the sea")
    wait_status(entry, "queued", "running", timeout=3_000)
    assert time.monotonic() - started < 3  # the model alone takes 5 s
    assert page.get_by_role("button", name="Generate").is_enabled()
    assert page.get_by_role("status").filter(has_text="Job submitted").count() == 1
    wait_status(entry, "running")
    assert entry.locator(".status").inner_text() == "Running: the model is making the image"
    entry.locator(".elapsed", has_text="4 s so far").wait_for()  # ticks every second from the submission...
    assert 1 <= len(traffic.polls(str(entry.get_attribute("data-job-id")))) <= 3  # ...without a request a second
    wait_status(entry, "succeeded")
    wait_loaded(page, "#jobs .job img")
    assert elapsed_seconds(entry) >= SLOW_LATENCY_MS // 1000


def test_two_jobs_back_to_back_both_finish_and_the_form_stays_usable(
    slow_page: Any, slow_stack: StackEndpoints
) -> None:
    page, traffic = slow_page, Traffic.of(slow_page)
    enter_key(page, slow_stack.api_key)
    submit(page, "first: a red balloon")
    first = job_entry(page, "first: a red balloon")
    wait_status(first, "queued", "running")
    submit(page, "second: a blue balloon")
    second = job_entry(page, "second: a blue balloon")
    wait_status(second, "queued", "running")
    assert first.get_attribute("data-status") in {"queued", "running"}  # the first still runs
    assert page.get_by_role("button", name="Generate").is_enabled()
    assert page.locator("#jobs .job-prompt").all_inner_texts() == ["second: a blue balloon", "first: a red balloon"]
    wait_status(first, "succeeded")
    wait_status(second, "succeeded")
    wait_loaded(page, "#jobs .job img", 2)
    first_post, second_post = traffic.posts()
    assert first_post.headers["idempotency-key"] != second_post.headers["idempotency-key"]
    for entry in (first, second):
        polls = traffic.polls(str(entry.get_attribute("data-job-id")))
        assert polls
        assert_one_in_flight(polls)


def test_jobs_in_flight_survive_a_reload(slow_page: Any, slow_stack: StackEndpoints) -> None:
    page, traffic = slow_page, Traffic.of(slow_page)
    enter_key(page, slow_stack.api_key)
    submit(page, "a reload-proof rocket")
    rocket = job_entry(page, "a reload-proof rocket")
    rocket_id = str(rocket.get_attribute("data-job-id"))
    submit(page, "a reload-proof kite")
    kite_id = str(job_entry(page, "a reload-proof kite").get_attribute("data-job-id"))
    rocket.locator(".elapsed", has_text="2 s so far").wait_for()
    assert rocket.get_attribute("data-status") in {"queued", "running"}
    page.reload()
    reloaded = traffic.page_loads()[-1]
    rocket = page.locator(f'#jobs .job[data-job-id="{rocket_id}"]')
    rocket.wait_for()
    assert elapsed_seconds(rocket) >= 2  # counted from the original submission
    assert [job["id"] for job in stored_jobs(page)] == [kite_id, rocket_id]
    for job_id in (rocket_id, kite_id):
        entry = page.locator(f'#jobs .job[data-job-id="{job_id}"]')
        wait_status(entry, "succeeded")
        wait_loaded(page, f'#jobs .job[data-job-id="{job_id}"] img')
        assert elapsed_seconds(entry) >= SLOW_LATENCY_MS // 1000
    assert len(traffic.posts()) == 2  # resumed, not submitted again
    # Resumed at once, the newest first and the next 250 ms later (many jobs must not burst past the usage plan).
    [kite_first, rocket_first] = [
        next(seen.started for seen in traffic.polls(job_id) if seen.started > reloaded)
        for job_id in (kite_id, rocket_id)
    ]
    # staggered 250 ms apart, newest first (the bounds allow for when Playwright sees each request start)
    assert kite_first - reloaded < 2 and 0.1 <= rocket_first - kite_first <= 1.5, (kite_first, rocket_first)
    # The finished jobs are kept (the last 20 are): shown after another reload, and not polled any more.
    polls = len(traffic.polls(rocket_id)) + len(traffic.polls(kite_id))
    page.reload()
    page.locator('#jobs .job[data-status="succeeded"]').nth(1).wait_for()
    page.locator("#gallery-status", has_text="shown").wait_for()
    assert len(traffic.polls(rocket_id)) + len(traffic.polls(kite_id)) == polls
    assert [job["status"] for job in stored_jobs(page)] == ["succeeded", "succeeded"]


def test_polling_backs_off(slow_page: Any, slow_stack: StackEndpoints) -> None:
    """The first GET 1 s after the job was accepted, then each interval 1.5 times the last: a job of ~6.5 s is
    polled about 4 times (once a second would be 6 or 7)."""
    page, traffic = slow_page, Traffic.of(slow_page)
    enter_key(page, slow_stack.api_key)
    submit(page, "a patient heron")
    entry = job_entry(page, "a patient heron")
    wait_status(entry, "succeeded")
    [post] = traffic.posts()
    polls = traffic.polls(str(entry.get_attribute("data-job-id")))
    assert post.ended is not None
    gaps = [polls[0].started - post.ended] + [b.started - a.started for a, b in pairwise(polls)]
    assert 0.8 <= gaps[0] <= 1.6, gaps
    assert all(later >= 1.3 * earlier for earlier, later in pairwise(gaps)), gaps
    assert 3 <= len(polls) <= 5, gaps
    assert_one_in_flight(polls)
