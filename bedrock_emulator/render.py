"""Placeholder images for the local Bedrock emulator. This is NOT a generative model.

``render_placeholder`` draws a simple landscape (gradient sky, a soft sun or moon, layered hills,
mountains or waves) whose palette and shapes are derived from ``sha256(prompt, seed)``, and stamps a
caption band saying that it is a placeholder. The prompt only picks colours and shapes; nothing in the
picture depicts it. Same inputs give byte-identical output; another prompt or seed gives another picture.

Soft parts are drawn at a reduced size and upscaled, which keeps a 1024x1024 PNG in the tens of
milliseconds; results are cached per (prompt, seed, width, height, format).
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["CAPTION", "FORMATS", "render_placeholder"]

CAPTION = "PLACEHOLDER - Bedrock emulator, not a generative model"
#: Output formats the renderer encodes (Pillow format names).
FORMATS = ("PNG", "JPEG", "WEBP")
#: Largest side the soft parts (sky gradient, glow) are drawn at before upscaling.
_SOFT_SIDE = 256

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_placeholder(prompt: str, seed: int, width: int, height: int, fmt: str = "PNG") -> bytes:
    """A deterministic ``width`` x ``height`` placeholder image, encoded as ``fmt`` (PNG, JPEG or WEBP)."""
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise ValueError(f"unsupported format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    return _render(prompt, seed, width, height, fmt)


@functools.lru_cache(maxsize=32)
def _render(prompt: str, seed: int, width: int, height: int, fmt: str) -> bytes:
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    rng = random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - pictures, not secrets
    palette = _Palette.from_rng(rng)
    horizon = round(height * rng.uniform(0.48, 0.62))
    radius = min(width, height) * rng.uniform(0.05, 0.095)
    sun = (width * rng.uniform(0.18, 0.82), horizon * rng.uniform(0.35, 0.95), radius)

    image = _sky(palette, width, height, horizon, sun)
    scene = _Scene(ImageDraw.Draw(image), palette, rng, width, height, horizon, sun)
    if palette.night:
        _stars(scene)
    cx, cy, r = sun
    scene.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=palette.sun)
    kind = rng.choice(("mountains", "mountains", "hills", "sea"))
    if kind == "sea":
        _sea(scene)
    else:
        _ridges(scene, jagged=kind == "mountains")
    _caption(image, prompt, seed)

    out = io.BytesIO()
    if fmt == "PNG":
        image.save(out, "PNG", compress_level=1)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=90, method=0)
    else:
        image.save(out, "JPEG", quality=90)
    return out.getvalue()


# ---- palette ----------------------------------------------------------------------------------

#: Hue bands (HSV, 0..1) that make agreeable skies; muddy greens and yellows are left out.
_COOL_HUES = ((0.50, 0.70), (0.70, 0.82))
_WARM_HUES = ((0.90, 1.00), (0.00, 0.11))
_LAND_HUES = ((0.25, 0.42), (0.05, 0.12), (0.50, 0.62))


class _Palette:
    """Colours of one picture: sky top/middle/horizon, sun, and the far and near land colours."""

    def __init__(self, sky: Sequence[RGB], sun: RGB, far: RGB, near: RGB, *, night: bool) -> None:
        self.sky = tuple(sky)
        self.sun = sun
        self.far = far
        self.near = near
        self.night = night

    @classmethod
    def from_rng(cls, rng: random.Random) -> _Palette:
        cool = rng.uniform(*rng.choice(_COOL_HUES))
        warm = rng.uniform(*rng.choice(_WARM_HUES))
        land = rng.uniform(*rng.choice(_LAND_HUES))
        mood = rng.choice(("day", "dusk", "dusk", "night"))
        if mood == "day":
            sky = [_hsv(cool, 0.60, 0.78), _hsv(cool + 0.02, 0.38, 0.92), _hsv(warm, 0.14, 1.0)]
            sun = _hsv(warm, 0.06, 1.0)
            far, near = _hsv(cool + 0.03, 0.22, 0.80), _hsv(land, 0.50, 0.32)
        elif mood == "dusk":
            middle = _mix(_hsv(cool, 0.45, 0.62), _hsv(warm, 0.55, 0.90), 0.5)
            sky = [_hsv(cool, 0.65, 0.32), middle, _hsv(warm, 0.55, 1.0)]
            sun = _hsv(warm, 0.22, 1.0)
            far, near = _mix(_hsv(cool, 0.35, 0.55), _hsv(warm, 0.4, 0.8), 0.45), _hsv(cool, 0.55, 0.14)
        else:
            hue = rng.uniform(0.58, 0.76)
            sky = [_hsv(hue, 0.75, 0.10), _hsv(hue + 0.03, 0.60, 0.24), _hsv(hue + 0.07, 0.40, 0.44)]
            sun = _hsv(hue, 0.06, 0.97)
            far, near = _hsv(hue, 0.45, 0.30), _hsv(hue, 0.60, 0.07)
        return cls(sky, sun, far, near, night=mood == "night")


def _hsv(hue: float, saturation: float, value: float) -> RGB:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t)


# ---- layers -----------------------------------------------------------------------------------

Sun = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class _Scene:
    """What the foreground layers draw on and with; ``sun`` is (centre x, centre y, radius)."""

    draw: ImageDraw.ImageDraw
    palette: _Palette
    rng: random.Random
    width: int
    height: int
    horizon: int
    sun: Sun


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _sky(palette: _Palette, width: int, height: int, horizon: int, sun: Sun) -> Image.Image:
    """Three-colour gradient plus the sun's glow, drawn small (it is all soft) and upscaled."""
    scale = min(1.0, _SOFT_SIDE / max(width, height))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small_horizon = max(2, round(horizon * scale))
    top, middle, low = palette.sky
    split = max(1, small_horizon * 11 // 20)
    sky = Image.new("RGB", (small_w, small_h), low)
    sky.paste(_gradient((small_w, split), top, middle), (0, 0))
    sky.paste(_gradient((small_w, max(1, small_horizon - split)), middle, low), (0, split))

    cx, cy, r = (value * scale for value in sun)
    glow = Image.new("L", sky.size, 0)
    draw = ImageDraw.Draw(glow)
    for factor, level in ((4.5, 45), (2.6, 80), (1.6, 130)):
        draw.ellipse((cx - r * factor, cy - r * factor, cx + r * factor, cy + r * factor), fill=level)
    glow = glow.filter(ImageFilter.GaussianBlur(r * 1.3))
    sky.paste(Image.new("RGB", sky.size, palette.sun), (0, 0), glow)
    return sky.resize((width, height), Image.Resampling.BILINEAR) if sky.size != (width, height) else sky


def _stars(scene: _Scene) -> None:
    draw, rng, width, horizon = scene.draw, scene.rng, scene.width, scene.horizon
    unit = max(1.0, width / 1024)
    cx, cy, r = scene.sun
    for _ in range(min(1500, round(260 * width * horizon / (1024 * 560)))):
        x, y = rng.uniform(0, width), rng.uniform(0, horizon * 0.85)
        if math.hypot(x - cx, y - cy) < r * 2.2:  # outshone by the moon
            continue
        level = rng.randint(120, 255)
        size = unit * rng.choice((0.7, 0.7, 0.7, 1.0, 1.5))
        draw.ellipse((x - size, y - size, x + size, y + size), fill=(level, level, min(255, level + 25)))


def _ridges(scene: _Scene, *, jagged: bool) -> None:
    """Three to five silhouettes from far (hazy, close to the horizon colour) to near (dark)."""
    palette, rng, width, height, horizon = scene.palette, scene.rng, scene.width, scene.height, scene.horizon
    layers = rng.randint(3, 5)
    haze = palette.sky[2]
    for index in range(layers):
        depth = index / (layers - 1)  # 0 far .. 1 near
        base = horizon + (height - horizon) * (0.06 + 0.5 * depth)
        amplitude = height * (0.16 - 0.07 * depth) * rng.uniform(0.7, 1.2)
        if jagged:
            profile = _midpoint_profile(rng, 2 ** (6 + (index > 1)), roughness=rng.uniform(0.5, 0.6))
        else:
            profile = _sine_profile(rng, 96)
        colour = _mix(_mix(palette.far, haze, 0.3 * (1 - depth)), palette.near, depth**1.2)
        last = len(profile) - 1
        points = [(i * width / last, base - amplitude * y) for i, y in enumerate(profile)]
        scene.draw.polygon([*points, (width, height), (0, height)], fill=colour)


def _midpoint_profile(rng: random.Random, segments: int, roughness: float) -> list[float]:
    """Midpoint displacement: a ridge line scaled to [0, 1] with ``segments + 1`` points."""
    values = [rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.6)]
    spread = 0.6
    while len(values) <= segments:
        refined = []
        for left, right in itertools.pairwise(values):
            refined += [left, (left + right) / 2 + rng.uniform(-spread, spread)]
        values = [*refined, values[-1]]
        spread *= roughness
    low, high = min(values), max(values)
    return [(value - low) / (high - low or 1.0) for value in values]


