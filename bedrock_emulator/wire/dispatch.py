"""``validate``: model id and raw body in, a ``Job`` out, per model family."""

from __future__ import annotations

from typing import cast

from bedrock_emulator.errors import INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.wire.amazon import amazon_job
from bedrock_emulator.wire.fields import parse_body
from bedrock_emulator.wire.job import Job
from bedrock_emulator.wire.stability import stability_job
from imagegen.errors import ConfigurationError
from imagegen.models import StabilityAdapter, adapter_for
from imagegen.models.amazon import AmazonImageAdapter

__all__ = ["validate"]


def validate(model_id: str, raw_body: bytes) -> Job:
    """The job an InvokeModel call asks for; ``BedrockApiError`` (ValidationException) if Bedrock would refuse it.

    Checked in order: the model id (one of ``imagegen.models``'), the body is JSON, the body's fields.
    """
    try:
        adapter = type(adapter_for(model_id))
    except ConfigurationError:
        raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE) from None
    body = parse_body(raw_body)
    if issubclass(adapter, StabilityAdapter):
        return stability_job(body)
    return amazon_job(body, cast("type[AmazonImageAdapter]", adapter))
