"""Jobs: what a job costs on top of the model (goal: p99 <= 100 ms at 0.5 s model latency and 10 concurrent jobs),
``GET /jobs/{job_id}`` latency (goal: p99 <= 30 ms), and the AWS requests each kind of job makes.

* **Overhead.** Rounds of 10 jobs are submitted at once with ``POST /jobs`` through the local API gateway; a job's
  time to succeeded ends at the ``updated_at`` its record got when it succeeded (the worker's clock: the same
  machine) and starts at its record's ``created_at``, when the API function handled the POST (the goal's figure), or
  just before the POST left this process (the client's view: it adds the local gateway running one API invocation
  at a time, as one Lambda container, so the tenth POST of a round waits for nine; API Gateway would run ten).
  Overhead = time to succeeded minus the model's time (the emulator's fixed latency, one image per job, a PNG from
  a file so the emulator spends no CPU drawing). It includes SQS, the poller picking the message up, the lease, S3,
  the gallery index and the ending write. Two worker configurations: sized to the load (10 concurrent invocations,
  batching window 0: the job machinery alone), and the deployed defaults (5 invocations, ``batching_window_seconds``
  of infra/variables.tf), where jobs also wait for a free invocation.
* **GET /jobs/{job_id}**: sequential requests over one keep-alive connection for a succeeded job, after a warm-up.
* **AWS requests per job**, counted by operation with a botocore hook in this process: the core's code paths run
  in-process against moto (``mock_aws``) and a stub Bedrock, for a job submitted with ``POST /jobs`` (API and
  worker), a message sent straight to the queue, and a synchronous ``POST /generate-image``. The figures "before"
  are the same count on commit 47ccb51 (S3 claims and outcomes), measured once with this counter.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

import boto3

from bedrock_emulator.config import EmulatorConfig
from bench.common import Goal, Report, log, summary, table, wait_until
from bench.stacks import BENCH_MODEL_ID, endpoints, image_file, job_records, local_stack
from imagegen.jobs import JobStatus

NAME = "jobs"
LATENCY_MS = 500
CONCURRENT = 10
#: (label, jobs submitted at once, the worker's concurrent invocations, its batching window): the goal is measured on
#: the first; the last shows the machinery with no other job in flight (moto serves one request at a time, so ten
#: jobs' S3 and DynamoDB requests queue behind each other there, not in AWS).
CONFIGURATIONS = (("sized to the load", CONCURRENT, 10, 0.0), ("deployed defaults", CONCURRENT, 5, 0.0),
                  ("one job at a time", 1, 10, 0.0))  # fmt: skip
ROUNDS = 20
GET_REQUESTS = 300
WARMUP = 20
GOAL_OVERHEAD_P99_MS = 100.0
GOAL_GET_P99_MS = 30.0
#: AWS requests per job on commit 47ccb51 (before jobs), by operation, counted in-process with the same hook on the
#: same moto (2026-12-03): the worker's outcome read (twice: before and after the claim), S3 claim, PNG, sidecar,
#: outcome write and claim release, and the gallery's PutItem; the synchronous API's PNG, sidecar and PutItem.
#: There was no record to follow a job by.
BEFORE = {
    "queue message (worker)": {"dynamodb:PutItem": 1, "s3:GetObject": 2, "s3:PutObject": 5},
    "POST /generate-image": {"dynamodb:PutItem": 1, "s3:PutObject": 2},
}


def _post(stage: SplitResult, key: str, body: dict[str, Any]) -> tuple[str, float]:
    connection = http.client.HTTPConnection(stage.hostname or "127.0.0.1", stage.port, timeout=30)
    submitted = time.time()
    connection.request("POST", f"{stage.path}/jobs", json.dumps(body),
                       headers={"x-api-key": key, "Content-Type": "application/json"})  # fmt: skip
    reply = connection.getresponse()
    payload = json.loads(reply.read())
    connection.close()
    if reply.status != 202:
        raise RuntimeError(f"POST /jobs: {reply.status} {payload}")
    return payload["job_id"], submitted


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _overheads(stack: Any, rounds: int, concurrent: int = CONCURRENT) -> dict[str, list[float]]:
    """Per job over ``rounds`` rounds of ``concurrent`` jobs (ms): time to succeeded from just before its POST
    (``client``) and from its record's ``created_at``, when the API function handled the POST (``server``)."""
    ep = endpoints(stack)
    stage = urlsplit(ep.stage_url)
    times: dict[str, list[float]] = {"client": [], "server": []}
    with ThreadPoolExecutor(CONCURRENT) as pool:
        for number in range(rounds):
            bodies = [{"prompt": f"job bench {number}-{index}", "seed": index} for index in range(concurrent)]
            submitted = dict(pool.map(lambda body: _post(stage, ep.api_key, body), bodies))

            def ended(ids: dict[str, float] = submitted) -> bool:
                done = {job.job_id: job for job in job_records(stack) if job.job_id in ids}
                return len(done) == len(ids) and all(job.status.ended for job in done.values())

            if not wait_until(ended, 60, interval=0.1):
                raise RuntimeError(f"round {number}: jobs did not end")
            for job in job_records(stack):
                if job.job_id in submitted:
                    if job.status is not JobStatus.SUCCEEDED:
                        raise RuntimeError(f"job {job.job_id}: {job.status} {job.error}")
                    times["client"].append((_epoch(job.updated_at) - submitted[job.job_id]) * 1000)
                    times["server"].append((_epoch(job.updated_at) - _epoch(job.created_at)) * 1000)
    return times


