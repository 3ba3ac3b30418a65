"""A small evaluator of the IAM policy language, for the escalation-path rules of tests/infra/bootstrap_rules.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from tests.infra.bootstrap_support import _as_list

# ------------------------------------------------------------------------------ escalation paths --
# A small evaluator of the IAM policy language, as far as these policies use it (Allow/Deny, wildcards in Action and
# Resource, the condition operators below; an operator it does not know fails the test), so that each escalation
# path is checked as the requests an attacker would make, not as the shape of a statement. Each check returns the
# problems it finds and is run twice: on the applied policies (none) and on a policy with the hole put back (some).
Decision = Literal["Allow", "Deny", "ImplicitDeny"]
Context = Mapping[str, Any]  # condition key -> value, or values for a multivalued key


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's `*` (any characters, "/" included) and `?` (one character)."""
    regex = "".join({"*": ".*", "?": "."}.get(char, re.escape(char)) for char in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE if ignore_case else 0) is not None


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": _wildcard,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": _wildcard,
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


def _condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    values = [str(value) for value in _as_list(expected)]
    qualifier, _, test = operator.rpartition(":")
    if_exists = test.endswith("IfExists")
    test = test.removesuffix("IfExists")
    if test == "Null":
        return (key not in context) == (values == ["true"])
    negated = "Not" in test
    compare = _COMPARE[test.replace("Not", "", 1)]
    if key not in context:
        if if_exists or qualifier == "ForAllValues":
            return True
        return False if qualifier == "ForAnyValue" else negated

    def holds(actual: str) -> bool:
        matched = any(compare(value, actual) for value in values)
        return not matched if negated else matched

    actual = [str(value) for value in _as_list(context[key])]
    if qualifier == "ForAnyValue":
        return any(holds(value) for value in actual)
    if qualifier == "ForAllValues":
        return all(holds(value) for value in actual)
    (single,) = actual
    return holds(single)


def _applies(statement: dict[str, Any], action: str, resource: str, context: Context) -> bool:
    assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
    if not any(_wildcard(pattern, action, ignore_case=True) for pattern in _as_list(statement["Action"])):
        return False
    if not any(_wildcard(pattern, resource) for pattern in _as_list(statement["Resource"])):
        return False
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, keys in statement.get("Condition", {}).items()
        for key, expected in keys.items()
    )


def decide(statements: list[dict[str, Any]], action: str, resource: str, context: Context | None = None) -> Decision:
    matching = [s for s in statements if _applies(s, action, resource, context or {})]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    return "Allow" if matching else "ImplicitDeny"
