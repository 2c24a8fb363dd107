"""Prequential evaluation (predict, score when the label matures, then learn) against baselines.

One ``Evaluator`` per forecaster; the live metrics panel and ``cryptotui backtest`` read the same
rows. Everything is in log-return units. For each horizon it keeps running sums (MAE/RMSE of the
model, of persistence -- "no change", which predicts 0 -- and of an EWMA drift), interval hits, and
a bounded recent history for the median width and the lag diagnostic.

Bands are scored with proper scores, three of them side by side: the band served, the network's
own band and ``ewma-band`` (the baseline that learns nothing: centre "no change", half-width
q x sqrt(h) x the EWMA of squared one-bar log returns, half-life 30 bars, q tracked per horizon and
level by ``QuantileTracker``). The interval (Winkler) score of [l, u] at level 1 - alpha for an
outcome y is (u - l) + (2 / alpha) x (distance from y to the band when y is outside); lower is
better: it rewards sharp bands and punishes misses. The whole served forecast (2.5/10/50/90/97.5 %
quantiles: the two bands' ends and the mean) gets the mean pinball loss.

Direction accuracy uses the model's *raw* mean (before the skill shrinkage of the forecaster):
shrinking by k > 0 does not change a sign, and with k = 0 the raw mean still says what the network
believes. The best lag describes the forecast served (the shrunk mean), the one a user sees.

``best_lag`` is the shift L (in bars, 0..max(2, h)) maximising the correlation between the served
prediction made at t and the realised label of the prediction made at t - L. A model that copies the
last realised move (the classic "price shifted by one step") shows up at L >= 1; a shift only counts
when it beats lag 0 by more than sampling noise (two standard errors of a correlation).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.events import HorizonMetrics

NAN = float("nan")
LAG_REFRESH = 60  # scores between two best-lag searches in the cheap (live panel) mode
Z80 = 1.2815515655446004  # standard normal quantiles: where ewma-band's trackers start (and
Z95 = 1.959963984540054  # every 80 % tracker); the served 95 % ones start at q95_start
LEVELS = (0.2, 0.05)  # nominal miss rates of the 80 % and 95 % bands
# Where the served bands' 95 % trackers start: pre-training on other coins. Returns scaled by the
# simple band's sigma are fat-tailed, so a Gaussian start (1.96) is too narrow, and a tracker at a
# long horizon learns slowly (its labels overlap and arrive late): at 60 minutes a fresh coin would
# keep the Gaussian start for days. On the bundled demo data (Coinbase BTC, ETH and LTC, April 2018;
# never the eval files) the 95 % quantile of |h-bar return| / sigma is q95 from n labels
# (DEMO_TAIL95: h, q95, n; ``measure_tails`` recomputes it and a test holds the table to the data).
# A fresh tracker starts between the Gaussian point and that measurement, weighted by evidence: the
# measurement by its n / h independent outcomes, the Gaussian as GAUSSIAN_OUTCOMES of them (as many
# as the skill gate asks before it trusts the network's mean). At 1 minute the data has ~10,000
# outcomes and decides; at 60 minutes ~160 and the start lands about 60 % of the way to it. The
# 80 % point starts Gaussian: on that data it sits below the Gaussian and on the eval files above,
# so it does not carry from one market to another the way the tail does.
DEMO_TAIL95 = ((1, 2.17, 10122), (5, 2.15, 10102), (15, 2.32, 10042), (60, 3.35, 9772))
GAUSSIAN_OUTCOMES = 100.0

# A band's four ends: lo80, hi80, lo95, hi95.
Band = tuple[float, float, float, float]


def q95_start(h: int) -> float:
    """The 95 % multiplier a fresh tracker starts from at horizon ``h`` (bars): see DEMO_TAIL95.

    Between the measured horizons the start is interpolated in log h; outside them the nearest
    measured horizon's holds.
    """
    starts = []
    for hm, q95, n in DEMO_TAIL95:
        outcomes = n / hm
        w = outcomes / (outcomes + GAUSSIAN_OUTCOMES)
        starts.append((hm, Z95 + w * (q95 - Z95)))
    if h <= starts[0][0]:
        return starts[0][1]
    for (h0, q0), (h1, q1) in itertools.pairwise(starts):
        if h <= h1:
            return q0 + math.log(h / h0) / math.log(h1 / h0) * (q1 - q0)
    return starts[-1][1]


def measure_tails(
    files: Iterable[Sequence[tuple[int, float]]], horizons: tuple[int, ...]
) -> dict[int, tuple[float, float, int]]:
    """The 80 % and 95 % quantiles of |h-bar log return| / the simple band's sigma, pooled, and n.

    ``files`` are series of (bar index, price); each gets a fresh ``VolBand``, issued from its 30th
    return on, and a label only where a bar sits exactly h bars later (gaps are skipped, as the
    forecaster skips them). This is how DEMO_TAIL95 was measured.
    """
    scores: dict[int, list[float]] = {h: [] for h in horizons}
    for series in files:
        vb = VolBand(horizons)
        issued: dict[tuple[int, int], tuple[float, float]] = {}
        last: tuple[int, float] | None = None
        for t, price in series:
            for h in horizons:
                p = issued.pop((t - h, h), None)
                if p is not None:
                    scores[h].append(abs(math.log(price / p[0])) / p[1])
            if last is not None:
                vb.update(math.log(price / last[1]), max(1, t - last[0]))
            last = (t, price)
            if vb.seen >= 30:
                for i, h in enumerate(horizons):
                    issued[(t, h)] = (price, vb.sigma(i))
    out = {}
    for h, xs in scores.items():
        xs.sort()
        if xs:
            out[h] = (xs[int(0.8 * (len(xs) - 1))], xs[int(0.95 * (len(xs) - 1))], len(xs))
    return out


def interval_score(lo: float, hi: float, y: float, alpha: float) -> float:
    """Winkler's interval score of the band [lo, hi] at level 1 - alpha for the outcome y."""
    s = hi - lo
    if y < lo:
        s += (2.0 / alpha) * (lo - y)
    elif y > hi:
        s += (2.0 / alpha) * (y - hi)
    return s


