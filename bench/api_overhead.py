"""API overhead: end-to-end latency through the local API gateway minus the emulated model's own time.

Sequential requests over one keep-alive HTTP connection, after a warm-up, against a local stack whose services
each run in a process of their own; one stack per image kind (the emulator serves a placeholder PNG or a
Titan-sized one from a file, so its time is the configured latency plus sending the reply). The handler runs in
the ``api`` service's process and does not return the emulator's ``X-Amzn-Bedrock-Invocation-Latency``, so
everything is measured from outside, request by request. After each API request this process makes, in turn:

* a direct InvokeModel call to the same emulator with the body the handler sends: its header is the model
  time subtracted from the API request (``overhead = end-to-end - header``), and its wall time beyond the
  header (with reading and decoding the reply) is the Bedrock client's share;
* the two S3 PutObject calls the handler makes (the PNG, the JSON sidecar), its gallery-index write (one
  DynamoDB PutItem through ``imagegen.index.ImageIndex``) and its job record (one PutItem once it ended,
  ``imagegen.jobs.JobStore``) against the same moto;
* a request without an API key (403 from the gateway itself: the HTTP round trip through the gateway) and one
  with an empty prompt (400 from the handler: gateway, Lambda runtime hand-off, Powertools and validation,
  no AWS call).

The rest of the overhead (``overhead - 400 path - InvokeModel client - PutObject x2 - PutItem``) is the handler's
success path beyond validation and those calls: the model adapter, PNG checks, presigning, the reply, metrics.
Presigning is timed separately (it makes no request).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import uuid
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from bedrock_emulator.config import EmulatorConfig
from bench.common import Goal, Report, log, percentile, summary, table
from bench.stacks import BENCH_MODEL, BENCH_MODEL_ID, BENCH_MODEL_REGION, endpoints, image_file, local_stack, s3
from imagegen.index import ImageIndex, entry_from_sidecar
from imagegen.jobs import AttemptRecord, JobImage, JobStatus, JobStore
from imagegen.storage import make_s3_client
from local_stack.config import LOCAL_CREDENTIALS, local_client
from local_stack.stack import LocalStack

NAME = "api_overhead"
LATENCY_MS = 200
WARMUP = 10
#: (image kind, measured requests)
RUNS: list[tuple[str, int]] = [("placeholder", 200), ("titan_sized", 60)]
GOAL_P99_MS = 50.0
LATENCY_HEADER = "x-amzn-bedrock-invocation-latency"
#: The in-process stack's figures (2026-11-27): moto, emulator, gateway and handler in one process.
IN_PROCESS_2026_11_27 = {"placeholder": {"p50": 41.7, "p99": 85.4}, "titan_sized": {"p50": 70.0, "p99": 87.7}}
PARTS = [
    ("end-to-end", "e2e_ms"),
    ("emulator (header of the direct call)", "emulator_ms"),
    ("OVERHEAD = e2e - emulator", "overhead_ms"),
    ("OVERHEAD without the gateway round trip", "overhead_without_gateway_ms"),
    ("  gateway round trip (403, no key)", "gateway_ms"),
    ("  400 path: runtime, Powertools, validation", "handler_400_beyond_gateway_ms"),
    ("  InvokeModel client + reply decode", "bedrock_client_ms"),
    ("  S3 PutObject x2 (PNG + sidecar)", "s3_put_ms"),
    ("  gallery index PutItem (DynamoDB)", "index_put_ms"),
    ("  job record PutItem (DynamoDB)", "job_record_ms"),
    ("  rest of the success path", "rest_ms"),
]


def run() -> Report:
    report = Report(NAME)
    report.parameters = {
        "model_id": BENCH_MODEL_ID,
        "emulator_latency_ms": LATENCY_MS,
        "warmup_requests": WARMUP,
        "runs": [{"images": kind, "requests": n} for kind, n in RUNS],
        "request": "POST /Prod/generate-image {prompt (distinct per request)}, 1:1 = 1024x1024, 1 image; sequential, "
        "one keep-alive connection (http.client)",
        "overhead": f"end-to-end - emulator time ({LATENCY_HEADER} of a direct InvokeModel made right after)",
        "breakdown": "direct calls from the benchmark process to the same emulator and moto, and two requests the "
        "gateway (403) or the handler (400) answer without AWS calls, one of each per API request",
        "stack": "process per service (moto, bedrock, api, worker)",
        "in_process_stack_2026_11_27_overhead_ms": IN_PROCESS_2026_11_27,
    }
    runs: dict[str, Any] = {}
    for kind, requests in RUNS:
        path = image_file(kind)
        report.parameters[f"{kind}_png_bytes"] = path.stat().st_size
        log(f"[{NAME}] {kind}: {WARMUP} warm-up + {requests} requests ...")
        with local_stack(f"{NAME}-{kind}", EmulatorConfig(latency_ms=LATENCY_MS, image_file=path)) as stack:
            runs[kind] = _figures(_requests(stack, requests, path.read_bytes()))
    presign_us = _presign_cost_us()

    report.figures = {"runs": runs, "presign_us_per_url": presign_us}
    for kind, fig in runs.items():
        old = IN_PROCESS_2026_11_27[kind]
        report.add_table(
            table(
                f"API latency, {kind} PNGs, L = {LATENCY_MS} ms, n = {fig['n']} (ms); in-process stack 2026-11-27: "
                f"overhead p50 {old['p50']}, p99 {old['p99']}",
                ["part", "p50", "p90", "p99", "max", "mean"],
                [[label, *(fig[key][q] for q in ("p50", "p90", "p99", "max", "mean"))] for label, key in PARTS],
            )
        )
    report.note(
        "each part is its own distribution (p99 of a part is not the part of the p99); 'rest' is computed per "
        "request as overhead - 400 path - InvokeModel client - PutObject x2 - PutItem"
    )
    report.note(
        f"presigning one URL costs {presign_us:.0f} us (inside 'rest of the success path', with the model adapter, "
        "JSON and base64 decoding of the model reply, the reply and metrics)"
    )
    report.goals = [
        Goal("API overhead p99, placeholder PNGs", runs["placeholder"]["overhead_ms"]["p99"], GOAL_P99_MS, "<=", "ms"),
        Goal(
            "  same, without the gateway round trip",
            runs["placeholder"]["overhead_without_gateway_ms"]["p99"],
            GOAL_P99_MS,
            "<=",
            "ms",
        ),
    ]
    report.figures["titan_sized_overhead_p99_ms"] = runs["titan_sized"]["overhead_ms"]["p99"]
    return report


class _Probes:
    """The direct calls made after each API request, against the stack's emulator and moto."""

    def __init__(self, stack: LocalStack, png: bytes) -> None:
        ep = endpoints(stack)
        self.bedrock = local_client("bedrock-runtime", ep.bedrock_endpoint_url, BENCH_MODEL_REGION)
        self.s3 = s3(stack)
        self.bucket = ep.bucket
        self.index = ImageIndex(local_client("dynamodb", ep.aws_endpoint_url, ep.region), ep.images_table)
        self.jobs = JobStore(local_client("dynamodb", ep.aws_endpoint_url, ep.region), ep.jobs_table)
        self.png = png

    def invoke(self, prompt: str, seed: int) -> tuple[float, float]:
        """(wall ms including reading and decoding the reply, emulator header ms) of one InvokeModel."""
        body = {"prompt": prompt, "aspect_ratio": "1:1", "seed": seed, "output_format": "png"}
        started = time.perf_counter()
        reply = self.bedrock.invoke_model(
            modelId=BENCH_MODEL,
            body=json.dumps(body).encode(),
            contentType="application/json",
            accept="application/json",
        )
        images = json.loads(reply["body"].read())["images"]
        base64.b64decode(images[0])
        wall = (time.perf_counter() - started) * 1000
        header = reply["ResponseMetadata"]["HTTPHeaders"][LATENCY_HEADER]
        return wall, float(header)

    def puts(self, index: int) -> float:
        """ms of the PNG and sidecar PutObject calls the handler makes."""
        key = f"generated_images/bench-probe/{index}-0.png"
        sidecar = json.dumps({"prompt": "probe", "seed": index, "model_id": BENCH_MODEL, "request_id": str(index)})
        started = time.perf_counter()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=self.png, ContentType="image/png")
        self.s3.put_object(
            Bucket=self.bucket, Key=key[:-4] + ".json", Body=sidecar.encode(), ContentType="application/json"
        )
        return (time.perf_counter() - started) * 1000

    def job_record(self, index: int) -> float:
        """ms of the job-record write a synchronous request makes once it ended."""
        job_id = str(uuid.uuid4())
        ending = AttemptRecord(images=[JobImage(0, f"generated_images/{job_id}-0.png", index, 1024, 1024, BENCH_MODEL)],
                               model=BENCH_MODEL, region=BENCH_MODEL_REGION, status=JobStatus.SUCCEEDED)  # fmt: skip
        started = time.perf_counter()
        self.jobs.create_ended(job_id, owner="k", request_sha256="d", attempt=ending, started=time.time(),
                               now=time.time())  # fmt: skip
        return (time.perf_counter() - started) * 1000

    def index_put(self, index: int) -> float:
        """ms of the gallery-index write the handler makes for one stored image."""
        sidecar = {"image_key": f"generated_images/bench-probe/{index}-0.png", "prompt": "probe", "seed": index,
                   "model": BENCH_MODEL, "region": BENCH_MODEL_REGION, "width": 1024, "height": 1024,
                   "source": "api", "created_at": f"2026-11-30T00:00:00.{index % 1000:03d}+00:00"}  # fmt: skip
        started = time.perf_counter()
        self.index.put([entry_from_sidecar(sidecar)])
        return (time.perf_counter() - started) * 1000


