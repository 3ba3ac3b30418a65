"""Model chain: Bedrock calls per stored image when the chain's first model is end of life.

The stack serves the default chain (``imagegen.config.DEFAULT_MODEL_ID``: Titan Image Generator v1, end of life in
the emulator's lifecycle table, then Stable Image Core) with the default cool-down (900 s, longer than the run).
Images come from the API (sequential POSTs) and from the queue (a pre-loaded queue drained by one worker service
with concurrent records). Calls = the emulator's ``requests``; failed calls = its ``unavailable``.

Goal (issue): calls per stored image <= 1 + (containers x cool-downs) / images, where containers = 2 (the API
service and the worker service; each is one Lambda container, its records sharing one view of the chain) and
cool-downs = 1 (the run is shorter than one cool-down).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.common import Goal, Report, log, table
from bench.stacks import (
    cached_bodies,
    emulator,
    endpoints,
    image_file,
    images_under,
    list_keys,
    local_stack,
    run_queue_job,
    s3,
)
from imagegen.config import DEFAULT_MODEL_COOLDOWN_SECONDS, DEFAULT_MODEL_ID
from imagegen.storage import QUEUE_FOLDER, images_base

NAME = "model_chain"
API_REQUESTS = 40
QUEUE_MESSAGES = 200
LATENCY_MS = 50
CONTAINERS = 2
COOL_DOWNS = 1


def _post(url: str, key: str, prompt: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the local stack
        url, data=json.dumps({"prompt": prompt}).encode(), method="POST",
        headers={"x-api-key": key, "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
        result: dict[str, Any] = json.loads(reply.read())
        return result


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "model_id": DEFAULT_MODEL_ID,
        "cool_down_seconds": DEFAULT_MODEL_COOLDOWN_SECONDS,
        "api_requests": API_REQUESTS,
        "queue_messages": QUEUE_MESSAGES,
        "emulator_latency_ms": LATENCY_MS,
        "lifecycle": "the emulator's table as of 2026-11-30 (Titan Image Generator v1: end of life)",
        "worker": "one invocation at a time, 10 records per batch run concurrently",
    }
    config = EmulatorConfig(latency_ms=LATENCY_MS, image_file=image_file("placeholder"))
    started = time.monotonic()
    with local_stack(NAME, config, model_id=DEFAULT_MODEL_ID) as stack:
        ep = endpoints(stack)
        emulator(stack).reset_stats()
        models = [_post(ep.api_url, ep.api_key, f"chain picture {i}")["model"] for i in range(API_REQUESTS)]
        api_stats = emulator(stack).stats()
        log(f"[{NAME}] API: {API_REQUESTS} images, {api_stats}")
        job = run_queue_job(stack, cached_bodies(QUEUE_MESSAGES), max_concurrency=1, timeout=300)
        queue_stats = job.emulator
        prefix = f"{images_base(ep.key_prefix)}/{QUEUE_FOLDER}/"
        queue_images = len(images_under(list_keys(s3(stack), ep.bucket, prefix), prefix, ".png"))
    images = API_REQUESTS + queue_images
    calls = api_stats["requests"] + queue_stats["requests"]
    failed = api_stats["unavailable"] + queue_stats["unavailable"]
    bound = 1 + CONTAINERS * COOL_DOWNS / images
    report.figures = {
        "images": images,
        "api_images": API_REQUESTS,
        "queue_images": queue_images,
        "bedrock_calls": calls,
        "failed_calls_on_the_end_of_life_model": failed,
        "calls_per_image": round(calls / images, 4),
        "bound": round(bound, 4),
        "serving_models": sorted(set(models)),
        "queue_completed": job.completed,
        "seconds": round(time.monotonic() - started, 1),
    }
    report.add_table(
        table(
            "Bedrock calls per stored image, first model end of life",
            ["entry point", "images", "calls", "failed calls (end of life)"],
            [
                ["API (1 container)", API_REQUESTS, api_stats["requests"], api_stats["unavailable"]],
                ["queue (1 container)", queue_images, queue_stats["requests"], queue_stats["unavailable"]],
                ["total", images, calls, failed],
            ],
        )
    )
    report.goals = [
        Goal(
            "calls per stored image",
            round(calls / images, 4),
            round(bound, 4),
            "<=",
            note="1 + (containers x cool-downs) / images",
        ),
        Goal("failed calls on the end-of-life model", failed, CONTAINERS * COOL_DOWNS, "<="),
        Goal("every message and request made an image", images, API_REQUESTS + QUEUE_MESSAGES, ">="),
    ]
    return report