def pinball(q: float, tau: float, y: float) -> float:
    """Pinball (quantile) loss of the quantile forecast q at level tau for the outcome y."""
    d = y - q
    return tau * d if d >= 0.0 else (tau - 1.0) * d


class QuantileTracker:
    """A band multiplier per level, stepped q += eta * (miss - alpha) as each label matures.

    Online quantile tracking: the long-run miss rate goes to alpha whatever the scale's errors, and
    a scale that follows the market keeps q (and so the band) from drifting wide.
    """

    def __init__(self, eta: float, q80: float = Z80, q95: float = Z95) -> None:
        self.eta = eta
        self.q = {0.2: q80, 0.05: q95}

    def update(self, missed80: bool, missed95: bool) -> None:
        for alpha, missed in ((0.2, missed80), (0.05, missed95)):
            self.q[alpha] = max(0.0, self.q[alpha] + self.eta * (float(missed) - alpha))

    def state(self) -> list[float]:
        return [self.q[0.2], self.q[0.05]]

    def load(self, flat: list[float]) -> None:
        self.q = {0.2: float(flat[0]), 0.05: float(flat[1])}


class EwmaBand:
    """``ewma-band``, the simple volatility band the network has to beat (see the module doc).

    ``update`` takes each bar's log return, past data only; a return across a gap of dt bars counts
    as dt bars of variance r^2 / dt. The first return seeds the average.
    """

    def __init__(
        self,
        horizons: tuple[int, ...],
        halflife: float = 30.0,
        var0: float = 1e-6,
        q95: Callable[[int], float] = lambda h: Z95,
    ) -> None:
        self.horizons = tuple(horizons)
        self.decay = 0.5 ** (1.0 / halflife)
        self.var = var0
        self.seen = 0
        self.trackers = [QuantileTracker(0.01 / math.sqrt(h), q95=q95(h)) for h in self.horizons]

    def update(self, r: float, dt: int = 1) -> None:
        r2 = r * r / max(dt, 1)
        if not math.isfinite(r2):
            return
        if self.seen == 0:
            self.var = r2 if r2 > 0.0 else self.var
        else:
            a = self.decay**dt
            self.var = a * self.var + (1.0 - a) * r2
        self.seen += 1

    def sigma(self, i: int) -> float:
        """sqrt(h) x the EWMA volatility, for horizon index ``i``."""
        return math.sqrt(self.var * self.horizons[i])

    def band(self, i: int) -> Band:
        """The band issued now for horizon index ``i``: lo80, hi80, lo95, hi95 around 0."""
        sigma = self.sigma(i)
        tr = self.trackers[i]
        w80, w95 = tr.q[0.2] * sigma, tr.q[0.05] * sigma
        return (-w80, w80, -w95, w95)

    def state(self) -> list[float]:
        return [self.var, float(self.seen)] + [v for tr in self.trackers for v in tr.state()]

    def load(self, flat: list[float]) -> None:
        self.var, self.seen = float(flat[0]), int(flat[1])
        for i, tr in enumerate(self.trackers):
            tr.load(flat[2 + 2 * i : 4 + 2 * i])


