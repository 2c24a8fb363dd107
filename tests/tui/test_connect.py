"""The TUI in --connect mode under Pilot: a real feed server and RemoteEngine over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from engine.feed.remote import RemoteEngine
from engine.feed.server import ServerThread
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
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
            assert "REMOTE" in text_of(app.query_one(HeaderBar))
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
