"""Numbers as people read them: counts with separators, bytes in KiB/MiB/GiB, floats."""

from __future__ import annotations

import math


def format_count(count: int) -> str:
    """'11,689,512' for 11689512."""
    return f"{count:,}"


def format_short_count(count: int) -> str:
    """'11.7 M' for 11689512, '840' for 840."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= limit:
            return f"{count / limit:.1f} {suffix}"
    return str(count)


def format_bytes(nbytes: int) -> str:
    """'44.6 MiB' for 46758048 bytes."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"  # pragma: no cover - the loop always returns


def format_number(value: float | int | None, digits: int = 6) -> str:
    """A statistic for display: '-', an integer, or `digits` significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


