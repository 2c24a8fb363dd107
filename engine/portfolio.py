"""Holdings' risk from the served bands: the total's range, level probabilities, and their scores.

Three pure pieces, shared by the TUI and ``cryptotui backtest --portfolio``:

- ``correlation``: how coins move together, from their volatility-scaled 1-minute log returns on
  the minutes both have (scaling by each coin's own EWMA volatility, past data only, keeps one
  violent hour from deciding the whole window).
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
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from engine.evaluate import interval_score
from engine.events import ForecastEvent

# Standard normal quantiles of the served points: 2.5 %, 10 %, 50 %, 90 %, 97.5 %.
Z = (-1.959963984540054, -1.2815515655446004, 0.0, 1.2815515655446004, 1.959963984540054)
P = (0.025, 0.10, 0.50, 0.90, 0.975)
Z80 = Z[3]
CORR_WINDOW = 1440  # minutes of returns the correlation looks at (the engine keeps two days)
CORR_MIN = 30  # fewer common minutes than this: no measured co-movement, assume independence
VOL_HALFLIFE = 30.0  # minutes; the EWMA volatility that scales each coin's returns


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def scaled_returns(prices: Iterable[tuple[int, float]], halflife: float = VOL_HALFLIFE
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


def correlation(series: Sequence[dict[int, float]], window: int = CORR_WINDOW,
                min_common: int = CORR_MIN) -> list[list[float]]:
    """Pearson correlation matrix of scaled returns over each pair's last ``window`` common minutes.

    A pair with too few common minutes, or a flat series, gets 0 (independence): the range is then
    the narrower, honest-about-ignorance guess rather than a made-up co-movement.
    """
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


def prob_beyond(f: ForecastEvent, horizon: int, level: float) -> float | None:
    """Probability that the price at ``horizon`` is beyond ``level``: above it when the level is
    above the base price, below it otherwise. None without a served band."""
    q = served_quantiles(f, horizon)
    if q is None or f.price <= 0 or level <= 0:
        return None
    x = math.log(level / f.price)
    p = served_cdf(q, x)
    return 1.0 - p if level > f.price else p


# --- prequential scoring (the backtest) ---------------------------------------------------------

# Levels scored per coin and horizon, in served sigmas (half the 80 % band over z80) from the price.
LEVEL_SIGMAS = (-1.0, -0.5, 0.5, 1.0)
RANGE_METHODS = ("corr", "ends", "indep")  # measured co-movement; adding the ends; independence


@dataclass
class _RangeAcc:
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
        return {"n": self.n, "coverage80": self.hits / n if self.n else None,
                "interval_score80": self.score / n if self.n else None,
                "mean_width80": self.width / n if self.n else None}


@dataclass
class _Pending:
    ts: int
    horizon: int
    values: tuple[float, ...]  # holding values at issue
    ranges: dict[str, ValueRange]
    probs: list[tuple[int, float, float, float]]  # coin index, level, probability, level sigma


@dataclass
class PortfolioRun:
    """Scores the total's 80 % range and the level probabilities as their labels mature.

    Feed it, minute by minute in time order, every coin's bar price and served forecast
    (``add``); a range is issued at a minute when every coin has a forecast for it, and scored
    when every coin has a price ``h`` minutes later (a gap in any coin leaves it unscored).
    """

    coins: tuple[str, ...]
    horizons: tuple[int, ...]
    weights: tuple[float, ...]  # value held in each coin at issue (units of the total)
    window: int = CORR_WINDOW
    ranges: dict[tuple[int, str], _RangeAcc] = field(default_factory=dict)
    # (horizon, level sigma) -> list of (probability, happened)
    outcomes: dict[tuple[int, float], list[tuple[float, bool]]] = field(default_factory=dict)
    _prices: list[deque[tuple[int, float]]] = field(default_factory=list)
    _at: list[dict[int, float]] = field(default_factory=list)
    _fc: list[dict[int, ForecastEvent]] = field(default_factory=list)
    _pending: deque[_Pending] = field(default_factory=deque)

    def __post_init__(self) -> None:
        n = len(self.coins)
        self._prices = [deque(maxlen=self.window + 1) for _ in range(n)]
        self._at = [{} for _ in range(n)]
        self._fc = [{} for _ in range(n)]

    def add(self, i: int, ts: int, price: float, forecast: ForecastEvent | None) -> None:
        """Coin ``i``'s bar at ``ts`` and the forecast made from it (None while warming up)."""
        self._prices[i].append((ts, price))
        self._at[i][ts] = price
        if forecast is not None:
            self._fc[i][ts] = forecast

    def end_minute(self, ts: int) -> None:
        """Every coin's bar for ``ts`` is in: score what matured, then issue from ``ts``."""
        self._score(ts)
        fcs = [fc.pop(ts, None) for fc in self._fc]
        if any(f is None for f in fcs):
            return
        scaled = [scaled_returns(p) for p in self._prices]
        corr = correlation(scaled, self.window)
        n = len(self.coins)
        for h in self.horizons:
            qs = [served_quantiles(f, h) for f in fcs if f is not None]
            if len(qs) < n or any(q is None for q in qs):
                continue
            values = tuple(self.weights)
            per = [holding_range(v, q[1], q[3]) for v, q in zip(values, qs) if q is not None]
            ranges = {
                "corr": total_range(per, corr),
                "ends": total_range(per, [[1.0] * n for _ in range(n)]),
                "indep": total_range(per, [[float(a == b) for b in range(n)] for a in range(n)]),
            }
            probs: list[tuple[int, float, float, float]] = []
            for ci, (f, q) in enumerate(zip(fcs, qs)):
                assert f is not None and q is not None
                sigma = (q[3] - q[1]) / (2 * Z80)
                if sigma <= 0:
                    continue
                for k in LEVEL_SIGMAS:
                    level = f.price * math.exp(k * sigma)
                    p = prob_beyond(f, h, level)
                    if p is not None:
                        probs.append((ci, level, p, k))
            self._pending.append(_Pending(ts, h, values, ranges, probs))
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
                self.ranges.setdefault((p.horizon, name), _RangeAcc()).add(r.lo, r.hi, y, total)
            for ci, level, prob, k in p.probs:
                b0, b1 = base[ci], later[ci]
                assert b0 is not None and b1 is not None
                happened = b1 > level if level > b0 else b1 < level
                self.outcomes.setdefault((p.horizon, k), []).append((prob, happened))
        self._pending = keep

    # --- summaries ---------------------------------------------------------------------------
    def range_rows(self) -> list[dict[str, Any]]:
        out = []
        for h in self.horizons:
            row: dict[str, Any] = {"horizon": h}
            for m in RANGE_METHODS:
                row[m] = self.ranges.get((h, m), _RangeAcc()).as_dict()
            out.append(row)
        return out

    def brier_rows(self) -> list[dict[str, Any]]:
        """Per horizon: Brier score, and that of climatology (each level's base rate, in hindsight)."""
        out = []
        for h in self.horizons:
            n = 0
            bs = clim = 0.0
            for k in LEVEL_SIGMAS:
                obs = self.outcomes.get((h, k), [])
                if not obs:
                    continue
                rate = sum(e for _, e in obs) / len(obs)
                n += len(obs)
                bs += sum((p - e) ** 2 for p, e in obs)
                clim += sum((rate - e) ** 2 for _, e in obs)
            out.append({
                "horizon": h, "n": n,
                "brier": bs / n if n else None,
                "brier_climatology": clim / n if n else None,
                "skill": 1 - bs / clim if n and clim > 0 else None,
            })
        return out

    def reliability(self, bins: int = 10) -> list[dict[str, Any]]:
        """Pooled over horizons and levels: per 10 % bin, mean probability said, share happened."""
        acc = [[0, 0.0, 0] for _ in range(bins)]
        for obs in self.outcomes.values():
            for p, e in obs:
                b = min(int(p * bins), bins - 1)
                acc[b][0] += 1
                acc[b][1] += p
                acc[b][2] += e
        return [
            {"bin": f"{100 * b // bins}-{100 * (b + 1) // bins}", "n": n,
             "said": s / n if n else None, "happened": e / n if n else None}
            for b, (n, s, e) in enumerate(acc)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"coins": list(self.coins), "weights": list(self.weights),
                "range": self.range_rows(), "brier": self.brier_rows(),
                "reliability": self.reliability()}


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


