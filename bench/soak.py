"""``python -m bench.soak``: hundreds of messages through the local stack under throttling, faults, content-filter
hits, duplicate deliveries and invalid messages; every message must end exactly once.

Every message is a job whose id is its message id. A message has ended when its job record says succeeded (it has
images) or the DLQ holds a message for it (attribute ``source_message_id`` when the worker dead-lettered it, else the
SQS message id, for SQS's own redrive); the soak reads only the job records and the DLQ, as a client would. The
bucket is versioned, so a second write of an image key shows up as a second version. Exit status 0 only when no
message was lost, no image was written twice, no message ended in two places (an image AND a dead letter), none was
dead-lettered twice, and every job record agrees (a failed job has its dead letter, a succeeded one its images).

Every service of the local stack runs in a process of its own; the soak reads the emulator's and the worker
service's counters through their admin routes, and the bucket and queues through the stack's moto, as a client
would. The stack serves the default model chain against today's lifecycle table: its first entry, Titan Image
Generator v1, is end of life, so every container fails over to Stable Image Core (prompts up to 10,000 characters)
after one failed call per cool-down.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bedrock_emulator.config import EmulatorConfig
from bench.common import Report, log, out, table
from bench.stacks import (
    emulator,
    endpoints,
    job_records,
    local_stack,
    poller,
    queue_depth,
    s3,
    send_messages,
    sqs,
)
from imagegen.config import DEFAULT_MODEL_ID
from imagegen.jobs import JobStatus
from imagegen.storage import QUEUE_FOLDER, images_folder
from local_stack.stack import LocalStack

NAME = "soak"
SEED = 424242
VALID = 500
BLOCKED = 25
TOO_LONG = 5
MAX_PROMPT_CHARS = 10_000  # Stable Image Core's limit
UNKNOWN_FIELD = 5
BAD_JSON = 3
#: Sending is paced over this long, so that the RPM quota is hit part-way and load keeps coming.
SEND_SECONDS = 60.0
RPM = 400
FAULT_RATE = 0.1
DUPLICATE_RATE = 0.1
LATENCY_MS = 50
POLLERS = 3
MAX_RECEIVE_COUNT = 5
TIMEOUT_SECONDS = 240.0
EMPTY_QUEUE_GRACE_SECONDS = 15.0
BLOCKED_WORD = "forbidden"
IMAGE_PREFIX = images_folder(folder=QUEUE_FOLDER)  # the soak's stack has no key prefix
#: What a permanently failing message of each kind must be dead-lettered with.
EXPECTED_CODE = {
    "blocked": "ContentFiltered",
    "too_long": "InvalidRequest",
    "unknown_field": "InvalidRequest",
    "bad_json": "InvalidRequest",
}


@dataclass
class Letter:
    body: str
    code: str | None
    message: str | None
    receive_count: str | None


@dataclass
class Tracker:
    kinds: dict[str, str] = field(default_factory=dict)  # message id -> kind
    images: set[str] = field(default_factory=set)  # jobs that succeeded
    failed: set[str] = field(default_factory=set)  # jobs whose record says failed
    image_counts: dict[str, int] = field(default_factory=dict)  # images per succeeded job, from its record
    letters: dict[str, list[Letter]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ended(self) -> set[str]:
        return (self.images | set(self.letters)) & set(self.kinds)


def bodies(rng: random.Random) -> list[tuple[str, str]]:
    """(kind, body) pairs, shuffled: plain-text and JSON prompts, blocked words, too long, an unknown field,
    malformed JSON."""
    subjects = ["a lighthouse", "a red fox", "a harbour at dawn", "a desert road", "a glass city", "an old tram"]
    styles = ["in watercolour", "at night", "in the rain", "from above", "in autumn", "as a woodcut"]
    items: list[tuple[str, str]] = []
    for index in range(VALID):
        prompt = f"{rng.choice(subjects)} {rng.choice(styles)}, soak {index}"
        if index % 5 < 3:
            items.append(("plain", prompt))
        else:
            payload: dict[str, Any] = {"prompt": prompt, "seed": rng.randrange(0, 2**31 - 1)}
            if index % 10 == 4:
                payload.update(width=512, height=512)
            items.append(("json", json.dumps(payload)))
    for index in range(BLOCKED):
        prompt = f"a {BLOCKED_WORD} picture number {index}"
        items.append(("blocked", prompt if index % 2 else json.dumps({"prompt": prompt})))
    items.extend(("too_long", "x" * (MAX_PROMPT_CHARS + 1 + index)) for index in range(TOO_LONG))
    items.extend(
        ("unknown_field", json.dumps({"prompt": f"a lighthouse, unknown field {index}", "style": "photo"}))
        for index in range(UNKNOWN_FIELD)
    )
    items.extend(("bad_json", '{"prompt": "unterminated ' + str(index)) for index in range(BAD_JSON))
    rng.shuffle(items)
    return items


def main() -> int:
    report = Report(NAME)
    rng = random.Random(SEED)  # noqa: S311 - test data
    items = bodies(rng)
    config = EmulatorConfig(
        latency_ms=LATENCY_MS, rpm=RPM, fault_rate=FAULT_RATE, blocked_words=(BLOCKED_WORD,), seed=SEED
    )
    report.parameters = {
        "model_id": DEFAULT_MODEL_ID,
        "messages": len(items),
        "kinds": dict(Counter(kind for kind, _ in items)),
        "send_seconds": SEND_SECONDS,
        "emulator": config.to_env(),
        "duplicate_delivery_rate": DUPLICATE_RATE,
        "poller_max_concurrency": POLLERS,
        "max_receive_count": MAX_RECEIVE_COUNT,
        "retry_base_seconds": 1,
        "timeout_seconds": TIMEOUT_SECONDS,
        "gives_up_after_queue_empty_for_seconds": EMPTY_QUEUE_GRACE_SECONDS,
    }
    tracker = Tracker()
    with local_stack(
        NAME,
        config,
        retry_base_seconds=1,
        max_concurrency=POLLERS,
        batching_window_seconds=0.5,
        worker_timeout_seconds=10,
        model_id=DEFAULT_MODEL_ID,
        max_receive_count=MAX_RECEIVE_COUNT,
        duplicate_delivery_rate=DUPLICATE_RATE,
    ) as stack:
        ep = endpoints(stack)
        s3(stack).put_bucket_versioning(Bucket=ep.bucket, VersioningConfiguration={"Status": "Enabled"})
        started = time.monotonic()
        sender = threading.Thread(target=_send, args=(stack, items, tracker), daemon=True)
        sender.start()
        finished = _watch(stack, tracker, sender, started)
        elapsed = time.monotonic() - started
        _settle(stack, tracker)
        figures = _figures(stack, tracker, elapsed, finished)
    report.figures = figures
    _tables(report, figures)
    report.write()
    checks = ("lost", "duplicate_images", "ended_as_image_and_dead_letter", "dead_lettered_more_than_once",
              "failed_job_without_dead_letter", "succeeded_job_without_its_images")  # fmt: skip
    ok = all(figures[name] == 0 for name in checks)
    out(
        f"soak {'PASSED' if ok else 'FAILED'}: sent {figures['sent']}, images {figures['images']}, dead letters "
        f"{figures['dead_lettered']}; lost {figures['lost']}, duplicate images {figures['duplicate_images']}, "
        f"ended as image AND dead letter {figures['ended_as_image_and_dead_letter']}, dead-lettered twice "
        f"{figures['dead_lettered_more_than_once']}; {figures['seconds_until_all_ended']} s"
    )
    return 0 if ok else 1


def _send(stack: LocalStack, items: list[tuple[str, str]], tracker: Tracker) -> None:
    client, queue_url = sqs(stack), endpoints(stack).queue_url
    chunks = [items[i : i + 10] for i in range(0, len(items), 10)]
    pause = SEND_SECONDS / len(chunks)
    next_at = time.monotonic()
    for chunk in chunks:
        ids = send_messages(client, queue_url, [body for _, body in chunk])
        with tracker.lock:
            tracker.kinds.update({message_id: kind for message_id, (kind, _) in zip(ids, chunk, strict=True)})
        next_at += pause
        time.sleep(max(0.0, next_at - time.monotonic()))


def _watch(stack: LocalStack, tracker: Tracker, sender: threading.Thread, started: float) -> bool:
    """Collect images and dead letters until every sent message ended, the queue has been empty for
    ``EMPTY_QUEUE_GRACE_SECONDS`` (what has not ended by then never will: it was deleted unprocessed), or timeout."""
    last_report = 0.0
    empty_since: float | None = None
    queue_url, client = endpoints(stack).queue_url, sqs(stack)
    while time.monotonic() - started < TIMEOUT_SECONDS:
        _collect(stack, tracker)
        with tracker.lock:
            sent, ended = len(tracker.kinds), len(tracker.ended())
        now = time.monotonic() - started
        if now - last_report >= 10:
            stats = emulator(stack).stats()
            log(
                f"[soak] {now:5.0f} s: sent {sent}, ended {ended} (images {len(tracker.images)}, dead letters "
                f"{len(tracker.letters)}); bedrock requests {stats['requests']}, throttled {stats['throttled']}, "
                f"faults {stats['faults']}"
            )
            last_report = now
        if not sender.is_alive() and ended == sent:
            return True
        if not sender.is_alive() and sum(queue_depth(client, queue_url)) == 0:
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= EMPTY_QUEUE_GRACE_SECONDS:
                log(f"[soak] the queue has been empty for {EMPTY_QUEUE_GRACE_SECONDS:g} s; {sent - ended} never ended")
                break
        else:
            empty_since = None
        time.sleep(1.0)
    _collect(stack, tracker)
    return False


def _collect(stack: LocalStack, tracker: Tracker) -> None:
    ep = endpoints(stack)
    records = job_records(stack)
    succeeded = {job.job_id: len(job.images) for job in records if job.status is JobStatus.SUCCEEDED}
    failed = {job.job_id for job in records if job.status is JobStatus.FAILED}
    client = sqs(stack)
    letters: list[tuple[str, Letter]] = []
    while True:
        # Read once: each letter stays hidden for the rest of the soak.
        reply = client.receive_message(
            QueueUrl=ep.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=900, MessageAttributeNames=["All"]
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        for message in messages:
            attributes = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
            source = attributes.get("source_message_id") or message["MessageId"]
            fields = (attributes.get(name) for name in ("error_code", "error_message", "receive_count"))
            letters.append((source, Letter(message.get("Body", ""), *fields)))
    with tracker.lock:
        tracker.images |= set(succeeded)
        tracker.image_counts.update(succeeded)
        tracker.failed |= failed
        for source, letter in letters:
            tracker.letters.setdefault(source, []).append(letter)


def _settle(stack: LocalStack, tracker: Tracker, quiet_seconds: float = 3.0, limit: float = 30.0) -> None:
    """Let in-flight work finish (duplicate deliveries may still be running), then collect once more."""
    ep = endpoints(stack)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and sum(queue_depth(sqs(stack), ep.queue_url)) > 0:
        time.sleep(0.5)
    time.sleep(quiet_seconds)
    _collect(stack, tracker)


def _figures(stack: LocalStack, tracker: Tracker, elapsed: float, finished: bool) -> dict[str, Any]:
    ep = endpoints(stack)
    versions: Counter[str] = Counter()
    paginator = s3(stack).get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=ep.bucket, Prefix=IMAGE_PREFIX):
        versions.update(version["Key"] for version in page.get("Versions", []))
    duplicated_keys = sorted(key for key, count in versions.items() if count > 1)
    duplicated_images = [key for key in duplicated_keys if key.endswith(".png")]
    sent = set(tracker.kinds)
    images = tracker.images & sent
    dead = set(tracker.letters) & sent
    lost = sorted(sent - images - dead)
    both = sorted(images & dead)
    # The records agree with what happened: a failed job has its dead letter; a succeeded one has its PNGs.
    failed_without_letter = sorted((tracker.failed & sent) - dead)
    pngs = {key for key in versions if key.endswith(".png")}
    missing_pngs = sorted(
        message_id for message_id in images
        for index in range(tracker.image_counts.get(message_id, 0))
        if f"{IMAGE_PREFIX}{message_id}-{index}.png" not in pngs
    )  # fmt: skip
    letters = [letter for source in dead for letter in tracker.letters[source]]
    with_reason = [letter for letter in letters if letter.code and letter.message]
    unexpected: list[dict[str, Any]] = []
    for message_id, kind in tracker.kinds.items():
        expected = EXPECTED_CODE.get(kind)
        codes = [letter.code for letter in tracker.letters.get(message_id, [])]
        if expected and (message_id in images or any(code != expected for code in codes)):
            unexpected.append({"id": message_id, "kind": kind, "image": message_id in images, "codes": codes})
    stats = emulator(stack).stats()
    by_kind: dict[str, Counter[str]] = {}
    for message_id, kind in tracker.kinds.items():
        outcome = "image" if message_id in images else "dead-lettered" if message_id in dead else "lost"
        by_kind.setdefault(kind, Counter())[outcome] += 1
    return {
        "finished_in_time": finished,
        "seconds_until_all_ended": round(elapsed, 1),
        "sent": len(sent),
        "images": len(images),
        "dead_lettered": len(dead),
        "dead_letters_with_reason": len(with_reason),
        "dead_letters_without_reason": len(letters) - len(with_reason),
        "dead_letter_messages": len(letters),
        "duplicate_dead_letters": len(letters) - len(dead),
        "dead_lettered_more_than_once": sum(1 for source in dead if len(tracker.letters[source]) > 1),
        "lost": len(lost),
        "lost_ids": lost[:50],
        "ended_as_image_and_dead_letter": len(both),
        "failed_job_without_dead_letter": len(failed_without_letter),
        "succeeded_job_without_its_images": len(missing_pngs),
        "records_disagreeing": len(failed_without_letter) + len(missing_pngs),
        "duplicate_images": len(duplicated_images),
        "keys_written_more_than_once": duplicated_keys[:100],
        "image_object_versions": sum(versions.values()),
        "bedrock": stats,
        "bedrock_calls_per_image": round(stats["requests"] / len(images), 3) if images else None,
        "dead_letter_codes": dict(Counter(letter.code or "(none: SQS redrive)" for letter in letters)),
        "outcomes_by_kind": {kind: dict(counter) for kind, counter in sorted(by_kind.items())},
        "unexpected_outcomes": unexpected[:50],
        "poller": poller(stack).stats(),
    }


def _tables(report: Report, f: dict[str, Any]) -> None:
    columns = {
        "sent": "sent",
        "images": "images",
        "dead-lettered": "dead_lettered",
        "without reason": "dead_letters_without_reason",
        "lost": "lost",
        "duplicate images": "duplicate_images",
        "image AND dead letter": "ended_as_image_and_dead_letter",
        "record disagrees": "records_disagreeing",
        "dead-lettered twice": "dead_lettered_more_than_once",
        "calls/image": "bedrock_calls_per_image",
    }
    title = f"Soak: {f['sent']} messages, ended after {f['seconds_until_all_ended']} s"
    report.add_table(table(title, list(columns), [[f[key] for key in columns.values()]]))
    kinds = f["outcomes_by_kind"]
    report.add_table(
        table(
            "Outcome by kind of message",
            ["kind", "image", "dead-lettered", "lost"],
            [[k, c.get("image", 0), c.get("dead-lettered", 0), c.get("lost", 0)] for k, c in kinds.items()],
        )
    )
    bedrock, poller = f["bedrock"], f["poller"]
    report.add_table(
        table(
            "What happened on the way",
            ["counter", "value"],
            [
                ["Bedrock requests", bedrock["requests"]],
                ["  succeeded", bedrock["succeeded"]],
                ["  throttled (RPM quota)", bedrock["throttled"]],
                ["  injected faults", bedrock["faults"]],
                ["  content-filtered", bedrock["filtered"]],
                ["batches delivered twice (records)", poller["duplicated"]],
                ["records reported failed (retried)", poller["failed"]],
                ["whole-batch failures", poller["errors"]],
                ["dead letters beyond one per message", f["duplicate_dead_letters"]],
                ["unexpected outcomes (see JSON)", len(f["unexpected_outcomes"])],
                *([f"dead letters: {code}", n] for code, n in sorted(f["dead_letter_codes"].items())),
            ],
        )
    )


if __name__ == "__main__":
    sys.exit(main())
