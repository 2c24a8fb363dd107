"""Alert rules: a price level crossed, a price outside the 95 % band (checked on each new bar), and
the chance of ending beyond a level passing a threshold (checked on each new forecast)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import Bar, ForecastEvent
from engine.forecast.portfolio import prob_beyond
from tui.format import format_price


@dataclass(frozen=True)
class Alert:
    """A notification to show: a level crossed or a surprise."""

    coin: str
    kind: str  # "level" | "surprise" | "chance"
    title: str
    message: str


# Surprises within this many minutes of the last one (same coin) are not repeated.
SURPRISE_QUIET_MIN = 10


class AlertChecker:
    """Remembers the last price and recent forecasts per coin; lives on the UI thread."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._forecasts: dict[str, dict[int, ForecastEvent]] = {}
        self._last_surprise: dict[str, int] = {}
        # (coin, level) whose chance is at or above the threshold: told once, until it falls back.
        self._chance_high: set[tuple[str, float]] = set()

    def forget(self, coin: str) -> None:
        self._last.pop(coin, None)
        self._forecasts.pop(coin, None)
        self._last_surprise.pop(coin, None)
        self._chance_high = {k for k in self._chance_high if k[0] != coin}

    def add_forecast(self, f: ForecastEvent, keep_minutes: int = 61) -> None:
        fcs = self._forecasts.setdefault(f.coin, {})
        fcs[f.ts] = f
        cutoff = f.ts - 60 * keep_minutes
        for ts in [t for t in fcs if t < cutoff]:
            del fcs[ts]

    def check(
        self, bar: Bar, levels: list[float], horizon: int, surprise: bool, name: str
    ) -> list[Alert]:
        """Alerts this bar raises; call once per bar, in time order."""
        out: list[Alert] = []
        prev = self._last.get(bar.coin)
        self._last[bar.coin] = bar.price
        if prev is not None:
            for level in levels:
                if prev < level <= bar.price or prev > level >= bar.price:
                    way = "above" if bar.price >= level else "below"
                    out.append(
                        Alert(
                            bar.coin,
                            "level",
                            f"{name} {way} {format_price(level)}",
                            f"now {format_price(bar.price)} (was {format_price(prev)})",
                        )
                    )
        if surprise and not bar.filled:
            f = self._forecasts.get(bar.coin, {}).get(bar.ts - 60 * horizon)
            if f is not None and f.lo95 and f.hi95:
                lo = f.price_at(horizon, f.lo95)
                hi = f.price_at(horizon, f.hi95)
                last = self._last_surprise.get(bar.coin)
                quiet = last is not None and bar.ts - last < 60 * SURPRISE_QUIET_MIN
                if lo is not None and hi is not None and not lo <= bar.price <= hi and not quiet:
                    self._last_surprise[bar.coin] = bar.ts
                    way = "above" if bar.price > hi else "below"
                    out.append(
                        Alert(
                            bar.coin,
                            "surprise",
                            f"{name}: surprise move",
                            f"{format_price(bar.price)} is {way} the 95% band "
                            f"({format_price(lo)}–{format_price(hi)}) forecast {horizon} min ago",
                        )
                    )
        return out

    def check_chances(
        self,
        f: ForecastEvent,
        levels: list[float],
        horizon: int,
        threshold: float | None,
        name: str,
    ) -> list[Alert]:
        """Alerts for levels whose chance of being passed at ``horizon`` has just risen to
        ``threshold`` (a fraction); told again only after it has fallen below it."""
        if threshold is None or not levels:
            return []
        out: list[Alert] = []
        for level in levels:
            p = prob_beyond(f, horizon, level)
            key = (f.coin, level)
            if p is None:
                continue
            if p < threshold:
                self._chance_high.discard(key)
            elif key not in self._chance_high:
                self._chance_high.add(key)
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
    if p is None:
        return ""
    way = "above" if level > f.price else "below"  # type: ignore[union-attr]
    shown = "<1" if p < 0.005 else ">99" if p > 0.995 else f"{100 * p:.0f}"
    return f"{shown}% {way} in {horizon} min"
