"""Pure chart preparation: snapshot -> downsampled, gap-aware series for one coin (no Textual here)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from engine.events import CoinSnapshot, ForecastEvent
from tui.gcpause import collections_paused

Point = tuple[float, float]
Segment = list[Point]

WINDOWS: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}


def downsample(points: Iterable[Point], x0: float, x1: float, buckets: int, gap: float) -> list[Segment]:
    """Keep the lowest and highest point per time bucket inside [x0, x1] and cut where the data has a gap.

    ``points`` must be in time order. Per bucket the minimum and the maximum are kept in their time
    order (so a spike inside a bucket still shows at its full height), and each segment ends on its
    real last point. Two neighbours further apart than ``gap`` (or than one bucket, whichever is
    wider) start a new segment, so a missing stretch is drawn as a hole rather than a line across it.
    """
    if buckets < 1 or x1 <= x0:
        return []
    width = (x1 - x0) / buckets
    limit = max(gap, 1.5 * width)
    segments: list[Segment] = []
    current: Segment = []
    add = current.append
    # The open bucket: its index, lowest and highest point (and their prices), and its last point.
    bucket = -1
    lo = hi = last = (0.0, 0.0)
    lo_y = hi_y = 0.0
    prev_x = -math.inf
    isfinite = math.isfinite
    for p in points:
        x, y = p
        if x < x0 or x > x1 or not isfinite(y):
            continue
        if x - prev_x > limit and bucket >= 0:
            current.extend(sorted({lo, hi, last}))  # a segment ends on its real last point
            segments.append(current)
            current = []
            add = current.append
            bucket = -1
        prev_x = x
        b = int((x - x0) / width)
        if b != bucket:
            if bucket >= 0:  # close the bucket: its low and high in time order, once if the same
                if lo == hi:
                    add(lo)
                elif lo < hi:
                    add(lo)
                    add(hi)
                else:
                    add(hi)
                    add(lo)
            bucket, lo, hi, lo_y, hi_y = b, p, p, y, y
        elif y < lo_y:
            lo, lo_y = p, y
        elif y > hi_y:
            hi, hi_y = p, y
        last = p
    if bucket >= 0:
        current.extend(sorted({lo, hi, last}))
        segments.append(current)
    return segments


@dataclass(frozen=True)
class ChartData:
    """Everything the chart widget draws, already in plot coordinates (Unix seconds, price)."""

    x0: float
    x1: float
    now: float | None
    price: list[Segment] = field(default_factory=list)
    predicted: list[Segment] = field(default_factory=list)
    forward: Segment = field(default_factory=list)
    band: list[Point] = field(default_factory=list)  # shading dots inside the forward 80 % band
    band_edges: tuple[Segment, Segment] = ((), ())  # type: ignore[assignment]
    y_range: tuple[float, float] | None = None
    last_price: float | None = None
    n_bars: int = 0

    @property
    def empty(self) -> bool:
        return not self.price


def forward_horizons(horizons: Sequence[int], horizon: int, window_s: int) -> list[int]:
    """Horizons drawn ahead of "now": the selected one and those short enough for the window."""
    cap = max(horizon * 60, window_s // 4)
    return [h for h in horizons if h * 60 <= cap]


def latest_forecast(snap: CoinSnapshot, now: float) -> ForecastEvent | None:
    """The newest forecast, if it is recent enough to start from "now" (not from a stale model)."""
    if not snap.forecasts:
        return None
    f = snap.forecasts[-1]
    return f if f.ts >= now - 180 else None


def build_chart(
    snap: CoinSnapshot,
    horizon: int,
    window_s: int,
    cols: int,
    rows: int,
) -> ChartData:
    """Prepare the series of ``snap`` for a plot ``cols`` x ``rows`` cells (braille: 2x4 dots each)."""
    with collections_paused():  # thousands of short-lived tuples: see tui.gcpause
        return _build_chart(snap, horizon, window_s, cols, rows)


def _build_chart(snap: CoinSnapshot, horizon: int, window_s: int, cols: int, rows: int) -> ChartData:
    bars = snap.bars
    if not bars:
        return ChartData(0.0, float(window_s), None)
    now = float(bars[-1].ts)
    f = latest_forecast(snap, now)
    ahead = forward_horizons(f.horizons if f else (), horizon, window_s)
    future = max([60 * h for h in ahead], default=0)
    # Leave a little room right of "now" even without a forecast, so the last price is visible.
    future = max(future, window_s // 30)
    # A young history fills the plot instead of hugging its right edge (at least 30 minutes).
    span = min(window_s, max(1800.0, now - bars[0].ts))
    future = min(future, max(int(span) // 4, 60 * horizon))
    x0, x1 = now - span, now + future
    buckets = max(8, cols)  # a low and a high per column: the braille grid's 2 dots across
    price = downsample([(float(b.ts), b.price) for b in bars if b.ts >= x0], x0, x1, buckets, 90.0)
    # What each forecast said about ``horizon`` minutes later (ForecastEvent.price_at, inlined:
    # this runs for every stored forecast on every redraw).
    shift = 60 * horizon
    exp = math.exp
    pred_points = [
        (float(fc.ts + shift), fc.price * exp(fc.mean[fc.horizons.index(horizon)]))
        for fc in snap.forecasts
        if fc.ts + shift >= x0 and horizon in fc.horizons and fc.mean
    ]
    pred_points.sort()
    predicted = downsample(pred_points, x0, x1, buckets, 90.0)
    forward: Segment = []
    lo_edge: Segment = []
    hi_edge: Segment = []
    if f is not None and ahead:
        forward.append((float(f.ts), f.price))
        lo_edge.append((float(f.ts), f.price))
        hi_edge.append((float(f.ts), f.price))
        for h in ahead:
            x = float(f.ts + 60 * h)
            mid = f.price_at(h)
            lo = f.price_at(h, f.lo80) if f.lo80 else None
            hi = f.price_at(h, f.hi80) if f.hi80 else None
            if mid is not None:
                forward.append((x, mid))
            if lo is not None and hi is not None:
                lo_edge.append((x, lo))
                hi_edge.append((x, hi))
    ys = [y for seg in price + predicted for _, y in seg] + [y for _, y in forward]
    y_range: tuple[float, float] | None = None
    if ys:
        lo_y, hi_y = min(ys), max(ys)
        # The band counts too, but a wide early band may not squash the price into a flat line:
        # it may add at most half the data's own span on each side (beyond that it is clipped).
        reach = max(hi_y - lo_y, abs(hi_y) * 0.002) * 0.5
        band_ys = [y for _, y in lo_edge + hi_edge]
        if band_ys:
            lo_y = max(min(lo_y, min(band_ys)), lo_y - reach)
            hi_y = min(max(hi_y, max(band_ys)), hi_y + reach)
        pad = (hi_y - lo_y) * 0.06 or abs(hi_y) * 0.001 or 1.0
        y_range = (lo_y - pad, hi_y + pad)
    band = _band_dots(lo_edge, hi_edge, x0, x1, cols, rows, y_range) if len(lo_edge) > 1 else []
    return ChartData(
        x0=x0,
        x1=x1,
        now=now,
        price=price,
        predicted=predicted,
        forward=forward,
        band=band,
        band_edges=(lo_edge, hi_edge),
        y_range=y_range,
        last_price=bars[-1].price,
        n_bars=len(bars),
    )


def _interp(edge: Segment, x: float) -> float:
    for (xa, ya), (xb, yb) in zip(edge, edge[1:]):
        if xa <= x <= xb:
            t = (x - xa) / (xb - xa) if xb > xa else 0.0
            return ya + t * (yb - ya)
    return edge[-1][1]


def _band_dots(
    lo_edge: Segment,
    hi_edge: Segment,
    x0: float,
    x1: float,
    cols: int,
    rows: int,
    y_range: tuple[float, float] | None,
) -> list[Point]:
    """A grid of dots filling the band, one per character cell, so the band reads as a shade."""
    if y_range is None or cols < 2 or rows < 2:
        return []
    dx = (x1 - x0) / cols
    dy = (y_range[1] - y_range[0]) / rows
    start, end = lo_edge[0][0], lo_edge[-1][0]
    dots: list[Point] = []
    x = x0 + dx * math.ceil((start - x0) / dx)
    while x <= end + 1e-9:
        lo, hi = _interp(lo_edge, x), _interp(hi_edge, x)
        y = y_range[0] + dy * (math.floor((lo - y_range[0]) / dy) + 0.5)
        while y <= min(hi, y_range[1]):
            if y >= max(lo, y_range[0]):
                dots.append((x, y))
            y += dy
        x += dx
    return dots


def time_ticks(x0: float, x1: float, cols: int) -> list[float]:
    """Round local-time ticks (5 min .. 12 h apart) that fit without overlapping labels."""
    span = x1 - x0
    room = max(2, cols // 9)
    for step in (300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200):
        if span / step <= room:
            break
    # Round in local time so ticks land on 12:00, 12:15, ... on the user's clock.
    offset = -float(time.localtime(x0).tm_gmtoff or 0)
    first = math.ceil((x0 - offset) / step) * step + offset
    ticks = []
    t = first
    while t <= x1:
        ticks.append(float(t))
        t += step
    return ticks