class VolBand(EwmaBand):
    """ewma-band with volatility that reverts: the simple band the app serves by default.

    Volatility reverts towards its recent level, so the variance of the next h bars is not h times
    today's. With the short EWMA variance v (half-life 30 bars) reverting at that same half-life
    towards a 2-hour EWMA level m, the expected mean variance over h bars is a v + (1 - a) m with
    a = (1 - exp(-k h)) / (k h), k = ln 2 / 30: the same band at 1 minute, leaning on the 2-hour
    level at 60 minutes. Centre and quantile tracking as ewma-band's; the 95 % trackers start from
    ``q95_start`` (ewma-band's from the Gaussian point).
    """

    def __init__(
        self, horizons: tuple[int, ...], halflife: float = 30.0, level: float = 120.0
    ) -> None:
        super().__init__(horizons, halflife, q95=q95_start)
        self.level_decay = 0.5 ** (1.0 / level)
        self.var_level = self.var
        k = math.log(2.0) / halflife
        self.weights = [(1.0 - math.exp(-k * h)) / (k * h) for h in self.horizons]

    def update(self, r: float, dt: int = 1) -> None:
        first = self.seen == 0
        super().update(r, dt)
        r2 = r * r / max(dt, 1)
        if not math.isfinite(r2):
            return
        if first:
            self.var_level = self.var
        else:
            a = self.level_decay**dt
            self.var_level = a * self.var_level + (1.0 - a) * r2

    def sigma(self, i: int) -> float:
        a = self.weights[i]
        return math.sqrt((a * self.var + (1.0 - a) * self.var_level) * self.horizons[i])

    def state(self) -> list[float]:
        return [self.var_level, *super().state()]

    def load(self, flat: list[float]) -> None:
        self.var_level = float(flat[0])
        super().load(flat[1:])