def _get_latencies(stack: Any, job_id: str) -> list[float]:
    ep = endpoints(stack)
    stage = urlsplit(ep.stage_url)
    connection = http.client.HTTPConnection(stage.hostname or "127.0.0.1", stage.port, timeout=30)
    timings = []
    for index in range(WARMUP + GET_REQUESTS):
        started = time.perf_counter()
        connection.request("GET", f"{stage.path}/jobs/{job_id}", headers={"x-api-key": ep.api_key})
        reply = connection.getresponse()
        body = json.loads(reply.read())
        elapsed = (time.perf_counter() - started) * 1000
        if reply.status != 200 or body["status"] != "succeeded":
            raise RuntimeError(f"GET /jobs: {reply.status} {str(body)[:200]}")
        if index >= WARMUP:
            timings.append(elapsed)
    connection.close()
    return timings


# ---- AWS requests per job, counted in-process ---------------------------------------------------------------


class _StubBedrock:
    """Stable Image Core's reply shape, with a 1x1 PNG."""

    PNG = base64.b64encode(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003010100"
            "c9fe92ef0000000049454e44ae426082"
        )
    ).decode()

    def invoke_model(self, **kwargs: Any) -> dict[str, Any]:
        body = json.loads(kwargs["body"])
        reply = {"images": [self.PNG], "seeds": [body["seed"]], "finish_reasons": [None]}
        return {"body": io.BytesIO(json.dumps(reply).encode())}


@contextmanager
def _counting() -> Iterator[Counter[str]]:
    """Counts every AWS request of clients made inside, as ``service:Operation`` (inside ``mock_aws``, which
    replaces boto3's default session)."""
    counts: Counter[str] = Counter()
    boto3.setup_default_session(region_name="us-east-1")
    assert boto3.DEFAULT_SESSION is not None

    def count(model: Any, **_: Any) -> None:
        counts[f"{model.service_model.service_name}:{model.name}"] += 1

    boto3.DEFAULT_SESSION.events.register("before-call", count)
    yield counts


