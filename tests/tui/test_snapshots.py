"""Snapshot tests (pytest-textual-snapshot) of the main states at 80x24 and 160x48, on the fake engine.

Update after an intended visual change with ``pytest tests/test_tui_snapshots.py --snapshot-update``
and look at the SVGs before committing them. The Textual version is pinned for these to stay valid.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.events import ErrorEvent, StatusEvent
from tests.conftest import snap_settle
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp

SIZES = [(80, 24), (160, 48)]
# A fixed wall clock for the status times, so the pictures do not change from run to run.
T0 = 1_522_900_000.0


# Axis labels are local time: pin the zone so the tests read the same everywhere.
pytestmark = pytest.mark.usefixtures("utc")


def app_with(history: int, mode: str = "DEMO", **kw: Any) -> tuple[FakeEngine, CryptoApp]:
    engine = FakeEngine(history=history, mode=mode, **kw)
    return engine, CryptoApp(engine)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main(snap_compare: Any, size: tuple[int, int]) -> None:
    _, app = app_with(400)
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_first_start_no_data(snap_compare: Any, size: tuple[int, int]) -> None:
    engine, app = app_with(0, mode="LIVE")
    status = StatusEvent("coingecko", "connecting", "first poll of 3 coins", next_update=T0 + 42)
    assert snap_compare(
        app, terminal_size=size, run_before=snap_settle(app, lambda: engine.emit(status))
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_warming_up(snap_compare: Any, size: tuple[int, int]) -> None:
    _, app = app_with(12)
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rate_limited_without_data(snap_compare: Any, size: tuple[int, int]) -> None:
    engine, app = app_with(0, mode="LIVE")
    status = StatusEvent(
        "coingecko",
        "rate limited",
        "HTTP 429: retry after 119 s",
        last_update=T0 - 300,
        next_update=T0 + 119,
        calls_minute=30,
        calls_month=1204,
        limit_minute=30,
        limit_month=10000,
    )
    assert snap_compare(
        app, terminal_size=size, run_before=snap_settle(app, lambda: engine.emit(status))
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_offline_with_data(snap_compare: Any, size: tuple[int, int]) -> None:
    engine, app = app_with(300, mode="LIVE")
    status = StatusEvent(
        "coingecko",
        "offline",
        "cannot reach api.coingecko.com",
        last_update=T0,
        next_update=T0 + 30,
    )
    assert snap_compare(
        app, terminal_size=size, run_before=snap_settle(app, lambda: engine.emit(status))
    )


def test_remote_engine_gone(snap_compare: Any) -> None:
    engine, app = app_with(200, mode="REMOTE")
    status = StatusEvent("remote", "offline", "connection to ws://127.0.0.1:8765 lost")
    assert snap_compare(
        app, terminal_size=(80, 24), run_before=snap_settle(app, lambda: engine.emit(status))
    )


def test_unknown_coin(snap_compare: Any) -> None:
    engine, app = app_with(200)

    def add() -> None:
        engine.add_coin("notacoin")
        app.main.select("notacoin")

    assert snap_compare(app, terminal_size=(80, 24), run_before=snap_settle(app, add))


def test_error_notification(snap_compare: Any) -> None:
    engine, app = app_with(200)
    err = ErrorEvent("Rate limited", "CoinGecko answered 429; waiting 119 s before the next call")
    assert snap_compare(
        app, terminal_size=(80, 24), run_before=snap_settle(app, lambda: engine.emit(err))
    )


@pytest.mark.parametrize(
    "keys", [("question_mark",), ("x",), ("R",), ("A",)], ids=["help", "remove", "reset", "alerts"]
)
def test_modals(snap_compare: Any, keys: tuple[str, ...]) -> None:
    _, app = app_with(200)
    assert snap_compare(app, terminal_size=(80, 24), press=keys, run_before=snap_settle(app))


def test_add_coin_results(snap_compare: Any) -> None:
    _, app = app_with(200)

    async def run_before(pilot: Any) -> None:
        await snap_settle(app)(pilot)
        await pilot.press("a", *"coin")
        screen = app.screen
        screen.search("coin")  # type: ignore[attr-defined]
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


# Issue 16: each state said once, in its place, at both sizes. -----------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_paused(snap_compare: Any, size: tuple[int, int]) -> None:
    # Said once: the model panel's state line (no header badge, no toast).
    _, app = app_with(400)
    assert snap_compare(app, terminal_size=size, press=["p"], run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_demo_without_data_for_a_coin(snap_compare: Any, size: tuple[int, int]) -> None:
    # `--demo --coins bitcoin,solana`: "no demo data" for Solana, not "unknown coin" or "warming up".
    _, app = app_with(200, coins=("bitcoin", "solana"))
    assert snap_compare(app, terminal_size=size, press=["j"], run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stale_coin(snap_compare: Any, size: tuple[int, int]) -> None:
    # The demo's Ethereum ends a day before Bitcoin's and Litecoin's: marked stale, with its date.
    _, app = app_with(2600)
    assert snap_compare(app, terminal_size=size, press=["2"], run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_demo_finished_is_news_not_an_error(snap_compare: Any, size: tuple[int, int]) -> None:
    engine, app = app_with(300)
    notice = ErrorEvent("Demo", "the demo had played to the end: replaying it from the start")
    assert snap_compare(
        app, terminal_size=size, run_before=snap_settle(app, lambda: engine.emit(notice))
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alerts_dialog_with_toasts_pending(snap_compare: Any, size: tuple[int, int]) -> None:
    # Two toasts were up when the dialog opened: they must not cover its Save button.
    engine, app = app_with(300)

    def two_toasts() -> None:
        engine.emit(ErrorEvent("Database", "new data is not being saved: disk full"))
        app.notify("/tmp/exports/bitcoin-demo-20180404-120000.csv", title="Exported Bitcoin")

    assert snap_compare(
        app, terminal_size=size, press=["A"], run_before=snap_settle(app, two_toasts)
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_toasts_stay_off_the_chart(snap_compare: Any, size: tuple[int, int]) -> None:
    engine, app = app_with(300)

    def two_toasts() -> None:
        engine.emit(ErrorEvent("Database", "new data is not being saved: disk full"))
        app.notify("/tmp/exports/bitcoin-demo-20180404-120000.csv", title="Exported Bitcoin")

    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app, two_toasts))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help_says_how_to_close(snap_compare: Any, size: tuple[int, int]) -> None:
    _, app = app_with(200)
    assert snap_compare(
        app, terminal_size=size, press=["question_mark"], run_before=snap_settle(app)
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_light_theme_badge(snap_compare: Any, size: tuple[int, int]) -> None:
    _, app = app_with(300)
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))
