"""Where moto differs from AWS in a way this project depends on, and the fix.

DynamoDB applies a conditional write to an item atomically: of two concurrent conditional writes, one sees the
other's result. moto's backend checks the condition and then writes, with no lock in between, so two threads can
both pass (seen: two of eight concurrent claims of one expired job lease both won). ``atomic_dynamodb_writes``
serialises moto's item writes, as DynamoDB does per item; the local stack's moto server and the tests install it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()
_installed = False


def atomic_dynamodb_writes() -> None:
    """Make moto's DynamoDB item writes atomic (idempotent: installs once per process)."""
    global _installed  # noqa: PLW0603 - one patch per process
    with _lock:
        if _installed:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in _WRITES:
            setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
        _installed = True


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return locked