def run_portfolio(series: Sequence[Sequence[Any]], config: Any, weights: Sequence[float],
                  seed: int = 0, progress: Any = None) -> PortfolioRun:
    """Time-aligned bars of several coins through one per-coin Forecaster each, exactly as live,
    scoring the total's range and the level probabilities as they mature."""
    from engine.forecaster import Forecaster  # torch only when a backtest really runs

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
    lines = [
        f"\nportfolio: {' + '.join(run.coins)} (value weights "
        f"{', '.join(f'{w:g}' for w in run.weights)}): the total's 80 % range",
        "corr: measured co-movement (sqrt(d'Rd)); ends: adding the ends; indep: R = I",
        "IS: interval score in bp of the total's value (lower is better)",
        f"{'h':>3}{'n':>7} | {'cov corr':>8}{'IS':>7} | {'cov ends':>8}{'IS':>7} | "
        f"{'cov ind':>8}{'IS':>7}",
    ]

    def cell(d: dict[str, Any]) -> str:
        cov, s = d["coverage80"], d["interval_score80"]
        return (f"{'-' if cov is None else format(100 * cov, '.1f'):>8}"
                f"{'-' if s is None else format(1e4 * s, '.1f'):>7}")

    for row in run.range_rows():
        lines.append(f"{row['horizon']:>3}{row['corr']['n']:>7} | {cell(row['corr'])} | "
                     f"{cell(row['ends'])} | {cell(row['indep'])}")
    lines.append("\nprobability that the price ends beyond a level at +-0.5 and +-1 served sigma")
    lines.append(f"{'h':>3}{'n':>7}{'Brier':>8}{'climat.':>9}{'skill':>8}")
    for b in run.brier_rows():
        def f(v: Any, spec: str) -> str:
            return "-" if v is None else format(v, spec)

        lines.append(f"{b['horizon']:>3}{b['n']:>7}{f(b['brier'], '.4f'):>8}"
                     f"{f(b['brier_climatology'], '.4f'):>9}{f(b['skill'], '+.3f'):>8}")
    lines.append("\nreliability (all horizons and levels): said vs happened")
    lines.append(f"{'bin %':>7}{'n':>7}{'said %':>8}{'happened %':>11}")
    for r in run.reliability():
        said = "-" if r["said"] is None else format(100 * r["said"], ".1f")
        hap = "-" if r["happened"] is None else format(100 * r["happened"], ".1f")
        lines.append(f"{r['bin']:>7}{r['n']:>7}{said:>8}{hap:>11}")
    return "\n".join(lines) + "\n"
