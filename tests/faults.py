"""Fault injection for the AWS calls of one boto3 client: make chosen calls fail, to test what each write step of a
job leaves behind when it fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

#: A test on the call's parameters: fail only the calls it accepts.
Match = Callable[[dict[str, Any]], bool]


@dataclass
class _Plan:
    operation: str
    times: int
    match: Match
    code: str


@dataclass
class Faults:
    """``Faults(client).fail("UpdateItem")``: the next UpdateItem of ``client`` raises a ClientError (as botocore does
    once its retries are spent). ``calls`` records every call the client made, by operation name."""

    client: Any
    calls: list[str] = field(default_factory=list)
    _plans: list[_Plan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client.meta.events.register("provide-client-params", self._before)

    def fail(
        self, operation: str, *, times: int = 1, match: Match = lambda _: True, code: str = "InternalError"
    ) -> None:
        self._plans.append(_Plan(operation, times, match, code))

    def count(self, operation: str) -> int:
        return self.calls.count(operation)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        for plan in self._plans:
            if plan.operation == model.name and plan.times > 0 and plan.match(params):
                plan.times -= 1
                error = {"Error": {"Code": plan.code, "Message": "injected fault"},
                         "ResponseMetadata": {"HTTPStatusCode": 500}}  # fmt: skip
                raise ClientError(error, model.name)  # type: ignore[arg-type]
