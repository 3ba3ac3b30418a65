"""The region a request was signed for: the SigV4 credential scope, as AWS reads it to route the request.

``Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261130/us-west-2/bedrock/aws4_request, SignedHeaders=…,
Signature=…`` (or a presigned URL's ``X-Amz-Credential``) -> ``us-west-2``. The signature itself is not checked:
any credentials work, as with moto.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

__all__ = ["request_region"]

_SCOPE = re.compile(r"^[^/\s,]+/\d{8}/(?P<region>[a-z0-9-]+)/[a-z0-9-]+/aws4_request$")
_CREDENTIAL = re.compile(r"\bCredential=(?P<scope>[^\s,]+)")


def request_region(authorization: str | None, query: str = "") -> str | None:
    """The region of the credential scope, or ``None`` for an unsigned request (or one signed otherwise)."""
    scope = None
    if authorization and authorization.startswith("AWS4-HMAC-SHA256"):
        found = _CREDENTIAL.search(authorization)
        scope = found["scope"] if found else None
    elif query:
        credentials = parse_qs(query).get("X-Amz-Credential")
        scope = credentials[0] if credentials else None
    match = _SCOPE.match(scope) if scope else None
    return match["region"] if match else None
