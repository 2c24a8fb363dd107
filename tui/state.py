"""The UI's one state: the engine's events folded on the UI thread; every widget reads it.

``UIState.apply(event)`` folds one event and says which parts of the screen it changed; the
watchlist rows, the chart's snapshot, the model panel's view, the last price and the labels are all
read from here, so two widgets can never show two different prices for the same minute. Owned and
mutated by the UI thread only (events arrive as messages); no Textual here.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    Event,
    ForecastEvent,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.sources.coins import BY_ID as KNOWN_COINS
from engine.view import CoinView
from tui.chart_data import WINDOWS
from tui.format import last_per_cell
from tui.notices import unknown_words
from tui.prefs import Prefs
from tui.safe_text import clean

HISTORY_MINUTES = 1440  # bars kept per coin: the longest chart window
# Forecasts kept per coin: a day of them, plus the longest horizon, so the chart's past band (the
# band issued h minutes before each minute shown) is complete at the 24 h window.
FORECAST_HISTORY = HISTORY_MINUTES + 60
# A coin whose newest minute is this far behind the newest of any coin has stopped (market time,
# so a fast replay and the live market are judged alike).
STALE_AFTER = 15 * 60
# A forecast older than this (seconds of market time before the coin's last price) is not a
# forecast for now, unless it arrived within FRESH_WALL seconds: a fast replay outruns a model
# that is busy for a moment (pre-training a coin just reset), and its latest word still stands.
FRESH_FORECAST = 180
FRESH_WALL = 5.0
SPARK_CELLS = 8  # the watchlist's trend column
# Bounds on foreign text: a coin's name and symbol (from CoinGecko, a remote engine, state files).
NAME_LIMIT = 48
LABEL_LIMIT = 12

# The parts of the screen an event can change (the main screen redraws only those).
ALL = "all"
WATCHLIST = "watchlist"
CHART = "chart"  # redraw the chart at once (a key, a resize)
CHART_DATA = "chart-data"  # new data for the chart: redrawn at most every CHART_DATA_INTERVAL
METRICS = "metrics"
MODEL = "model"
STATUS = "status"
HEADER = "header"


@dataclass(frozen=True)
class CoinRow:
    """What one watchlist row shows."""

    coin: str
    label: str  # short display name (symbol)
    price: float | None = None
    change: float | None = None  # relative change over the chart window
    forecast: float | None = None  # predicted relative change at the selected horizon
    rel_mae: float | None = None  # model MAE / persistence MAE at the selected horizon
    spark: tuple[float, ...] = ()
    unknown: bool = False
    state: str = ""  # training state, shown as a marker
    note: str = ""  # why an unknown coin has no price ("no demo data", "unknown coin")
    stale: bool = False  # its prices stopped while the others' go on


@dataclass(frozen=True)
class ModelView:
    """What the model panel shows for the selected coin."""

    train: TrainEvent | None = None
    metrics: MetricsEvent | None = None
    forecast: ForecastEvent | None = None
    horizon: int = 5
    paused: bool = False  # the app's own switch: said in the model panel, and only there
    no_data: str = ""  # set when the source has nothing for the coin ("no demo data for Solana")


def coin_name(coin: str) -> str:
    """A readable name from a CoinGecko id: "wrapped-bitcoin" -> "Wrapped Bitcoin"."""
    return " ".join(part.capitalize() for part in coin.replace("_", "-").split("-"))


def _ts(bar: Bar) -> int:
    return bar.ts


class UIState:
    """Coins, selection, per-coin views, status and labels, as the engine's events told them."""

    def __init__(
        self,
        mode: str,
        horizons: Iterable[int],
        prefs: Prefs,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.clock = clock
        self.horizons: tuple[int, ...] = tuple(horizons) or (1,)
        self.prefs = prefs
        if prefs.horizon not in self.horizons:
            prefs.horizon = 5 if 5 in self.horizons else self.horizons[0]
        self.coins: tuple[str, ...] = ()
        self.selected: str | None = None
        self.views: dict[str, CoinView] = {}
        self.unknown: set[str] = set()
        self.labels: dict[str, str] = {}  # coin -> symbol, as the engine or a search said
        self.names: dict[str, str] = {}  # coin -> name, from a search result
        self.status: StatusEvent | None = None
        self.paused = False
        self._newest = 0  # the newest minute of any coin (for staleness)
        self._forecast_at: dict[str, float] = {}  # coin -> wall clock of its newest forecast

    # What the user chose -------------------------------------------------------------------------
    @property
    def horizon(self) -> int:
        return self.prefs.horizon or self.horizons[0]

    @property
    def window(self) -> str:
        return self.prefs.window if self.prefs.window in WINDOWS else "6h"

    # Names: every view of an id, name or symbol goes through these two (cleaned and bounded) -----
    def label(self, coin: str) -> str:
        """The coin's symbol, upper case ("BTC"), or its id cut short when none is known."""
        symbol = self.labels.get(coin)
        return clean(symbol, LABEL_LIMIT).upper() if symbol else clean(coin[:10], LABEL_LIMIT)

    def coin_title(self, coin: str) -> str:
        return clean(self.names.get(coin) or coin_name(coin), NAME_LIMIT)

    # Folding events ----------------------------------------------------------------------------
    def set_coins(self, coins: Iterable[str], snapshot: Callable[[str], CoinSnapshot]) -> None:
        """The watchlist is now ``coins``; a new coin's view starts from ``snapshot(coin)``."""
        coins = tuple(coins)
        old = self.coins
        self.coins = coins
        for coin in coins:
            # Symbols of well-known coins, for engines that send no labels (a remote one joining late).
            if coin not in self.labels and coin in KNOWN_COINS:
                self.labels[coin] = KNOWN_COINS[coin].symbol
            if coin not in self.views:
                self.views[coin] = CoinView(coin, HISTORY_MINUTES, FORECAST_HISTORY)
                self.seed(snapshot(coin))
        for coin in set(self.views) - set(coins):
            del self.views[coin]
            self._forecast_at.pop(coin, None)
        self.unknown &= set(coins)
        if self.selected not in coins:
            if not coins:
                self.selected = None
            else:
                # Keep the position in the list: the coin that took the removed one's place.
                i = old.index(self.selected) if self.selected in old else 0
                self.selected = coins[min(i, len(coins) - 1)]
        self._newest = max((v.bars[-1].ts for v in self.views.values() if v.bars), default=0)

    def seed(self, snap: CoinSnapshot) -> None:
        view = self.views.get(snap.coin)
        if view is not None:
            view.seed(snap)
            if snap.bars:
                self._newest = max(self._newest, snap.bars[-1].ts)

    def apply(self, ev: Event, snapshot: Callable[[str], CoinSnapshot]) -> set[str]:
        """Fold ``ev`` in; the parts of the screen it changed (empty: nothing to redraw).

        ``snapshot`` seeds the views of coins a ``CoinsEvent`` adds."""
        if isinstance(ev, BarEvent | ForecastEvent | MetricsEvent | TrainEvent):
            coin = ev.bar.coin if isinstance(ev, BarEvent) else ev.coin
            view = self.views.get(coin)
            if view is None or not view.apply(ev):
                return set()
            mine = coin == self.selected
            if isinstance(ev, BarEvent):
                self._newest = max(self._newest, ev.bar.ts)
                return {WATCHLIST, CHART_DATA} if mine else {WATCHLIST}
            if isinstance(ev, ForecastEvent):
                self._forecast_at[coin] = self.clock()
                return {WATCHLIST, CHART_DATA} if mine else {WATCHLIST}
            if isinstance(ev, MetricsEvent):
                return {WATCHLIST, METRICS} if mine else {WATCHLIST}
            parts = {WATCHLIST, MODEL} if mine else {WATCHLIST}
            if mine and ev.state in ("warming up", "pretraining"):
                parts.add(CHART_DATA)  # the chart's notice speaks of warming up
            return parts
        if isinstance(ev, StatusEvent):
            self.status = ev
            return {STATUS, CHART_DATA}
        if isinstance(ev, CoinsEvent):
            self.unknown |= set(ev.unknown)
            self.labels.update(dict(ev.labels))
            self.set_coins(ev.coins, snapshot)
            return {ALL}
        if isinstance(ev, SnapshotEvent):
            for snap in ev.coins:
                self.seed(snap)
            if ev.status is not None:
                self.status = ev.status
            return {ALL}
        return set()  # ErrorEvent: said by the app as a notification

    # Selection ---------------------------------------------------------------------------------
    def select(self, coin: str | None) -> bool:
        """Select ``coin``; False when it is already selected or not watched."""
        if coin == self.selected or (coin is not None and coin not in self.coins):
            return False
        self.selected = coin
        return True

    def step(self, delta: int) -> str | None:
        """The coin ``delta`` rows from the selected one (wrapping), or None without coins."""
        if not self.coins:
            return None
        i = self.coins.index(self.selected) if self.selected in self.coins else 0
        return self.coins[(i + delta) % len(self.coins)]

    # Reading ----------------------------------------------------------------------------------
    def view(self, coin: str | None) -> CoinView | None:
        return self.views.get(coin) if coin else None

    def last_bar(self, coin: str | None) -> Bar | None:
        view = self.view(coin)
        return view.bars[-1] if view is not None and view.bars else None

    def last_price(self, coin: str | None) -> float | None:
        bar = self.last_bar(coin)
        return bar.price if bar is not None else None

    def snapshot(self, coin: str | None) -> CoinSnapshot:
        """What the chart draws: the coin's bars and forecasts as this state holds them."""
        view = self.view(coin)
        return view.snapshot() if view is not None else CoinSnapshot(coin or "")

    def stale_since(self, coin: str | None) -> int | None:
        """The minute of ``coin``'s last price when its prices stopped while others' go on."""
        bar = self.last_bar(coin)
        if bar is None or coin in self.unknown:
            return None
        return bar.ts if self._newest - bar.ts > STALE_AFTER else None

    def current_forecast(self, coin: str | None) -> ForecastEvent | None:
        """The coin's newest forecast if it is one for now: not older than a few minutes before
        its last price (or just arrived), and not of a coin whose prices stopped (no cone, no
        range for those)."""
        view = self.view(coin)
        if coin is None or view is None or not view.bars or self.stale_since(coin) is not None:
            return None
        f = view.forecast
        if f is None:
            return None
        if f.ts >= view.bars[-1].ts - FRESH_FORECAST:
            return f
        arrived = self._forecast_at.get(coin)
        return f if arrived is not None and self.clock() - arrived <= FRESH_WALL else None

    def unknown_words(self) -> str:
        return unknown_words(self.mode, self.status.source if self.status else "")

    def rows(self) -> tuple[CoinRow, ...]:
        """The watchlist's rows, in watchlist order, at the selected window and horizon."""
        rows = []
        window = WINDOWS[self.window]
        note = self.unknown_words()
        horizon = self.horizon
        for coin in self.coins:
            view = self.views.get(coin)
            bars = view.bars if view is not None else ()
            price = bars[-1].price if bars else None
            change = None
            spark: tuple[float, ...] = ()
            if bars:
                i = bisect.bisect_left(bars, bars[-1].ts - window, key=_ts)
                first = bars[i].price if i < len(bars) else None
                if first and price is not None and len(bars) - i > 1:
                    change = price / first - 1
                # Only the values the sparkline shows, not the whole window: rows are compared
                # on every redraw.
                spark = tuple(last_per_cell([b.price for b in islice(bars, i, None)], SPARK_CELLS))
            fc = None
            f = self.current_forecast(coin)
            if f is not None:
                p = f.price_at(horizon)
                if p is not None and f.price:
                    fc = p / f.price - 1
            rel = None
            metrics = view.metrics if view is not None else None
            if metrics is not None:
                row = next((r for r in metrics.rows if r.horizon == horizon), None)
                if row is not None and row.n > 0 and math.isfinite(row.rel_mae):
                    rel = row.rel_mae
            train = view.train if view is not None else None
            rows.append(
                CoinRow(
                    coin,
                    self.label(coin),
                    price,
                    change,
                    fc,
                    rel,
                    spark,
                    coin in self.unknown,
                    train.state if train else "",
                    note,
                    self.stale_since(coin) is not None,
                )
            )
        return tuple(rows)

    def model_view(self) -> ModelView:
        """The model panel's view of the selected coin."""
        coin = self.selected
        view = self.view(coin)
        no_data = ""
        if coin is not None and coin in self.unknown:
            words = self.unknown_words()
            no_data = f"{words} for {self.coin_title(coin)}" if words != "unknown coin" else words
        return ModelView(
            view.train if view else None,
            view.metrics if view else None,
            view.forecast if view else None,
            self.horizon,
            self.paused,
            no_data,
        )

    def demo_coins(self) -> str:
        """The coins a demo has data for, in words ("Bitcoin, Ethereum and Litecoin")."""
        if self.mode != "DEMO" or (self.status and self.status.source == "replay"):
            return ""
        from engine.sources.replay import DEMO_NAMES

        names = [name for name, _symbol in DEMO_NAMES.values()]
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


__all__ = [
    "ALL",
    "CHART",
    "CHART_DATA",
    "HEADER",
    "METRICS",
    "MODEL",
    "STATUS",
    "WATCHLIST",
    "CoinRow",
    "ModelView",
    "UIState",
    "coin_name",
]
