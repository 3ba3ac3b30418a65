"""Job records without I/O: the status transitions, the conditions the table enforces them with, ids and keys, and
what a retry of a job's missing images asks of the models."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from imagegen.errors import InvalidRequestError
from imagegen.jobs import (
    TRANSITIONS,
    JobStatus,
    JobStore,
    _from_statuses,
    body_digest,
    canonical_body,
    may_transition,
    parse_idempotency_key,
    parse_job_id,
)
from imagegen.models import NovaCanvasAdapter, StabilityAdapter, TitanImageAdapter
from imagegen.models.base import keyed_seed
from imagegen.request import parse_request

STATUSES: list[JobStatus | None] = [None, *JobStatus]
#: The order a job moves in; an ending is final.
RANK = {None: 0, JobStatus.QUEUED: 1, JobStatus.RUNNING: 2, JobStatus.SUCCEEDED: 3, JobStatus.FAILED: 3}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(STATUSES, JobStatus)))
def test_a_status_moves_forward_only_and_never_out_of_an_ending(old: JobStatus | None, new: JobStatus) -> None:
    forward = RANK[new] > RANK[old] or (old is new is JobStatus.RUNNING)  # a retry runs again
    if old is None:  # born queued (POST /jobs), running (a delivery), or ended (a synchronous request, once)
        forward = True
    assert may_transition(old, new) is (forward and not (old is not None and old.ended))


def test_every_backwards_transition_is_refused() -> None:
    backwards = [(old, new) for old, new in itertools.product(JobStatus, JobStatus) if RANK[new] < RANK[old]]
    assert backwards  # running -> queued, succeeded -> running, failed -> queued, ...
    assert not any(may_transition(old, new) for old, new in backwards)
    assert TRANSITIONS[JobStatus.SUCCEEDED] == TRANSITIONS[JobStatus.FAILED] == frozenset()


@pytest.mark.parametrize("new", list(JobStatus))
def test_the_table_condition_allows_exactly_the_transitions(new: JobStatus) -> None:
    creates, sources = _from_statuses(new)
    assert creates is may_transition(None, new)
    assert set(sources) == {old for old in JobStatus if may_transition(old, new)}


class RecordingDynamoDB:
    """Captures the requests a JobStore makes (no I/O)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(("update_item", kwargs))
        return {"Attributes": {"pk": {"S": "x"}, "status": {"S": "running"}}}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append(("put_item", kwargs))
        return {}


def _allowed_in(request: dict[str, Any]) -> set[str]:
    """The statuses a conditional write may replace, read from its ConditionExpression."""
    placeholders = re.search(r"#status IN \(([^)]*)\)", request["ConditionExpression"])
    assert placeholders is not None
    values = request["ExpressionAttributeValues"]
    return {values[name.strip()]["S"] for name in placeholders.group(1).split(",")}


def test_a_claim_may_replace_only_queued_or_running_records() -> None:
    dynamodb = RecordingDynamoDB()
    JobStore(dynamodb, "t").claim("j", lease_owner="me", lease_seconds=60, now=1000.0)  # type: ignore[arg-type]
    [(_, request)] = dynamodb.requests
    assert _allowed_in(request) == {"queued", "running"}
    assert "attribute_not_exists(pk)" in request["ConditionExpression"]  # or create it
    assert "lease_until < :now" in request["ConditionExpression"]