def _requests(stack: LocalStack, count: int, png: bytes) -> list[dict[str, float]]:
    ep = endpoints(stack)
    url = urlsplit(ep.api_url)
    probes = _Probes(stack, png)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    headers = {"x-api-key": ep.api_key, "Content-Type": "application/json"}

    def post(body: str, request_headers: dict[str, str], expected: int) -> float:
        started = time.perf_counter()
        connection.request("POST", url.path, body=body, headers=request_headers)
        response = connection.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != expected:
            raise RuntimeError(f"expected {expected}, got {response.status} {payload[:300]!r}")
        return elapsed

    samples = []
    try:
        for index in range(WARMUP + count):
            prompt, seed = f"an overhead benchmark landscape {time.time_ns()} {index}", index
            e2e = post(json.dumps({"prompt": prompt, "seed": seed}), headers, 200)
            invoke_wall, header = probes.invoke(prompt, seed)
            puts = probes.puts(index)
            index_put = probes.index_put(index)
            job_record = probes.job_record(index)
            gateway = post("{}", {"Content-Type": "application/json"}, 403)
            handler_400 = post(json.dumps({"prompt": " "}), headers, 400)
            if index >= WARMUP:
                samples.append(
                    {"e2e": e2e, "invoke_wall": invoke_wall, "header": header, "puts": puts, "gateway": gateway,
                     "handler_400": handler_400, "index_put": index_put, "job_record": job_record}
                )  # fmt: skip
    finally:
        connection.close()
    return samples


