"""Wire-format validation of InvokeModel bodies, per model family: pure functions, no HTTP, no state.

``validate(model_id, raw_body)`` dispatches to ``amazon`` (Titan, Nova Canvas) or ``stability``; both use
``fields`` for typed JSON-path access. The limits are the emulator's own copy of AWS's published request rules
(``rules``, one entry per model with its source page), independent of the service's limits in ``imagegen.models``.
"""

from bedrock_emulator.wire.dispatch import validate
from bedrock_emulator.wire.fields import Malformed
from bedrock_emulator.wire.job import Job
from bedrock_emulator.wire.rules import ModelRules, rules_for

__all__ = ["Job", "Malformed", "ModelRules", "rules_for", "validate"]
