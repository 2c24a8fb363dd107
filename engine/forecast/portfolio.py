"""Holdings' risk from the served bands: the total's range, level probabilities, and their scores.

Three pure pieces, shared by the TUI and ``cryptotui backtest --portfolio``:

- ``correlation``: how coins move together, from their volatility-scaled log returns on the
  minutes both have (scaling by each coin's own EWMA volatility, past data only, keeps one
  violent hour from deciding the whole window), summed over ``k`` minutes to match the horizon.
  1-minute returns alone understate co-movement (the Epps effect: the two markets' last trades
  are not simultaneous, so a shared move lands in different minutes): on BTC and ETH of
  2017-09-03 the correlation is 0.28 at 1 minute, 0.57 at 5, 0.68 at 15 and 0.75 at 60, and a
  total's range built from the 1-minute figure covered 67-78 % instead of 80 %.
- ``total_range``: the 80 % range of a sum of holdings. Each holding's band gives a centre and a
  half-width in money; the total's half-width is ``sqrt(d' R d)`` with ``d`` the half-widths and
  ``R`` the correlation matrix. Adding the ends (R all ones) is only right for coins that move in
  lockstep and overstates the range of a mixed basket; assuming independence (R = I) understates it.
- ``prob_beyond``: the probability that the price is beyond a level at the horizon, from the served
  quantiles (see ``served_cdf``).

``PortfolioRun`` is the prequential scorer of both over time-aligned series.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.events import ForecastEvent
from engine.forecast.evaluate import interval_score

# Standard normal quantiles of the served points: 2.5 %, 10 %, 50 %, 90 %, 97.5 %.
Z = (-1.959963984540054, -1.2815515655446004, 0.0, 1.2815515655446004, 1.959963984540054)
P = (0.025, 0.10, 0.50, 0.90, 0.975)
Z80 = Z[3]
CORR_WINDOW = 1440  # minutes of returns the correlation looks at (the engine keeps two days)
CORR_MIN = 30  # fewer common minutes than this: no measured co-movement, assume independence
VOL_HALFLIFE = 30.0  # minutes; the EWMA volatility that scales each coin's returns


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def scaled_returns(
    prices: Iterable[tuple[int, float]], halflife: float = VOL_HALFLIFE
) -> dict[int, float]:
    """Minute ``ts`` -> log return over the minute ending at ``ts``, over the EWMA volatility of
    the returns before it. Returns across a gap are skipped (not a 1-minute move)."""
    lam = 0.5 ** (1.0 / halflife)
    var: float | None = None
    out: dict[int, float] = {}
    prev: tuple[int, float] | None = None
    for ts, price in prices:
        if prev is not None and ts - prev[0] == 60 and price > 0 and prev[1] > 0:
            r = math.log(price / prev[1])
            if var is not None and var > 0:
                out[ts] = r / math.sqrt(var)
            var = r * r if var is None else lam * var + (1 - lam) * r * r
        prev = (ts, price)
    return out


def summed(series: dict[int, float], k: int) -> dict[int, float]:
    """Overlapping sums of ``k`` consecutive minutes (ending at each key); runs with a gap are
    left out."""
    if k <= 1:
        return series
    out: dict[int, float] = {}
    run: deque[float] = deque()
    total = 0.0
    last: int | None = None
    for ts in sorted(series):
        if last is not None and ts - last != 60:
            run.clear()
            total = 0.0
        last = ts
        run.append(series[ts])
        total += series[ts]
        if len(run) > k:
            total -= run.popleft()
        if len(run) == k:
            out[ts] = total
    return out


def correlation(
    series: Sequence[dict[int, float]],
    window: int = CORR_WINDOW,
    min_common: int = CORR_MIN,
    k: int = 1,
) -> list[list[float]]:
    """Pearson correlation matrix of scaled returns summed over ``k`` minutes (``k`` = the
    horizon; see the module docstring), over each pair's last ``window`` common minutes.

    A pair with too few common minutes, or a flat series, gets 0 (independence): the range is then
    the narrower, honest-about-ignorance guess rather than a made-up co-movement.
    """
    series = [summed(s, k) for s in series]
    n = len(series)
    r = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            common = sorted(set(series[i]) & set(series[j]))[-window:]
            if len(common) < min_common:
                continue
            xs = [series[i][t] for t in common]
            ys = [series[j][t] for t in common]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
            sxx = sum((x - mx) ** 2 for x in xs)
            syy = sum((y - my) ** 2 for y in ys)
            if sxx > 0 and syy > 0:
                c = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
                r[i][j] = r[j][i] = c
    return r


@dataclass(frozen=True)
class ValueRange:
    """A range of money: ``lo``..``hi`` around ``centre``."""

    lo: float
    hi: float
    centre: float


def holding_range(value: float, lo: float, hi: float) -> ValueRange:
    """The range of a holding worth ``value`` now, for a band ``lo``..``hi`` of log returns."""
    a, b = value * math.exp(lo), value * math.exp(hi)
    return ValueRange(a, b, (a + b) / 2)


def total_range(ranges: Sequence[ValueRange], corr: Sequence[Sequence[float]]) -> ValueRange:
    """The total's range: centres add, half-widths combine as ``sqrt(d' R d)``.

    The result is symmetric around the summed centres (a band's skew does not survive the
    combination; at minute horizons the served bands are close to symmetric anyway).
    """
    d = [(r.hi - r.lo) / 2 for r in ranges]
    var = sum(d[i] * corr[i][j] * d[j] for i in range(len(d)) for j in range(len(d)))
    half = math.sqrt(max(var, 0.0))  # a correlation matrix that is not quite PSD stays usable
    c = sum(r.centre for r in ranges)
    return ValueRange(c - half, c + half, c)


def served_quantiles(f: ForecastEvent, horizon: int) -> tuple[float, ...] | None:
    """The served 2.5/10/50/90/97.5 % points (log returns) at ``horizon``, or None."""
    if horizon not in f.horizons or not (f.lo95 and f.lo80 and f.hi80 and f.hi95):
        return None
    i = f.horizons.index(horizon)
    return (f.lo95[i], f.lo80[i], f.mean[i], f.hi80[i], f.hi95[i])


def served_cdf(q: Sequence[float], x: float) -> float:
    """P(log return <= x) from the served points ``q`` (at the probabilities ``P``).

    Between the points the CDF is linear (the points are all the forecast says); beyond the 2.5 %
    and 97.5 % points it continues as a Gaussian tail whose scale is fitted to the spacing of the
    two outer points on that side, so the probability keeps falling smoothly instead of dropping to
    0 at the last point. The mean stands in for the median. Points out of order (never served,
    but a remote peer could send them) are sorted first; a zero spacing gives a step.
    """
    pts = sorted(q)
    if x < pts[0]:
        s = (pts[1] - pts[0]) / (Z[1] - Z[0])
        return _phi(Z[0] + (x - pts[0]) / s) if s > 0 else 0.0
    if x >= pts[-1]:
        s = (pts[-1] - pts[-2]) / (Z[-1] - Z[-2])
        return _phi(Z[-1] + (x - pts[-1]) / s) if s > 0 else 1.0
    k = bisect.bisect_right(pts, x) - 1  # pts[k] <= x < pts[k + 1]
    a, b = pts[k], pts[k + 1]
    return P[k] + (P[k + 1] - P[k]) * (x - a) / (b - a)


def served_cdf_z(q: Sequence[float], x: float) -> float:
    """Like ``served_cdf``, but linear in the normal score between the points: ``Phi`` of the
    piecewise-linear map from the points to their z-values (the same tails beyond them).

    Through the same five points; a Gaussian band gives exactly the Gaussian CDF, where the
    linear one puts too much probability between the median and the 10/90 % points (at half a
    sigma above the centre it says 34 % beyond, a Gaussian 31 %). The app serves this one: on the
    backtest its Brier score is the lower (see ``cryptotui backtest --portfolio``).
    """
    pts = sorted(q)
    if x < pts[0] or x >= pts[-1]:
        return served_cdf(q, x)
    k = bisect.bisect_right(pts, x) - 1
    a, b = pts[k], pts[k + 1]
    return _phi(Z[k] + (Z[k + 1] - Z[k]) * (x - a) / (b - a))


CDFS = {"linear": served_cdf, "z-linear": served_cdf_z}
SERVED_CDF = "z-linear"


def prob_beyond(
    f: ForecastEvent, horizon: int, level: float, cdf: str = SERVED_CDF
) -> float | None:
    """Probability that the price at ``horizon`` is beyond ``level``: above it when the level is
    above the base price, below it otherwise. None without a served band."""
    q = served_quantiles(f, horizon)
    if q is None or not (0 < f.price < math.inf and 0 < level < math.inf):
        return None
    x = math.log(level) - math.log(f.price)  # level / price may underflow to 0 (a 1e-320 level)
    p = CDFS[cdf](q, x)
    return 1.0 - p if level > f.price else p


# --- prequential scoring (the backtest) ---------------------------------------------------------

# Levels scored per coin and horizon, in sigmas of the day (the standard deviation of the last
# day's 1-minute log returns, times sqrt(h)) from the price. A scale the served band does not set,
# so the probabilities vary with the band (levels in served sigmas would give each one nearly the
# same probability every minute, and the reliability table two filled bins).
LEVEL_SIGMAS = (-1.0, -0.5, 0.5, 1.0)
# corr: co-movement measured at the horizon (served); corr1m: at 1 minute; ends: adding the ends;
# indep: R = I.
RANGE_METHODS = ("corr", "corr1m", "ends", "indep")
CORR_EVERY = 10  # minutes between re-measurements of the correlation in the backtest (24 h window)


@dataclass
class RangeScore:
    """Prequential score of a value range (80 %): hits, interval score and width, per issue value."""

    n: int = 0
    hits: int = 0
    score: float = 0.0  # interval score, relative to the total's value at issue
    width: float = 0.0

    def add(self, lo: float, hi: float, y: float, base: float) -> None:
        self.n += 1
        self.hits += lo <= y <= hi
        self.score += interval_score(lo / base, hi / base, y / base, 0.2)
        self.width += (hi - lo) / base

    def as_dict(self) -> dict[str, Any]:
        n = self.n or 1
        return {
            "n": self.n,
            "coverage80": self.hits / n if self.n else None,
            "interval_score80": self.score / n if self.n else None,
            "mean_width80": self.width / n if self.n else None,
        }


@dataclass
class _Pending:
    ts: int
    horizon: int
    values: tuple[float, ...]  # holding values at issue
    ranges: dict[str, ValueRange]
    # coin index, level, level in day sigmas, probability per CDF shape
    probs: list[tuple[int, float, float, dict[str, float]]]


def day_sigma(prices: Iterable[tuple[int, float]]) -> float | None:
    """Standard deviation of the 1-minute log returns in ``prices`` (gaps skipped)."""
    rs: list[float] = []
    prev: tuple[int, float] | None = None
    for ts, p in prices:
        if prev is not None and ts - prev[0] == 60:
            rs.append(math.log(p / prev[1]))
        prev = (ts, p)
    if len(rs) < CORR_MIN:
        return None
    m = sum(rs) / len(rs)
    return math.sqrt(sum((r - m) ** 2 for r in rs) / (len(rs) - 1))


@dataclass
class PortfolioRun:
    """Scores the total's 80 % range and the level probabilities as their labels mature.

    Feed it, minute by minute in time order, every coin's bar price and served forecast
    (``add``, then ``end_minute``); a range is issued at a minute when every coin has a forecast
    for it, and scored when every coin has a price ``h`` minutes later (a gap in any coin leaves
    it unscored, as the live app would have no label either).
    """

    coins: tuple[str, ...]
    horizons: tuple[int, ...]
    weights: tuple[float, ...]  # value held in each coin at issue (units of the total)
    window: int = CORR_WINDOW
    ranges: dict[tuple[int, str], RangeScore] = field(default_factory=dict)
    # (horizon, cdf) -> (level sigma, probability, happened) per scored level
    outcomes: dict[tuple[int, str], list[tuple[float, float, bool]]] = field(default_factory=dict)
    _prices: list[deque[tuple[int, float]]] = field(default_factory=list)
    _at: list[dict[int, float]] = field(default_factory=list)
    _fc: list[dict[int, ForecastEvent]] = field(default_factory=list)
    _pending: deque[_Pending] = field(default_factory=deque)
    _corr: dict[int, list[list[float]]] = field(default_factory=dict)
    _sigma: list[float | None] = field(default_factory=list)
    _minutes: int = 0

    def __post_init__(self) -> None:
        n = len(self.coins)
        self._prices = [deque(maxlen=self.window + 1) for _ in range(n)]
        self._at = [{} for _ in range(n)]
        self._fc = [{} for _ in range(n)]
        self._sigma = [None] * n

    def add(self, i: int, ts: int, price: float, forecast: ForecastEvent | None) -> None:
        """Coin ``i``'s bar at ``ts`` and the forecast made from it (None while warming up)."""
        self._prices[i].append((ts, price))
        self._at[i][ts] = price
        if forecast is not None:
            self._fc[i][ts] = forecast

    def _measure(self) -> None:
        # The window is a day long: re-measuring every CORR_EVERY minutes changes little and
        # keeps the pure-Python correlation off every minute's path.
        if self._minutes % CORR_EVERY == 0 or not self._corr:
            scaled = [scaled_returns(p) for p in self._prices]
            for k in sorted({1, *self.horizons}):
                self._corr[k] = correlation(scaled, self.window, k=k)
            self._sigma = [day_sigma(p) for p in self._prices]
        self._minutes += 1

    def end_minute(self, ts: int) -> None:
        """Every coin's bar for ``ts`` is in: score what matured, then issue from ``ts``."""
        self._score(ts)
        fcs = [fc.pop(ts, None) for fc in self._fc]
        if any(f is None for f in fcs):
            return
        self._measure()
        n = len(self.coins)
        ones = [[1.0] * n for _ in range(n)]
        eye = [[float(a == b) for b in range(n)] for a in range(n)]
        for h in self.horizons:
            qs = [served_quantiles(f, h) for f in fcs if f is not None]
            if any(q is None for q in qs):
                continue
            per = [holding_range(v, q[1], q[3]) for v, q in zip(self.weights, qs) if q is not None]
            ranges = {
                "corr": total_range(per, self._corr[h]),
                "corr1m": total_range(per, self._corr[1]),
                "ends": total_range(per, ones),
                "indep": total_range(per, eye),
            }
            probs: list[tuple[int, float, float, dict[str, float]]] = []
            for ci, f in enumerate(fcs):
                sigma = self._sigma[ci]
                if f is None or sigma is None or sigma <= 0:
                    continue
                for k in LEVEL_SIGMAS:
                    level = f.price * math.exp(k * sigma * math.sqrt(h))
                    ps = {name: prob_beyond(f, h, level, name) for name in CDFS}
                    if all(p is not None for p in ps.values()):
                        probs.append((ci, level, k, {a: b for a, b in ps.items() if b is not None}))
            self._pending.append(_Pending(ts, h, self.weights, ranges, probs))
        # Prices older than the longest horizon are no longer needed as labels.
        cutoff = ts - 60 * (max(self.horizons) + 1)
        for at in self._at:
            for t in [t for t in at if t < cutoff]:
                del at[t]

    def _score(self, now: int) -> None:
        keep: deque[_Pending] = deque()
        while self._pending:
            p = self._pending.popleft()
            due = p.ts + 60 * p.horizon
            if due > now:
                keep.append(p)
                continue
            base = [at.get(p.ts) for at in self._at]
            later = [at.get(due) for at in self._at]
            if any(v is None for v in base + later):
                continue  # a gap: the label never exists
            growth = [b / a for a, b in zip(base, later) if a and b]
            y = sum(v * g for v, g in zip(p.values, growth))
            total = sum(p.values)
            for name, r in p.ranges.items():
                self.ranges.setdefault((p.horizon, name), RangeScore()).add(r.lo, r.hi, y, total)
            for ci, level, k, ps in p.probs:
                b0, b1 = base[ci], later[ci]
                assert b0 is not None and b1 is not None
                happened = b1 > level if level > b0 else b1 < level
                for name, prob in ps.items():
                    self.outcomes.setdefault((p.horizon, name), []).append((k, prob, happened))
        self._pending = keep

    # --- summaries ---------------------------------------------------------------------------
    def range_rows(self) -> list[dict[str, Any]]:
        out = []
        for h in self.horizons:
            row: dict[str, Any] = {"horizon": h}
            for m in RANGE_METHODS:
                row[m] = self.ranges.get((h, m), RangeScore()).as_dict()
            out.append(row)
        return out

    def brier_rows(self) -> list[dict[str, Any]]:
        """Per horizon and CDF shape: the Brier score, and that of climatology (each level's base
        rate over the run, known only in hindsight: a bar to clear, not a forecast)."""
        out = []
        for h in self.horizons:
            row: dict[str, Any] = {"horizon": h}
            for name in CDFS:
                obs = self.outcomes.get((h, name), [])
                n = len(obs)
                bs = sum((p - e) ** 2 for _, p, e in obs)
                clim = 0.0
                for k in LEVEL_SIGMAS:
                    es = [e for kk, _, e in obs if kk == k]
                    if es:
                        rate = sum(es) / len(es)
                        clim += sum((rate - e) ** 2 for e in es)
                row["n"] = n
                row[name] = {
                    "brier": bs / n if n else None,
                    "skill": 1 - bs / clim if n and clim > 0 else None,
                }
                row["brier_climatology"] = clim / n if n else None
            out.append(row)
        return out

    def reliability(self, cdf: str = SERVED_CDF, bins: int = 10) -> list[dict[str, Any]]:
        """Pooled over horizons and levels: per 10 % bin, mean probability said, share happened."""
        acc = [[0, 0.0, 0] for _ in range(bins)]
        for (_, name), obs in self.outcomes.items():
            if name != cdf:
                continue
            for _, p, e in obs:
                b = min(int(p * bins), bins - 1)
                acc[b][0] += 1
                acc[b][1] += p
                acc[b][2] += e
        return [
            {
                "bin": f"{100 * b // bins}-{100 * (b + 1) // bins}",
                "n": n,
                "said": s / n if n else None,
                "happened": e / n if n else None,
            }
            for b, (n, s, e) in enumerate(acc)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "coins": list(self.coins),
            "weights": list(self.weights),
            "range": self.range_rows(),
            "brier": self.brier_rows(),
            "reliability": {name: self.reliability(name) for name in CDFS},
        }


