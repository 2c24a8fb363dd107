"""The TUI in --connect mode under Pilot: a real feed server and RemoteEngine over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.feed.remote import RemoteEngine
from engine.feed.server import ServerThread
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.holdings.dialog import HoldingScreen
from tui.holdings.panel import HoldingsPanel
from tui.widgets.header_bar import HeaderBar
from tui.widgets.status_bar import StatusBar
from tui.widgets.watchlist import Watchlist


def text_of(widget: object) -> str:
    render = widget.render()  # type: ignore[attr-defined]
    return str(getattr(render, "plain", render))


async def until(
    pilot: object, app: CryptoApp, cond: Callable[[], bool], timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        app.main.flush()
        if cond():
            return
    raise AssertionError("condition not met in time")


def test_connect_mode_looks_like_local_and_survives_a_server_restart() -> None:
    engine = FakeEngine(history=120)
    server = ServerThread(engine).start()
    port = server.port
    remote = RemoteEngine(server.url, backoff=(0.05, 0.2))
    app = CryptoApp(remote)

    async def run() -> None:
        nonlocal server
        async with app.run_test(size=(120, 40)) as pilot:
            watchlist = app.query_one(Watchlist)

            def btc_price() -> float | None:
                return next((r.price for r in watchlist.rows if r.coin == "bitcoin"), None)

            await until(pilot, app, lambda: btc_price() is not None)
            assert btc_price() == engine.snapshot("bitcoin").bars[-1].price
            # The engine's own mode (the fake is a demo), and that it is remote.
            header = text_of(app.query_one(HeaderBar))
            assert "DEMO" in header and "remote" in header
            assert len(remote.snapshot("bitcoin").bars) == 120
            # keys work as locally: switch coin
            await pilot.press("]")
            await until(pilot, app, lambda: "Ethereum" in text_of(app.query_one(HeaderBar)))
            # the engine goes away: the TUI says so and keeps the last data
            server.stop()
            status = app.query_one(StatusBar)
            await until(pilot, app, lambda: "unreachable" in text_of(status))
            assert len(remote.snapshot("bitcoin").bars) == 120
            # it comes back: the TUI reconnects and follows new data
            engine.advance(2)
            server = ServerThread(engine, port=port).start()
            await until(
                pilot, app, lambda: btc_price() == engine.snapshot("bitcoin").bars[-1].price
            )
            await until(pilot, app, lambda: len(remote.snapshot("bitcoin").bars) == 122)
            await until(pilot, app, lambda: "unreachable" not in text_of(status))
            await pilot.press("q")

    try:
        asyncio.run(run())
    finally:
        remote.stop()
        server.stop()


@pytest.mark.parametrize("shared", [True, False], ids=["with-holdings", "without"])
def test_a_remote_viewer_is_the_local_app_with_the_engine_s_holdings_read_only(
    tmp_path: Path, shared: bool
) -> None:
    from engine.settings.holdings import Holding

    held = {"bitcoin": Holding("bitcoin", 0.5, 3000.0, "usd")}
    home = tmp_path / "viewer"
    engine = FakeEngine(history=120)  # a demo engine
    server = ServerThread(engine, holdings=held if shared else None).start()
    remote = RemoteEngine(server.url, export_dir=home / "exports")
    app = CryptoApp(remote, state_path=home / "ui-remote.json")

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, app, lambda: app.state.last_price("bitcoin") is not None)
            header = text_of(app.query_one(HeaderBar))
            assert "DEMO" in header and "remote" in header
            panel = app.query_one(HoldingsPanel)
            await until(pilot, app, lambda: panel.display == shared)
            if shared:
                text = panel.render().plain
                assert "BTC" in text and "edit them there" in text
            # H never edits a file of the viewer's: it says where the holdings live.
            await pilot.press("H")
            await pilot.pause()
            assert not isinstance(app.screen, HoldingScreen)
            said = app.said[-1][1]
            assert ("edit them where it runs" if shared else "does not share") in said
            # e exports into the viewer's own folder, named as the engine's data (a demo).
            await pilot.press("e")
            await app.workers.wait_for_complete()
            await until(pilot, app, lambda: app.said[-1][0].startswith("Exported"))
            assert Path(app.said[-1][1]).parent == home / "exports"
            assert Path(app.said[-1][1]).name.startswith("bitcoin-demo-")
            await pilot.press("q")

    try:
        asyncio.run(run())
    finally:
        server.stop()
    assert not list(home.glob("holdings*.json"))