@dataclass
class _BandAcc:
    """Running sums of one band at one horizon: hits, widths, interval scores per level."""

    n: int = 0
    in80: int = 0
    in95: int = 0
    w80: float = 0.0
    w95: float = 0.0
    is80: float = 0.0
    is95: float = 0.0

    def add(self, b: Band, y: float) -> None:
        lo80, hi80, lo95, hi95 = b
        self.n += 1
        self.in80 += lo80 <= y <= hi80
        self.in95 += lo95 <= y <= hi95
        self.w80 += hi80 - lo80
        self.w95 += hi95 - lo95
        self.is80 += interval_score(lo80, hi80, y, 0.2)
        self.is95 += interval_score(lo95, hi95, y, 0.05)

    def means(self) -> tuple[float, float, float, float, float, float]:
        """coverage80, coverage95, mean width80, width95, interval score80, score95."""
        n = self.n
        if not n:
            return (NAN,) * 6
        return (
            self.in80 / n,
            self.in95 / n,
            self.w80 / n,
            self.w95 / n,
            self.is80 / n,
            self.is95 / n,
        )

    def state(self) -> list[float]:
        return [self.n, self.in80, self.in95, self.w80, self.w95, self.is80, self.is95]

    def load(self, flat: list[float]) -> None:
        self.n, self.in80, self.in95 = (int(v) for v in flat[:3])
        self.w80, self.w95, self.is80, self.is95 = (float(v) for v in flat[3:7])


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
    pinball: float = 0.0
    served: _BandAcc = field(default_factory=_BandAcc)
    network: _BandAcc = field(default_factory=_BandAcc)
    simple: _BandAcc = field(default_factory=_BandAcc)
    lag: int = 0  # cached best lag (the search is the one costly part of a row)
    lag_n: int = -1  # n when ``lag`` was computed
    recent: deque[tuple[int, float, float]] = field(default_factory=deque)  # (t, pred, y)
    widths: deque[float] = field(default_factory=deque)
    widths95: deque[float] = field(default_factory=deque)


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
            h: _Acc(
                recent=deque(maxlen=history),
                widths=deque(maxlen=history),
                widths95=deque(maxlen=history),
            )
            for h in horizons
        }

    def score(
        self,
        horizon: int,
        t: int,
        y: float,
        pred: float,
        raw: float,
        drift: float,
        served: Band,
        network: Band | None = None,
        simple: Band | None = None,
    ) -> None:
        """Score one matured prediction made at bar index ``t`` whose realised log return is ``y``.

        ``served``, ``network`` and ``simple`` are the bands issued then (lo80, hi80, lo95, hi95);
        without the last two only the served band is scored.
        """
        lo80, hi80, lo95, hi95 = served
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
        a.recent.append((t, pred, y))
        a.widths.append(hi80 - lo80)
        a.widths95.append(hi95 - lo95)
        a.served.add(served, y)
        if network is not None:
            a.network.add(network, y)
        if simple is not None:
            a.simple.add(simple, y)
        a.pinball += 0.2 * (
            pinball(lo95, 0.025, y)
            + pinball(lo80, 0.1, y)
            + pinball(pred, 0.5, y)
            + pinball(hi80, 0.9, y)
            + pinball(hi95, 0.975, y)
        )

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
        _, _, mw80, mw95, is80, is95 = a.served.means()
        nc80, nc95, nw80, nw95, nis80, nis95 = a.network.means()
        sc80, sc95, sw80, sw95, sis80, sis95 = a.simple.means()
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
            coverage80=a.served.in80 / n,
            coverage95=a.served.in95 / n,
            width80=statistics.median(a.widths) if a.widths else NAN,
            best_lag=a.lag,
            mae_drift=a.abs_d / n,
            width95=statistics.median(a.widths95) if a.widths95 else NAN,
            mean_width80=mw80,
            mean_width95=mw95,
            interval_score80=is80,
            interval_score95=is95,
            pinball=a.pinball / n,
            network_coverage80=nc80,
            network_coverage95=nc95,
            network_width80=nw80,
            network_width95=nw95,
            network_interval_score80=nis80,
            network_interval_score95=nis95,
            ewma_band_coverage80=sc80,
            ewma_band_coverage95=sc95,
            ewma_band_width80=sw80,
            ewma_band_width95=sw95,
            ewma_band_interval_score80=sis80,
            ewma_band_interval_score95=sis95,
        )

    def rows(self, exact: bool = True) -> tuple[HorizonMetrics, ...]:
        return tuple(self.row(h, exact) for h in self.horizons)

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint (lists of numbers only: loadable with weights_only=True)."""
        out: dict[str, Any] = {}
        for h, a in self._acc.items():
            out[str(h)] = {
                "sums": [a.abs_m, a.sq_m, a.abs_p, a.sq_p, a.abs_d, a.dir_hits, a.pinball],
                "counts": [a.n, a.dir_n, a.served.in80, a.served.in95],
                "recent": [list(r) for r in a.recent],
                "widths": list(a.widths),
                "widths95": list(a.widths95),
                "bands": [a.served.state(), a.network.state(), a.simple.state()],
            }
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        for h, a in self._acc.items():
            s = state.get(str(h))
            if s is None:
                continue
            sums = [float(v) for v in s["sums"]]
            a.abs_m, a.sq_m, a.abs_p, a.sq_p, a.abs_d, a.dir_hits = sums[:6]
            a.pinball = sums[6] if len(sums) > 6 else 0.0
            # The served band's hits are restored with its sums ("bands"); the counts keep them
            # too, so the saved layout is the same as before.
            a.n, a.dir_n = (int(v) for v in s["counts"][:2])
            a.recent.clear()
            a.recent.extend((int(t), float(r), float(y)) for t, r, y in s["recent"])
            a.widths.clear()
            a.widths.extend(float(w) for w in s["widths"])
            a.widths95.clear()
            a.widths95.extend(float(w) for w in s.get("widths95", ()))
            for acc, flat in zip((a.served, a.network, a.simple), s.get("bands", ())):
                acc.load([float(v) for v in flat])


_BAND_NAMES = {"network": "the network's band", "simple": "the simple band", "blend": "a blend"}


def explain_band(row: HorizonMetrics) -> str:
    """Which band is served at a horizon and why, in words (the metrics panel's line).

    e.g. "60 min: simple band served; the network's band is 4 % worse over the last 3,000 minutes".
    """
    head = f"{row.horizon} min:"
    if not row.served80:
        return f"{head} no band scored yet"
    if row.served80 == row.served95:
        served = f"{_BAND_NAMES[row.served80]} served"
    else:
        served = f"{_BAND_NAMES[row.served80]} (80 %) and {_BAND_NAMES[row.served95]} (95 %) served"
    ratio = row.recent_ratio80
    if not math.isfinite(ratio) or row.recent_n == 0:
        return f"{head} {served}; nothing matured to compare yet"
    pct = round(abs(ratio - 1.0) * 100.0)
    if pct == 0:
        how = "as good as the simple band"
    else:
        how = f"{pct} % {'better' if ratio < 1.0 else 'worse'} than the simple band"
        if ratio < 1.0 and row.served80 == "simple":
            # Better on average, but not yet by the margin and the noise the choice asks for.
            how += ", not yet clearly"
    span = f"{min(row.recent_n, 3000):,}"
    return f"{head} {served}; the network's band is {how} over the last {span} minutes"
