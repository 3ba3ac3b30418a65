"""The region of a request, read from its SigV4 credential scope as botocore signs it (no network)."""

from __future__ import annotations

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bedrock_emulator.sigv4 import request_region

CREDENTIALS = Credentials("AKIDEXAMPLE", "secret", "token")


@pytest.mark.parametrize("region", ["us-west-2", "us-east-1", "eu-central-1", "us-gov-west-1"])
def test_the_region_of_a_request_botocore_signed(region: str) -> None:
    request = AWSRequest(method="POST", url="http://127.0.0.1:4567/model/x/invoke", data=b"{}")
    SigV4Auth(CREDENTIALS, "bedrock", region).add_auth(request)
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert request_region(request.headers["Authorization"]) == region


def test_the_region_of_a_presigned_url() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:4567/foundation-models")
    SigV4QueryAuth(CREDENTIALS, "bedrock", "ap-southeast-2").add_auth(request)
    assert request.url is not None
    query = request.url.split("?", 1)[1]
    assert request_region(None, query) == "ap-southeast-2"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer abc",
        "AWS AKID:signature",  # SigV2
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/2026-11-30/us-west-2/bedrock/aws4_request, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-west-2/bedrock, Signature=abc",
    ],
)
def test_an_unsigned_or_unreadable_request_has_no_region(authorization: str | None) -> None:
    assert request_region(authorization) is None
    assert request_region(authorization, "X-Amz-Date=20261130T000000Z") is None
