"""Line charts as PNG: matplotlib when the ``bench`` dependency group is installed, else a plain Pillow drawing."""

from __future__ import annotations

import importlib.util
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


@dataclass(frozen=True)
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    #: "solid", "dashed" or "dotted"
    style: str = "solid"
    markers: bool = False
    annotate: bool = False


def line_chart(path: Path, series: Sequence[Series], *, title: str, xlabel: str, ylabel: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if importlib.util.find_spec("matplotlib") is not None:
        _matplotlib(path, series, title=title, xlabel=xlabel, ylabel=ylabel)
    else:
        _pillow(path, series, title=title, xlabel=xlabel, ylabel=ylabel)
    return path


def _matplotlib(path: Path, series: Sequence[Series], *, title: str, xlabel: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"solid": "-", "dashed": "--", "dotted": ":"}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for s in series:
        ax.plot(
            list(s.xs),
            list(s.ys),
            styles[s.style],
            marker="o" if s.markers else None,
            color=s.color,
            label=s.label,
        )
        if s.annotate:
            for x, y in zip(s.xs, s.ys, strict=True):
                ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(5, -13), fontsize=8)
    marked = sorted({x for s in series if s.markers for x in s.xs})
    if marked:
        ax.set_xticks(marked)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_COLORS = {
    "tab:blue": (31, 119, 180),
    "tab:red": (214, 39, 40),
    "tab:green": (44, 160, 44),
    "grey": (128, 128, 128),
}


def _pillow(path: Path, series: Sequence[Series], *, title: str, xlabel: str, ylabel: str) -> None:
    width, height, left, right, top, bottom = 880, 550, 80, 30, 50, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    x_max = max(x for s in series for x in s.xs) * 1.05
    y_max = _nice_ceiling(max(y for s in series for y in s.ys) * 1.1)

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + x / x_max * (width - left - right),
            height - bottom - y / y_max * (height - top - bottom),
        )

    for i in range(6):
        y = y_max * i / 5
        px, py = at(0, y)
        draw.line((left, py, width - right, py), fill=(225, 225, 225))
        draw.text((px - 8, py), f"{y:g}", fill="black", font=font, anchor="rm")
    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for x in sorted({x for s in series if s.markers for x in s.xs}):
        px, py = at(x, 0)
        draw.text((px, py + 8), f"{x:g}", fill="black", font=font, anchor="mt")
    for s in series:
        color = _COLORS.get(s.color, (0, 0, 0))
        points = [at(x, y) for x, y in zip(s.xs, s.ys, strict=True)]
        if s.style == "solid":
            draw.line(points, fill=color, width=2)
        else:
            _dashed(draw, points, color, 8 if s.style == "dashed" else 3)
        for (px, py), y in zip(points, s.ys, strict=True):
            if s.markers:
                draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=color)
            if s.annotate:
                draw.text((px + 6, py + 4), f"{y:.1f}", fill="black", font=font)
    for i, s in enumerate(series):
        y = top + 12 + 18 * i
        color = _COLORS.get(s.color, (0, 0, 0))
        draw.line((left + 12, y, left + 40, y), fill=color, width=2)
        draw.text((left + 46, y), s.label, fill="black", font=font, anchor="lm")
    draw.text((width / 2, 20), title, fill="black", font=font, anchor="mm")
    draw.text((width / 2, height - 25), xlabel, fill="black", font=font, anchor="mm")
    label = Image.new("RGB", (height, 20), "white")
    ImageDraw.Draw(label).text((height / 2, 10), ylabel, fill="black", font=font, anchor="mm")
    image.paste(label.rotate(90, expand=True), (10, 0))
    image.save(path)


def _dashed(
    draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], color: tuple[int, int, int], dash: int
) -> None:
    """A dashed polyline; the dash pattern runs on across the segments."""
    travelled = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        position = 0.0
        while position < length:
            step = min(dash - (travelled % dash), length - position)
            if int(travelled // dash) % 2 == 0:
                a, b = position / length, (position + step) / length
                draw.line(
                    (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a, x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                    fill=color,
                    width=2,
                )
            position += step
            travelled += step


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude
