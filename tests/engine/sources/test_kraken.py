"""Kraken source against a local WebSocket server replaying the real v2 ohlc frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import pytest

from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.settings.config import Settings
from engine.sources.coins import coin_of_pair, kraken_pair, no_pair_reason, search_table
from engine.sources.kraken import KrakenSource, parse_time
from tests.fakes.kraken_server import FakeKraken

T = parse_time("2026-09-10T17:40:00.000000000Z")  # the first recorded candle
MINUTES = [T + 60 * i for i in range(7)]


class Run:
    """A KrakenSource running in a thread, with a list of what it emitted and waits on it."""

    def __init__(self, source: KrakenSource, coins: tuple[str, ...]) -> None:
        self.source = source
        self.coins = coins
        self.out: list[Any] = []
        self.stop = threading.Event()
        self._cond = threading.Condition()
        args = (lambda: self.coins, self._emit, self.stop)
        self.thread = threading.Thread(target=source.run, args=args)

    def _emit(self, item: Any) -> None:
        with self._cond:
            self.out.append(item)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[list[Any]], bool], timeout: float = 10.0) -> None:
        # Polls too: some conditions (the server's records) change without an emit.
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.out):
                left = deadline - time.monotonic()
                assert left > 0, self.out[-5:]
                self._cond.wait(min(left, 0.02))

    def bars(self, coin: str | None = None) -> list[Bar]:
        with self._cond:
            return [b for b in self.out if isinstance(b, Bar) and (coin is None or b.coin == coin)]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def has_bar(coin: str, ts: int) -> Callable[[list[Any]], bool]:
    return lambda out: any(isinstance(b, Bar) and b.coin == coin and b.ts == ts for b in out)


def ok_after_offline(out: list[Any]) -> bool:
    states = [s.state for s in out if isinstance(s, StatusEvent)]
    return "offline" in states and "ok" in states[states.index("offline") :]


@pytest.fixture
def kr() -> Iterator[FakeKraken]:
    with FakeKraken(heartbeat=0.1) as server:
        yield server


def source(
    kr: FakeKraken, now: float = T + 4 * 60 + 30, **kw: Any
) -> tuple[KrakenSource, list[float]]:
    clock = kw.pop("clock", lambda: now)
    waits: list[float] = []
    src = KrakenSource(
        Settings(kraken_url=kr.url, source="kraken"),
        clock=clock,
        sleep=waits.append,
        rng=lambda: 0.5,
        recv_timeout=0.05,
        **kw,
    )
    return src, waits


def test_snapshot_candles_become_final_bars_and_the_open_one_waits(kr):
    src, _ = source(kr)
    with Run(src, ("bitcoin",)) as run:
        run.wait_for(has_bar("bitcoin", MINUTES[3]))
        # 17:42 had no trades: it stays a gap.
        assert [b.ts for b in run.bars()] == [MINUTES[0], MINUTES[1], MINUTES[3]]
        kr.tick("BTC/USD", 77500.0)  # the open 17:44 candle moves: still not final
        kr.advance(["BTC/USD"])  # 17:45 begins: 17:44 is final now
        run.wait_for(has_bar("bitcoin", MINUTES[4]))
    b = run.bars()[-1]
    assert b.ts == MINUTES[4]
    assert b.price == 77500.0 and b.high == 77500.0 and b.open == 77340.1  # the tick was kept
    assert b.source == "kraken" and not b.filled and b.volume and b.volume > 0
    first = run.bars()[0]
    assert (first.open, first.high, first.low, first.price) == (77363.9, 77363.9, 77324.6, 77326.4)
    sub = kr.subscriptions[0]
    assert sub.method == "subscribe" and sub.symbols == ("BTC/USD",) and sub.interval == 1
    oks = [s for s in run.out if isinstance(s, StatusEvent) and s.state == "ok"]
    assert oks and oks[0].message == "live: BTC/USD"


def test_survives_a_dropped_connection_and_re_subscribes_without_duplicates(kr):
    src, waits = source(kr)
    with Run(src, ("bitcoin", "ethereum")) as run:
        run.wait_for(has_bar("ethereum", MINUTES[3]))
        kr.advance()  # 17:45
        run.wait_for(has_bar("ethereum", MINUTES[4]))
        kr.drop()
        run.wait_for(lambda out: kr.connections == 2 and len(kr.subscriptions) >= 2)
        run.wait_for(lambda out: ok_after_offline(out))
        kr.advance()  # 17:46: the 17:45 candle (re-sent in the new snapshot) becomes final once
        run.wait_for(has_bar("bitcoin", MINUTES[5]))
        run.wait_for(has_bar("ethereum", MINUTES[5]))
    for coin in ("bitcoin", "ethereum"):
        assert [b.ts for b in run.bars(coin)] == [MINUTES[i] for i in (0, 1, 3, 4, 5)]
    assert kr.subscribed(1) == kr.subscribed(2) == {"BTC/USD", "ETH/USD"}
    offline = [s for s in run.out if isinstance(s, StatusEvent) and s.state == "offline"]
    assert offline[0].message.startswith("offline: connection lost (code 1006)")
    assert "reconnecting in 1 s" in offline[0].message
    assert waits and waits[0] == pytest.approx(0.75)  # backoff 1 s step, jittered with rng=0.5
    errors = [e for e in run.out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and "Kraken" in errors[0].msg


def test_a_candle_is_final_by_the_clock_when_no_trade_follows(kr):
    now = [T + 4 * 60 + 30]
    src, _ = source(kr, clock=lambda: now[0])
    with Run(src, ("bitcoin",)) as run:
        run.wait_for(has_bar("bitcoin", MINUTES[3]))
        now[0] = MINUTES[5] + 11  # 17:44's minute ended > 10 s ago, no newer candle came
        run.wait_for(has_bar("bitcoin", MINUTES[4]))
    assert [b.ts for b in run.bars()] == [MINUTES[i] for i in (0, 1, 3, 4)]


def test_coins_without_a_pair_or_refused_are_named_and_the_rest_streams():
    with FakeKraken(heartbeat=0.1, pairs={"BTC/USD": 77340.0}) as kr:
        src, _ = source(kr)
        with Run(src, ("bitcoin", "notacoin", "solana")) as run:
            run.wait_for(has_bar("bitcoin", MINUTES[3]))
            run.wait_for(lambda out: sum(isinstance(e, ErrorEvent) for e in out) >= 2)
    errors = {e.coin: e.msg for e in run.out if isinstance(e, ErrorEvent)}
    assert "no pair known for 'notacoin'" in errors["notacoin"]
    assert errors["solana"] == "Kraken refused SOL/USD: Currency pair not supported SOL/USD"
    coins = [e for e in run.out if isinstance(e, CoinsEvent)]
    assert coins[-1].unknown == ("notacoin", "solana")
    assert {b.coin for b in run.bars()} == {"bitcoin"}


def test_watchlist_changes_subscribe_and_unsubscribe_live(kr):
    src, _ = source(kr)
    run = Run(src, ("bitcoin",))
    with run:
        run.wait_for(has_bar("bitcoin", MINUTES[3]))
        run.coins = ("bitcoin", "litecoin")
        run.wait_for(has_bar("litecoin", MINUTES[3]))
        run.coins = ("litecoin",)
        run.wait_for(lambda out: any(s.method == "unsubscribe" for s in kr.subscriptions))
    assert [(s.method, s.symbols) for s in kr.subscriptions] == [
        ("subscribe", ("BTC/USD",)),
        ("subscribe", ("LTC/USD",)),
        ("unsubscribe", ("BTC/USD",)),
    ]


def test_refused_connection_backs_off_and_stop_is_honoured():
    with FakeKraken() as kr:
        url = kr.url
    src = KrakenSource(Settings(kraken_url=url), sleep=None, rng=lambda: 0.5)
    with Run(src, ("bitcoin",)) as run:
        run.wait_for(
            lambda out: any(isinstance(s, StatusEvent) and s.state == "offline" for s in out)
        )
    offline = [s for s in run.out if isinstance(s, StatusEvent) and s.state == "offline"]
    assert offline[0].message == "offline: connection refused, reconnecting in 1 s"
    assert offline[-1].message == "stopped"


def test_store_history_is_not_re_emitted(kr):
    src, _ = source(kr, last_bar_ts=lambda coin: MINUTES[1])
    with Run(src, ("bitcoin",)) as run:
        run.wait_for(has_bar("bitcoin", MINUTES[3]))
    assert [b.ts for b in run.bars()] == [MINUTES[3]]


def test_pair_mapping_and_search():
    assert kraken_pair("bitcoin", "usd") == "BTC/USD"
    assert kraken_pair("ethereum", "EUR") == "ETH/EUR"
    assert kraken_pair("dogecoin", "jpy") is None
    assert kraken_pair("notacoin", "usd") is None
    assert coin_of_pair("XBT/USD") == "bitcoin" and coin_of_pair("SOL/EUR") == "solana"
    assert "try --vs with one of USD, EUR" in no_pair_reason("dogecoin", "jpy")
    assert [m.id for m in search_table("eth")][:2] == ["ethereum", "ethereum-classic"]
    assert [m.id for m in search_table("doge", vs="jpy")] == []
    assert KrakenSource(Settings()).search("BTC")[0].id == "bitcoin"
