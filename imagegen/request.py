"""The generation request every entry point accepts, and its model-independent validation.

Model-specific limits (prompt length, sizes, seed range, …) live in the adapters of ``imagegen.models``.
"""

from __future__ import annotations

import json
import math
import unicodedata
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
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


#: How much of a user's text an error message quotes (a field named with megabytes must not echo them).
QUOTE_CHARS = 40
_BOM = "\ufeff"


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` for an error message: at most ``limit`` characters, printable (escapes the rest)."""
    shown = "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text[:limit])
    return shown + "…" if len(text) > limit else shown


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def parse_json_body(body: str | bytes | None) -> object:
    """Decode an HTTP body or a queue message; anything that is not one well-formed JSON document is an
    ``InvalidRequestError`` on ``body`` (or on a key that appears twice), never another exception.

    Bytes may be UTF-8, UTF-16 or UTF-32 (as JSON allows); a leading byte-order mark is ignored.
    """
    if isinstance(body, bytes):
        try:
            text = body.decode(json.detect_encoding(body))
        except (UnicodeDecodeError, LookupError):
            raise InvalidRequestError("body", "must be valid JSON encoded as UTF-8 (or UTF-16/UTF-32)") from None
        if body.strip() and not text.strip(" \t\r\n\ufeff"):
            raise InvalidRequestError("body", "must be valid JSON (only a byte-order mark)")
        body = text
    if body is not None:
        body = body.removeprefix(_BOM)
    if body is None or not body.strip():
        raise InvalidRequestError("body", 'a JSON object is required, e.g. {"prompt": "a cat in space"}')
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        raise InvalidRequestError(quote(duplicate.key), "appears more than once in a JSON object") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError("body", f"must be valid JSON ({exc.msg})") from None
    except RecursionError:
        raise InvalidRequestError("body", "must be valid JSON (nested too deeply)") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits())
        raise InvalidRequestError("body", "must be valid JSON (a number has too many digits)") from None


def parse_request(payload: object) -> ImageRequest:
    """Check shape and types of a decoded JSON payload and build an ``ImageRequest``.

    Raises ``InvalidRequestError`` naming the first offending field.
    """
    if not isinstance(payload, dict):
        raise InvalidRequestError("body", f"must be a JSON object, not {_json_type(payload)}")
    unknown = sorted(str(key) for key in payload if key not in _FIELDS)
    if unknown:
        allowed = ", ".join(_FIELDS)
        raise InvalidRequestError(quote(unknown[0]), f"unknown field; allowed fields are: {allowed}")
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
            try:
                value = float(value)
            except OverflowError:
                raise InvalidRequestError(api_name, "must be a number of ordinary size") from None
        elif type_name == "string":
            value = _text(api_name, value)
        values[attr] = value

    values["prompt"] = _required_text("prompt", values["prompt"])
    if "negative_prompt" in values:
        values["negative_prompt"] = _required_text("negativePrompt", values["negative_prompt"], when_given=True)
    return ImageRequest(**values)


#: Characters that draw nothing: whitespace, and format characters such as U+200B, U+FEFF, U+2060.
def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def _text(field: str, value: str) -> str:
    """A text field must be valid Unicode without control characters (tab and newline excepted)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidRequestError(
            field, f"must be valid Unicode text (it holds the unpaired surrogate U+{ord(bad):04X})"
        ) from None
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in "\t\n\r":
            raise InvalidRequestError(field, f"must not contain control characters (it holds U+{ord(char):04X})")
    return value


def _required_text(field: str, value: str, *, when_given: bool = False) -> str:
    """Trimmed; empty, blank or only invisible characters is an error."""
    trimmed = value.strip()
    if not trimmed or all(_invisible(char) for char in trimmed):
        suffix = " when given" if when_given else ""
        raise InvalidRequestError(field, f"must not be empty or blank{suffix} (invisible characters do not count)")
    return trimmed


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
