"""Pilot tests of the main screen: coin switching, every key, modals, coalesced redraws, quitting."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from textual import events

from engine.events import ErrorEvent, StatusEvent
from tests.conftest import settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.chart_data import ChartData, ChartView
from tui.main_screen import CHART_DATA_INTERVAL
from tui.widgets.chart_plot import ChartPlot
from tui.widgets.columns import TextLines
from tui.widgets.watchlist import Watchlist

# Axis labels are local time: pin the zone so the tests read the same everywhere.
pytestmark = pytest.mark.usefixtures("utc")


def make(
    history: int = 120, state: Path | None = None, **kw: object
) -> tuple[FakeEngine, CryptoApp]:
    engine = FakeEngine(history=history, **kw)  # type: ignore[arg-type]
    return engine, CryptoApp(engine, state_path=state)


def plot(app: CryptoApp) -> ChartPlot:
    return app.query_one(ChartPlot)


def drawn(app: CryptoApp) -> ChartData:
    """The data the chart last drew (the tests read it after the chart has drawn once)."""
    data = plot(app).data
    assert data is not None
    return data


@sync
async def test_switch_coins_chart_follows() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        assert engine.started
        assert plot(app).title_text.startswith("Bitcoin")
        btc_last = drawn(app).last_price
        assert btc_last == engine.snapshot("bitcoin").bars[-1].price
        await pilot.press("down")
        await settle(app, pilot)
        assert app.state.selected == "ethereum"
        assert plot(app).title_text.startswith("Ethereum")
        assert drawn(app).last_price == engine.snapshot("ethereum").bars[-1].price
        await pilot.press("j")
        await settle(app, pilot)
        assert plot(app).title_text.startswith("Litecoin")
        await pilot.press("j")  # wraps around
        await settle(app, pilot)
        assert app.state.selected == "bitcoin"
        await pilot.press("k")
        await settle(app, pilot)
        assert app.state.selected == "litecoin"
        await pilot.press("up")
        await settle(app, pilot)
        assert app.state.selected == "ethereum"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert app.state.selected == "litecoin"
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert app.state.selected == "ethereum"
        await pilot.press("1")
        await settle(app, pilot)
        assert app.state.selected == "bitcoin"
        await pilot.press("3")
        await settle(app, pilot)
        assert app.state.selected == "litecoin"
        await pilot.press("9")  # no ninth coin: nothing happens
        await settle(app, pilot)
        assert app.state.selected == "litecoin"


@sync
async def test_new_bars_update_chart_and_watchlist() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        engine.advance(3)
        await settle(app, pilot)
        last = engine.snapshot("bitcoin").bars[-1]
        assert drawn(app).last_price == last.price
        assert drawn(app).now == last.ts
        rows = app.query_one(Watchlist).rows
        assert [r.coin for r in rows] == ["bitcoin", "ethereum", "litecoin"]
        assert rows[0].price == last.price
        assert rows[0].forecast is not None and rows[0].rel_mae == pytest.approx(1.0)
        # The past band is judged at the minute it is about; a network no better than "no change"
        # is not drawn (it would be the price shifted), only its score is said.
        data = drawn(app)
        assert data.scored > 0 and data.ribbon
        assert data.network == [] and "no better than no change" in data.network_words


@sync
async def test_redraws_are_coalesced() -> None:
    engine, app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        before = plot(app).draws
        engine.advance(200)  # 600+ events in one go, as a fast replay produces
        await pilot.pause()
        assert plot(app).draws <= before + 1  # at most the one timer-driven redraw so far
        await pilot.pause(CHART_DATA_INTERVAL + 0.2)
        assert plot(app).draws >= before + 1  # and the data did get drawn
        assert drawn(app).last_price == engine.snapshot("bitcoin").bars[-1].price


@sync
async def test_other_coin_data_does_not_redraw_chart() -> None:
    engine, app = make(coins=("bitcoin", "ethereum"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        engine.remove_coin("bitcoin")
        await settle(app, pilot)
        assert app.state.selected == "ethereum"
        before = plot(app).draws
        engine.add_coin("litecoin")
        await settle(app, pilot)
        after_add = plot(app).draws
        engine._coins = ["litecoin"]  # only litecoin moves; its bars must not redraw ethereum
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


@sync
async def test_keys_typed_while_quitting_do_nothing() -> None:
    """ "q" then "a" at once: the app quits cleanly instead of opening a screen on its way out."""
    _, app = make()
    async with app.run_test() as pilot:
        await settle(app, pilot)
        await app.action_quit()  # as "q" does; the app is now on its way out
        for action in ("add_coin", "remove_coin", "help", "cycle_window"):
            assert app.main.check_action(action, ()) is False
            await app.run_action(action)
        assert app.screen is app.main  # nothing was opened
        await pilot.pause()
    assert app.return_code == 0


def notices(app: CryptoApp) -> list[str]:
    return [f"{title}: {message}" for title, message, _severity in app.said]


@sync
async def test_add_coin_search_in_the_demo_offers_only_its_coins() -> None:
    from textual.widgets import Input

    from tui.screens.add_coin import AddCoinScreen

    _, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AddCoinScreen)
        assert "solana" not in screen.query_one("#add-query", Input).placeholder
        await pilot.press(*"sol")
        screen.search("sol")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.matches == []
        assert "BTC, ETH, LTC" in str(screen.query_one("#add-hint").render())


@sync
async def test_add_coin_search_as_you_type() -> None:
    engine, app = make(mode="LIVE")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        from tui.screens.add_coin import AddCoinScreen

        screen = app.screen
        assert isinstance(screen, AddCoinScreen)
        await pilot.press(*"sol")
        await pilot.pause(0.5)  # the debounce, then the lookup worker
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [m.id for m in screen.matches] == ["solana"]
        assert screen.searches == 1  # three keystrokes, one lookup
        await pilot.press("enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, AddCoinScreen)
        assert engine.coins()[-1] == "solana"
        assert [r.coin for r in app.query_one(Watchlist).rows][-1] == "solana"


@sync
async def test_add_coin_escape_adds_nothing() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("a", "d", "o", "g", "escape")
        await settle(app, pilot)
        assert engine.coins() == ("bitcoin", "ethereum", "litecoin")
        assert len(app.screen_stack) == 1


@sync
async def test_unknown_coin_is_shown_as_such_and_others_keep_updating() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        engine.add_coin("dogecoin")  # the fake engine has no data for it: reported unknown
        engine.advance(2)
        await settle(app, pilot)
        rows = {r.coin: r for r in app.query_one(Watchlist).rows}
        assert rows["dogecoin"].unknown
        assert rows["bitcoin"].price == engine.snapshot("bitcoin").bars[-1].price
        # Said by the watchlist and the chart in the demo's words, not by a red toast as well.
        assert not any("Unknown coin" in n for n in notices(app))
        assert "no demo data" in app.query_one(Watchlist).render().plain
        await pilot.press("4")
        await settle(app, pilot)
        text = str(app.query_one("#chart-notice").render())
        assert "No demo data for Dogecoin" in text and "x to remove" in text
        assert "CoinGecko" not in text


@sync
async def test_remove_asks_first() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("2", "x")
        await pilot.pause()
        from tui.screens.confirm import ConfirmScreen

        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert "ethereum" in engine.coins()
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("enter")  # focus starts on Cancel: a stray Enter removes nothing
        await settle(app, pilot)
        assert "ethereum" in engine.coins()
        await pilot.press("x", "y")
        await settle(app, pilot)
        assert engine.coins() == ("bitcoin", "litecoin")
        assert app.state.selected == "litecoin"  # the coin that took its place
        assert plot(app).title_text.startswith("Litecoin")


@sync
async def test_reset_model_asks_first() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("R", "escape")
        await settle(app, pilot)
        assert engine.resets == []
        await pilot.press("R", "y")
        await settle(app, pilot)
        assert engine.resets == ["bitcoin"]
        assert "warming up" in str(app.query_one("#model-state").render())


@sync
async def test_window_and_horizon_cycle_and_persist(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"watchlist": ["bitcoin"]}))
    _, app = make(history=500, state=state)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert (app.state.window, app.state.horizon) == ("6h", 5)
        span = drawn(app).x1 - drawn(app).x0
        await pilot.press("w")
        await settle(app, pilot)
        assert app.state.window == "24h"
        assert drawn(app).x1 - drawn(app).x0 > span
        await pilot.press("w")
        await settle(app, pilot)
        assert app.state.window == "1h"
        assert drawn(app).x1 - drawn(app).x0 < span
        await pilot.press("w")
        await settle(app, pilot)
        assert app.state.window == "6h"
        await pilot.press("h")
        await settle(app, pilot)
        assert app.state.horizon == 15
        assert "in 15m" in app.query_one(Watchlist).render().plain.splitlines()[0]
        await pilot.press("q")
    saved = json.loads(state.read_text())
    assert saved["watchlist"] == ["bitcoin"]  # the engine's part of the file is kept
    assert saved["ui"]["horizon"] == 15 and saved["ui"]["window"] == "6h"
    # And the next start picks them up.
    _, app2 = make(state=state)
    async with app2.run_test(size=(100, 30)) as pilot:
        await settle(app2, pilot)
        assert (app2.state.window, app2.state.horizon) == ("6h", 15)


@sync
async def test_pause_resume_training() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert engine.paused
        # Said once: the model panel's state line; no header badge, no toast.
        assert "paused" in str(app.query_one("#model-state").render())
        assert "paused" not in str(app.query_one("#header").render())
        assert not any("paused" in n.lower() for n in notices(app))
        await pilot.press("p")
        await settle(app, pilot)
        assert not engine.paused
        assert "training" in str(app.query_one("#model-state").render())


@sync
async def test_export_shows_the_path(tmp_path: Path) -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert engine.exports and engine.exports[0][0] == "bitcoin"
        path = engine.exports[0][1]
        assert any(str(path) in n for n in notices(app))


@sync
async def test_help_lists_every_command() -> None:
    from tui.commands import COMMANDS
    from tui.screens.help import HelpScreen

    _, app = make()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        from rich.console import Console

        from tui.screens.help import help_table

        console = Console(width=100, record=True, file=io.StringIO())
        console.print(help_table())
        rendered = console.export_text()
        for cmd in COMMANDS:
            assert cmd.description in rendered
        await pilot.press("j")  # app keys are inert behind a modal
        assert app.state.selected == "bitcoin"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


@sync
async def test_key_bar_shows_the_footer_keys_and_clicks_run_them() -> None:
    from tui.commands import COMMANDS
    from tui.screens.add_coin import AddCoinScreen
    from tui.screens.help import HelpScreen
    from tui.widgets.key_bar import KeyBar

    _, app = make()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        bar = app.query_one(KeyBar)
        shown = [f"{cmd.key_display} {cmd.label}" for cmd in COMMANDS if cmd.footer]
        assert bar.render().plain.rstrip() == " ".join(shown)
        # KeyBar.keys() is a list of (binding, enabled) pairs, not a dict: SIM118 does not apply.
        assert [b.description for b, _ in bar.keys()] == [  # noqa: SIM118
            cmd.label for cmd in COMMANDS if cmd.footer
        ]
        x = bar.render().plain.index("a Add")
        await pilot.click(KeyBar, offset=(x + 2, 0))  # on "Add"
        await pilot.pause()
        assert isinstance(app.screen, AddCoinScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        # Behind a modal the app's keys are inert: the bar shows the modal's own keys (q and esc
        # close Help), not "q Quit".
        assert [b.description for b, _ in bar.keys()] == ["Close"]  # noqa: SIM118 (a list)
        assert bar.render().plain.startswith("esc/q Close")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert len(bar.keys()) == len(shown)
        await pilot.click(KeyBar, offset=(bar.render().plain.index("q Quit"), 0))
        await pilot.pause()
    assert app.return_code == 0  # the click on "q" quit


@sync
async def test_palette_offers_the_commands() -> None:
    _, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for label in (
            "Add (a)",
            "Remove (x)",
            "Window (w)",
            "Horizon (h)",
            "Pause (p)",
            "Reset (R)",
            "Export (e)",
            "Alerts (A)",
            "Help (?)",
        ):
            assert label in titles
        # Running one from the palette does what the key does.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Horizon")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        await settle(app, pilot)
        assert app.state.horizon == 15


@sync
async def test_alerts_modal_and_level_crossing(tmp_path: Path) -> None:
    from tui.alerts.dialog import AlertsScreen

    state = tmp_path / "state.json"
    engine, app = make(state=state)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        price = engine.snapshot("bitcoin").bars[-1].price
        # A level just above the price and one just below: the next moves will cross one.
        nxt = [b.price for b in engine._data["bitcoin"][engine._pos["bitcoin"] :][:200]]
        level = next(p for p in nxt if p != price)
        level = (level + price) / 2
        await pilot.press(*f"{level:.3f}", "enter")
        await pilot.press(*"abc", "enter")
        await pilot.pause()
        assert app.screen.levels == [pytest.approx(level, abs=1e-3)]
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.prefs.levels["bitcoin"] == [pytest.approx(level, abs=1e-3)]
        assert json.loads(state.read_text())["ui"]["levels"]["bitcoin"]
        engine.advance(200)
        await settle(app, pilot)
        assert any("Bitcoin above" in n or "Bitcoin below" in n for n in notices(app))


@sync
async def test_errors_become_notifications_not_tracebacks() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        engine.emit(ErrorEvent("Network", "connection refused by api.coingecko.com"))
        engine.emit(ErrorEvent("Network", "connection refused by api.coingecko.com"))
        await settle(app, pilot)
        hits = [n for n in notices(app) if "connection refused" in n]
        assert len(hits) == 1  # the repeat is not stacked


@sync
async def test_status_states_say_what_to_do() -> None:
    engine, app = make(history=0, mode="LIVE")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        notice = str(app.query_one("#chart-notice").render())
        assert "Waiting for the first prices of Bitcoin" in notice
        engine.emit(
            StatusEvent(
                "coingecko",
                "rate limited",
                "HTTP 429 from CoinGecko",
                next_update=time.time() + 119,
                calls_minute=31,
                limit_minute=30,
            )
        )
        await settle(app, pilot)
        notice = str(app.query_one("#chart-notice").render())
        assert "rate limited" in notice and "COINGECKO_API_KEY" in notice
        status = str(app.query_one("#status").render())
        assert "HTTP 429 from CoinGecko" in status and "31/30/min" in status
        engine.emit(StatusEvent("coingecko", "offline", "cannot reach api.coingecko.com"))
        engine.advance(5)
        await settle(app, pilot)
        # With data on screen the chart stays, and the status bar alone says offline.
        assert not drawn(app).empty
        assert not app.query_one("#chart-banner").display
        assert "offline" in str(app.query_one("#status").render())


@sync
async def test_remote_engine_gone() -> None:
    engine, app = make(history=60, mode="REMOTE")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert "REMOTE" in str(app.query_one("#header").render())
        engine.emit(StatusEvent("remote", "offline", "connection to ws://10.0.0.2:8765 lost"))
        await settle(app, pilot)
        assert "remote engine is gone" in str(app.query_one("#chart-banner").render())


@sync
async def test_no_coins_left() -> None:
    _, app = make(coins=("bitcoin",))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("x", "y")
        await settle(app, pilot)
        assert app.state.selected is None
        assert "press a" in str(app.query_one("#chart-notice").render()).lower()
        await pilot.press("j", "w", "h", "e", "R", "A")  # nothing to act on: no crash, no modal
        await settle(app, pilot)
        assert len(app.screen_stack) == 1


@sync
async def test_resize_redraws_for_the_new_width() -> None:
    _, app = make(history=400)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        small = len(drawn(app).candles)
        await pilot.resize_terminal(200, 60)
        await pilot.pause(0.3)
        await settle(app, pilot)
        big = len(drawn(app).candles)
        assert big > small  # one candle per column of the plot's width
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert len(drawn(app).candles) == small


@sync
async def test_events_while_a_modal_is_open() -> None:
    engine, app = make()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        engine.advance(3)  # the engine does not wait for the user to close the help
        await settle(app, pilot)
        await pilot.pause(0.3)
        await pilot.press("escape")
        await settle(app, pilot)
        assert drawn(app).last_price == engine.snapshot("bitcoin").bars[-1].price


# Issue 16 (the panels, messages and conventions) -------------------------------------------------


@sync
async def test_model_panel_says_which_band_is_served_and_why() -> None:
    from tui.widgets.metrics_panel import MetricsPanel

    _, app = make(history=200)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        story = " ".join(app.query_one("#model-story", TextLines).render().plain.split())
        scores = " ".join(app.query_one(MetricsPanel).render().plain.split())
        # Said once: the served band and why under the score panel's verdict ...
        assert "5 min: a blend served" in scores and "5 min: a blend" not in story
        # ... the mean, the band per horizon and a key to the columns in the model panel.
        assert "Mean: the network's, shrunk to 67 %" in story
        assert "60m simple 1.15 79% 95%" in story
        assert "key: rel = model MAE" in story
        await pilot.press("h", "h")  # 60 min
        await settle(app, pilot)
        scores = " ".join(app.query_one(MetricsPanel).render().plain.split())
        assert "60 min: the simple band served; the network's band is 15 % worse" in scores


@sync
async def test_watchlist_says_rel_mae_and_no_change_for_a_flat_forecast() -> None:
    from engine.events import ForecastEvent

    engine, app = make(history=200)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        head = app.query_one(Watchlist).render().plain.splitlines()[0]
        assert "rel MAE" in head and "skill" not in head
        last = engine.snapshot("bitcoin").bars[-1]
        engine.emit(
            ForecastEvent(
                "bitcoin", last.ts, last.price, engine.horizons, (0.0,) * 4, raw=(0.001,) * 4
            )
        )
        await settle(app, pilot)
        row = app.query_one(Watchlist).render().plain.splitlines()[1]
        assert "no change" in row and "+0.00%" not in row


@sync
async def test_surprise_alerts_only_for_the_coin_on_screen() -> None:
    from engine.events import Bar, BarEvent, ForecastEvent

    engine, app = make(history=100)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        before = len(notices(app))
        for coin in ("ethereum", "bitcoin"):
            last = engine.snapshot(coin).bars[-1]
            band = (-0.0001,) * 4, (0.0001,) * 4
            engine.emit(
                ForecastEvent(
                    coin,
                    last.ts + 60,
                    last.price,
                    engine.horizons,
                    (0.0,) * 4,
                    band[0],
                    band[1],
                    band[0],
                    band[1],
                )
            )
            engine.emit(BarEvent(Bar(coin, last.ts + 60 + 300, last.price * 1.05)))
        await settle(app, pilot)
        news = notices(app)[before:]
        assert any("Bitcoin: surprise" in n for n in news)
        assert not any("Ethereum" in n for n in news)


@sync
async def test_alerts_dialog_price_keeps_updating_and_says_what_is_global() -> None:
    from tui.alerts.dialog import AlertsScreen

    engine, app = make(history=100)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        first = str(screen.query_one("#alerts-now").render())
        engine.advance(3)
        await settle(app, pilot)
        now = str(screen.query_one("#alerts-now").render())
        assert now != first and "Bitcoin" in now
        assert "every coin" in str(screen.query_one(".alerts-heading").render()).lower()


@sync
async def test_demo_finished_is_information_and_offline_is_not_toasted_twice() -> None:
    engine, app = make(history=100, mode="LIVE")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        engine.emit(
            ErrorEvent("Demo", "the demo had played to the end: replaying it from the start")
        )
        engine.emit(
            StatusEvent("coingecko", "offline", "offline: prices: timeout, retrying in 2 s")
        )
        engine.emit(ErrorEvent("Network", "prices: timeout"))
        await settle(app, pilot)
        severities = {title: severity for title, _message, severity in app.said}
        assert severities.get("Demo") == "information"
        assert "Network" not in severities  # the status bar says it
        status = str(app.query_one("#status").render())
        assert status.count("offline") == 1


@sync
async def test_palette_lists_quit_and_help_once_and_ctrl_c_quits() -> None:
    _, app = make(history=30)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert sum("Quit" in t for t in titles) == 1 and "Keys" not in titles
        assert any(t.startswith("Help") for t in titles)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.stopped


@sync
async def test_theme_is_remembered(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    _, app = make(history=30, state=state)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.theme = "textual-light"
        await pilot.pause()
    _, again = make(history=30, state=state)
    async with again.run_test(size=(100, 30)) as pilot:
        await settle(again, pilot)
        assert again.theme == "textual-light"


@sync
async def test_footer_keeps_the_palette_at_80_columns_and_the_side_sizes_to_content() -> None:
    from tui.widgets.key_bar import KeyBar

    _, app = make(history=100)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        text = app.query_one(KeyBar).render().plain
        assert "^p Palette" in text and len(text.rstrip()) <= 80
        assert app.query_one("#side").size.width == 38
    _, app = make(history=100)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(app, pilot)
        wl = app.query_one(Watchlist)
        assert app.query_one("#side").size.width == wl.wanted_width() + 4


@sync
async def test_zoom_pan_keys_and_wheel_move_the_time_axis_and_0_snaps_back_to_now() -> None:
    engine, app = make(history=600)
    app.prefs.levels["bitcoin"] = [engine.snapshot("bitcoin").bars[-1].price * 1.001]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        data = drawn(app)
        assert data.live and data.levels  # the coin's alert level is drawn
        live_span = data.x1 - data.x0
        await pilot.press("plus")
        await settle(app, pilot)
        assert app.main.view.span == 3 * 3600 and drawn(app).live
        await pilot.press("left")
        await settle(app, pilot)
        data = drawn(app)
        last = engine.snapshot("bitcoin").bars[-1].ts
        assert not data.live and data.x1 == last - 3 * 3600 / 4 and data.now is None
        assert "0: now" in plot(app).title_text
        await pilot.press("right")
        await settle(app, pilot)
        assert drawn(app).live
        await pilot.press("comma", "comma", "0")
        await settle(app, pilot)
        assert drawn(app).live and app.main.view.end is None
        # The wheel over the chart zooms (down: out), sideways it pans; the window key starts
        # over at the window's span, following "now".
        target = plot(app)  # the events bubble up to the chart area, which turns them into Wheel

        def wheel(kind: type[events.MouseEvent]) -> None:
            target.post_message(kind(target, 10, 10, 0, 1, 0, False, False, False))

        wheel(events.MouseScrollDown)
        await settle(app, pilot)
        assert app.main.view.span == 6 * 3600
        wheel(events.MouseScrollUp)
        await settle(app, pilot)
        assert app.main.view.span == 3 * 3600
        wheel(events.MouseScrollLeft)
        await settle(app, pilot)
        assert app.main.view.end is not None
        await pilot.press("w")
        await settle(app, pilot)
        assert app.main.view == ChartView(24 * 3600) and app.state.window == "24h"
        assert drawn(app).x1 - drawn(app).x0 > live_span
