"""Typed access to the JSON body of a request, failing the way Bedrock's JSON-schema validation does.

Every failure is a ``ValidationException`` whose message names the JSON path:
``Malformed input request: #/imageGenerationConfig/seed: -1 is not greater or equal to 0, please reformat
your input and try again.``
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from bedrock_emulator.errors import BedrockApiError

__all__ = ["Fields", "Malformed", "json_type", "parse_body"]


class Malformed(BedrockApiError):
    """A ValidationException worded like Bedrock's JSON-schema errors, naming the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            "ValidationException",
            f"Malformed input request: {path}: {problem}, please reformat your input and try again.",
        )
        self.path = path


def parse_body(raw: bytes) -> object:
    """The JSON document in ``raw``; a ValidationException if it is not UTF-8 JSON."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise BedrockApiError(
            "ValidationException",
            f"Malformed input request: #: the body is not valid JSON ({reason}), "
            "please reformat your input and try again.",
        ) from None


def json_type(value: object) -> str:
    """The JSON-schema type name Bedrock's messages use for ``value``."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _show(value: float) -> str:
    return json.dumps(value)


class Fields:
    """Typed access to one JSON object of the body; every failure names its JSON path."""

    def __init__(self, value: object, path: str, *, required: Sequence[str], allowed: Sequence[str]) -> None:
        if not isinstance(value, dict):
            raise Malformed(path, f"expected type: JSONObject, found: {json_type(value)}")
        self.values: dict[str, Any] = value
        self.path = path
        for key in required:
            if key not in value:
                raise Malformed(path, f"required key [{key}] not found")
        for key in value:
            if key not in required and key not in allowed:
                raise Malformed(path, f"extraneous key [{key}] is not permitted")

    def child(self, key: str) -> str:
        return f"{self.path}/{key}" if self.path != "#" else f"#/{key}"

    def string(self, key: str, *, min_length: int, max_length: int) -> str | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if not isinstance(value, str):
            raise Malformed(path, f"expected type: String, found: {json_type(value)}")
        if len(value) < min_length:
            raise Malformed(path, f"expected minLength: {min_length}, actual: {len(value)}")
        if len(value) > max_length:
            raise Malformed(path, f"expected maxLength: {max_length}, actual: {len(value)}")
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if not isinstance(value, str):
            raise Malformed(path, f"expected type: String, found: {json_type(value)}")
        if value not in choices:
            raise Malformed(path, f"{value} is not a valid enum value")
        return value

    def integer(self, key: str, low: int, high: int) -> int | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Malformed(path, f"expected type: Integer, found: {json_type(value)}")
        self._bounds(path, value, low, high)
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        if key not in self.values:
            return None
        value, path = self.values[key], self.child(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Malformed(path, f"expected type: Number, found: {json_type(value)}")
        self._bounds(path, value, low, high)
        return float(value)

    @staticmethod
    def _bounds(path: str, value: float, low: float, high: float) -> None:
        if value < low:
            raise Malformed(path, f"{_show(value)} is not greater or equal to {_show(low)}")
        if value > high:
            raise Malformed(path, f"{_show(value)} is not less or equal to {_show(high)}")
