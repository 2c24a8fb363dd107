"""RemoteEngine against a real feed server on 127.0.0.1: state, commands, reconnects, auth."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from engine.errors import ConfigError, CryptotuiError, NetworkError
from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    SnapshotEvent,
    StatusEvent,
)
from engine.feed.remote import RemoteEngine
from engine.feed.server import ServerThread
from tests.fakes.fake_engine import FakeEngine

FAST = (0.05, 0.2)  # reconnect backoff for tests: first delay, cap

E = TypeVar("E")


class Recorder:
    """A listener that keeps every event with the name of the thread it arrived on."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)

    def of(self, cls: type[E]) -> list[E]:
        with self._lock:
            return [e for e in self.events if isinstance(e, cls)]


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.01)


def bars_of(snap: CoinSnapshot) -> list[tuple[int, float]]:
    return [(b.ts, b.price) for b in snap.bars]


@pytest.fixture
def remote(server: ServerThread) -> Iterator[tuple[RemoteEngine, Recorder]]:
    r = RemoteEngine(server.url, backoff=FAST, export_dir=None)
    rec = Recorder()
    r.subscribe(rec)
    r.start()
    assert r.wait_ready(10)
    yield r, rec
    r.stop()


def test_rejects_a_non_websocket_url() -> None:
    with pytest.raises(ConfigError, match="ws://"):
        RemoteEngine("http://example.com")


def test_mirrors_the_engine_state(
    remote: tuple[RemoteEngine, Recorder], engine: FakeEngine
) -> None:
    r, rec = remote
    assert r.mode == "REMOTE" and r.horizons == engine.horizons and r.vs_currency == "usd"
    assert r.server_info["mode"] == "DEMO"
    assert r.coins() == engine.coins()
    for coin in engine.coins():
        assert bars_of(r.snapshot(coin)) == bars_of(engine.snapshot(coin))
        assert r.snapshot(coin).forecasts == engine.snapshot(coin).forecasts
    engine.advance(5)
    wait_for(lambda: len(r.snapshot("litecoin").bars) == 45)
    for coin in engine.coins():
        assert bars_of(r.snapshot(coin)) == bars_of(engine.snapshot(coin))
        assert r.snapshot(coin).forecasts[-1] == engine.snapshot(coin).forecasts[-1]
        assert r.snapshot(coin).train == engine.snapshot(coin).train
    assert [e.bar.ts for e in rec.of(BarEvent) if e.bar.coin == "bitcoin"] == [
        b.ts for b in engine.snapshot("bitcoin").bars[-5:]
    ]
    # Listeners run on the client thread, as a local engine's run on its own threads.
    assert rec.threads == {"remote-engine"}
    assert isinstance(rec.events[0], StatusEvent) and rec.of(SnapshotEvent)
    assert r.snapshot("nosuchcoin") == CoinSnapshot("nosuchcoin")


def test_commands_reach_the_engine(
    remote: tuple[RemoteEngine, Recorder], engine: FakeEngine, tmp_path: Path
) -> None:
    r, rec = remote
    r.add_coin("dogecoin")
    wait_for(lambda: "dogecoin" in r.coins())
    assert "dogecoin" in engine.coins()
    assert any(isinstance(e, CoinsEvent) and "dogecoin" in e.unknown for e in rec.events)
    r.remove_coin("dogecoin")
    wait_for(lambda: "dogecoin" not in r.coins())
    r.set_paused(True)
    wait_for(lambda: engine.paused)
    r.reset_model("bitcoin")
    wait_for(lambda: engine.resets == ["bitcoin"])
    # A demo engine (the fake is one) finds only the coins it has data for.
    assert [m.id for m in r.search("coin")] == ["bitcoin", "litecoin"]
    out = r.export("bitcoin", tmp_path / "btc.csv")
    assert out == tmp_path / "btc.csv"
    assert out.read_text() == engine.export("bitcoin", tmp_path / "direct.csv").read_text()
    assert len(out.read_text().splitlines()) == 41
    r2 = RemoteEngine(r.url, export_dir=tmp_path / "exports")
    r2.start()
    assert r2.wait_ready(10)
    default = r2.export("litecoin")
    assert default.parent == tmp_path / "exports" and default.read_text().startswith("timestamp,")
    r2.stop()


def test_failed_requests_raise(remote: tuple[RemoteEngine, Recorder]) -> None:
    r, _ = remote
    with pytest.raises(CryptotuiError, match="query"):
        r.search("x" * 500)
    with pytest.raises(CryptotuiError, match="coin"):
        r.export("Not A Coin!")


