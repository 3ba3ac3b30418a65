"""Wire-format validation of InvokeModel bodies, per model family: pure functions, no HTTP, no state.

``validate(model_id, raw_body)`` dispatches to ``amazon`` (Titan, Nova Canvas) or ``stability``; both use
``fields`` for typed JSON-path access. The limits are read from the adapters in ``imagegen.models``.
"""

from bedrock_emulator.wire.dispatch import validate
from bedrock_emulator.wire.fields import Malformed
from bedrock_emulator.wire.job import Job

__all__ = ["Job", "Malformed", "validate"]