def _sine_profile(rng: random.Random, segments: int) -> list[float]:
    """Rolling hills: three sine waves of rising frequency and falling weight, scaled to [0.25, 1]."""
    waves = [(rng.uniform(0.4, 1.6) * (k + 1), rng.uniform(0, math.tau), 1 / (k + 1)) for k in range(3)]
    values = [
        sum(weight * math.sin(math.tau * freq * i / segments + phase) for freq, phase, weight in waves)
        for i in range(segments + 1)
    ]
    low, high = min(values), max(values)
    return [0.25 + 0.75 * (value - low) / (high - low or 1.0) for value in values]


def _sea(scene: _Scene) -> None:
    """Water below the horizon: bands darkening towards the viewer, wave dashes, glitter under the sun."""
    draw, palette, rng, width, horizon = scene.draw, scene.palette, scene.rng, scene.width, scene.horizon
    height, sun = scene.height, scene.sun
    rows = height - horizon
    deep = _mix(palette.near, palette.sky[0], 0.3)
    shallow = _mix(palette.sky[2], palette.far, 0.35)
    bands = 48
    for band in range(bands):
        y0 = horizon + rows * (band / bands) ** 1.6
        y1 = horizon + rows * ((band + 1) / bands) ** 1.6
        draw.rectangle((0, y0, width, y1 + 1), fill=_mix(shallow, deep, (band / bands) ** 0.8))
    glint = _mix(palette.sky[2], palette.sun, 0.6)
    cx, _, r = sun
    for row in range(60):
        t = (row + rng.random()) / 60
        y = horizon + rows * t**1.6
        thickness = max(1.0, rows * 0.006 * (0.3 + t))
        tone = _mix(_mix(shallow, deep, t**0.8), glint, 0.35)
        for _ in range(rng.randint(3, 7)):
            length = width * rng.uniform(0.02, 0.07) * (0.4 + t)
            x = rng.uniform(-length, width)
            draw.rectangle((x, y, x + length, y + thickness), fill=tone)
        half = (r * 0.9 + width * 0.07 * t) * rng.uniform(0.2, 1.0)
        shift = width * 0.01 * rng.uniform(-1, 1)
        draw.rectangle((cx + shift - half, y, cx + shift + half, y + thickness), fill=glint)


