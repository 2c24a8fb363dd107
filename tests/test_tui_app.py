"""Pilot tests of the main screen: coin switching, every key, modals, coalesced redraws, quitting."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from tests.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.widgets.price_chart import ChartPlot
from tui.widgets.watchlist import Watchlist


@pytest.fixture(autouse=True)
def utc() -> None:
    # Axis labels are local time; pin the zone so the tests read the same everywhere.
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def sync(fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run an async Pilot test with asyncio (no async pytest plugin is installed)."""

    @functools.wraps(fn)
    def run() -> None:
        asyncio.run(fn())

    return run


def make(history: int = 120, state: Path | None = None, **kw: object) -> tuple[FakeEngine, CryptoApp]:
    engine = FakeEngine(history=history, **kw)  # type: ignore[arg-type]
    return engine, CryptoApp(engine, state_path=state)


async def settle(app: CryptoApp, pilot: object) -> None:
    """Let posted events arrive, then repaint now instead of waiting for the redraw timer."""
    await pilot.pause()  # type: ignore[attr-defined]
    app.flush()
    await pilot.pause()  # type: ignore[attr-defined]


def plot(app: CryptoApp) -> ChartPlot:
    return app.query_one(ChartPlot)


@sync
async def test_switch_coins_chart_follows() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert engine.started
        assert plot(app).title_text.startswith("Bitcoin")
        btc_last = plot(app).data.last_price
        assert btc_last == engine.snapshot("bitcoin").bars[-1].price
        await pilot.press("down")
        await settle(app, pilot)
        assert app.selected == "ethereum"
        assert plot(app).title_text.startswith("Ethereum")
        assert plot(app).data.last_price == engine.snapshot("ethereum").bars[-1].price
        await pilot.press("j")
        await settle(app, pilot)
        assert plot(app).title_text.startswith("Litecoin")
        await pilot.press("j")  # wraps around
        await settle(app, pilot)
        assert app.selected == "bitcoin"
        await pilot.press("k")
        await settle(app, pilot)
        assert app.selected == "litecoin"
        await pilot.press("up")
        await settle(app, pilot)
        assert app.selected == "ethereum"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert app.selected == "litecoin"
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert app.selected == "ethereum"
        await pilot.press("1")
        await settle(app, pilot)
        assert app.selected == "bitcoin"
        await pilot.press("3")
        await settle(app, pilot)
        assert app.selected == "litecoin"
        await pilot.press("9")  # no ninth coin: nothing happens
        await settle(app, pilot)
        assert app.selected == "litecoin"


@sync
async def test_new_bars_update_chart_and_watchlist() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        engine.advance(3)
        await settle(app, pilot)
        last = engine.snapshot("bitcoin").bars[-1]
        assert plot(app).data.last_price == last.price
        assert plot(app).data.now == last.ts
        rows = app.query_one(Watchlist).rows
        assert [r.coin for r in rows] == ["bitcoin", "ethereum", "litecoin"]
        assert rows[0].price == last.price
        assert rows[0].forecast is not None and rows[0].rel_mae == pytest.approx(0.98)
        # Past predictions at the selected horizon are drawn at the time they are about.
        f = engine.snapshot("bitcoin").forecasts[-1]
        last_pred = plot(app).data.predicted[-1][-1]
        assert last_pred == (f.ts + 60 * app.horizon, pytest.approx(f.price_at(app.horizon)))


@sync
async def test_redraws_are_coalesced() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        before = plot(app).draws
        engine.advance(200)  # 600+ events in one go, as a fast replay produces
        await pilot.pause()
        assert plot(app).draws <= before + 1  # at most the one timer-driven redraw so far
        await pilot.pause(0.3)
        assert plot(app).draws >= before + 1  # and the data did get drawn
        assert plot(app).data.last_price == engine.snapshot("bitcoin").bars[-1].price


@sync
async def test_other_coin_data_does_not_redraw_chart() -> None:
    engine, app = make(coins=("bitcoin", "ethereum"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        engine.remove_coin("bitcoin")
        await settle(app, pilot)
        assert app.selected == "ethereum"
        before = plot(app).draws
        engine.add_coin("litecoin")
        await settle(app, pilot)
        after_add = plot(app).draws
        app.engine._coins = ["litecoin"]  # only litecoin moves; its bars must not redraw ethereum
        engine.advance(2)
        await settle(app, pilot)
        assert plot(app).draws == after_add
        assert after_add >= before


@sync
async def test_quit_stops_engine_and_exits() -> None:
    engine, app = make()
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert app.stop_thread is not None
    app.stop_thread.join(5)
    assert not engine.started