def test_reconnects_after_restart_and_keeps_data_meanwhile(engine: FakeEngine) -> None:
    st = ServerThread(engine).start()
    port = st.port
    r = RemoteEngine(st.url, backoff=FAST)
    rec = Recorder()
    r.subscribe(rec)
    r.start()
    try:
        assert r.wait_ready(10)
        engine.advance(3)
        wait_for(lambda: len(r.snapshot("bitcoin").bars) == 43)
        before = r.snapshot("bitcoin")
        st.stop()
        wait_for(
            lambda: any(isinstance(e, StatusEvent) and e.state == "offline" for e in rec.events)
        )
        offline = next(e for e in rec.of(StatusEvent) if e.state == "offline")
        assert offline.source == "remote"
        prefix = f"engine at ws://127.0.0.1:{port} unreachable, reconnecting in "
        assert offline.message.startswith(prefix)
        assert offline.message.endswith(" s")
        assert r.connected is False
        # The last data stays while the engine is away, and commands say they cannot go through.
        assert r.snapshot("bitcoin") == before
        n_err = len(rec.of(ErrorEvent))
        r.add_coin("dogecoin")
        wait_for(lambda: len(rec.of(ErrorEvent)) > n_err)
        assert "not connected" in rec.of(ErrorEvent)[-1].msg
        with pytest.raises(NetworkError):
            r.search("bit")
        # Retries keep failing for a while (several offline reports), then the server is back.
        wait_for(lambda: len([e for e in rec.of(StatusEvent) if e.state == "offline"]) >= 3)
        engine.advance(4)  # happened while the client was away
        st2 = ServerThread(engine, port=port).start()
        try:
            wait_for(lambda: r.connected and len(r.snapshot("bitcoin").bars) == 47)
            assert bars_of(r.snapshot("bitcoin")) == bars_of(engine.snapshot("bitcoin"))
            engine.advance(1)
            wait_for(lambda: len(r.snapshot("bitcoin").bars) == 48)
            assert [e.state for e in rec.of(StatusEvent) if e.source == "remote"][-1] == "ok"
        finally:
            st2.stop()
    finally:
        r.stop()
        st.stop()


def test_wrong_token_is_reported_and_retried(
    engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "tok-abcdef-123456"
    with ServerThread(engine, token=secret) as st:
        r = RemoteEngine(st.url, token="wrong-" + secret, backoff=FAST)
        rec = Recorder()
        r.subscribe(rec)
        r.start()
        wait_for(lambda: len([e for e in rec.of(StatusEvent) if e.state == "offline"]) >= 3)
        r.stop()
        assert len(rec.of(ErrorEvent)) == 1  # said once, not at every retry
        err = rec.of(ErrorEvent)[0]
        assert err.title == "Not authorized" and "401" in err.msg
        assert not r.wait_ready(0)
        good = RemoteEngine(st.url, token=secret)
        good.start()
        assert good.wait_ready(10) and good.coins() == engine.coins()
        good.stop()
    ours = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in ours and "[redacted]" in ours


def test_stale_events_after_a_snapshot_are_not_passed_on() -> None:
    # A snapshot overtakes events that were in flight: those must not reach the views twice.
    r = RemoteEngine("ws://127.0.0.1:1")
    b1, b2, b3 = (Bar("bitcoin", ts, 1.0 + ts) for ts in (60, 120, 180))
    out = r._apply(SnapshotEvent((CoinSnapshot("bitcoin", (b1, b2)),)))
    assert out[1] == CoinsEvent(("bitcoin",))
    assert r._apply(BarEvent(b1)) == []
    assert r._apply(BarEvent(b2)) == []
    assert r._apply(BarEvent(b3)) == [BarEvent(b3)]
    revised = Bar("bitcoin", 180, 9.0)
    assert r._apply(BarEvent(revised)) == [BarEvent(revised)]
    assert [b.price for b in r.snapshot("bitcoin").bars] == [61.0, 121.0, 9.0]


def test_stop_without_server_returns() -> None:
    r = RemoteEngine("ws://127.0.0.1:9", backoff=FAST, open_timeout=1)
    rec = Recorder()
    r.subscribe(rec)
    r.start()
    wait_for(lambda: any(isinstance(e, StatusEvent) and e.state == "offline" for e in rec.events))
    r.stop()
    assert r._thread is None and not r.connected