def parse_weights(text: str | None, n: int) -> tuple[float, ...]:
    """``--weights a,b``: one finite value > 0 per file (default 1 each); ConfigError otherwise."""
    from engine.errors import ConfigError

    if n < 2:
        raise ConfigError("--portfolio needs at least two time-aligned files")
    if text is None:
        return (1.0,) * n
    try:
        ws = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"invalid --weights {text!r}: numbers separated by commas") from None
    if len(ws) != n:
        raise ConfigError(f"invalid --weights {text!r}: {len(ws)} values for {n} files")
    if not all(math.isfinite(w) and 0 < w <= 1e15 for w in ws):
        raise ConfigError(f"invalid --weights {text!r}: each must be a finite number > 0")
    return ws


def run_portfolio(
    series: Sequence[Sequence[Any]],
    config: Any,
    weights: Sequence[float],
    seed: int = 0,
    progress: Any = None,
) -> PortfolioRun:
    """Time-aligned bars of several coins through one per-coin Forecaster each, exactly as live,
    scoring the total's range and the level probabilities as they mature."""
    from engine.forecast.forecaster import Forecaster  # torch only when a backtest really runs

    coins = tuple(s[0].coin for s in series)
    fcs = [Forecaster(c, config, seed=seed) for c in coins]
    run = PortfolioRun(coins, tuple(config.horizons), tuple(weights))
    merged = sorted(((b.ts, i, b) for i, s in enumerate(series) for b in s), key=lambda r: r[:2])
    last_ts: int | None = None
    for ts, i, bar in merged:
        if last_ts is not None and ts != last_ts:
            run.end_minute(last_ts)
        last_ts = ts
        f = fcs[i].observe(bar)
        fcs[i].train(config.steps_per_minute)
        run.add(i, ts, bar.price, f)
        if progress is not None:
            progress.advance()
    if last_ts is not None:
        run.end_minute(last_ts)
    return run


