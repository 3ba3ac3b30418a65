"""Following a job through the API: ``imagegen status JOB_ID`` and the waiting of ``imagegen enqueue --wait``.

Every request counts against the API key's usage plan (5 requests a second, 1,000 a day by default), so waiting
backs off: the first look after 1 s, then 1.5 times longer each time, at most 10 s apart; a 429 waits as long as its
``Retry-After`` says. A job of ~10 s costs about 5 requests this way.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagegen_cli.api import ApiTarget, download
from imagegen_cli.common import CliError, progress

FIRST_DELAY_SECONDS = 1.0
BACKOFF = 1.5
MAX_DELAY_SECONDS = 10.0
ENDED = ("succeeded", "failed")


@dataclass
class JobWatcher:
    """Reads job records with GET /jobs/{job_id}; ``pause`` and ``clock`` are injectable for tests."""

    target: ApiTarget
    pause: Callable[[float], object] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: GET requests made (each counts against the usage plan).
    requests: int = field(default=0, init=False)

    def get(self, job_id: str) -> tuple[int, dict[str, Any], float | None]:
        """Status, body and ``Retry-After`` (seconds) of one GET."""
        url = f"{self.target.stage_url}/jobs/{job_id}"
        request = urllib.request.Request(url, headers={"x-api-key": self.target.key, "User-Agent": "imagegen-cli"})  # noqa: S310
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 - the user's API endpoint
                return reply.status, json.loads(reply.read()), None
        except urllib.error.HTTPError as error:
            retry = error.headers.get("Retry-After")
            try:
                body = json.loads(error.read() or b"{}")
            except json.JSONDecodeError:
                body = {}
            return error.code, body, float(retry) if retry and retry.isdigit() else None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise CliError(f"cannot reach the API at {url} ({getattr(error, 'reason', error)})") from None
        except json.JSONDecodeError:
            raise CliError(f"the API at {url} did not answer with JSON") from None

    def status(self, job_id: str) -> dict[str, Any]:
        """The job now; a CliError for an unknown id, a refused key or a bad id."""
        status, body, _ = self.get(job_id)
        if status != 200:
            raise CliError(_refusal(status, body, job_id))
        return body

    def wait(self, job_id: str, *, timeout: float, label: str = "") -> dict[str, Any]:
        """Poll until the job has ended (backing off) and return it. A 404 is waited out too: a message sent to the
        queue has a record only once the worker receives it."""
        deadline = self.clock() + timeout
        delay = FIRST_DELAY_SECONDS
        with progress(label or f"waiting for job {job_id}"):
            while True:
                status, body, retry_after = self.get(job_id)
                if status == 200 and body.get("status") in ENDED:
                    return body
                if status in (400, 403):
                    raise CliError(_refusal(status, body, job_id))
                wait = max(delay, retry_after or 0.0)
                if self.clock() + wait > deadline:
                    seen = body.get("status", "not found yet") if status == 200 else f"HTTP {status}"
                    raise CliError(f"job {job_id} did not end within {timeout:g} s (last seen: {seen})")
                self.pause(wait)
                delay = min(delay * BACKOFF, MAX_DELAY_SECONDS)


def save_images(job: dict[str, Any], out: Path) -> list[Path]:
    """Download a finished job's images into ``out``; a failed job is a CliError with its code and reason."""
    if job.get("status") == "failed":
        error = job.get("error") or {}
        raise CliError(f"job {job.get('job_id')} failed: {error.get('message')} [{error.get('code')}]")
    return [download(image["url"], out / Path(image["key"]).name) for image in job.get("images", [])]


def describe(job: dict[str, Any]) -> str:
    """A job in a few human lines."""
    lines = [f"job {job.get('job_id')}: {job.get('status')} (from the {job.get('source')}, "
             f"{job.get('attempts', 0)} attempt(s), created {job.get('created_at')})"]  # fmt: skip
    if job.get("model"):
        lines.append(f"  model: {job['model']}")
    lines += [f"  image {image['index']}: {image['key']} (seed {image['seed']}, {image['width']}x{image['height']})"
              for image in job.get("images", [])]  # fmt: skip
    lines += [f"  image {failure.get('index')} not made [{failure['code']}]: {failure['message']}"
              for failure in job.get("failures", [])]  # fmt: skip
    for name in ("error", "last_error"):
        if job.get(name):
            lines.append(f"  {name.replace('_', ' ')}: [{job[name]['code']}] {job[name]['message']}")
    return "\n".join(lines)


def _refusal(status: int, body: dict[str, Any], job_id: str) -> str:
    message = body.get("message") or f"HTTP {status}"
    if status == 403:
        return f"the API refused the request (403 {message}): check the API key"
    if status == 404:
        return f"no job {job_id} (404): {message}"
    return f"job {job_id}: {status} {message}"
