"""Every queue message ends in exactly one place, once (moto S3/SQS, a fake Bedrock, the real QueueWorker):
a delivery that finds another holding the message never dead-letters it for that and never shortens its
visibility; completion is recorded explicitly; a message is dead-lettered at most once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from imagegen.config import Settings
from imagegen.errors import DeliveryInProgressError, InvalidRequestError, TransientBedrockError
from imagegen.jobs import JobStore
from imagegen.queue import Outcome, QueueMessage, QueueWorker, _text, make_sqs_client
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, b64png, client_error, make_service, titan_reply

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

NOVA = "amazon.nova-canvas-v1:0"


class Queue:
    """A prompt queue and its DLQ on moto, and what the worker did to message visibility."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.sqs: SQSClient = make_sqs_client()
        self.dlq_url = self.sqs.create_queue(QueueName="prompts-dlq")["QueueUrl"]
        self.url = self.sqs.create_queue(QueueName="prompts")["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.visibility_changes: list[dict[str, Any]] = []
        self.sqs.meta.events.register(
            "provide-client-params.sqs.ChangeMessageVisibility",
            lambda params, **_: self.visibility_changes.append(dict(params)),
        )

    def receive(self, body: str, receive_count: int = 1) -> QueueMessage:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)
        [message] = self.sqs.receive_message(QueueUrl=self.url)["Messages"]
        return QueueMessage(message["MessageId"], body, message["ReceiptHandle"], receive_count, self.arn)

    def dead_letters(self) -> list[dict[str, str]]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        return [
            {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
            for message in got.get("Messages", [])
        ]


@pytest.fixture
def queue(s3: S3Client, jobs: JobStore) -> Iterator[Queue]:
    yield Queue(jobs)


def worker(s3: S3Client, queue: Queue, bedrock: FakeBedrock, *, model_id: str | None = None) -> QueueWorker:
    settings = Settings(bucket_name=BUCKET, model_id=model_id) if model_id else Settings(bucket_name=BUCKET)
    return QueueWorker(make_service(settings, bedrock, s3), queue.jobs, queue.sqs, queue.dlq_url, max_receive_count=5)


def pngs(s3: S3Client) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET)
    return sorted(obj["Key"] for obj in listing.get("Contents", []) if obj["Key"].endswith(".png"))


