"""Pure chart preparation: snapshot -> downsampled, gap-aware series for one coin (no Textual here)."""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

from engine.events import Bar, CoinSnapshot, ForecastEvent, MetricsEvent
from tui.gcpause import collections_paused

Point = tuple[float, float]
Segment = list[Point]

WINDOWS: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}


def downsample(
    points: Iterable[Point], x0: float, x1: float, buckets: int, gap: float
) -> list[Segment]:
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


class Candle(NamedTuple):
    """One candle: the open, high, low and close of one plot column's minutes (or one minute)."""

    x: float  # where it is drawn: the middle of its column
    open: float
    high: float
    low: float
    close: float


class Miss(NamedTuple):
    """A minute whose price left the 80 % band issued ``horizon`` minutes before it."""

    ts: float
    price: float
    above: bool  # broke out upwards (else downwards)


@dataclass(frozen=True, slots=True)
class Dots:
    """Where one series of glyphs goes, as two columns of numbers: a redraw places thousands, and a
    tuple per point costs its allocation and, later, the collector's time."""

    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.xs)

    def points(self) -> list[Point]:
        return list(zip(self.xs, self.ys))


# Candle marks by layer: wicks then bodies (a body replaces a wick in a shared cell), up then down.
CandleMarks = tuple[Dots, Dots, Dots, Dots]


@dataclass(frozen=True)
class ChartData:
    """Everything the chart widget draws, already in plot coordinates (Unix seconds, price)."""

    x0: float
    x1: float
    now: float | None  # the "now" line, when it is in view
    live: bool = True  # the view ends at the newest minute (False: panned back in time)
    price: list[Segment] = field(default_factory=list)  # the price line (empty when candles are)
    candles: list[Candle] = field(default_factory=list)
    candle_marks: CandleMarks = field(default_factory=lambda: (Dots(), Dots(), Dots(), Dots()))
    ribbon: Dots = field(default_factory=Dots)  # dots filling the past 80 % band
    misses: list[Miss] = field(default_factory=list)  # every miss in view
    # Marks above / below the columns where the price clearly left the band (see MISS_SHARE).
    miss_marks: tuple[Dots, Dots] = field(default_factory=lambda: (Dots(), Dots()))
    # Volume per column along the plot's bottom row, one series per block height (1..8 eighths).
    volume: tuple[Dots, ...] = ()
    scored: int = 0  # minutes in view that had a band issued for them
    # The network's own mean at the minute it is about; drawn only while it beats "no change".
    network: list[Segment] = field(default_factory=list)
    network_words: str = ""  # its live score against "no change", for the legend ("": no raw mean)
    forward: Segment = field(default_factory=list)
    band: list[Point] = field(default_factory=list)  # shading dots inside the forward 80 % band
    band_edges: tuple[Segment, Segment] = ((), ())  # type: ignore[assignment]
    levels: tuple[float, ...] = ()  # alert levels inside the plot's price range
    levels_off: tuple[float, ...] = ()  # alert levels beyond it (named in the legend)
    y_range: tuple[float, float] | None = None
    last_price: float | None = None
    n_bars: int = 0

    @property
    def empty(self) -> bool:
        return not self.price and not self.candles


# A column is marked as a miss when at least this share of its scored minutes left the 80 % band.
MISS_SHARE = 0.4

# Zoom steps of the time axis (seconds of past shown); ``w`` picks 1 h, 6 h or 24 h among them.
ZOOM_SPANS: tuple[int, ...] = (900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)


