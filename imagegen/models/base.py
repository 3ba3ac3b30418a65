"""What every model adapter provides, and the small checks they share."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from imagegen.errors import InvalidRequestError, ModelResponseError
from imagegen.request import ImageRequest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Picks a seed in [0, upper]; injectable so tests can pin it.
SeedSource = Callable[[int], int]


def random_seed(upper: int) -> int:
    """A uniformly random seed in [0, upper]."""
    return secrets.randbelow(upper + 1)


def keyed_seed(key: str) -> SeedSource:
    """Picks the same seed for the same ``key`` (a job id): a retry of a job's missing images draws the seeds the
    first attempt would have drawn."""
    value = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return lambda upper: value % (upper + 1)


#: Images one request may ask for, on every model (one-image models make that many calls).
MAX_IMAGES = 5


@dataclass(frozen=True, slots=True)
class Invocation:
    """Everything needed to call the model, plus the resolved parameters for the sidecar.

    ``body`` is the first (usually only) call; a model that makes one image per call gets one more
    ``Invocation`` per further image in ``more`` (seed + 1, seed + 2, …). ``indexes`` are the images of the
    request (0 … numberOfImages - 1) that this call makes, in the order the model returns them."""

    body: dict[str, Any]
    seed: int
    parameters: dict[str, Any]
    more: tuple[Invocation, ...] = ()
    indexes: tuple[int, ...] = (0,)

    def calls(self) -> tuple[Invocation, ...]:
        """Every InvokeModel call this request needs, in image order."""
        return (self, *self.more)


@dataclass(frozen=True, slots=True)
class ModelImage:
    """One generated image as the model returned it."""

    png: bytes
    seed: int


class ModelAdapter(ABC):
    """Turns an ``ImageRequest`` into one model's JSON body, and its reply into PNG bytes."""

    #: Human-readable family name used in error messages.
    family: ClassVar[str]
    #: Highest seed the model accepts (lowest is 0).
    max_seed: ClassVar[int]

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    @property
    def label(self) -> str:
        """The family and the model id, as error messages name the serving model."""
        return f"{self.family} model {self.model_id}"

    @abstractmethod
    def prepare(self, request: ImageRequest, seed_source: SeedSource = random_seed) -> Invocation:
        """Validate ``request`` against the model's limits and build the request body."""

    @abstractmethod
    def parse_response(self, payload: Mapping[str, Any], invocation: Invocation) -> list[ModelImage]:
        """Extract images; blocked or empty output raises, never returns an empty list."""

    def restrict(self, invocation: Invocation, indexes: Sequence[int]) -> tuple[Invocation, ...]:
        """The calls that make only the images ``indexes`` of ``invocation`` (a retry of the missing ones). Here:
        the calls of one image each, kept as they were (same seeds); a model making several images in one call
        overrides this."""
        wanted = set(indexes)
        return tuple(call for call in invocation.calls() if set(call.indexes) <= wanted)

    # ---- shared checks ------------------------------------------------------------------------

    def check_length(self, field: str, value: str | None, maximum: int) -> None:
        if value is not None and len(value) > maximum:
            raise InvalidRequestError(
                field, f"must be at most {maximum} characters for {self.label} (got {len(value)})"
            )

    def check_range(self, field: str, value: float | None, low: float, high: float) -> None:
        if value is not None and not low <= value <= high:
            raise InvalidRequestError(field, f"must be between {_number(low)} and {_number(high)} for {self.label}")

    def check_choice(self, field: str, value: str | None, choices: Sequence[str]) -> None:
        if value is not None and value not in choices:
            raise InvalidRequestError(field, f"must be one of {', '.join(choices)} for {self.label}")

    def check_unsupported(self, request: ImageRequest, *api_fields: str) -> None:
        options = request.options()
        for field in api_fields:
            if field in options:
                raise InvalidRequestError(field, f"is not supported by {self.label}")

    def pick_seed(self, request: ImageRequest, seed_source: SeedSource) -> int:
        self.check_range("seed", request.seed, 0, self.max_seed)
        return request.seed if request.seed is not None else seed_source(self.max_seed)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (bytes 16-24)."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def decode_png(encoded: object) -> bytes:
    """Decode one base64 image from a model reply and check that it is a PNG."""
    if not isinstance(encoded, str) or not encoded:
        raise ModelResponseError("The model returned an unusable image.", detail="image is not a string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelResponseError("The model returned an unusable image.", detail=f"bad base64: {exc}") from None
    if not data.startswith(PNG_SIGNATURE):
        raise ModelResponseError("The model returned an unusable image.", detail="image is not a PNG")
    return data
