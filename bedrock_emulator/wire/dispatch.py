"""``validate``: model id and raw body in, a ``Job`` out, per model family."""

from __future__ import annotations

from bedrock_emulator.errors import INVALID_MODEL_MESSAGE, BedrockApiError
from bedrock_emulator.wire.amazon import amazon_job
from bedrock_emulator.wire.fields import parse_body
from bedrock_emulator.wire.job import Job
from bedrock_emulator.wire.rules import StabilityRules, rules_for
from bedrock_emulator.wire.stability import stability_job

__all__ = ["validate"]


def validate(model_id: str, raw_body: bytes) -> Job:
    """The job an InvokeModel call asks for; ``BedrockApiError`` (ValidationException) if Bedrock would refuse it.

    Checked in order: the model id (one of ``bedrock_emulator.wire.rules.MODELS``), the body is JSON, the body's
    fields against that model's published rules.
    """
    rules = rules_for(model_id)
    if rules is None:
        raise BedrockApiError("ValidationException", INVALID_MODEL_MESSAGE)
    body = parse_body(raw_body)
    if isinstance(rules, StabilityRules):
        return stability_job(body, rules)
    return amazon_job(body, rules)
