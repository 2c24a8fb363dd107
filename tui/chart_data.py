"""Pure chart preparation: snapshot -> downsampled, gap-aware series for one coin (no Textual here)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from engine.events import CoinSnapshot, ForecastEvent
from tui.format import format_clock, nice_ticks, tick_labels

Point = tuple[float, float]
Segment = list[Point]

WINDOWS: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}


def downsample(points: Iterable[Point], x0: float, x1: float, buckets: int, gap: float) -> list[Segment]:
    """Keep the last point per time bucket inside [x0, x1] and cut where the data has a gap.

    ``points`` must be in time order. Two neighbours further apart than ``gap`` (or than one
    bucket, whichever is wider) start a new segment, so a missing stretch is drawn as a hole
    rather than a straight line across it.
    """
    if buckets < 1 or x1 <= x0:
        return []
    width = (x1 - x0) / buckets
    limit = max(gap, 1.5 * width)
    segments: list[Segment] = []
    current: Segment = []
    last_bucket = -1
    prev_x: float | None = None
    for x, y in points:
        if x < x0 or x > x1 or not math.isfinite(y):
            continue
        if prev_x is not None and x - prev_x > limit and current:
            segments.append(current)
            current = []
            last_bucket = -1
        prev_x = x
        b = min(buckets - 1, int((x - x0) / width))
        if b == last_bucket and current:
            current[-1] = (x, y)
        else:
            current.append((x, y))
            last_bucket = b
    if current:
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
    buckets = max(8, cols * 2)
    price = downsample(((float(b.ts), b.price) for b in bars), x0, x1, buckets, 90.0)
    pred_points = []
    for fc in snap.forecasts:
        p = fc.price_at(horizon)
        if p is not None:
            pred_points.append((float(fc.ts + 60 * horizon), p))
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


# Rendering: ChartData -> rows of (text, colour role) runs -------------------------------------
# Drawn directly into a braille grid (2x4 dots per cell) instead of through plotext: plotext
# rebuilds a whole figure of per-cell Python objects and its ANSI output is parsed again by Rich,
# ~30 ms per 200x50 redraw; this takes a few (bench/bench_chart.py measures both).

Run = tuple[str, str | None]  # text, colour role (None: the widget's own colour)

# Braille dot bits by [dot row 0..3][dot column 0..1] (Unicode U+2800 block).
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE = [chr(0x2800 + i) for i in range(256)]


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


def render_cells(data: ChartData, width: int, height: int, title: str) -> list[list[Run]]:
    """The whole chart as ``height`` rows of runs, exactly ``width`` cells wide.

    Layout (like plotext's): the title, a framed plot with price ticks on the left and local
    times below. Colour roles: "price", "predicted", "forward", "band", "now", or None.
    """
    width, height = max(0, width), max(0, height)
    blank = [[(" " * width, None)] for _ in range(height)]
    if height == 0 or width == 0:
        return blank
    rows: list[list[Run]] = blank
    rows[0] = [(title[:width].center(width), None)]
    if data.empty or data.y_range is None or height < 5 or width < 12:
        return rows
    lo, hi = data.y_range
    ph = height - 4  # plot rows between the frame's top and bottom edges
    yt = nice_ticks(lo, hi, max(2, (height - 3) // 3))
    ylab = tick_labels(yt)
    lw = max((len(s) for s in ylab), default=0)
    pw = width - lw - 2  # plot columns inside the frame
    if pw < 4 or ph < 1:
        return rows
    dw, dh = 2 * pw, 4 * ph  # the dot grid
    sx = (dw - 1) / (data.x1 - data.x0) if data.x1 > data.x0 else 0.0
    sy = (dh - 1) / (hi - lo) if hi > lo else 0.0
    x0 = data.x0
    bits = [[0] * pw for _ in range(ph)]
    role: list[list[str | None]] = [[None] * pw for _ in range(ph)]

    def line(points: Sequence[Point]) -> None:
        prev: tuple[float, float] | None = None
        for x, y in points:
            px, py = (x - x0) * sx, (hi - y) * sy
            if prev is None:
                _dot(px, py)
            else:
                ax, ay = prev
                n = int(max(abs(px - ax), abs(py - ay))) + 1
                for k in range(1, n + 1):
                    t = k / n
                    _dot(ax + (px - ax) * t, ay + (py - ay) * t)
            prev = (px, py)

    def _dot(px: float, py: float) -> None:
        cx, cy = int(px + 0.5), int(py + 0.5)
        if 0 <= cx < dw and 0 <= cy < dh:
            r, c = cy >> 2, cx >> 1
            bits[r][c] |= _DOTS[cy & 3][cx & 1]
            role[r][c] = current[0]
            used[r].add(c)

    current: list[str | None] = [None]
    chars: list[list[str]] = [[" "] * pw for _ in range(ph)]
    used: list[set[int]] = [set() for _ in range(ph)]  # columns drawn on, per row
    lo_edge, hi_edge = data.band_edges
    if len(lo_edge) > 1 and sx > 0 and sy > 0:
        # One shading dot per cell whose centre lies inside the band, on this grid's own cells.
        start, end = lo_edge[0][0], lo_edge[-1][0]
        for c in range(pw):
            x = x0 + (2 * c + 0.5) / sx
            if not start <= x <= end:
                continue
            b_lo, b_hi = _interp(lo_edge, x), _interp(hi_edge, x)
            r_top = max(0, int((hi - b_hi) * sy) >> 2)
            r_bot = min(ph - 1, int((hi - b_lo) * sy) >> 2)
            for r in range(r_top, r_bot + 1):
                yc = hi - (4 * r + 1.5) / sy
                if b_lo <= yc <= b_hi:
                    chars[r][c] = "·"
                    role[r][c] = "band"
                    used[r].add(c)
    now_col = -1
    if data.now is not None and data.x0 <= data.now <= data.x1:
        now_col = int((data.now - x0) * sx + 0.5) >> 1
        for r in range(ph):
            if chars[r][now_col] == " ":
                chars[r][now_col] = "│"
                role[r][now_col] = "now"
                used[r].add(now_col)
    # Predictions go over the price, so a prediction that merely lags the price shows as such.
    for name, segs in (("price", data.price), ("predicted", data.predicted)):
        current[0] = name
        for seg in segs:
            line(seg)
    if len(data.forward) > 1:
        current[0] = "forward"
        line(data.forward)
    # Price tick rows, on the cell grid the dots use.
    tick_row: dict[int, str] = {}
    for t, s in zip(yt, ylab):
        r = int((hi - t) * sy + 0.5) >> 2
        if 0 <= r < ph:
            tick_row.setdefault(r, s)
    pad = " " * lw
    # The top edge, then the plot rows, the bottom edge with time ticks, the time labels.
    top = "┌" + "─" * pw + "┐"
    rows[1] = [(pad + top, None)]
    for r in range(ph):
        label = tick_row.get(r)
        runs: list[Run] = [((label.rjust(lw) + "┤") if label is not None else (pad + "│"), None)]
        brow, rrow, crow = bits[r], role[r], chars[r]
        text: list[str] = []
        cur: str | None = None
        nxt = 0  # first column not yet emitted
        # Only the drawn cells are visited; the blanks between them are one piece each.
        for c in sorted(used[r]):
            if c > nxt:
                if cur is not None and text:
                    runs.append(("".join(text), cur))
                    text = []
                cur = None
                text.append(" " * (c - nxt))
            b = brow[c]
            ch = _BRAILLE[b] if b else crow[c]
            rl = rrow[c]
            if rl != cur and text:
                runs.append(("".join(text), cur))
                text = []
            cur = rl
            text.append(ch)
            nxt = c + 1
        if nxt < pw:
            if cur is not None and text:
                runs.append(("".join(text), cur))
                text = []
            cur = None
            text.append(" " * (pw - nxt))
        if text:
            runs.append(("".join(text), cur))
        runs.append(("│", None))
        rows[2 + r] = runs
    xt = time_ticks(data.x0, data.x1, pw)
    edge = ["─"] * pw
    labels = [" "] * (width + 8)
    free_from = 0
    for t in xt:
        c = int((t - x0) * sx + 0.5) >> 1
        if not 0 <= c < pw:
            continue
        edge[c] = "┬"
        s = format_clock(t)
        start = lw + 1 + c - len(s) // 2
        if start >= free_from and start + len(s) <= width:
            labels[start:start + len(s)] = list(s)
            free_from = start + len(s) + 1
    if 0 <= now_col < pw:
        edge[now_col] = "┴"
    rows[2 + ph] = [(pad + "└" + "".join(edge) + "┘", None)]
    rows[3 + ph] = [("".join(labels[:width]), None)]
    return rows
