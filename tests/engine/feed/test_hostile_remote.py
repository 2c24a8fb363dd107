"""A hostile remote engine against the real RemoteEngine (real WebSockets on 127.0.0.1): every string
of every frame type arrives clean, values are checked like local config, and the viewer stays
bounded under floods (issue 24, cases 1 and 3)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from engine.errors import CryptotuiError
from engine.events import (
    BarEvent,
    CoinsEvent,
    ErrorEvent,
    Event,
    ForecastEvent,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.feed.codec import BadFrame, Caps, decode_foreign, decode_hello
from engine.feed.remote import MAX_BARS, RemoteEngine
from engine.settings.config import MAX_COINS
from engine.settings.holdings import Holding
from engine.text import clean, clean_lines
from tests.engine.feed.test_remote import Recorder, wait_for
from tests.fakes.hostile_feed import EVIL, MARK, hostile_frames, hostile_hello, hostile_server

FAST = (0.05, 0.2)


def strings(value: Any) -> Iterator[str]:
    """Every string inside an event (dataclasses, tuples, dicts), however deep."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)


def assert_clean_text(text: str) -> None:
    bad = {c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs")}
    assert not bad, (text, sorted(map(repr, bad)))
    # Every escape was removed whole, payload and all: no title, clipboard or link text is left.
    assert f"{MARK}title" not in text and "RVZJTDc" not in text and f"{MARK}c1" not in text


def test_every_string_of_every_frame_type_arrives_clean(tmp_path: Path) -> None:
    with hostile_server() as url:
        r = RemoteEngine(url, backoff=FAST, export_dir=tmp_path / "exports")
        rec = Recorder()
        r.subscribe(rec)
        r.start()
        try:
            assert r.wait_ready(10)
            kinds: tuple[type, ...] = (SnapshotEvent, CoinsEvent, BarEvent, ForecastEvent)
            kinds += (MetricsEvent, TrainEvent, StatusEvent, ErrorEvent)
            wait_for(lambda: all(rec.of(k) for k in kinds))
            time.sleep(1.2)  # a few repeats of every frame (in batches)
            matches = r.search("b")
            export = r.export("bitcoin")
            with pytest.raises(CryptotuiError) as refused:
                r.export("ethereum")
        finally:
            r.stop()
    events: list[Event] = list(rec.events)
    for event in events:
        for text in strings(event):
            assert_clean_text(text)
    for text in strings(matches):
        assert_clean_text(text)
    assert_clean_text(refused.value.title)
    assert_clean_text(refused.value.msg)
    # Values are checked like local config: the currency is refused (the default kept), the mode
    # is not a mode, the holdings that break the file's rule are left out.
    assert r.vs_currency == "usd" and r.served_mode == "" and r.mode == "REMOTE"
    assert_clean_text(r.source_info)
    assert r.source_info
    assert r.holdings == {"ethereum": Holding("ethereum", 2.0, None, "usd")}
    told = [e for e in events if isinstance(e, ErrorEvent) and e.title == "Remote engine"]
    assert len(told) == 1 and "currency" in told[0].msg and "holdings" in told[0].msg
    # The export is named here (not "../../..."), in the viewer's folder; its text is clean.
    assert export.parent == tmp_path / "exports" and export.name.startswith("bitcoin-")
    body = export.read_text()
    assert "\x1b" not in body and "\x07" not in body and body.startswith("time,price,note")
    # The error frames of the peer arrived as ErrorEvents, their words clean.
    peer_errors = [e for e in events if isinstance(e, ErrorEvent) and e.title != "Remote engine"]
    assert peer_errors and all("[red]" in e.title for e in peer_errors)  # markup stays text


def test_the_decoder_checks_types_and_bounds() -> None:
    caps = Caps(3, 5, 5)
    frames = {f["type"]: f for f in hostile_frames()}
    bar = frames["bar"]
    assert decode_foreign(bar, caps) == BarEvent(
        dataclasses.replace(decode_foreign(bar, caps).bar, source=clean(EVIL, 40))  # type: ignore[union-attr]
    )
    for broken in (
        {**bar, "bar": {**bar["bar"], "price": "70000"}},  # a string for a number
        {**bar, "bar": {**bar["bar"], "price": 1e-320}},  # outside the price bounds
        {**bar, "bar": {**bar["bar"], "ts": 10**400}},  # a 400-digit time
        {**bar, "bar": {**bar["bar"], "ts": True}},  # a bool is not a number
        {**bar, "bar": {**bar["bar"], "coin": "../x"}},  # not a coin id
        {**bar, "bar": {**bar["bar"], "filled": "no"}},
        {**frames["forecast"], "mean": [0.0]},  # does not match its horizons
        {**frames["train"], "state": 5},
        {**frames["error"], "title": None},
        {"v": 1, "type": "nonsense"},
    ):
        with pytest.raises((ValueError, KeyError)):
            decode_foreign(broken, caps)
    assert isinstance(BadFrame("x"), ValueError)
    # Non-finite and absurd forecast values become NaN, never inf.
    fc = decode_foreign({**frames["forecast"], "mean": [1e999, 500.0, None, 0.1]}, caps)
    assert isinstance(fc, ForecastEvent) and [str(v) for v in fc.mean] == [
        "nan",
        "nan",
        "nan",
        "0.1",
    ]
    # Lists past the caps are cut and the cut recorded.
    many = {"v": 1, "type": "coins", "coins": [f"c{i}" for i in range(10)], "labels": []}
    coins = decode_foreign(many, caps)
    assert isinstance(coins, CoinsEvent) and coins.coins == ("c0", "c1", "c2")
    assert "coins" in caps.hit
    snap = frames["snapshot"]
    decoded = decode_foreign(snap, caps)
    assert isinstance(decoded, SnapshotEvent) and len(decoded.coins[0].bars) == 5
    assert "bars" in caps.hit


def test_hello_values_are_checked_like_local_config() -> None:
    hello = decode_hello(hostile_hello(), Caps(MAX_COINS, 10, 10))
    assert hello.vs_currency is None and hello.mode == "" and hello.coins == ("bitcoin",)
    assert "\x1b" not in hello.server and "\x1b" not in hello.source_info
    assert any("currency" in p for p in hello.problems)
    good = decode_hello(
        {"mode": "DEMO", "vs_currency": "EUR ", "horizons": [1, 5], "source_info": "r.csv"},
        Caps(MAX_COINS, 10, 10),
    )
    assert (good.mode, good.vs_currency, good.horizons, good.problems) == (
        "DEMO",
        "eur",
        (1, 5),
        (),
    )
    for horizons in ([0], ["5"], [10**400], [True]):
        assert decode_hello({"horizons": horizons}, Caps(1, 1, 1)).horizons is None
    assert clean_lines("a\tb\r\n\x1b]52;c;x\x07c\x9b2J") == "a\tb\r\nc"


@contextmanager
def raw_server(handler: Callable[[ServerConnection], None]) -> Iterator[str]:
    with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        finally:
            server.shutdown()
            thread.join(5)


def plain_hello(coins: list[str]) -> str:
    return json.dumps({**hostile_hello(), "server": "x", "mode": "LIVE", "vs_currency": "usd",
                       "coins": coins, "holdings": {}, "source_info": ""})  # fmt: skip


def test_a_coins_flood_is_capped_said_once_and_forgotten_when_the_engine_shrinks() -> None:
    back = threading.Event()

    def flood(ws: ServerConnection) -> None:
        ws.send(plain_hello(["bitcoin"]))
        ws.send(json.dumps(hostile_frames()[0]))  # a snapshot of bitcoin
        for n in range(20):  # the flood: 20 frames of 50,000 new ids each
            ids = [f"x{n}-{i}" for i in range(50_000)]
            ws.send(
                json.dumps({"v": 1, "type": "coins", "coins": ids, "unknown": [], "labels": []})
            )
            # Bars of made-up coins: they must not make a view each.
            bars = [{**hostile_frames()[2]["bar"], "coin": f"y{n}-{i}"} for i in range(200)]
            ws.send(json.dumps({"v": 1, "type": "batch", "frames": [
                {"v": 1, "type": "bar", "bar": b} for b in bars]}))  # fmt: skip
        ws.send(json.dumps({"v": 1, "type": "coins", "coins": ["bitcoin", "ethereum", "solana"]}))
        back.set()
        time.sleep(30)

    with raw_server(flood) as url:
        r = RemoteEngine(url, backoff=FAST)
        rec = Recorder()
        r.subscribe(rec)
        r.start()
        try:
            assert r.wait_ready(10)
            wait_for(lambda: back.is_set() and r.coins() == ("bitcoin", "ethereum", "solana"), 60)
            during = [e for e in rec.of(CoinsEvent) if len(e.coins) > 3]
            assert during and max(len(e.coins) for e in during) == MAX_COINS
            assert set(r._state) == {"bitcoin", "ethereum", "solana"}  # the flood's views are gone
            told = [e for e in rec.of(ErrorEvent) if "more than this viewer keeps" in e.msg]
            assert len(told) == 1 and "50000 sent, 100 kept" in told[0].msg
            assert not any(
                isinstance(e, BarEvent) and e.bar.coin.startswith("y") for e in rec.events
            )
        finally:
            r.stop()


def test_a_frame_over_the_limit_closes_the_connection_and_is_said_once() -> None:
    def giant(ws: ServerConnection) -> None:
        ws.send(plain_hello(["bitcoin"]))
        ws.send(json.dumps(hostile_frames()[0]))
        ws.send(json.dumps({"v": 1, "type": "error", "title": "x", "msg": "y" * 2_000_000}))
        time.sleep(5)

    with raw_server(giant) as url:
        r = RemoteEngine(url, backoff=FAST, max_size=1_000_000)
        rec = Recorder()
        r.subscribe(rec)
        r.start()
        try:
            assert r.wait_ready(10)
            wait_for(lambda: any("larger than" in e.msg for e in rec.of(ErrorEvent)), 20)
            # It reconnects, is sent the same frame again, and says so no more.
            wait_for(lambda: len(rec.of(SnapshotEvent)) >= 3, 20)
            told = [e for e in rec.of(ErrorEvent) if "larger than" in e.msg]
            assert len(told) == 1
            assert r.snapshot("bitcoin").bars  # the last data stays
        finally:
            r.stop()


def test_bars_kept_per_coin_are_a_day_and_an_hour() -> None:
    r = RemoteEngine("ws://127.0.0.1:1")
    snap = hostile_frames()[0]
    bars = snap["coins"][0]["bars"]
    long_snap = {
        **snap,
        "coins": [{**snap["coins"][0], "bars": [
            {**bars[0], "ts": 60 * i, "source": "x"} for i in range(5000)]}],
    }  # fmt: skip
    event = decode_foreign(long_snap, r._caps)
    r._apply(event)
    assert len(r.snapshot("bitcoin").bars) == MAX_BARS == 1500
