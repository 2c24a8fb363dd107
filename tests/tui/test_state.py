"""The UI state: one fold of the engine's events that every widget reads (no Textual here)."""

from __future__ import annotations

from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ForecastEvent,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from tui import state as parts
from tui.prefs import Prefs
from tui.state import FRESH_FORECAST, FRESH_WALL, STALE_AFTER, UIState

T0 = 1_700_000_040 - 1_700_000_040 % 60


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snap(coin: str, minutes: int = 30, price: float = 100.0) -> CoinSnapshot:
    bars = tuple(Bar(coin, T0 + 60 * i, price + i) for i in range(minutes))
    return CoinSnapshot(coin, bars)


def fc(coin: str, ts: int, price: float, move: float = 0.01) -> ForecastEvent:
    return ForecastEvent(coin, ts, price, (1, 5), (move / 5, move), (-0.01, -0.02), (0.01, 0.02))


def make(clock: Clock | None = None) -> UIState:
    st = UIState("DEMO", (1, 5, 15, 60), Prefs(), clock=clock or Clock())
    st.set_coins(("bitcoin", "ethereum"), snap)
    return st


def test_events_fold_into_one_view_that_rows_and_the_chart_both_read() -> None:
    st = make()
    assert st.selected is None or st.selected == "bitcoin"
    st.select("bitcoin")
    last = st.last_bar("bitcoin")
    assert last is not None
    bar = Bar("bitcoin", last.ts + 60, 555.0)
    assert st.apply(BarEvent(bar), snap) == {parts.WATCHLIST, parts.CHART_DATA}
    # The watchlist row and the chart's snapshot see the same minute, from the same fold.
    row = st.rows()[0]
    assert row.price == 555.0 and st.snapshot("bitcoin").bars[-1] == bar
    # A duplicate tells nothing new: nothing to redraw.
    assert st.apply(BarEvent(bar), snap) == set()
    # Another coin's bar: the watchlist only, never the chart of the selected coin.
    other = Bar("ethereum", last.ts + 60, 7.0)
    assert st.apply(BarEvent(other), snap) == {parts.WATCHLIST}
    m = MetricsEvent("bitcoin", ())
    assert st.apply(m, snap) == {parts.WATCHLIST, parts.METRICS}
    t = TrainEvent("bitcoin", "warming up")
    assert st.apply(t, snap) == {parts.WATCHLIST, parts.MODEL, parts.CHART_DATA}
    assert st.apply(StatusEvent("demo", "ok"), snap) == {parts.STATUS, parts.CHART_DATA}
    assert st.apply(BarEvent(Bar("nobody", T0, 1.0)), snap) == set()


def test_a_new_coin_is_seeded_and_a_snapshot_reseeds_without_touching_others() -> None:
    st = make()
    st.select("ethereum")
    eth_before = st.snapshot("ethereum")
    assert st.apply(CoinsEvent(("bitcoin", "ethereum", "litecoin")), snap) == {parts.ALL}
    assert len(st.snapshot("litecoin").bars) == 30
    # A snapshot of one coin (a reset, a resync) leaves the others' views as they are.
    st.apply(SnapshotEvent((snap("bitcoin", 5, 9.0),)), snap)
    assert st.last_price("bitcoin") == 13.0
    assert st.snapshot("ethereum") == eth_before
    # Removing the selected coin selects the one that took its place.
    st.apply(CoinsEvent(("bitcoin", "litecoin")), snap)
    assert st.selected == "litecoin" and "ethereum" not in st.views


def test_forecasts_are_current_while_recent_in_market_or_wall_time() -> None:
    clock = Clock()
    st = make(clock)
    last = st.last_bar("bitcoin")
    assert last is not None
    st.apply(ForecastEvent("bitcoin", last.ts, last.price, (5,), (0.0,)), snap)
    assert st.current_forecast("bitcoin") is not None
    # A fast replay moves the bars ten minutes on while the model is busy for a moment ...
    for i in range(1, 11):
        st.apply(BarEvent(Bar("bitcoin", last.ts + 60 * i, last.price)), snap)
    assert 600 > FRESH_FORECAST
    assert st.current_forecast("bitcoin") is not None  # ... its word still stands
    clock.now += FRESH_WALL + 1
    assert st.current_forecast("bitcoin") is None  # and not for long


def test_a_stale_coin_has_no_forecast_for_now() -> None:
    st = make()
    last = st.last_bar("bitcoin")
    assert last is not None
    st.apply(fc("bitcoin", last.ts, last.price), snap)
    assert st.rows()[0].forecast is not None
    # Ethereum's prices go on for longer than STALE_AFTER; bitcoin's stopped.
    later = last.ts + STALE_AFTER + 120
    st.apply(BarEvent(Bar("ethereum", later, 1.0)), snap)
    assert st.stale_since("bitcoin") == last.ts
    row = st.rows()[0]
    assert row.stale and row.forecast is None
    assert st.current_forecast("bitcoin") is None


def test_labels_and_names_are_foreign_text() -> None:
    st = make()
    st.apply(CoinsEvent(("bitcoin", "ethereum"), labels=(("bitcoin", "b\x1b[2Jtc"),)), snap)
    assert st.label("bitcoin") == "BTC"  # the whole escape sequence goes, not just ESC
    assert st.label("ethereum") == "ETH"  # a well-known coin's symbol when none was sent
    st.names["ethereum"] = "Ether\x07eum"
    assert st.coin_title("ethereum") == "Ethereum"
    assert st.coin_title("wrapped-bitcoin") == "Wrapped Bitcoin"


def test_horizon_and_window_come_from_the_prefs_and_stay_valid() -> None:
    st = UIState("LIVE", (1, 15), Prefs(horizon=5, window="bogus"))
    assert st.horizon == 1 and st.window == "6h"
    assert st.step(1) is None  # no coins
