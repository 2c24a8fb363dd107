"""Number and time formatting for the UI: prices of any magnitude, percents, axis ticks, clocks."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from itertools import pairwise

DASH = "–"


def format_price(value: float | None) -> str:
    """A price readable at any magnitude: 104,231 · 3,456.78 · 0.5123 · 0.00001234."""
    if value is None or not math.isfinite(value):
        return DASH
    a = abs(value)
    if a >= 100_000:
        return f"{value:,.0f}"
    if a >= 1:
        return f"{value:,.2f}"
    if a == 0:
        return "0"
    if a < 1e-10:
        return f"{value:.3e}"
    # Four significant digits below 1: enough to see a minute's move on a micro-cap coin.
    decimals = -math.floor(math.log10(a)) + 3
    return f"{value:.{decimals}f}"


def format_percent(value: float | None, *, signed: bool = True) -> str:
    """A fraction as a percent (0.0123 -> +1.23%); big values lose decimals, not digits."""
    if value is None or not math.isfinite(value):
        return DASH
    p = value * 100
    sign = "+" if signed else ""
    if abs(p) >= 1000:
        return f"{p:{sign},.0f}%"
    if abs(p) >= 100:
        return f"{p:{sign}.0f}%"
    return f"{p:{sign}.2f}%"


def arrow(change: float | None, *, flat: float = 1e-5) -> str:
    """An arrow for a relative change; moves under ``flat`` count as no move."""
    if change is None or not math.isfinite(change) or abs(change) < flat:
        return "→"
    return "▲" if change > 0 else "▼"


def format_compact(value: float | None) -> str:
    """A short number for tight columns: 0.93, 12.3, 4.5k, 1.2M."""
    if value is None or not math.isfinite(value):
        return DASH
    a = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= limit:
            return f"{value / limit:.1f}{suffix}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 0.01 or a == 0:
        return f"{value:.2f}"
    return f"{value:.1e}"


def nice_step(span: float, target: int) -> float:
    """A 1/2/5 x 10^k step that cuts ``span`` into about ``target`` intervals."""
    if not math.isfinite(span) or span <= 0 or target < 1:
        return 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values inside [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels for price ticks, with just enough decimals to tell neighbours apart."""
    if not ticks:
        return []
    step = min((b - a for a, b in pairwise(ticks)), default=abs(ticks[0]) or 1.0)
    top = max(abs(t) for t in ticks)
    if top >= 1e6 and step >= 1e4:
        return [f"{t / 1e6:.{max(0, -math.floor(math.log10(step / 1e6)))}f}M" for t in ticks]
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    # A 2.5 step needs one more digit than its magnitude suggests.
    if step > 0 and round(step / 10 ** math.floor(math.log10(step)), 6) == 2.5:
        decimals += 1
    decimals = min(decimals, 12)
    return [f"{t:,.{decimals}f}" for t in ticks]


def format_clock(ts: float | None, *, seconds: bool = False) -> str:
    """Local wall-clock time of a Unix timestamp (the terminal's time zone)."""
    if ts is None or not math.isfinite(ts):
        return DASH
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.localtime(ts))


def format_time(ts: float | None) -> str:
    """Date and minute of a Unix timestamp in local time, for times that may be days old."""
    if ts is None or not math.isfinite(ts):
        return DASH
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def format_duration(seconds: float) -> str:
    """A short duration: 45s, 12m, 3h, 2d."""
    s = abs(seconds)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s / 60:.0f}m"
    if s < 86400:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


SPARK = "▁▂▃▄▅▆▇█"


def last_per_cell(values: Sequence[float], width: int) -> list[float]:
    """``values`` resampled to at most ``width`` cells, keeping the last value of each cell (so a
    sparkline ends on the current price)."""
    n = len(values)
    if width <= 0:
        return []
    if n <= width:
        return list(values)
    step = n / width
    return [values[min(n - 1, int((i + 1) * step) - 1)] for i in range(width)]


def sparkline(values: list[float], width: int) -> str:
    """A text sparkline of the last values, resampled to ``width`` cells."""
    vals = last_per_cell([v for v in values if v is not None and math.isfinite(v)], width)
    if width <= 0 or not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo <= abs(hi) * 1e-12:
        return SPARK[3] * len(vals)
    scale = (len(SPARK) - 1) / (hi - lo)
    return "".join(SPARK[round((v - lo) * scale)] for v in vals)
