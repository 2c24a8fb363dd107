"""Pure feature code: bars -> volatility-scaled model inputs and targets, from past data only.

The model never sees a price level. Each observed bar becomes one row of ``N_FEATURES`` numbers:
the bar's log return divided by the EWMA volatility known *before* the bar (winsorised), its absolute
value, the volatility regime at three scales (the short EWMA volatility against 2-hour, 12-hour and
1-day ones: volatility reverts, so long horizons need more than the short one), the bar's high-low
range in volatility units, the gap since the previous bar, the time of day and the day of the week,
and an optional cross-coin return (e.g. BTC's for other coins).

Targets are cumulative log returns ``log(p[t+h] / p[t])`` divided by ``vol[t] * sqrt(h)``, where
``vol[t]`` is known at ``t``: the network learns in units where every coin and regime looks alike.
No numpy: the venv does not ship it and torch does not need it here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

N_FEATURES = 12
CLIP = 5.0  # winsorisation bound for scaled inputs (in volatility units)
VOL_FLOOR = 1e-5  # 0.1 basis point per bar: flat markets must not divide by ~0
DEFAULT_VOL = 1e-3  # a first guess before any return is seen (typical 1-minute crypto move)


def clip(x: float, bound: float = CLIP) -> float:
    return max(-bound, min(bound, x))


def log_return(p0: float, p1: float) -> float:
    """Log return from ``p0`` to ``p1``; 0 for unusable (non-positive, non-finite) prices."""
    if not (p0 > 0.0 and p1 > 0.0 and math.isfinite(p0) and math.isfinite(p1)):
        return 0.0
    return math.log(p1 / p0)


def halflife_decay(halflife: float) -> float:
    """EWMA weight on the old value for a given half-life in bars."""
    return 0.5 ** (1.0 / max(halflife, 1e-9))


@dataclass
class Normaliser:
    """Running state turning a stream of bars into feature rows (the 'normaliser' of a checkpoint).

    ``update`` must be called once per observed bar, in time order; everything it uses is from the
    bar itself or earlier bars.
    """

    step_seconds: int = 60
    vol_halflife: float = 30.0  # bars; short so intervals follow volatility shifts
    long_halflife: float = 720.0  # bars; the slow reference for the volatility regime feature
    mid_halflife: float = 120.0  # bars; two more references, between and beyond
    day_halflife: float = 1440.0
    drift_halflife: float = 240.0  # bars; the EWMA drift baseline
    var: float = DEFAULT_VOL**2  # EWMA variance of per-bar log returns
    var_long: float = DEFAULT_VOL**2
    var_mid: float = DEFAULT_VOL**2
    var_day: float = DEFAULT_VOL**2
    drift: float = 0.0  # EWMA mean per-bar log return (baseline forecaster)
    last_price: float = 0.0
    last_index: int = -1  # ts // step_seconds of the last bar
    count: int = 0  # bars seen
    returns_seen: int = 0

    @property
    def vol(self) -> float:
        return max(math.sqrt(self.var), VOL_FLOOR)

    def index(self, ts: int) -> int:
        return ts // self.step_seconds

    def update(
        self,
        ts: int,
        price: float,
        high: float | None = None,
        low: float | None = None,
        ref: float | None = None,
    ) -> list[float]:
        """Ingest one bar and return its feature row (scaled with the volatility known before it)."""
        idx = self.index(ts)
        vol_prev = self.vol
        if self.count == 0 or self.last_price <= 0.0:
            r, dt = 0.0, 1
        else:
            r = log_return(self.last_price, price)
            dt = max(1, idx - self.last_index)
        z = clip(r / (vol_prev * math.sqrt(dt)))
        regime = clip(math.log(vol_prev / max(math.sqrt(self.var_long), VOL_FLOOR)), 3.0)
        regime_mid = clip(math.log(vol_prev / max(math.sqrt(self.var_mid), VOL_FLOOR)), 3.0)
        regime_day = clip(math.log(vol_prev / max(math.sqrt(self.var_day), VOL_FLOOR)), 3.0)
        if high is not None and low is not None and high > 0.0 and low > 0.0 and high >= low:
            rng = clip(math.log(high / low) / vol_prev, CLIP)
        else:
            rng = 0.0
        gap = min(math.log(dt), 5.0)
        day = (ts % 86400) / 86400.0
        week = ((ts // 86400 + 3) % 7) / 7.0  # 0 on Mondays (1970-01-01 was a Thursday)
        row = [
            z,
            abs(z),
            regime,
            rng,
            gap,
            math.sin(2 * math.pi * day),
            math.cos(2 * math.pi * day),
            clip(ref) if ref is not None and math.isfinite(ref) else 0.0,
            regime_mid,
            regime_day,
            math.sin(2 * math.pi * week),
            math.cos(2 * math.pi * week),
        ]
        if self.count > 0:
            # Per-bar variance of a gap's return; winsorised so one jump cannot blow the scale up.
            r2 = min(r * r / dt, (CLIP * vol_prev) ** 2)
            if self.returns_seen == 0 and r2 > 0.0:
                self.var = self.var_long = self.var_mid = self.var_day = r2
            else:
                a = halflife_decay(self.vol_halflife)
                self.var = a * self.var + (1 - a) * r2
                b = halflife_decay(self.long_halflife)
                self.var_long = b * self.var_long + (1 - b) * r2
                b = halflife_decay(self.mid_halflife)
                self.var_mid = b * self.var_mid + (1 - b) * r2
                b = halflife_decay(self.day_halflife)
                self.var_day = b * self.var_day + (1 - b) * r2
            c = halflife_decay(self.drift_halflife)
            self.drift = c * self.drift + (1 - c) * clip(r / dt, CLIP * vol_prev)
            self.returns_seen += 1
        self.last_price = price
        self.last_index = idx
        self.count += 1
        return row

    def scale(self, horizon: int) -> float:
        """Target scale for a horizon of ``horizon`` bars, known now."""
        return self.vol * math.sqrt(horizon)

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normaliser:
        return cls(**state)


def scaled_target(p0: float, p1: float, scale: float) -> float:
    """The training target: a winsorised, volatility-scaled cumulative log return."""
    return clip(log_return(p0, p1) / scale, 2 * CLIP)
