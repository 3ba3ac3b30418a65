"""The generation request every entry point accepts, and its model-independent validation.

Model-specific limits (prompt length, sizes, seed range, …) live in the adapters of ``imagegen.models``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from imagegen.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """A validated, model-independent request. ``None`` means "use the model's default"."""

    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    number_of_images: int | None = None
    quality: str | None = None
    cfg_scale: float | None = None

    def options(self) -> dict[str, Any]:
        """The options the caller set, under their API names (for sidecars and logs)."""
        return {
            api_name: value
            for api_name, attr in _API_TO_ATTR.items()
            if api_name != "prompt" and (value := asdict(self)[attr]) is not None
        }


# API field name -> (attribute, expected type name)
_FIELDS: dict[str, tuple[str, str]] = {
    "prompt": ("prompt", "string"),
    "negativePrompt": ("negative_prompt", "string"),
    "seed": ("seed", "integer"),
    "width": ("width", "integer"),
    "height": ("height", "integer"),
    "numberOfImages": ("number_of_images", "integer"),
    "quality": ("quality", "string"),
    "cfgScale": ("cfg_scale", "number"),
}
_API_TO_ATTR = {api_name: attr for api_name, (attr, _) in _FIELDS.items()}


def _type_matches(value: object, type_name: str) -> bool:
    # bool is a subclass of int in Python, but `true` is not a number in the API.
    if isinstance(value, bool):
        return False
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, int | float) and math.isfinite(value)


def parse_json_body(body: str | bytes | None) -> object:
    """Decode an HTTP body; an absent or malformed body is an ``InvalidRequestError`` on ``body``."""
    if body is None or (isinstance(body, str | bytes) and not body.strip()):
        raise InvalidRequestError("body", 'a JSON object is required, e.g. {"prompt": "a cat in space"}')
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise InvalidRequestError("body", f"must be valid JSON ({reason})") from None


def parse_request(payload: object) -> ImageRequest:
    """Check shape and types of a decoded JSON payload and build an ``ImageRequest``.

    Raises ``InvalidRequestError`` naming the first offending field.
    """
    if not isinstance(payload, dict):
        raise InvalidRequestError("body", f"must be a JSON object, not {_json_type(payload)}")
    unknown = sorted(str(key) for key in payload if key not in _FIELDS)
    if unknown:
        allowed = ", ".join(_FIELDS)
        raise InvalidRequestError(unknown[0], f"unknown field; allowed fields are: {allowed}")
    if "prompt" not in payload:
        raise InvalidRequestError("prompt", "is required")

    values: dict[str, Any] = {}
    for api_name, (attr, type_name) in _FIELDS.items():
        if api_name not in payload or (payload[api_name] is None and api_name != "prompt"):
            continue
        value = payload[api_name]
        if not _type_matches(value, type_name):
            raise InvalidRequestError(api_name, f"must be a {type_name}, not {_json_type(value)}")
        if type_name == "integer":
            value = int(value)
        elif type_name == "number":
            value = float(value)
        values[attr] = value

    prompt = values["prompt"].strip()
    if not prompt:
        raise InvalidRequestError("prompt", "must not be empty or blank")
    values["prompt"] = prompt
    if "negative_prompt" in values:
        negative = values["negative_prompt"].strip()
        if not negative:
            raise InvalidRequestError("negativePrompt", "must not be empty or blank when given")
        values["negative_prompt"] = negative
    return ImageRequest(**values)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__