class SlowModel:
    """Holds every call until released, so a test can act while a delivery holds the claim."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        assert self.release.wait(10)
        return titan_reply(body)


def _in_thread(function: Any) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(function()), daemon=True)
    thread.start()
    return thread, results


# ---- a delivery held by another ------------------------------------------------------------------


@pytest.mark.parametrize("receive_count", [1, 4])
def test_a_held_message_is_neither_dead_lettered_nor_made_visible_sooner(
    s3: S3Client, queue: Queue, receive_count: int
) -> None:
    slow = SlowModel()
    qw = worker(s3, queue, FakeBedrock(replies=[slow]))
    message = queue.receive("a slow owl")
    first, results = _in_thread(lambda: qw.process(message))
    assert slow.entered.wait(10)
    duplicate = QueueMessage(message.message_id, message.body, "another-handle", receive_count, queue.arn)
    with pytest.raises(DeliveryInProgressError):
        qw.process(duplicate)
    assert queue.visibility_changes == []  # neither shortened nor touched
    assert queue.dead_letters() == []
    slow.release.set()
    first.join(10)
    assert [result.outcome for result in results] == [Outcome.GENERATED]
    assert queue.dead_letters() == []


def test_on_the_last_receive_a_held_message_waits_for_the_holders_ending(s3: S3Client, queue: Queue) -> None:
    slow = SlowModel()
    qw = worker(s3, queue, FakeBedrock(replies=[slow]))
    message = queue.receive("a slow heron")
    first, _ = _in_thread(lambda: qw.process(message))
    assert slow.entered.wait(10)
    last = QueueMessage(message.message_id, message.body, "last-handle", 5, queue.arn)  # max_receive_count = 5
    paused: list[float] = []

    def pause(seconds: float) -> None:  # the holder finishes while the last delivery waits
        paused.append(seconds)
        slow.release.set()
        first.join(10)

    qw._pause = pause
    result = qw.process(last, deadline=qw._clock() + 60)
    assert result.outcome is Outcome.ALREADY_DONE  # answered from the holder's ending: the poller deletes it
    assert result.generation is not None and [i.key for i in result.generation.images] == [
        f"generated_images/from_queue/{message.message_id}-0.png"
    ]
    assert paused and queue.dead_letters() == [] and queue.visibility_changes == []


def test_on_the_last_receive_a_holder_that_gives_up_leaves_the_message_to_the_last_delivery(
    s3: S3Client, queue: Queue
) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_then_throttled(body: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        assert release.wait(10)
        raise client_error("ThrottlingException", "slow down", 429)

    bedrock = FakeBedrock(replies=[slow_then_throttled, titan_reply])
    qw = worker(s3, queue, bedrock)
    message = queue.receive("a hesitant heron")
    raised: list[TransientBedrockError] = []

    def hold() -> None:
        with pytest.raises(TransientBedrockError) as caught:
            qw.process(message)
        raised.append(caught.value)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert entered.wait(10)

    def pause(seconds: float) -> None:  # the holder fails (a transient error releases its claim) meanwhile
        release.set()
        holder.join(10)

    qw._pause = pause
    last = QueueMessage(message.message_id, message.body, "last-handle", 5, queue.arn)
    result = qw.process(last, deadline=qw._clock() + 60)
    assert result.outcome is Outcome.GENERATED  # the last delivery took the claim and ended the message itself
    assert [error.code for error in raised] == ["Throttled"]
    assert queue.dead_letters() == []
    assert pngs(s3) == [f"generated_images/from_queue/{message.message_id}-0.png"]


def test_on_the_last_receive_a_held_message_past_its_deadline_is_retried_not_dead_lettered(
    s3: S3Client, queue: Queue
) -> None:
    slow = SlowModel()
    qw = worker(s3, queue, FakeBedrock(replies=[slow]))
    message = queue.receive("a slow crane")
    first, _ = _in_thread(lambda: qw.process(message))
    assert slow.entered.wait(10)
    last = QueueMessage(message.message_id, message.body, "last-handle", 5, queue.arn)
    with pytest.raises(DeliveryInProgressError):
        qw.process(last, deadline=qw._clock() - 1)
    assert queue.dead_letters() == []
    slow.release.set()
    first.join(10)


# ---- completion is explicit ----------------------------------------------------------------------


def test_fewer_images_than_asked_is_still_done_and_never_regenerated(s3: S3Client, queue: Queue) -> None:
    # Nova Canvas drops images its filter blocks: two of three asked come back.
    def nova_drops_one(body: dict[str, Any]) -> dict[str, Any]:
        return {"images": [b64png(), b64png(2, 2)], "error": "Some of the generated images have been blocked"}

    bedrock = FakeBedrock(replies=[nova_drops_one])
    qw = worker(s3, queue, bedrock, model_id=NOVA)
    message = queue.receive(json.dumps({"prompt": "three cats", "numberOfImages": 3, "seed": 1}))
    assert qw.process(message).outcome is Outcome.GENERATED
    first_png = s3.get_object(Bucket=BUCKET, Key=f"generated_images/from_queue/{message.message_id}-0.png")["ETag"]
    redelivered = qw.process(QueueMessage(message.message_id, message.body, "h2", 2, queue.arn))
    assert redelivered.outcome is Outcome.ALREADY_DONE
    assert redelivered.generation is not None and len(redelivered.generation.images) == 2
    assert len(bedrock.calls) == 1  # no second model call
    assert (
        s3.get_object(Bucket=BUCKET, Key=f"generated_images/from_queue/{message.message_id}-0.png")["ETag"] == first_png
    )  # image 0 was not overwritten
    assert len(pngs(s3)) == 2


# ---- dead-lettered at most once --------------------------------------------------------------------


def test_a_second_dead_letter_attempt_finds_the_first(s3: S3Client, queue: Queue) -> None:
    qw = worker(s3, queue, FakeBedrock())
    message = queue.receive("p" * 513)  # too long for Titan: permanent
    assert qw.process(message).outcome is Outcome.DEAD_LETTERED
    again = qw.process(QueueMessage(message.message_id, message.body, "h2", 2, queue.arn))
    assert again.outcome is Outcome.ALREADY_DONE
    letters = queue.dead_letters()
    assert [letter["source_message_id"] for letter in letters] == [message.message_id]


def test_a_dead_letter_whose_send_failed_is_sent_once_by_the_retry(s3: S3Client, queue: Queue) -> None:
    qw = worker(s3, queue, FakeBedrock())
    message = queue.receive("q" * 513)
    real_dlq = qw.dead_letter_queue_url
    qw.dead_letter_queue_url = real_dlq.replace("prompts-dlq", "missing")
    with pytest.raises(ClientError):
        qw.process(message)  # the send fails: raised, so the message stays on the queue
    qw.dead_letter_queue_url = real_dlq
    assert qw.process(QueueMessage(message.message_id, message.body, "h2", 2, queue.arn)).outcome is (
        Outcome.DEAD_LETTERED
    )
    assert qw.process(QueueMessage(message.message_id, message.body, "h3", 3, queue.arn)).outcome is (
        Outcome.ALREADY_DONE
    )
    assert [letter["error_code"] for letter in queue.dead_letters()] == ["InvalidRequest"]


def test_a_generated_message_is_never_dead_lettered_later(s3: S3Client, queue: Queue) -> None:
    bedrock = FakeBedrock(replies=[titan_reply, client_error("ThrottlingException", "slow", 429)])
    qw = worker(s3, queue, bedrock)
    message = queue.receive("a finished fox")
    assert qw.process(message).outcome is Outcome.GENERATED
    last = QueueMessage(message.message_id, message.body, "h5", 5, queue.arn)
    assert qw.process(last).outcome is Outcome.ALREADY_DONE
    assert queue.dead_letters() == []


# ---- the reason never blocks the dead letter -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain reason", "plain reason"), ("a\ud800b", "a\ufffdb"), ("nul\x00here", "nul\ufffdhere"),
     ("tab\tnewline\n", "tab\tnewline\n"), ("x" * 2000, "x" * 1024), ("", "-")],
)  # fmt: skip
def test_attribute_values_are_sanitised_to_what_sqs_accepts(text: str, expected: str) -> None:
    assert _text(text) == {"DataType": "String", "StringValue": expected}


def test_a_refused_reason_still_dead_letters_the_message(
    s3: S3Client, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    qw = worker(s3, queue, FakeBedrock())
    message = queue.receive("r" * 513)
    sends: list[dict[str, Any]] = []
    real_send = queue.sqs.send_message

    def picky_send(**kwargs: Any) -> Any:
        sends.append(kwargs)
        if "error_message" in kwargs["MessageAttributes"]:
            raise client_error("InvalidParameterValue", "attribute refused", 400)
        return real_send(**kwargs)

    monkeypatch.setattr(queue.sqs, "send_message", picky_send)
    assert qw.process(message).outcome is Outcome.DEAD_LETTERED
    assert len(sends) == 2
    [letter] = queue.dead_letters()
    # The minimum SQS cannot refuse: the code, and the ids to find the message and its job record.
    assert letter == {"error_code": "InvalidRequest", "source_message_id": message.message_id,
                      "job_id": message.message_id}  # fmt: skip


def test_user_text_in_a_reason_is_quoted_short(s3: S3Client, queue: Queue) -> None:
    qw = worker(s3, queue, FakeBedrock())
    field = "z" * 100_000 + "\ud800"
    message = queue.receive(json.dumps({"prompt": "a cat", field: 1}))
    assert qw.process(message).outcome is Outcome.DEAD_LETTERED
    [letter] = queue.dead_letters()
    assert letter["error_code"] == InvalidRequestError.code
    assert len(letter["error_message"]) < 300
    assert letter["error_message"].startswith("z" * 40 + "…: unknown field")


# ---- hostile bodies on the queue: dead-lettered at once, with the rule -----------------------------

QUEUE_HOSTILE: list[tuple[str, str, str]] = [
    ("deeply nested JSON", "{" + '"a":{' * 5000 + "}" * 5001, "nested too deeply"),
    ("a 5,000-digit seed", '{"prompt": "a cat", "seed": ' + "9" * 5000 + "}", "too many digits"),
    ("a huge cfgScale", '{"prompt": "a cat", "cfgScale": 1' + "0" * 400 + "}", "cfgScale: must be a number"),
    ("an unpaired surrogate", '{"prompt": "a \\ud800 cat"}', "unpaired surrogate U+D800"),
    ("only invisible characters", "\u200b\ufeff\u2060", "invisible characters"),
    ("a NUL character", "a\u0000cat", "control characters (it holds U+0000)"),
    ("a repeated key", '{"prompt": "a cat", "prompt": "a dog"}', "prompt: appears more than once"),
]


@pytest.mark.parametrize(("case", "body", "rule"), QUEUE_HOSTILE, ids=[c[0] for c in QUEUE_HOSTILE])
def test_hostile_queue_bodies_are_dead_lettered_at_once_with_the_rule(
    s3: S3Client, queue: Queue, case: str, body: str, rule: str
) -> None:
    bedrock = FakeBedrock()
    qw = worker(s3, queue, bedrock)
    message = QueueMessage(f"hostile-{len(case)}", body, "", 1, queue.arn)
    assert qw.process(message).outcome is Outcome.DEAD_LETTERED
    [letter] = queue.dead_letters()
    assert letter["error_code"] == "InvalidRequest"
    assert rule in letter["error_message"]
    assert bedrock.calls == []


def test_a_byte_order_mark_before_a_json_message_is_read_as_json(s3: S3Client, queue: Queue) -> None:
    bedrock = FakeBedrock()
    qw = worker(s3, queue, bedrock)
    message = queue.receive('\ufeff{"prompt": "a cat", "seed": 4}')
    assert qw.process(message).outcome is Outcome.GENERATED
    assert bedrock.calls[0]["decoded_body"]["imageGenerationConfig"]["seed"] == 4
