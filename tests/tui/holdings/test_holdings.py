"""Pilot tests of holdings: the dialog, a bad amount refused, the panel's rows, total and range,
the privacy mask, and probabilities on price alerts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Input

from engine.forecast.portfolio import ValueRange
from engine.settings.holdings import Holding, load_holdings, save_holdings
from tests.conftest import banded, settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.holdings.panel import MASK, HoldingsPanel, build_view, format_money, money_decimals

pytestmark = pytest.mark.usefixtures("utc")


def panel_text(app: CryptoApp) -> str:
    return app.screen.query_one(HoldingsPanel).render().plain


@sync
async def test_dialog_saves_edits_and_removes(tmp_path: Path) -> None:
    from tui.holdings.dialog import HoldingScreen

    state = tmp_path / "ui.json"
    engine = FakeEngine(history=200)
    app = CryptoApp(engine, state_path=state)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert not app.screen.query_one(HoldingsPanel).display
        await pilot.press("H")
        await pilot.pause()
        assert isinstance(app.screen, HoldingScreen)
        await pilot.press(*"0.5")
        await pilot.click("#holding-cost")
        await pilot.press(*"10,000", "enter")
        await settle(app, pilot)
        assert load_holdings(tmp_path / "holdings.json") == {
            "bitcoin": Holding("bitcoin", 0.5, 10_000.0, "usd")
        }
        assert "ui" not in json.loads((tmp_path / "holdings.json").read_text())
        assert app.screen.query_one(HoldingsPanel).display
        assert "total" in panel_text(app) and "BTC" in panel_text(app)
        # Edit: the fields come back filled in.
        await pilot.press("H")
        await pilot.pause()
        assert app.screen.query_one("#holding-amount", Input).value == "0.5"
        await pilot.click("#remove")
        await settle(app, pilot)
        assert load_holdings(tmp_path / "holdings.json") == {}
        assert not app.screen.query_one(HoldingsPanel).display


@sync
async def test_bad_amount_refused_nothing_stored(tmp_path: Path) -> None:
    from tui.holdings.dialog import HoldingScreen

    engine = FakeEngine(history=200)
    app = CryptoApp(engine, state_path=tmp_path / "ui.json")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        for bad in ("-1", "lots", "1e400"):
            await pilot.press("H")
            await pilot.pause()
            await pilot.press(*bad, "enter")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HoldingScreen)  # still open, saying why
            msg = str(screen.query_one("#holding-error").render())
            assert "amount" in msg and bad in msg
            await pilot.press("escape")
            await pilot.pause()
        assert not (tmp_path / "holdings.json").exists() and app.holdings.holdings == {}


@sync
async def test_privacy_masks_amounts_not_storage(tmp_path: Path) -> None:
    save_holdings(
        tmp_path / "holdings.json",
        {"bitcoin": Holding("bitcoin", 0.5, 1000.0), "ethereum": Holding("ethereum", 4.0)},
    )
    before = (tmp_path / "holdings.json").read_bytes()
    engine = FakeEngine(history=200)
    app = CryptoApp(engine, state_path=tmp_path / "ui.json")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        shown = panel_text(app)
        value = 0.5 * engine.snapshot("bitcoin").bars[-1].price
        # The value column holds amounts above 1,000: one rule, whole units for the column.
        assert value > 1000 and format_money(value, 0) in shown
        await pilot.press("m")
        await settle(app, pilot)
        masked = panel_text(app)
        assert MASK in masked and format_money(value, 0) not in masked
        assert not any(ch.isdigit() for line in masked.splitlines()[1:] for ch in line), masked
        assert (tmp_path / "holdings.json").read_bytes() == before
        assert json.loads((tmp_path / "ui.json").read_text())["ui"]["privacy"] is True
        await pilot.press("m")
        await settle(app, pilot)
        assert format_money(value, 0) in panel_text(app)


@sync
async def test_the_total_range_is_scored_live_as_minutes_mature(tmp_path: Path) -> None:
    save_holdings(
        tmp_path / "holdings.json",
        {"bitcoin": Holding("bitcoin", 0.5), "ethereum": Holding("ethereum", 4.0)},
    )
    engine = FakeEngine(history=200)
    app = CryptoApp(engine, state_path=tmp_path / "ui.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert "range held" not in panel_text(app)  # nothing has matured yet
        for _ in range(12):
            engine.advance(1)
            await settle(app, pilot)
        score = app.holdings.range_score.scores[app.state.horizon]
        assert score.n >= 5 and 0 <= score.hits <= score.n
        assert f"range held {100 * score.hits / score.n:.0f} % of {score.n:,}" in panel_text(app)


def test_live_range_score_uses_the_amounts_at_issue_and_skips_gaps() -> None:
    from engine.forecast.portfolio import LiveRangeScore

    live = LiveRangeScore()
    prices = {("a", 300): 11.0, ("b", 300): 20.0, ("a", 360): 30.0}
    live.issue(0, 5, {"a": 1.0, "b": 1.0}, ValueRange(25.0, 35.0, 30.0))
    live.issue(60, 5, {"a": 1.0, "b": 1.0}, ValueRange(25.0, 35.0, 30.0))  # b missing at 360
    live.mature(lambda c, ts: prices.get((c, ts)), now=360)
    score = live.scores[5]
    assert score.n == 1 and score.hits == 1  # 11 + 20 = 31 is inside 25..35
    assert live.pending == {}


def test_view_total_row_and_range() -> None:
    hs = {
        "bitcoin": Holding("bitcoin", 1.0, 90.0),
        "ethereum": Holding("ethereum", 2.0),
        "gone": Holding("gone", 3.0),
    }
    prices = {"bitcoin": (0, 100.0), "ethereum": (0, 50.0)}
    forecasts = {
        "bitcoin": banded("bitcoin", 100.0, 0.01),
        "ethereum": banded("ethereum", 50.0, 0.02),
    }
    corr = {("bitcoin", "ethereum"): 0.5, ("ethereum", "bitcoin"): 0.5}
    v = build_view(hs, ("bitcoin", "ethereum"), {}, prices, forecasts, 5, corr, "usd")
    assert [r.coin for r in v.rows] == ["bitcoin", "ethereum", "gone"]
    assert v.total == 200.0 and v.total_pnl == 10.0
    assert v.rows[0].share == 0.5 and v.rows[2].value is None
    d1 = 100 * math.sinh(0.01)
    d2 = 100 * math.sinh(0.02)
    assert v.total_range is not None
    assert (v.total_range.hi - v.total_range.lo) / 2 == pytest.approx(
        math.sqrt(d1 * d1 + d2 * d2 + d1 * d2)
    )
    # A stale forecast for one coin: no total range rather than one too narrow.
    stale = dict(forecasts, ethereum=banded("ethereum", 50.0, 0.02, ts=-3600))
    assert (
        build_view(hs, ("bitcoin", "ethereum"), {}, prices, stale, 5, corr, "usd").total_range
        is None
    )
    # A cost basis in another currency gives no P&L in this one.
    eur = {"bitcoin": Holding("bitcoin", 1.0, 90.0, "eur")}
    assert build_view(eur, ("bitcoin",), {}, prices, forecasts, 5, {}, "usd").total_pnl is None
    assert isinstance(ValueRange(0, 1, 0.5), ValueRange)
    assert isinstance(Text(format_money(1234567.0)), Text)


def test_money_is_formatted_by_one_rule() -> None:
    # One rule per column: cents while every value is under 1,000, whole units otherwise.
    assert money_decimals([763.1, 12.0, None]) == 2
    assert money_decimals([763.1, 3508.0]) == 0
    assert format_money(763.1, 0) == "763" and format_money(3508.0, 0) == "3,508"
    assert format_money(1234567.0) == "1,234,567.00"
    # Words for money, never the SI "G": a 1e15 ETH holding at 381.55 is 381,550 trillion.
    assert format_money(1e15 * 381.55, 0) == "381,550.00tn"
    assert format_money(2.5e9, 0) == "2.50bn"
    assert format_money(-2.5e9, 0, signed=True) == "-2.50bn"
    assert format_money(25.0, 2, signed=True) == "+25.00"
    assert format_money(None) == "–" and format_money(math.inf) == "–"