@dataclass(frozen=True)
class ChartView:
    """The stretch of time the chart shows: ``span`` seconds of past ending at ``end``.

    ``end`` None is "now": the view follows new minutes and shows the forecast ahead. A view panned
    back keeps its absolute ``end``, so what the user looks at stays put while new minutes come.
    """

    span: int
    end: float | None = None

    def zoomed(self, steps: int, first: float, last: float) -> ChartView:
        """``steps`` zoom steps in (positive) or out (negative), around the middle of the view."""
        i = bisect.bisect_left(ZOOM_SPANS, self.span)  # the step at or just above the span
        between = i == len(ZOOM_SPANS) or ZOOM_SPANS[i] != self.span
        # Between two steps, one step in is the step just below, one step out the one above.
        i = i - steps if not between or steps > 0 else i - 1 - steps
        i = min(len(ZOOM_SPANS) - 1, max(0, i))
        span = ZOOM_SPANS[i]
        if self.end is None:
            return ChartView(span)
        return ChartView(span, self.end + (span - self.span) / 2).clamped(first, last)

    def panned(self, fraction: float, first: float, last: float) -> ChartView:
        """Moved by ``fraction`` of the span: negative goes back in time, positive towards now."""
        end = (last if self.end is None else self.end) + fraction * self.span
        return ChartView(self.span, end).clamped(first, last)

    def clamped(self, first: float, last: float) -> ChartView:
        """Within the data: not past "now" (that is the live view), not so far back that the
        history's first half-span is all that is left."""
        end = None if self.end is None else max(self.end, first + self.span / 2)
        if end is None or end >= last:
            return ChartView(self.span)
        return ChartView(self.span, end)


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


def network_score(metrics: MetricsEvent | None, horizon: int) -> tuple[str, bool]:
    """The network's live score at ``horizon`` against "no change", in words, and whether it adds
    anything (a relative MAE below 1)."""
    row = next((r for r in metrics.rows if r.horizon == horizon), None) if metrics else None
    if row is None or row.n <= 0 or not math.isfinite(row.rel_mae):
        return "network: not scored yet", False
    pct = round(abs(row.rel_mae - 1.0) * 100)
    if pct == 0:
        return "network: no better than no change", False
    way = "better" if row.rel_mae < 1.0 else "worse"
    return f"network: {pct} % {way} than no change", row.rel_mae < 1.0


def build_chart(
    snap: CoinSnapshot,
    horizon: int,
    window_s: int,
    cols: int,
    rows: int,
    *,
    end: float | None = None,
    levels: Sequence[float] = (),
) -> ChartData:
    """Prepare the series of ``snap`` for a plot ``cols`` x ``rows`` cells (braille: 2x4 dots each).

    ``window_s`` seconds of past are shown, ending at ``end`` (None: the newest minute, with the
    forecast ahead of it); ``levels`` are the user's alert prices.
    """
    with collections_paused():  # thousands of short-lived tuples: see tui.gcpause
        return _build_chart(snap, horizon, window_s, cols, rows, end, levels)


def _ts(bar: Bar) -> int:
    return bar.ts


def _fts(fc: ForecastEvent) -> int:
    return fc.ts


