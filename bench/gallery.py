"""Gallery: ``GET /images`` latency with 100 and with 10,000 indexed images (goal: a ratio of about 1).

A page is one DynamoDB Query (newest first, ``Limit``) plus presigning, whatever the table holds
(tests/functional/test_gallery.py counts the requests). The index is filled through the stack's moto with
``ImageIndex.put_many`` (the items the functions write); the requests go through the local API gateway to the API
handler over one keep-alive connection, sequentially, after a warm-up.

moto's Query is not DynamoDB's: it reads every item of the partition and sorts them before applying ``Limit``, so
its time grows with the table, where DynamoDB reads only the page (about 12 KB, 1.5 read units, for 24 items).
The same Query is therefore also timed directly against moto from this process, and "the service's part" is the
end-to-end time minus that Query: the gateway, the handler, the presigning and the network, which is what this
code controls.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from bench.common import Goal, Report, log, summary, table
from bench.stacks import endpoints, local_stack
from imagegen.index import ImageIndex
from local_stack.config import local_client

NAME = "gallery"
SIZES = (100, 10_000)
REQUESTS = 300
WARMUP = 20
PAGE = 24
GOAL_RATIO = 1.25


def _entries(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"generated_images/bench-{i:06d}-0.png",
            "prompt": f"gallery benchmark picture {i}",
            "negativePrompt": None,
            "model": "stability.stable-image-core-v1:1",
            "region": "us-west-2",
            "seed": i,
            "width": 1024,
            "height": 1024,
            "source": "api" if i % 2 else "queue",
            "created_at": f"2026-11-{1 + i // 86_400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            ".000+00:00",
        }
        for i in range(start, start + count)
    ]


def _measure(connection: http.client.HTTPConnection, path: str, key: str) -> list[float]:
    timings = []
    for index in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        connection.request("GET", path, headers={"x-api-key": key})
        reply = connection.getresponse()
        body = json.loads(reply.read())
        elapsed = (time.perf_counter() - started) * 1000
        if reply.status != 200 or len(body["images"]) != PAGE:
            raise RuntimeError(f"GET {path}: {reply.status} {str(body)[:200]}")
        if index >= WARMUP:
            timings.append(elapsed)
    return timings


def _query_ms(index: ImageIndex) -> list[float]:
    timings = []
    for number in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        page = index.page(limit=PAGE)
        elapsed = (time.perf_counter() - started) * 1000
        if len(page.entries) != PAGE:
            raise RuntimeError(f"a page of {len(page.entries)}")
        if number >= WARMUP:
            timings.append(elapsed)
    return timings


def run() -> Report:
    report = Report(NAME)
    report.parameters = {"page_size": PAGE, "requests": REQUESTS, "warmup": WARMUP, "index_sizes": list(SIZES)}
    results: dict[int, dict[str, dict[str, float]]] = {}
    with local_stack(NAME) as stack:
        ep = endpoints(stack)
        index = ImageIndex(local_client("dynamodb", ep.aws_endpoint_url, ep.region), ep.images_table)
        parts = urlsplit(ep.api_url)
        path = parts.path.removesuffix("generate-image") + f"images?limit={PAGE}"
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        filled = 0
        for size in SIZES:
            started = time.monotonic()
            index.put_many(_entries(filled, size - filled))
            filled = size
            log(f"[{NAME}] {size} items indexed in {time.monotonic() - started:.1f} s; measuring ...")
            end_to_end = _measure(connection, path, ep.api_key)
            query = _query_ms(index)
            results[size] = {
                "end_to_end": summary(end_to_end),
                "moto_query": summary(query),
                "service": summary([e - q for e, q in zip(sorted(end_to_end), sorted(query), strict=True)]),
            }
        connection.close()
    small, large = results[SIZES[0]], results[SIZES[-1]]
    ratios = {
        part: {q: round(large[part][q] / small[part][q], 3) for q in ("p50", "p99")}
        for part in ("end_to_end", "moto_query", "service")
    }
    report.figures = {"latency_ms": {str(size): value for size, value in results.items()}, "ratios": ratios}
    rows = [
        [size, part, r[part]["n"], r[part]["mean"], r[part]["p50"], r[part]["p90"], r[part]["p99"]]
        for size, r in results.items()
        for part in ("end_to_end", "moto_query", "service")
    ]
    report.add_table(
        table(
            f"GET /images?limit={PAGE} (ms): end to end, moto's Query alone, and the service's part (the difference, "
            "matched by rank)",
            ["indexed images", "part", "n", "mean", "p50", "p90", "p99"],
            rows,
        )
    )
    report.note(
        f"end to end with 10,000 / 100 images: p50 x{ratios['end_to_end']['p50']}, p99 x{ratios['end_to_end']['p99']}"
        f" — moto's Query alone x{ratios['moto_query']['p50']} (it reads the whole partition); the service's part "
        f"x{ratios['service']['p50']} (p50), x{ratios['service']['p99']} (p99)"
    )
    report.goals = [
        Goal("service's part: p50 with 10,000 / with 100", ratios["service"]["p50"], GOAL_RATIO, "<=",
             note="goal: about 1"),
        Goal("service's part: p99 with 10,000 / with 100", ratios["service"]["p99"], GOAL_RATIO, "<=",
             note="goal: about 1"),
        Goal("(moto-bound) end to end: p50 with 10,000 / with 100", ratios["end_to_end"]["p50"], GOAL_RATIO, "<=",
             note="moto reads the whole partition"),
    ]  # fmt: skip
    return report