@pytest.mark.parametrize("ending", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_an_ending_may_replace_only_a_record_that_has_not_ended_and_only_by_its_lease_holder(ending: JobStatus) -> None:
    from imagegen.jobs import AttemptRecord

    dynamodb = RecordingDynamoDB()
    store = JobStore(dynamodb, "t")  # type: ignore[arg-type]
    store.record("j", lease_owner="me", attempt=AttemptRecord(status=ending), now=1000.0)
    [(_, request)] = dynamodb.requests
    assert _allowed_in(request) == {"queued", "running"}
    assert "attribute_not_exists" not in request["ConditionExpression"]  # never creates a record
    assert request["ConditionExpression"].startswith("#lease_owner = :me")


@pytest.mark.parametrize("raw", ["0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01", "0C5E8A62-3F1B-4B1E-9F3A-2D6C7E8F9A01"])
def test_a_job_id_is_a_uuid(raw: str) -> None:
    assert parse_job_id(raw) == raw.lower()


@pytest.mark.parametrize(
    "raw", ["", "abc", "../etc/passwd", "0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a0", "0c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a012",
            "0c5e8a62_3f1b_4b1e_9f3a_2d6c7e8f9a01", "idempotency#abc", "\uff10c5e8a62-3f1b-4b1e-9f3a-2d6c7e8f9a01"]
)  # fmt: skip
def test_anything_else_is_a_400_on_job_id(raw: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_job_id(raw)
    assert caught.value.field == "job_id"


@pytest.mark.parametrize("raw", ["k", "a" * 255, "order-42:retry/1", "~!@#$%^&*()_+{}|:<>?"])
def test_an_idempotency_key_is_1_to_255_visible_ascii_characters(raw: str) -> None:
    assert parse_idempotency_key(raw) == raw


@pytest.mark.parametrize("raw", ["", "a" * 256, "with space", "tab\there", "é", "nul\x00", "del\x7f"])
def test_any_other_idempotency_key_is_a_400_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_idempotency_key(raw)
    assert caught.value.field == "Idempotency-Key"
    assert "1-255 visible ASCII" in caught.value.rule


def test_no_idempotency_key_is_fine() -> None:
    assert parse_idempotency_key(None) is None


def test_the_same_request_has_the_same_body_and_digest_whatever_its_key_order() -> None:
    one = canonical_body({"prompt": "a cät", "seed": 1})
    other = canonical_body({"seed": 1, "prompt": "a cät"})
    assert one == other == '{"prompt":"a cät","seed":1}'
    assert body_digest(one) == body_digest(other)
    assert body_digest(canonical_body({"prompt": "a cät", "seed": 2})) != body_digest(one)


def test_a_jobs_seeds_are_drawn_from_its_id() -> None:
    assert keyed_seed("job-1")(4_294_967_294) == keyed_seed("job-1")(4_294_967_294)
    assert keyed_seed("job-1")(4_294_967_294) != keyed_seed("job-2")(4_294_967_294)
    assert 0 <= keyed_seed("job-1")(10) <= 10


def test_a_retry_of_a_one_image_models_missing_images_makes_only_those_calls_with_their_seeds() -> None:
    adapter = StabilityAdapter("stability.stable-image-core-v1:1")
    invocation = adapter.prepare(parse_request({"prompt": "owls", "numberOfImages": 5, "seed": 10}))
    assert [call.indexes for call in invocation.calls()] == [(0,), (1,), (2,), (3,), (4,)]
    retry = adapter.restrict(invocation, [1, 4])
    assert [call.indexes for call in retry] == [(1,), (4,)]
    assert [call.body["seed"] for call in retry] == [11, 14]


@pytest.mark.parametrize("adapter", [TitanImageAdapter("amazon.titan-image-generator-v2:0"),
                                     NovaCanvasAdapter("amazon.nova-canvas-v1:0")])  # fmt: skip
def test_a_retry_of_a_multi_image_models_missing_images_asks_for_that_many(adapter: Any) -> None:
    invocation = adapter.prepare(parse_request({"prompt": "owls", "numberOfImages": 5, "seed": 10}))
    assert invocation.indexes == (0, 1, 2, 3, 4)
    [retry] = adapter.restrict(invocation, [2, 3])
    assert retry.indexes == (2, 3)
    assert retry.body["imageGenerationConfig"]["numberOfImages"] == 2
    assert retry.body["imageGenerationConfig"]["seed"] == 10
    assert invocation.body["imageGenerationConfig"]["numberOfImages"] == 5  # the original is unchanged
    assert adapter.restrict(invocation, []) == ()