def _figures(samples: list[dict[str, float]]) -> dict[str, Any]:
    derived: dict[str, list[float]] = {key: [] for _, key in PARTS}
    for s in samples:
        overhead = s["e2e"] - s["header"]
        client = s["invoke_wall"] - s["header"]
        beyond_gateway = s["handler_400"] - s["gateway"]
        values = {
            "e2e_ms": s["e2e"],
            "emulator_ms": s["header"],
            "overhead_ms": overhead,
            "overhead_without_gateway_ms": overhead - s["gateway"],
            "gateway_ms": s["gateway"],
            "handler_400_beyond_gateway_ms": beyond_gateway,
            "bedrock_client_ms": client,
            "s3_put_ms": s["puts"],
            "index_put_ms": s["index_put"],
            "job_record_ms": s["job_record"],
            "rest_ms": overhead - s["handler_400"] - client - s["puts"] - s["index_put"] - s["job_record"],
        }
        for key, value in values.items():
            derived[key].append(value)
    figures: dict[str, Any] = {key: summary(values) for key, values in derived.items()}
    figures["n"] = len(samples)
    worst = max(samples, key=lambda s: s["e2e"] - s["header"])
    figures["worst_request"] = {k: round(v, 1) for k, v in worst.items()}
    figures["overhead_p99_ms"] = round(percentile(derived["overhead_ms"], 99), 1)
    return figures


def _presign_cost_us(count: int = 2000) -> float:
    """The handler's S3 client (``make_s3_client``), with the local stack's credentials; presigning sends nothing."""
    with mock.patch.dict(os.environ, {**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}):
        s3_client = make_s3_client()
    s3_client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "warm"}, ExpiresIn=3600)
    started = time.perf_counter()
    for index in range(count):
        s3_client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": f"k/{index}.png"}, ExpiresIn=3600)
    return round((time.perf_counter() - started) / count * 1e6, 1)
