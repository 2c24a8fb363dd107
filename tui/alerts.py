"""Alert rules checked against each new bar: a price level crossed, or a price outside the 95 % band."""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import Bar, ForecastEvent
from tui.format import format_price


@dataclass(frozen=True)
class Alert:
    """A notification to show: a level crossed or a surprise."""

    coin: str
    kind: str  # "level" | "surprise"
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

    def forget(self, coin: str) -> None:
        self._last.pop(coin, None)
        self._forecasts.pop(coin, None)
        self._last_surprise.pop(coin, None)

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
                    out.append(Alert(bar.coin, "level", f"{name} {way} {format_price(level)}",
                                     f"now {format_price(bar.price)} (was {format_price(prev)})"))
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
                    out.append(Alert(bar.coin, "surprise", f"{name}: surprise move",
                                     f"{format_price(bar.price)} is {way} the 95% band "
                                     f"({format_price(lo)}–{format_price(hi)}) forecast {horizon} min ago"))
        return out
