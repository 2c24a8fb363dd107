"""Prequential evaluation (predict, score when the label matures, then learn) against baselines.

One ``Evaluator`` per forecaster; the live metrics panel and ``cryptotui backtest`` read the same
rows. Everything is in log-return units. For each horizon it keeps running sums (MAE/RMSE of the
model, of persistence -- "no change", which predicts 0 -- and of an EWMA drift), interval hits, and
a bounded recent history for the median width and the lag diagnostic.

Direction accuracy uses the model's *raw* mean (before the skill shrinkage of the forecaster):
shrinking by k > 0 does not change a sign, and with k = 0 the raw mean still says what the network
believes. The best lag describes the forecast served (the shrunk mean), the one a user sees.

``best_lag`` is the shift L (in bars, 0..max(2, h)) maximising the correlation between the served
prediction made at t and the realised label of the prediction made at t - L. A model that copies the
last realised move (the classic "price shifted by one step") shows up at L >= 1; a shift only counts
when it beats lag 0 by more than sampling noise (two standard errors of a correlation).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from engine.events import HorizonMetrics

NAN = float("nan")
LAG_REFRESH = 60  # scores between two best-lag searches in the cheap (live panel) mode


@dataclass
class _Acc:
    """Running sums for one horizon."""

    n: int = 0
    abs_m: float = 0.0
    sq_m: float = 0.0
    abs_p: float = 0.0
    sq_p: float = 0.0
    abs_d: float = 0.0
    dir_hits: float = 0.0
    dir_n: int = 0
    in80: int = 0
    in95: int = 0
    lag: int = 0  # cached best lag (the search is the one costly part of a row)
    lag_n: int = -1  # n when ``lag`` was computed
    recent: deque[tuple[int, float, float]] = field(default_factory=deque)  # (t, pred, y)
    widths: deque[float] = field(default_factory=deque)


def _corr(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 3:
        return NAN
    mx = sum(xs) / n
    my = sum(ys) / n
    sxy = sxx = syy = 0.0
    for x, y in zip(xs, ys):
        dx, dy = x - mx, y - my
        sxy += dx * dy
        sxx += dx * dx
        syy += dy * dy
    if sxx <= 0.0 or syy <= 0.0:
        return NAN
    return sxy / math.sqrt(sxx * syy)


def best_lag(records: Iterable[tuple[int, float, float]], max_lag: int) -> int:
    """The lag L in 0..max_lag whose label series best matches the predictions (see module doc)."""
    recs = list(records)
    labels = {t: y for t, _, y in recs}
    corrs: list[float] = []
    counts: list[int] = []
    for lag in range(max_lag + 1):
        xs: list[float] = []
        ys: list[float] = []
        for t, pred, _ in recs:
            y = labels.get(t - lag)
            if y is not None:
                xs.append(pred)
                ys.append(y)
        corrs.append(_corr(xs, ys))
        counts.append(len(xs))
    if not corrs or all(math.isnan(c) for c in corrs):
        return 0
    base = corrs[0] if not math.isnan(corrs[0]) else 0.0
    best, best_c = 0, base
    for lag in range(1, max_lag + 1):
        c = corrs[lag]
        if math.isnan(c) or counts[lag] < 30:
            continue
        # A shift must beat lag 0 by more than noise: ~2 standard errors of a correlation.
        if c > best_c and c - base > 2.0 / math.sqrt(counts[lag]):
            best, best_c = lag, c
    return best


class Evaluator:
    """Scores matured predictions per horizon and turns the sums into ``HorizonMetrics`` rows."""

    def __init__(self, horizons: tuple[int, ...], history: int = 3000) -> None:
        self.horizons = tuple(horizons)
        self.history = history
        self._acc: dict[int, _Acc] = {
            h: _Acc(recent=deque(maxlen=history), widths=deque(maxlen=history)) for h in horizons
        }

    def score(
        self,
        horizon: int,
        t: int,
        y: float,
        pred: float,
        raw: float,
        drift: float,
        lo80: float,
        hi80: float,
        lo95: float,
        hi95: float,
    ) -> None:
        """Score one matured prediction made at bar index ``t`` whose realised log return is ``y``."""
        a = self._acc[horizon]
        a.n += 1
        e = y - pred
        a.abs_m += abs(e)
        a.sq_m += e * e
        a.abs_p += abs(y)
        a.sq_p += y * y
        a.abs_d += abs(y - drift)
        if y != 0.0:
            a.dir_n += 1
            if raw == 0.0:
                a.dir_hits += 0.5  # no opinion is a coin flip, not a hit
            elif (raw > 0.0) == (y > 0.0):
                a.dir_hits += 1.0
        a.in80 += lo80 <= y <= hi80
        a.in95 += lo95 <= y <= hi95
        a.recent.append((t, pred, y))
        a.widths.append(hi80 - lo80)

    def row(self, horizon: int, exact: bool = True) -> HorizonMetrics:
        """Metrics of one horizon; ``exact=False`` reuses a best lag up to ``LAG_REFRESH`` scores old."""
        a = self._acc[horizon]
        n = a.n
        if exact or a.lag_n < 0 or n - a.lag_n >= LAG_REFRESH:
            a.lag = best_lag(a.recent, max(2, horizon)) if n else 0
            a.lag_n = n
        if n == 0:
            return HorizonMetrics(horizon, 0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0)
        mae, rmse = a.abs_m / n, math.sqrt(a.sq_m / n)
        mae_p, rmse_p = a.abs_p / n, math.sqrt(a.sq_p / n)
        return HorizonMetrics(
            horizon=horizon,
            n=n,
            mae=mae,
            rmse=rmse,
            mae_persistence=mae_p,
            rmse_persistence=rmse_p,
            rel_mae=mae / mae_p if mae_p > 0 else NAN,
            rel_rmse=rmse / rmse_p if rmse_p > 0 else NAN,
            dir_acc=a.dir_hits / a.dir_n if a.dir_n else NAN,
            coverage80=a.in80 / n,
            coverage95=a.in95 / n,
            width80=statistics.median(a.widths) if a.widths else NAN,
            best_lag=a.lag,
            mae_drift=a.abs_d / n,
        )

    def rows(self, exact: bool = True) -> tuple[HorizonMetrics, ...]:
        return tuple(self.row(h, exact) for h in self.horizons)

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint (lists of numbers only: loadable with weights_only=True)."""
        out: dict[str, Any] = {}
        for h, a in self._acc.items():
            out[str(h)] = {
                "sums": [a.abs_m, a.sq_m, a.abs_p, a.sq_p, a.abs_d, a.dir_hits],
                "counts": [a.n, a.dir_n, a.in80, a.in95],
                "recent": [list(r) for r in a.recent],
                "widths": list(a.widths),
            }
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        for h, a in self._acc.items():
            s = state.get(str(h))
            if s is None:
                continue
            a.abs_m, a.sq_m, a.abs_p, a.sq_p, a.abs_d, a.dir_hits = (float(v) for v in s["sums"])
            a.n, a.dir_n, a.in80, a.in95 = (int(v) for v in s["counts"])
            a.recent.clear()
            a.recent.extend((int(t), float(r), float(y)) for t, r, y in s["recent"])
            a.widths.clear()
            a.widths.extend(float(w) for w in s["widths"])