def _count_requests() -> dict[str, dict[str, int]]:
    """AWS requests per job by path, on moto in this process (the code paths of the handlers' core)."""
    import os

    from moto import mock_aws

    from imagegen.config import Settings
    from imagegen.index import make_dynamodb_client
    from imagegen.index import table_definition as index_table
    from imagegen.jobs import JobStore
    from imagegen.jobs import table_definition as jobs_table
    from imagegen.jobs_service import JobService
    from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
    from imagegen.service import ImageService
    from imagegen.storage import make_s3_client

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # noqa: S106 - moto
    results: dict[str, dict[str, int]] = {}
    with mock_aws(), _counting() as counts:
        s3, dynamodb, sqs = make_s3_client(), make_dynamodb_client(), make_sqs_client()
        s3.create_bucket(Bucket="bench")
        dynamodb.create_table(**index_table("index"))
        dynamodb.create_table(**jobs_table("jobs"))
        queue_url = sqs.create_queue(QueueName="prompts")["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
        settings = Settings(bucket_name="bench", model_id=BENCH_MODEL_ID, images_table_name="index",
                            jobs_table_name="jobs")  # fmt: skip
        service = ImageService(settings, bedrock=_StubBedrock(), s3=s3)  # type: ignore[arg-type]
        store = JobStore(dynamodb, "jobs")
        api = JobService(service, store, sqs, queue_url)
        worker = QueueWorker(service, store, sqs, dlq_url)

        def measure(label: str, action: Any) -> Any:
            counts.clear()
            result = action()
            results[label] = dict(sorted(counts.items()))
            return result

        measure("POST /jobs with an Idempotency-Key (API)",
                lambda: api.submit({"prompt": "a kite"}, owner="k", idempotency_key="order-1"))  # fmt: skip
        sqs.purge_queue(QueueUrl=queue_url)
        submitted = measure("POST /jobs (API)", lambda: api.submit({"prompt": "an owl"}, owner="k"))
        [message] = sqs.receive_message(QueueUrl=queue_url, MessageAttributeNames=["All"])["Messages"]
        job_id = submitted.job.job_id
        measure("POST /jobs (worker)", lambda: worker.process(QueueMessage(message["MessageId"], message["Body"],
                                                                          job_id=job_id)))  # fmt: skip
        measure("GET /jobs/{job_id}", lambda: api.view(job_id))
        measure("queue message (worker)", lambda: worker.process(QueueMessage(str(uuid.uuid4()), "a hawk")))
        prepared = service.prepare({"prompt": "a wren"})
        measure("POST /generate-image", lambda: api.run(prepared, request_id=str(uuid.uuid4()), owner="k",
                                                        request_sha256="d"))  # fmt: skip
    return results


def _request_row(path: str, operations: dict[str, int]) -> list[object]:
    return [path, sum(operations.values()), ", ".join(f"{op} {n}" for op, n in operations.items())]


def run() -> Report:
    report = Report(NAME)
    report.parameters = {"model_latency_ms": LATENCY_MS, "concurrent_jobs": CONCURRENT, "rounds": ROUNDS,
                         "get_requests": GET_REQUESTS, "warmup": WARMUP, "model_id": BENCH_MODEL_ID,
                         "configurations": [{"label": label, "jobs_at_once": jobs, "max_concurrency": invocations,
                                             "batching_window": window}
                                            for label, jobs, invocations, window in CONFIGURATIONS]}  # fmt: skip
    emulator = EmulatorConfig(latency_ms=LATENCY_MS, image_file=image_file("placeholder"))
    overheads: dict[str, dict[str, list[float]]] = {}
    gets: list[float] = []
    for label, jobs, invocations, window in CONFIGURATIONS:
        with local_stack(NAME, emulator, batching_window_seconds=window, max_concurrency=invocations) as stack:
            rounds = ROUNDS * CONCURRENT // jobs // 4 if jobs == 1 else ROUNDS  # 50 lone jobs
            log(f"[{NAME}] {label}: a warm-up round, then {rounds} rounds of {jobs} job(s) at once ...")
            _overheads(stack, 1, jobs)
            times = _overheads(stack, rounds, jobs)
            overheads[label] = {view: [t - LATENCY_MS for t in values] for view, values in times.items()}
            if not gets:
                done = next(job for job in job_records(stack) if job.status is JobStatus.SUCCEEDED)
                log(f"[{NAME}] {GET_REQUESTS} GET /jobs/{{job_id}} ...")
                gets = _get_latencies(stack, done.job_id)
    requests = _count_requests()
    report.figures = {
        "overhead_ms": {label: {view: summary(values) for view, values in views.items()}
                        for label, views in overheads.items()},
        "get_job_ms": summary(gets),
        "aws_requests_per_job": {"after": requests, "before_47ccb51": BEFORE},
    }  # fmt: skip
    rows = [
        [f"overhead, {label}, from {'created_at' if view == 'server' else 'the POST'}", *_stats(values)]
        for label, views in overheads.items()
        for view, values in views.items()
    ]
    report.add_table(
        table(
            f"Jobs at model latency {LATENCY_MS} ms (ms)",
            ["measure", "n", "mean", "p50", "p90", "p99", "max"],
            [*rows, ["GET /jobs/{job_id}", *_stats(gets)]],
        )
    )
    rows = [_request_row(path, ops) for path, ops in requests.items()]
    rows += [_request_row(f"{path} (before, 47ccb51)", ops) for path, ops in BEFORE.items()]
    report.add_table(table("AWS requests per job (Bedrock excluded)", ["path", "requests", "by operation"], rows))
    goal = summary(overheads[CONFIGURATIONS[0][0]]["server"])["p99"]
    report.goals = [
        Goal("job overhead p99 (worker sized to the load, from created_at)", goal, GOAL_OVERHEAD_P99_MS, "<=", "ms"),
        Goal("GET /jobs/{job_id} p99", summary(gets)["p99"], GOAL_GET_P99_MS, "<=", "ms"),
    ]
    return report


def _stats(values: list[float]) -> list[float]:
    s = summary(values)
    return [s["n"], s["mean"], s["p50"], s["p90"], s["p99"], s["max"]]
