"""Job records on moto's DynamoDB: the lease, endings recorded once, every backwards transition refused by the
table itself, dead letters, and Idempotency-Key reservations."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from imagegen.jobs import (
    IDEMPOTENCY_SECONDS,
    AttemptRecord,
    DeadLetter,
    JobError,
    JobImage,
    JobStatus,
    JobStore,
    iso,
)

JOB = "0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01"
NOW = 1_800_000_000.0
IMAGE = JobImage(0, "generated_images/from_queue/x-0.png", 7, 8, 8, "m")


def claim(jobs: JobStore, owner: str, now: float = NOW, **kwargs: Any) -> Any:
    return jobs.claim(JOB, lease_owner=owner, lease_seconds=300, now=now, **kwargs)


def test_a_claim_creates_a_running_record_with_its_defaults(jobs: JobStore) -> None:
    got = claim(jobs, "a", created_at=NOW - 5, request_sha256="d1")
    assert got.claimed and got.job is not None
    job = got.job
    assert (job.status, job.source, job.owner, job.attempts, job.lease_owner) == (JobStatus.RUNNING, "queue", "queue",
                                                                                  1, "a")  # fmt: skip
    assert job.created_at == iso(NOW - 5) == "2027-01-15T07:59:55.000+00:00"  # the message's send time
    stored = jobs.dynamodb.get_item(TableName=jobs.table_name, Key={"pk": {"S": JOB}})["Item"]
    assert int(stored["expires_at"]["N"]) == int(NOW) + jobs.retention_seconds  # TTL


def test_a_lease_is_exclusive_until_released_or_expired(jobs: JobStore) -> None:
    assert claim(jobs, "a").claimed
    held = claim(jobs, "b")
    assert not held.claimed and held.job is not None and held.job.lease_owner == "a"
    assert jobs.release(JOB, lease_owner="b") is False  # only the holder lets go
    assert jobs.release(JOB, lease_owner="a") is True
    again = claim(jobs, "b")
    assert again.claimed and again.job is not None and again.job.attempts == 2
    assert not claim(jobs, "c", now=NOW + 299).claimed
    expired = claim(jobs, "c", now=NOW + 301)  # the holder crashed: its lease ran out
    assert expired.claimed and expired.job is not None and expired.job.attempts == 3


def test_only_one_of_many_takeovers_of_an_expired_lease_wins(jobs: JobStore) -> None:
    assert claim(jobs, "crashed").claimed
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def take(owner: str) -> None:
        barrier.wait()
        if claim(jobs, owner, now=NOW + 400).claimed:
            winners.append(owner)

    threads = [threading.Thread(target=take, args=(f"t{index}",)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(winners) == 1
    job = jobs.get(JOB)
    assert job is not None and job.lease_owner == winners[0] and job.attempts == 2


def test_an_ending_is_recorded_once_and_only_by_the_lease_holder(jobs: JobStore) -> None:
    assert claim(jobs, "a").claimed
    success = AttemptRecord(images=[IMAGE], model="m", region="r", status=JobStatus.SUCCEEDED)
    assert jobs.record(JOB, lease_owner="b", attempt=success, now=NOW) is False
    assert jobs.record(JOB, lease_owner="a", attempt=success, now=NOW + 1) is True
    job = jobs.get(JOB)
    assert job is not None
    assert (job.status, job.images, job.model, job.region, job.lease_owner) == (JobStatus.SUCCEEDED, (IMAGE,), "m",
                                                                                "r", "")  # fmt: skip
    # Ended: a later delivery is refused and told how it ended; the ending cannot be recorded again.
    later = claim(jobs, "c", now=NOW + 2)
    assert not later.claimed and later.job is not None and later.job.status is JobStatus.SUCCEEDED
    failure = AttemptRecord(status=JobStatus.FAILED, error=JobError("X", "x"))
    assert jobs.record(JOB, lease_owner="a", attempt=failure, now=NOW + 3) is False


def _force(jobs: JobStore, status: JobStatus, lease_owner: str = "holder") -> None:
    """A record in ``status`` that still names a lease holder, so that only the status condition can refuse."""
    jobs.dynamodb.put_item(
        TableName=jobs.table_name,
        Item={"pk": {"S": JOB}, "status": {"S": status.value}, "lease_owner": {"S": lease_owner},
              "lease_until": {"N": str(NOW + 1000)}, "attempts": {"N": "1"}},
    )  # fmt: skip


BACKWARDS = [
    (JobStatus.RUNNING, JobStatus.QUEUED),
    (JobStatus.SUCCEEDED, JobStatus.QUEUED),
    (JobStatus.SUCCEEDED, JobStatus.RUNNING),
    (JobStatus.SUCCEEDED, JobStatus.FAILED),
    (JobStatus.FAILED, JobStatus.QUEUED),
    (JobStatus.FAILED, JobStatus.RUNNING),
    (JobStatus.FAILED, JobStatus.SUCCEEDED),
]


@pytest.mark.parametrize(("old", "new"), BACKWARDS, ids=[f"{old}->{new}" for old, new in BACKWARDS])
def test_the_table_refuses_every_backwards_transition(jobs: JobStore, old: JobStatus, new: JobStatus) -> None:
    _force(jobs, old)
    if new is JobStatus.QUEUED:  # only POST /jobs writes queued, by creating the record
        refused = not jobs.create_queued(JOB, owner="k", request_sha256="d", now=NOW)
    elif new is JobStatus.RUNNING:  # a claim, or an attempt recorded as running (a retry to come)
        refused = not claim(jobs, "holder", now=NOW + 2000).claimed and not jobs.record(
            JOB, lease_owner="holder", attempt=AttemptRecord(status=JobStatus.RUNNING), now=NOW
        )
    else:
        refused = not jobs.record(JOB, lease_owner="holder", attempt=AttemptRecord(status=new), now=NOW)
    assert refused
    job = jobs.get(JOB)
    assert job is not None and job.status is old


def test_a_record_of_another_request_is_foreign(jobs: JobStore) -> None:
    assert jobs.create_queued(JOB, owner="key-1", request_sha256="d1", now=NOW)
    other = claim(jobs, "m", request_sha256="d2")
    assert not other.claimed and other.foreign
    same = jobs.claim(JOB, lease_owner="m", lease_seconds=300, now=NOW, request_sha256="d1", owner="queue")
    assert same.claimed and same.job is not None
    assert (same.job.source, same.job.owner) == ("api", "key-1")  # what POST /jobs wrote stays


def test_a_dead_letter_is_sent_by_one_lease_holder_and_recorded_once(jobs: JobStore) -> None:
    assert claim(jobs, "a").claimed
    failed = AttemptRecord(status=JobStatus.FAILED, error=JobError("InvalidRequest", "prompt: x", detail="d"),
                           keep_lease=True, dead_letter=DeadLetter.PENDING)  # fmt: skip
    assert jobs.record(JOB, lease_owner="a", attempt=failed, now=NOW)
    assert jobs.claim_dead_letter(JOB, lease_owner="b", lease_seconds=300, now=NOW) is None  # a still sends it
    # a crashed before confirming the send: after its lease, one other delivery may send it again.
    taken = jobs.claim_dead_letter(JOB, lease_owner="b", lease_seconds=300, now=NOW + 301)
    assert taken is not None and taken.error == JobError("InvalidRequest", "prompt: x", detail="d")
    assert jobs.claim_dead_letter(JOB, lease_owner="c", lease_seconds=300, now=NOW + 302) is None
    assert jobs.dead_letter_sent(JOB, lease_owner="a", now=NOW) is False
    assert jobs.dead_letter_sent(JOB, lease_owner="b", now=NOW + 303) is True
    job = jobs.get(JOB)
    assert job is not None and job.dead_letter is DeadLetter.SENT and job.lease_owner == ""
    assert jobs.claim_dead_letter(JOB, lease_owner="d", lease_seconds=300, now=NOW + 1000) is None


def test_an_idempotency_key_maps_to_one_job_per_owner_for_24_hours(jobs: JobStore) -> None:
    def reserve(owner: str, job_id: str, digest: str, now: float = NOW) -> tuple[str, str] | None:
        return jobs.reserve_idempotency_key(owner=owner, key="order-7", request_sha256=digest, job_id=job_id, now=now)

    assert reserve("key-1", "job-a", "d1") is None
    assert reserve("key-1", "job-b", "d1") == ("job-a", "d1")
    assert reserve("key-1", "job-c", "d2") == ("job-a", "d1")  # the caller compares the digest: 422
    assert reserve("key-2", "job-d", "d1") is None  # another API key's keys are its own
    assert reserve("key-1", "job-e", "d2", now=NOW + IDEMPOTENCY_SECONDS - 1) == ("job-a", "d1")
    assert reserve("key-1", "job-e", "d2", now=NOW + IDEMPOTENCY_SECONDS + 1) is None  # expired, TTL or not
    assert reserve("key-1", "job-f", "d2", now=NOW + IDEMPOTENCY_SECONDS + 2) == ("job-e", "d2")
