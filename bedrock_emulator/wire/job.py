"""``Job``: what a valid InvokeModel body asks for, whatever the model family."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Job"]


@dataclass(frozen=True, slots=True)
class Job:
    """A validated request: what to render and how to shape the reply."""

    prompt: str
    negative_prompt: str | None
    #: The seed of the first image; image ``i`` of the reply uses ``seed + i``.
    seed: int
    count: int
    width: int
    height: int
    #: Pillow format name: PNG, JPEG or WEBP.
    fmt: str
    #: Reply in Stability's shape (``seeds``, ``finish_reasons``) rather than Amazon's (``error``).
    stability: bool
