"""The generation request every entry point accepts, and its model-independent validation.

Model-specific limits (prompt length, sizes, seed range, …) live in the adapters of ``imagegen.models``.
"""

from __future__ import annotations

import codecs
import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, cast

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


#: The largest magnitude of any integer field: 2^53 - 1, the largest integer every JSON implementation represents
#: exactly (RFC 7493, I-JSON, section 2.2); no model accepts more than 4,294,967,295 anywhere. A larger number
#: (``1e300``, or 400 digits) is refused as out of range here, before anything computes with it.
MAX_SAFE_INTEGER = 2**53 - 1

#: ``width`` and ``height`` on every model: the largest side any supported model renders is Nova Canvas's 4,096
#: (Titan's largest size is 1,408; Stability's width and height only pick an aspect ratio for an image of about a
#: megapixel). Every adapter calls ``check_side_bounds``: Stability before its ratio matching, Titan and Nova Canvas
#: after their own, narrower rules (so their messages, which name their limits, come first).
MIN_SIDE, MAX_SIDE = 1, 4096


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
_BYTE_ORDER_MARKS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)  # UTF-32LE: FF FE


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

    Bytes may be UTF-8, UTF-16 or UTF-32 (as JSON allows); a leading byte-order mark is ignored, and without one
    the encoding is read from the pattern of NUL bytes in the first four (RFC 4627 section 3,
    ``json.detect_encoding``). A ``str`` is what API Gateway (and the local gateway) hand over when the bytes were
    valid UTF-8: UTF-16 or UTF-32 text without a byte-order mark whose characters are all ASCII is valid UTF-8 too,
    and arrives as a ``str`` holding NULs. A JSON text never holds a NUL outside a string (nor inside one,
    unescaped), so a ``str`` with a NUL among its first four characters is encoded back to the bytes the gateway
    decoded (UTF-8, the exact inverse of its strict decoding) and read as bytes.
    """
    if isinstance(body, str) and "\x00" in body[:4]:
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no gateway made this str from bytes
            raise InvalidRequestError("body", "must be valid JSON encoded as UTF-8 (or UTF-16/UTF-32)") from None
    if isinstance(body, bytes):
        try:
            text = body.decode(json.detect_encoding(body))
        except (UnicodeDecodeError, LookupError):
            raise InvalidRequestError("body", "must be valid JSON encoded as UTF-8 (or UTF-16/UTF-32)") from None
        if body.startswith(_BYTE_ORDER_MARKS) and not text.strip(" \t\r\n\ufeff"):
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


_NOT_FINITE = "must be a finite number (not NaN or Infinity, nor so large that it overflows a 64-bit float)"
_TOO_LARGE = "must be a number of ordinary size (a finite number, within a 64-bit float's range)"
_OUT_OF_RANGE = f"is out of range: an integer must lie between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}"


def check_side_bounds(width: int | None, height: int | None) -> None:
    """``width`` and ``height``, when given, are integers from ``MIN_SIDE`` to ``MAX_SIDE`` (every model)."""
    for field, side in (("width", width), ("height", height)):
        if side is not None and not MIN_SIDE <= side <= MAX_SIDE:
            raise InvalidRequestError(
                field, f"must be between {MIN_SIDE} and {MAX_SIDE} on every model (got {quote(str(side))})"
            )


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
        values[attr] = _field_value(api_name, type_name, payload[api_name])

    values["prompt"] = _required_text("prompt", values["prompt"])
    if "negative_prompt" in values:
        values["negative_prompt"] = _required_text("negativePrompt", values["negative_prompt"], when_given=True)
    return ImageRequest(**values)


def _field_value(api_name: str, type_name: str, value: object) -> Any:
    """One field's value, checked against its type and converted (an integer given as 7.0 becomes 7)."""
    if type_name != "string" and isinstance(value, float) and not math.isfinite(value):
        # NaN, Infinity and -Infinity (literals Python's json accepts) and numbers like 1e400 that overflow.
        raise InvalidRequestError(api_name, _NOT_FINITE)
    if not _type_matches(value, type_name):
        raise InvalidRequestError(api_name, f"must be a {type_name}, not {_json_type(value)}")
    if type_name == "string":
        return _text(api_name, cast("str", value))
    number = cast("int | float", value)  # what _type_matches established
    if type_name == "integer":
        if not -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            raise InvalidRequestError(api_name, _OUT_OF_RANGE)  # before anything computes with it
        return int(number)
    try:
        return float(number)
    except OverflowError:  # an integer beyond a float's range (400 digits)
        raise InvalidRequestError(api_name, _TOO_LARGE) from None


#: Letters and symbols that draw nothing. The Hangul fillers are the only code points of categories L, N, S or P
#: that are Default_Ignorable_Code_Point (Unicode 14.0, DerivedCoreProperties.txt, by way of
#: Other_Default_Ignorable_Code_Point in PropList.txt: 115F..1160, 3164, FFA0; every other default-ignorable code
#: point is Cf, Mn or unassigned). Added to them:
#: U+2800 BRAILLE PATTERN BLANK (So; the Braille cell with no dot, drawn as a space) and U+1D159 MUSICAL SYMBOL NULL
#: NOTEHEAD (So; an invisible notehead that marks can attach to). Not here because their category already makes them
#: invisible: U+2028/U+2029 (Zl, Zp), U+180E (Cf since Unicode 6.3), U+3000 (Zs), U+16FE4 KHITAN SMALL SCRIPT FILLER
#: (Mn), the variation selectors (Mn) and tag characters (Cf).
DRAW_NOTHING = frozenset("\u115f\u1160\u3164\uffa0\u2800\U0001d159")


def visible(char: str) -> bool:
    """Whether ``char`` draws something: a letter, number, symbol or punctuation mark (general categories L*, N*,
    S*, P*) that is not in ``DRAW_NOTHING``. Everything else draws nothing on its own: separators and spaces (Z*),
    controls, format characters such as U+200B, U+FEFF, U+2060, private-use and unassigned code points (C*), and
    combining marks (M*), which show only on a base: a prompt of marks alone is blank, a mark on a visible letter
    is fine (the letter counts)."""
    return unicodedata.category(char)[0] in "LNSP" and char not in DRAW_NOTHING


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
    """Trimmed; a text without a visible letter, digit, symbol or punctuation mark (``visible``) is blank."""
    trimmed = value.strip()
    if not any(visible(char) for char in trimmed):
        suffix = " when given" if when_given else ""
        raise InvalidRequestError(
            field,
            f"must not be empty or blank{suffix} (invisible characters do not count: it needs a visible letter, "
            "digit, symbol or punctuation mark)",
        )
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
