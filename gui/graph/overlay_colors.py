"""Colours of the graph's overlays, and the one-line legend under the graph."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtGui import QColor

TRAINABLE = {"trainable": "#a8dab5", "frozen": "#aecbfa", "partial": "#fdd663"}
TIED = "#d7aefb"
CHANGED = "#f6aea9"
#: dtypes in a fixed order, so a dtype keeps its colour from model to model
DTYPES = {"float32": "#aecbfa", "float16": "#fdd663", "bfloat16": "#fcad70",
          "float64": "#a8dab5", "int64": "#d7aefb", "int32": "#e6c9a8", "int8": "#f6aea9",
          "uint8": "#f6aea9", "bool": "#dadce0"}
#: a colour-blind-safe sequential scale (viridis), low to high
SCALE = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def scale_color(fraction: float) -> QColor:
    """The colour at `fraction` (0..1) along SCALE, lightened to stay readable."""
    fraction = min(max(fraction, 0.0), 1.0) * (len(SCALE) - 1)
    low = math.floor(fraction)
    high = min(low + 1, len(SCALE) - 1)
    t = fraction - low
    a, b = QColor(SCALE[low]), QColor(SCALE[high])
    color = QColor(round(a.red() + (b.red() - a.red()) * t),
                   round(a.green() + (b.green() - a.green()) * t),
                   round(a.blue() + (b.blue() - a.blue()) * t))
    return color.lighter(135)


def overlay_colors(name: str, values: dict[str, Any]) -> dict[str, QColor]:
    """A colour per box for the values of overlay `name` (engine.graph.overlays)."""
    if name == "trainable":
        return {key: QColor(TRAINABLE[value]) for key, value in values.items()}
    if name == "tied":
        return {key: QColor(TIED) for key in values}
    if name == "changed":
        return {key: QColor(CHANGED) for key in values}
    if name == "dtype":
        return {key: QColor(DTYPES.get(value, "#dadce0")) for key, value in values.items()}
    if name in ("parameters", "norm", "std"):
        logs = {key: math.log10(value) for key, value in values.items()
                if isinstance(value, int | float) and value > 0}
        if not logs:
            return {}
        low, high = min(logs.values()), max(logs.values())
        span = high - low or 1.0
        return {key: scale_color((value - low) / span) for key, value in logs.items()}
    return {}


def legend(name: str) -> str:
    """What the colours of overlay `name` mean, in a line of rich text."""
    def swatch(color: str, text: str) -> str:
        return f"<span style='background:{color}'>&nbsp;&nbsp;&nbsp;</span> {text}"

    if name == "trainable":
        return " ".join(swatch(color, text) for text, color in TRAINABLE.items())
    if name == "tied":
        return swatch(TIED, "shares a tensor or module")
    if name == "changed":
        return swatch(CHANGED, "changed by an applied step")
    if name == "dtype":
        return " ".join(swatch(color, text) for text, color in list(DTYPES.items())[:5])
    if name in ("parameters", "norm", "std"):
        what = {"parameters": "parameters", "norm": "weight norm", "std": "weight std"}[name]
        return (f"{swatch(scale_color(0).name(), 'low')} … "
                f"{swatch(scale_color(1).name(), 'high')} {what} (log scale)")
    return ""