def format_portfolio(run: PortfolioRun) -> str:
    """The backtest's portfolio tables, at most 100 columns."""

    def f(v: Any, spec: str, scale: float = 1.0) -> str:
        return "-" if v is None else format(scale * v, spec)

    lines = [
        (
            f"\nportfolio: {' + '.join(c[:20] for c in run.coins)}; value weights "
            f"{', '.join(f'{w:g}' for w in run.weights)}"
        ),
        "the total's 80 % range: coverage (%) and interval score (bp of the total's value)",
        "corr h: co-movement at the horizon (served); corr 1m: of 1-minute returns;",
        "ends: adding the ends of the bands; indep: no co-movement",
        f"{'h':>3}{'n':>7} |"
        + "|".join(f"{m:>15} " for m in ("corr h", "corr 1m", "ends", "indep")),
    ]
    for row in run.range_rows():
        cells = [
            f"{f(row[m]['coverage80'], '.1f', 100):>7}{f(row[m]['interval_score80'], '.1f', 1e4):>8} "
            for m in RANGE_METHODS
        ]
        lines.append(f"{row['horizon']:>3}{row['corr']['n']:>7} |" + "|".join(cells))
    lines.append("\nprobability that the price ends beyond a level at +-0.5 and +-1 day sigma")
    lines.append("Brier score (skill against each level's base rate, in hindsight); CDF shapes:")
    lines.append(f"{'h':>3}{'n':>7}{'climat.':>9} | {'linear':>16} | {'z-linear (served)':>17}")
    for b in run.brier_rows():
        lin, zl = b["linear"], b["z-linear"]
        lines.append(
            f"{b['horizon']:>3}{b['n']:>7}{f(b['brier_climatology'], '.4f'):>9} | "
            f"{f(lin['brier'], '.4f'):>8} {f(lin['skill'], '+.3f'):>7} | "
            f"{f(zl['brier'], '.4f'):>8} {f(zl['skill'], '+.3f'):>8}"
        )
    lines.append("\nreliability of the served probabilities (all horizons and levels)")
    lines.append(f"{'said':>8}{'n':>8}{'mean said %':>13}{'happened %':>12}")
    for r in run.reliability():
        lines.append(
            f"{r['bin'] + '%':>8}{r['n']:>8}{f(r['said'], '.1f', 100):>13}"
            f"{f(r['happened'], '.1f', 100):>12}"
        )
    return "\n".join(lines) + "\n"


