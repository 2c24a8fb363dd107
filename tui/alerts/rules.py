"""Alert rules: a price level crossed, a price outside the 95 % band (checked on each new bar), and
the chance of ending beyond a level passing a threshold (checked on each new forecast).

Each rule fires once per event a trader cares about, never once per wiggle:

- A level alert fires when the price crosses the level *by a margin*: the 80 % band's half-width
  for the next minute (a move the next minute makes only one time in ten), or 0.1 % of the level
  before the coin has a forecast. A price hovering at the level changes nothing. After an alert
  the level is quiet for ``COOLDOWN`` of market time and ``COOLDOWN_WALL`` of wall time (a fast
  replay plays minutes in a fraction of a second); a crossing back in that time is told when the
  quiet ends, if the price is still on the new side, so the last word is always the current one.
- A chance alert fires when the chance first reaches the threshold, and again only after it has
  fallen ``CHANCE_REARM`` below it (and the same quiet time has passed).
- A surprise (the price outside the 95 % band issued ``horizon`` minutes before) is told at most
  once per ``SURPRISE_QUIET_MIN`` minutes per coin.

Pure: no Textual; the clock is the bars' own minutes, and the wall clock is passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.events import Bar, ForecastEvent
from engine.forecast.portfolio import prob_beyond
from tui.format import format_price


@dataclass(frozen=True)
class Alert:
    """A notification to show: a level crossed, a chance passed or a surprise."""

    coin: str
    kind: str  # "level" | "surprise" | "chance"
    title: str
    message: str


SURPRISE_QUIET_MIN = 10  # minutes between two surprises of one coin
COOLDOWN = 5 * 60  # seconds of market time between two alerts of one level
COOLDOWN_WALL = 3.0  # seconds of wall time between two alerts of one level (fast replays)
CHANCE_REARM = 0.05  # the chance must fall this far below the threshold to be told again
FALLBACK_MARGIN = 0.001  # of the level, while the coin has no forecast to size the margin


@dataclass
class _Level:
    """One (coin, level) pair: the side the price is on, and what was last told."""

    side: int  # +1 above the level, -1 below (changes only by crossing it by the margin)
    told: int  # the side last told (the side the price started on, before any alert)
    told_ts: int | None = None  # market minute of the last alert
    told_wall: float = -math.inf


@dataclass
class _Chance:
    high: bool = False  # the chance is at or above the threshold (and was told, or is pending)
    told_ts: int | None = None
    told_wall: float = -math.inf


def _quiet(ts: int, wall: float, told_ts: int | None, told_wall: float) -> bool:
    """Whether an alert told at (``told_ts``, ``told_wall``) still keeps this one back."""
    return told_ts is not None and (ts - told_ts < COOLDOWN or wall - told_wall < COOLDOWN_WALL)


class AlertChecker:
    """Remembers each level's side, recent forecasts and what was told; lives on the UI thread."""

    def __init__(self) -> None:
        self._levels: dict[tuple[str, float], _Level] = {}
        self._chances: dict[tuple[str, float], _Chance] = {}
        self._forecasts: dict[str, dict[int, ForecastEvent]] = {}
        self._last_surprise: dict[str, int] = {}

    def forget(self, coin: str) -> None:
        self._forecasts.pop(coin, None)
        self._last_surprise.pop(coin, None)
        self._levels = {k: v for k, v in self._levels.items() if k[0] != coin}
        self._chances = {k: v for k, v in self._chances.items() if k[0] != coin}

    def add_forecast(self, f: ForecastEvent, keep_minutes: int = 61) -> None:
        fcs = self._forecasts.setdefault(f.coin, {})
        fcs[f.ts] = f
        cutoff = f.ts - 60 * keep_minutes
        for ts in [t for t in fcs if t < cutoff]:
            del fcs[ts]

    def margin(self, coin: str, level: float) -> float:
        """How far past a level the price must go to count as crossing it (price units)."""
        fcs = self._forecasts.get(coin)
        f = fcs[max(fcs)] if fcs else None
        if f is not None and f.lo80 and f.hi80 and f.horizons and f.price > 0:
            i = f.horizons.index(min(f.horizons))
            half = (f.hi80[i] - f.lo80[i]) / 2
            if math.isfinite(half) and half > 0:
                return f.price * math.expm1(half)
        return FALLBACK_MARGIN * level

    def check(
        self,
        bar: Bar,
        levels: list[float],
        horizon: int,
        surprise: bool,
        name: str,
        wall: float = 0.0,
    ) -> list[Alert]:
        """Alerts this bar raises; call once per bar, in time order (``wall``: the wall clock)."""
        out: list[Alert] = []
        for level in levels:
            alert = self._check_level(bar, level, name, wall)
            if alert is not None:
                out.append(alert)
        if surprise and not bar.filled:
            alert = self._check_surprise(bar, horizon, name)
            if alert is not None:
                out.append(alert)
        return out

    def _check_level(self, bar: Bar, level: float, name: str, wall: float) -> Alert | None:
        key = (bar.coin, level)
        p = bar.price
        st = self._levels.get(key)
        if st is None:
            side = 1 if p >= level else -1
            self._levels[key] = _Level(side, side)
            return None
        m = self.margin(bar.coin, level)
        if st.side < 0 and p >= level + m:
            st.side = 1
        elif st.side > 0 and p <= level - m:
            st.side = -1
        if st.side == st.told or _quiet(bar.ts, wall, st.told_ts, st.told_wall):
            return None
        st.told, st.told_ts, st.told_wall = st.side, bar.ts, wall
        way = "above" if st.side > 0 else "below"
        return Alert(
            bar.coin,
            "level",
            f"{name} {way} {format_price(level)}",
            f"now {format_price(p)}",
        )

    def _check_surprise(self, bar: Bar, horizon: int, name: str) -> Alert | None:
        f = self._forecasts.get(bar.coin, {}).get(bar.ts - 60 * horizon)
        if f is None or not f.lo95 or not f.hi95:
            return None
        lo = f.price_at(horizon, f.lo95)
        hi = f.price_at(horizon, f.hi95)
        last = self._last_surprise.get(bar.coin)
        if last is not None and bar.ts - last < 60 * SURPRISE_QUIET_MIN:
            return None
        if lo is None or hi is None or lo <= bar.price <= hi:
            return None
        self._last_surprise[bar.coin] = bar.ts
        way = "above" if bar.price > hi else "below"
        return Alert(
            bar.coin,
            "surprise",
            f"{name}: surprise move",
            f"{format_price(bar.price)} is {way} the 95% band "
            f"({format_price(lo)}–{format_price(hi)}) forecast {horizon} min ago",
        )

    def check_chances(
        self,
        f: ForecastEvent,
        levels: list[float],
        horizon: int,
        threshold: float | None,
        name: str,
        wall: float = 0.0,
    ) -> list[Alert]:
        """Alerts for levels whose chance of being passed at ``horizon`` has just risen to
        ``threshold`` (a fraction); told again only after it has fallen ``CHANCE_REARM`` below."""
        if threshold is None or not levels:
            return []
        out: list[Alert] = []
        for level in levels:
            p = prob_beyond(f, horizon, level)
            if p is None:
                continue
            st = self._chances.setdefault((f.coin, level), _Chance())
            if p < threshold - CHANCE_REARM:
                st.high = False
            if st.high or p < threshold or _quiet(f.ts, wall, st.told_ts, st.told_wall):
                continue
            st.high, st.told_ts, st.told_wall = True, f.ts, wall
            way = "above" if level > f.price else "below"
            out.append(
                Alert(
                    f.coin,
                    "chance",
                    f"{name}: {100 * p:.0f}% chance {way} {format_price(level)}",
                    f"in {horizon} min, from the served forecast (now "
                    f"{format_price(f.price)}; you asked at {100 * threshold:.0f}%)",
                )
            )
        return out


def chance_text(f: ForecastEvent | None, horizon: int, level: float) -> str:
    """ "23% above in 5 min" for a level, or "" without a served forecast."""
    p = prob_beyond(f, horizon, level) if f is not None else None
    if f is None or p is None:
        return ""
    way = "above" if level > f.price else "below"
    shown = "<1" if p < 0.005 else ">99" if p > 0.995 else f"{100 * p:.0f}"
    return f"{shown}% {way} in {horizon} min"