# ---- caption ----------------------------------------------------------------------------------


def _caption(image: Image.Image, prompt: str, seed: int) -> None:
    """A translucent band at the bottom: what this is, then the (truncated) prompt and the seed."""
    width, height = image.size
    size = max(8, min(28, round(math.sqrt(width * height) / 48)))
    pad = max(3, size // 2)
    font = _font(size)
    while size > 8 and font.getlength(CAPTION) > width - 2 * pad:
        size -= 1
        font = _font(size)
        pad = max(3, size // 2)
    small = _font(max(8, round(size * 0.8)))
    line_gap = max(2, size // 4)
    band_h = min(height, pad * 2 + size + line_gap + round(size * 0.8))
    top = height - band_h
    band = image.crop((0, top, width, height))
    band = Image.blend(band, Image.new("RGB", band.size, (12, 12, 16)), 0.62)
    draw = ImageDraw.Draw(band)
    draw.text((pad, pad), _fit(CAPTION, font, width - 2 * pad), font=font, fill=(255, 255, 255))
    detail = _fit(f"seed {seed} \u00b7 {' '.join(prompt.split())}", small, width - 2 * pad)
    draw.text((pad, pad + size + line_gap), detail, font=small, fill=(205, 205, 215))
    image.paste(band, (0, top))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(text: str, font: Font, max_width: float) -> str:
    if not isinstance(font, ImageFont.FreeTypeFont):
        text = text.replace("\u2014", "-").replace("\u00b7", "-").encode("latin-1", "replace").decode("latin-1")
    if font.getlength(text) <= max_width:
        return text
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits together with the ellipsis
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid].rstrip() + "\u2026") <= max_width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "\u2026"