class LiveRangeScore:
    """The total's 80 % range scored as the app runs (the holdings panel's line), past data only.

    ``issue`` records the range made at minute ``ts`` for ``horizon`` with the amounts held then;
    ``mature`` scores every recorded range whose target minute has a price for each of its coins
    (value at the target = the same amounts at those prices). Ranges whose target minute has no
    price for some coin (a gap) are dropped unscored, as the forecaster drops its labels.
    """

    def __init__(self, keep: int = 240) -> None:
        self.pending: dict[tuple[int, int], tuple[dict[str, float], float, float, float]] = {}
        self.scores: dict[int, RangeScore] = {}
        self.keep = keep

    def issue(self, ts: int, horizon: int, amounts: dict[str, float], rng: ValueRange) -> None:
        key = (ts, horizon)
        if key not in self.pending and rng.centre > 0:
            self.pending[key] = (dict(amounts), rng.lo, rng.hi, rng.centre)
            if len(self.pending) > self.keep:
                del self.pending[min(self.pending)]

    def mature(self, price_at: Callable[[str, int], float | None], now: int) -> None:
        for key in [k for k in self.pending if k[0] + 60 * k[1] <= now]:
            ts, horizon = key
            amounts, lo, hi, base = self.pending.pop(key)
            prices = {c: price_at(c, ts + 60 * horizon) for c in amounts}
            known = {c: p for c, p in prices.items() if p is not None}
            if len(known) < len(prices):
                continue
            value = sum(a * known[c] for c, a in amounts.items())
            self.scores.setdefault(horizon, RangeScore()).add(lo, hi, value, base)
