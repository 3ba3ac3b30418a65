"""`imagegen reindex`: the gallery's index rebuilt from the sidecars in S3 (moto S3 and DynamoDB)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from imagegen.config import Settings
from imagegen.index import ImageIndex, make_dynamodb_client, table_definition
from imagegen.jobs import JobStore
from imagegen.queue import QueueMessage, QueueWorker, make_sqs_client
from imagegen_cli.main import main
from imagegen_cli.reindex import PROGRESS_EVERY, reindex
from tests.conftest import BUCKET
from tests.fakes import FakeBedrock, make_service

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TABLE = "imagegen-reindex-test"


@pytest.fixture
def stored(s3: S3Client, jobs: JobStore) -> list[str]:
    """Images from the API and the queue, stored while the index was down (no table yet)."""
    service = make_service(Settings(bucket_name=BUCKET, key_prefix="candidate"), FakeBedrock(), s3)
    prompts = []
    for index in range(3):
        prompts.append(f"api picture {index}")
        service.generate(service.prepare({"prompt": prompts[-1], "numberOfImages": 2}), request_id=f"req-{index}")
    worker = QueueWorker(service, jobs, make_sqs_client(), "unused")
    prompts.append("queue picture")
    assert worker.process(QueueMessage("msg-1", "queue picture")).outcome.value == "generated"
    return prompts


def test_reindex_rebuilds_the_gallery_newest_first_and_is_idempotent(s3: S3Client, stored: list[str]) -> None:
    dynamodb = make_dynamodb_client()
    dynamodb.create_table(**table_definition(TABLE))
    index = ImageIndex(dynamodb, TABLE)
    lines: list[str] = []
    assert reindex(s3, BUCKET, "candidate", index, progress=lines.append) == 7  # 3 x 2 from the API, 1 from the queue
    assert lines == [f"indexed 7 images from s3://{BUCKET}/candidate/generated_images/ into {TABLE}"]
    page = index.page(limit=100)
    assert page.entries[0]["prompt"] == "queue picture"
    assert sorted({entry["prompt"] for entry in page.entries}) == sorted(stored)
    assert {entry["source"] for entry in page.entries} == {"api", "queue"}
    assert reindex(s3, BUCKET, "candidate", index, progress=lines.append) == 7
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 7  # the same items, not twice as many


def test_reindex_reports_progress_every_hundred_images(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("imagegen_cli.reindex.PROGRESS_EVERY", 3)
    service = make_service(Settings(bucket_name=BUCKET), FakeBedrock(), s3)
    for index in range(7):
        service.generate(service.prepare({"prompt": f"p{index}"}), request_id=f"r{index}")
    dynamodb = make_dynamodb_client()
    dynamodb.create_table(**table_definition(TABLE))
    lines: list[str] = []
    assert reindex(s3, BUCKET, "", ImageIndex(dynamodb, TABLE), progress=lines.append) == 7
    assert lines[:2] == ["3 images indexed…", "6 images indexed…"]
    assert PROGRESS_EVERY == 100


def test_the_command_names_what_it_could_not_reach(
    s3: S3Client, stored: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--state-file", str(Path("/nonexistent/stack.json")), "reindex", "--bucket", BUCKET,
                   "--key-prefix", "candidate", "--table", "no-such-table"])  # fmt: skip
    assert status == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("imagegen: cannot write the index no-such-table:")


def test_without_a_target_the_command_says_what_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-file", "/nonexistent/stack.json", "reindex"]) == 1
    assert capsys.readouterr().err.strip() == (
        "imagegen: no bucket and table: pass --bucket/--table or --stack-name, or start `imagegen local`"
    )
