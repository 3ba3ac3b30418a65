"""The placeholder renderer, in this process (byte-identity across processes: tests/local/emulator/test_cli.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bedrock_emulator.render import CAPTION, render_placeholder


def test_render_is_deterministic_and_depends_on_prompt_and_seed() -> None:
    first = render_placeholder("a lighthouse", 1, 320, 240)
    assert render_placeholder("a lighthouse", 1, 320, 240) == first
    assert render_placeholder("a lighthouse", 2, 320, 240) != first
    assert render_placeholder("a windmill", 1, 320, 240) != first
    image = Image.open(io.BytesIO(first))
    assert (image.format, image.size, image.mode) == ("PNG", (320, 240), "RGB")


@pytest.mark.parametrize(("fmt", "pil_format"), [("PNG", "PNG"), ("jpeg", "JPEG"), ("WEBP", "WEBP")])
def test_render_encodes_each_format(fmt: str, pil_format: str) -> None:
    image = Image.open(io.BytesIO(render_placeholder("fox", 3, 200, 120, fmt)))
    assert (image.format, image.size) == (pil_format, (200, 120))


@pytest.mark.parametrize("size", [(1, 1), (16, 900), (4096, 320), (320, 1408)])
def test_render_handles_extreme_shapes(size: tuple[int, int]) -> None:
    assert Image.open(io.BytesIO(render_placeholder("x" * 2000, 0, *size))).size == size


def test_render_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="format"):
        render_placeholder("x", 0, 10, 10, "GIF")
    with pytest.raises(ValueError, match="positive"):
        render_placeholder("x", 0, 0, 10)


def test_the_caption_says_it_is_a_placeholder() -> None:
    assert "PLACEHOLDER" in CAPTION
    assert "not a generative model" in CAPTION
