"""Shared fixtures: fake AWS credentials, a moto S3 bucket, and a fake Bedrock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from moto import mock_aws

from imagegen.index import make_dynamodb_client
from imagegen.jobs import JobStore, table_definition
from imagegen.storage import make_s3_client
from local_stack.moto_fidelity import atomic_dynamodb_writes
from tests.fakes import FakeBedrock

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "imagegen-test-bucket"
JOBS_TABLE = "imagegen-test-jobs"


@pytest.fixture(autouse=True, scope="session")
def atomic_moto_writes() -> None:
    """moto's DynamoDB writes made atomic, as DynamoDB's are (local_stack/moto_fidelity.py)."""
    atomic_dynamodb_writes()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch a real account: fake credentials, a fixed region."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_BEDROCK",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ImageGenTest")


@pytest.fixture
def s3() -> Iterator[S3Client]:
    with mock_aws():
        client = make_s3_client()
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture
def jobs(s3: S3Client) -> JobStore:
    """The job records' table, in the same moto account as ``s3``."""
    client = make_dynamodb_client()
    client.create_table(**table_definition(JOBS_TABLE))
    return JobStore(client, JOBS_TABLE)


@pytest.fixture
def bedrock() -> FakeBedrock:
    return FakeBedrock()