def _build_chart(
    snap: CoinSnapshot,
    horizon: int,
    window_s: int,
    cols: int,
    rows: int,
    end: float | None,
    levels: Sequence[float],
) -> ChartData:
    bars = snap.bars
    if not bars:
        return ChartData(0.0, float(window_s), None)
    now = float(bars[-1].ts)
    live = end is None or end >= now
    f = latest_forecast(snap, now) if live else None
    ahead = forward_horizons(f.horizons if f else (), horizon, window_s)
    if live:
        future = max([60 * h for h in ahead], default=0)
        # Leave a little room right of "now" even without a forecast, so the last price is visible.
        future = max(future, window_s // 30)
        # A young history fills the plot instead of hugging its right edge (at least 30 minutes).
        span = min(window_s, max(1800.0, now - bars[0].ts))
        future = min(future, max(int(span) // 4, 60 * horizon))
        x0, x1 = now - span, now + future
    else:
        assert end is not None
        x0, x1 = end - window_s, end
    buckets = max(8, cols)  # a low and a high per column: the braille grid's 2 dots across
    width = (x1 - x0) / buckets
    past_end = min(now, x1)
    # Panned back, the minute at the right edge belongs to the next view (a column past the last).
    stop = bisect.bisect_right(bars, x1, key=_ts) if live else bisect.bisect_left(bars, x1, key=_ts)
    visible = bars[bisect.bisect_left(bars, x0, key=_ts) : stop]
    last = visible[-1] if visible else None
    ohlc = last is not None and None not in (last.open, last.high, last.low)

    # Per column (index 0 .. buckets; lists, not dicts: this runs per minute on every redraw):
    # the union of its minutes' bands (the ribbon), its candle, its scored and missed minutes.
    nb = buckets + 1
    inf = math.inf
    band_lo, band_hi = [inf] * nb, [-inf] * nb
    c_open: list[float | None] = [None] * nb
    c_high, c_low, c_close = [-inf] * nb, [inf] * nb, [0.0] * nb
    c_scored, c_missed = [0] * nb, [0] * nb
    c_volume = [0.0] * nb

    # The past band: what was issued ``horizon`` minutes before each minute, keyed by that minute.
    shift = 60 * horizon
    exp, isfinite = math.exp, math.isfinite
    band_lo_at: dict[int, float] = {}  # minute -> its band's edges (floats: nothing to collect)
    band_hi_at: dict[int, float] = {}
    # Zoomed in, a minute spans several columns and its band covers them all, so the ribbon has no
    # holes between minutes.
    spread = 60 / width > 1
    net_points: list[Point] = []
    has_raw = False
    net_size = 0.0
    words, adds = network_score(snap.metrics, horizon)
    hz: tuple[int, ...] = ()
    i = -1
    fcs = snap.forecasts
    last_t = past_end if live else x1 - 1  # panned: the right edge's minute is the next view's
    for fc in fcs[bisect.bisect_left(fcs, x0 - shift, key=_fts) :]:
        t = fc.ts + shift
        if t > x1:
            break
        if fc.horizons is not hz:  # usually one tuple shared by every forecast: look up once
            hz = fc.horizons
            i = hz.index(horizon) if horizon in hz else -1
        if i < 0:
            continue
        base = fc.price
        lo80, hi80 = fc.lo80, fc.hi80
        # A stored forecast's missing band comes back as NaN: no band there, and not a miss
        # (v - v == 0 for finite v only: no function call per minute).
        if t <= last_t and lo80 and hi80 and lo80[i] - lo80[i] == 0.0 and hi80[i] - hi80[i] == 0.0:
            lo = band_lo_at[t] = base * exp(lo80[i])
            hi = band_hi_at[t] = base * exp(hi80[i])
            c = int((t - x0) / width)
            # Comparisons rather than min()/max() calls, here and below: cheaper per minute.
            if not spread:
                if lo < band_lo[c]:  # noqa: PLR1730
                    band_lo[c] = lo
                if hi > band_hi[c]:  # noqa: PLR1730
                    band_hi[c] = hi
            else:
                first = c
                last_c = min(nb - 1, max(first, int((t + 60 - x0) / width - 1e-9)))
                for c in range(first, last_c + 1):
                    if lo < band_lo[c]:  # noqa: PLR1730
                        band_lo[c] = lo
                    if hi > band_hi[c]:  # noqa: PLR1730
                        band_hi[c] = hi
        if fc.raw:
            has_raw = True
            if adds:  # the line is drawn
                r = fc.raw[i]
                net_points.append((float(t), base * exp(r)))
                if r > net_size or -r > net_size:
                    net_size = abs(r)
    # A line of a network that does not beat "no change" is the price shifted by h plus noise:
    # it would hide the price and say nothing, so only its score is shown. A mean of exactly
    # "no change" everywhere is the price shifted, whatever the score says.
    network: list[Segment] = []
    if not has_raw:
        words = ""
    elif adds and net_size > 1e-12:
        network = downsample(net_points, x0, x1, buckets, 90.0)  # in time order already
    else:
        words += " (line hidden)"

    # Per minute: its column's candle, and whether it stayed inside the band issued for it.
    misses: list[Miss] = []
    worst: dict[int, tuple[float, Miss]] = {}  # per column, the miss furthest outside its band
    scored = 0
    get_lo = band_lo_at.get
    for b in visible:
        c = int((b.ts - x0) / width)
        p = b.price
        if ohlc:
            hi = b.high if b.high is not None else p
            lo = b.low if b.low is not None else p
        else:
            hi = lo = p
        if c_open[c] is None:
            c_open[c] = b.open if ohlc and b.open is not None else p
        if hi > c_high[c]:  # noqa: PLR1730
            c_high[c] = hi
        if lo < c_low[c]:  # noqa: PLR1730
            c_low[c] = lo
        c_close[c] = p
        if ohlc and b.volume:
            c_volume[c] += b.volume
        blo = get_lo(b.ts)
        if blo is None or b.filled:  # filled minutes are context, never a scored outcome
            continue
        scored += 1
        c_scored[c] += 1
        bhi = band_hi_at[b.ts]
        if blo <= p <= bhi:
            continue
        m = Miss(float(b.ts), p, p > bhi)
        misses.append(m)
        c_missed[c] += 1
        excess = (p - bhi) / bhi if m.above else (blo - p) / blo
        if c not in worst or excess > worst[c][0]:
            worst[c] = (excess, m)
    candles: list[Candle] = []
    price: list[Segment] = []
    if ohlc:
        candles = [
            Candle(x0 + (c + 0.5) * width, o, c_high[c], c_low[c], c_close[c])
            for c, o in enumerate(c_open)
            if o is not None
        ]
    else:
        price = downsample([(float(b.ts), b.price) for b in visible], x0, x1, buckets, 90.0)

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
            flo = f.price_at(h, f.lo80) if f.lo80 else None
            fhi = f.price_at(h, f.hi80) if f.hi80 else None
            # (NaN: a value the store did not have, e.g. a forecast loaded after a restart.)
            if mid is not None and isfinite(mid):
                forward.append((x, mid))
            if flo is not None and fhi is not None and isfinite(flo) and isfinite(fhi):
                lo_edge.append((x, flo))
                hi_edge.append((x, fhi))

    ys = [y for seg in price + network for _, y in seg] + [y for _, y in forward]
    ys += [y for y in c_high if y != -inf] + [y for y in c_low if y != inf]
    y_range: tuple[float, float] | None = None
    if ys:
        lo_y, hi_y = min(ys), max(ys)
        # Bands and alert levels count too, but a wide early band (or a far level) may not squash
        # the price into a flat line: they may add at most half the data's own span on each side.
        reach = max(hi_y - lo_y, abs(hi_y) * 0.002) * 0.5
        extra = [y for _, y in lo_edge + hi_edge]
        extra += [y for y in band_lo if y != inf] + [y for y in band_hi if y != -inf]
        # An alert level near the price widens the range to show it; a far one is named instead.
        extra.extend(v for v in levels if lo_y - reach / 2 <= v <= hi_y + reach / 2)
        if extra:
            lo_y = max(min(lo_y, min(extra)), lo_y - reach)
            hi_y = min(max(hi_y, max(extra)), hi_y + reach)
        pad = (hi_y - lo_y) * 0.06 or abs(hi_y) * 0.001 or 1.0
        y_range = (lo_y - pad, hi_y + pad)
    band = _band_dots(lo_edge, hi_edge, x0, x1, cols, rows, y_range) if len(lo_edge) > 1 else []
    ribbon = Dots()
    volume: tuple[Dots, ...] = ()
    marks: CandleMarks = (Dots(), Dots(), Dots(), Dots())
    miss_marks = (Dots(), Dots())
    on_chart: tuple[float, ...] = ()
    off_chart: tuple[float, ...] = ()
    if y_range is not None:
        ylo, yhi = y_range
        # The chart puts a value v in canvas row floor(0.5 + (h - 1) * (v - ylo) / (yhi - ylo)), h
        # its canvas rows (tui.chart_canvas.matrix_cells). ``rows`` (the plot's height less 3) is one more than h: steps of rh are
        # a little under a row, so a run of them leaves no row out.
        rh = (yhi - ylo) / max(1, rows - 1)
        ribbon = _ribbon_dots(band_lo, band_hi, x0, width, ylo, yhi, rh)
        if candles:
            volume = volume_marks(c_volume, x0, width, ylo)
        if candles:
            marks = candle_marks(candles, rh)
        for c, (_, m) in worst.items():
            # Zoomed out, a column holds several minutes and a calibrated band misses one in five:
            # a mark on every column would say nothing. A column is marked where its band failed
            # clearly: at least twice the 20 % of its minutes the band allows (a single minute
            # per column: every miss).
            if c_missed[c] < MISS_SHARE * c_scored[c]:
                continue
            top, bottom = c_high[c], c_low[c]  # the miss's own bar is in this column
            x = x0 + (c + 0.5) * width
            # Just beyond the column's price, so the mark does not hide the candle or the line.
            if m.above:
                miss_marks[0].xs.append(x)
                miss_marks[0].ys.append(min(top + rh, yhi))
            else:
                miss_marks[1].xs.append(x)
                miss_marks[1].ys.append(max(bottom - rh, ylo))
        on_chart = tuple(sorted(v for v in set(levels) if ylo <= v <= yhi))
        off_chart = tuple(sorted(v for v in set(levels) if not ylo <= v <= yhi))
    return ChartData(
        x0=x0,
        x1=x1,
        now=now if x0 <= now <= x1 else None,
        live=live,
        price=price,
        candles=candles,
        candle_marks=marks,
        ribbon=ribbon,
        misses=misses,
        miss_marks=miss_marks,
        volume=volume,
        scored=scored,
        network=network,
        network_words=words,
        forward=forward,
        band=band,
        band_edges=(lo_edge, hi_edge),
        levels=on_chart,
        levels_off=off_chart,
        y_range=y_range,
        last_price=bars[-1].price,
        n_bars=len(bars),
    )


def candle_marks(candles: Sequence[Candle], rh: float) -> CandleMarks:
    """Points that put a wick glyph in every cell from low to high and a body glyph in every cell
    from open to close: one point per ``rh`` (at most the plot's row height: then no row is
    skipped), both ends included, so a candle flat as a line still gets one body cell."""
    up_w, up_b, dn_w, dn_b = Dots(), Dots(), Dots(), Dots()
    step = rh if rh > 0 else 1.0
    for x, o, h, lo, c in candles:
        wick, body = (up_w, up_b) if c >= o else (dn_w, dn_b)
        n = int((h - lo) / step)
        wick.xs.extend([x] * (n + 2))
        wick.ys.extend([lo + k * step for k in range(n + 1)])
        wick.ys.append(h)
        b0, b1 = (o, c) if o <= c else (c, o)
        n = int((b1 - b0) / step)
        body.xs.extend([x] * (n + 2))
        body.ys.extend([b0 + k * step for k in range(n + 1)])
        body.ys.append(b1)
    return up_w, up_b, dn_w, dn_b


def volume_marks(volumes: Sequence[float], x0: float, width: float, y: float) -> tuple[Dots, ...]:
    """Each column's volume as a block one row tall on the row of ``y`` (the plot's bottom), its
    height in eighths relative to the largest column's: a volume strip that costs no rows."""
    top = max(volumes, default=0.0)
    out = tuple(Dots() for _ in range(8))
    if top <= 0:
        return ()
    for c, v in enumerate(volumes):
        if v > 0:
            k = min(7, int(8 * v / top))  # 0..7: ▁ .. █
            out[k].xs.append(x0 + (c + 0.5) * width)
            out[k].ys.append(y)
    return out


def level_points(levels: Sequence[float], x0: float, x1: float, cols: int) -> Dots:
    """Points that put a glyph in every column along each level. ``cols`` is the plot's width less
    12 (``PriceChart.plot_size``); the figure's data area is the width less its y labels and frame,
    at least 5 (a 3-character label): ``cols + 8`` points leave no column out."""
    n = max(1, cols) + 8
    dx = (x1 - x0) / n
    xs = [x0 + (k + 0.5) * dx for k in range(n)]
    return Dots(xs * len(levels), [v for v in levels for _ in xs])


def _ribbon_dots(
    band_lo: list[float],
    band_hi: list[float],
    x0: float,
    width: float,
    ylo: float,
    yhi: float,
    rh: float,
) -> Dots:
    """One dot per row inside each column's band (the union of its minutes' bands)."""
    dots = Dots()
    if rh <= 0:
        return dots
    xs, ys = dots.xs, dots.ys
    ceil, floor = math.ceil, math.floor
    for c, (lo, hi) in enumerate(zip(band_lo, band_hi)):
        if lo > hi:  # no band in this column
            continue
        x = x0 + (c + 0.5) * width
        k0 = max(0, ceil((max(lo, ylo) - ylo) / rh))
        k1 = floor((min(hi, yhi) - ylo) / rh)
        if k1 >= k0:
            xs.extend([x] * (k1 - k0 + 1))
            ys.extend([ylo + k * rh for k in range(k0, k1 + 1)])
    return dots


def _interp(edge: Segment, x: float) -> float:
    for (xa, ya), (xb, yb) in pairwise(edge):
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
