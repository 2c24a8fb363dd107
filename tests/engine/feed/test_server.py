"""The WebSocket feed with real clients on 127.0.0.1: auth, ops, bad frames, slow clients, stop."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from engine.errors import ConfigError
from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    ErrorEvent,
    ForecastEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.feed.codec import encode, to_dict
from engine.feed.server import (
    MAX_OP_BYTES,
    ServerThread,
    _Ring,
    check_bind,
    is_loopback,
    serve_forever,
)
from tests.conftest import ROOT
from tests.fakes.fake_engine import FakeEngine

TOKEN = "s3cret-token-0123456789"


def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(
    ws: ClientConnection,
    pred: Callable[[dict[str, Any]], bool],
    limit: int = 100_000,
    timeout: float = 10.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Frames up to and including the first one matching ``pred``."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        frame = recv(ws, timeout)
        seen.append(frame)
        if pred(frame):
            return frame, seen
    raise AssertionError(f"no matching frame in {limit} frames")


_CLIENTS = contextlib.ExitStack()


def open_client(url: str, **kw: Any) -> ClientConnection:
    """A connected client past hello and the first snapshot; closed at the end of the test."""
    # close_timeout: a sync client with unread frames cannot see the server's close frame.
    ws = _CLIENTS.enter_context(connect(url, max_size=None, close_timeout=1, **kw))
    hello = recv(ws)
    assert hello["type"] == "hello"
    snap = recv(ws)
    assert snap["type"] == "snapshot"
    return ws


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    with _CLIENTS:
        yield


# Binding and auth ---------------------------------------------------------------------------------
def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("::")


def test_non_loopback_without_token_refuses_to_start(engine: FakeEngine) -> None:
    with pytest.raises(ConfigError, match="without a token"):
        serve_forever(engine, "0.0.0.0", 0, None)
    with pytest.raises(ConfigError, match="empty --token"):
        check_bind("127.0.0.1", "  ")
    check_bind("0.0.0.0", "t")  # allowed with a token
    assert engine._listeners == []  # refused before subscribing to anything


def test_handshake_requires_the_bearer_token(engine: FakeEngine) -> None:
    with ServerThread(engine, token=TOKEN) as st:
        with pytest.raises(InvalidStatus) as missing:
            connect(st.url)
        assert missing.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as wrong:
            connect(st.url, additional_headers={"Authorization": "Bearer nope"})
        assert wrong.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as scheme:
            connect(st.url, additional_headers={"Authorization": TOKEN})
        assert scheme.value.response.status_code == 401
        ws = open_client(st.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        ws.close()
        assert st.server is not None
        assert st.server.stats["refused_auth"] == 3
        assert st.server.stats["connections"] == 1


def test_token_never_reaches_a_log(engine: FakeEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with ServerThread(engine, token=TOKEN) as st:
        with pytest.raises(InvalidStatus):
            connect(st.url, additional_headers={"Authorization": f"Bearer {TOKEN}x"})
        ws = open_client(st.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        ws.close()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("engine"))
    assert "[redacted]" in ours  # the handshake headers were logged, without the value
    assert TOKEN not in ours
    assert TOKEN not in repr(st.server)


def test_client_count_is_bounded(engine: FakeEngine) -> None:
    with ServerThread(engine, max_clients=2) as st:
        a, b = open_client(st.url), open_client(st.url)
        with pytest.raises(InvalidStatus) as full:
            connect(st.url)
        assert full.value.response.status_code == 503
        a.close()
        server = st.server
        assert server is not None
        wait_for(lambda: server.client_count == 1)
        c = open_client(st.url)
        b.close()
        c.close()


# Frames and ops -----------------------------------------------------------------------------------
def test_hello_then_snapshot_then_events_in_order(server: ServerThread, engine: FakeEngine) -> None:
    with connect(server.url, max_size=None) as ws:
        hello = recv(ws)
        assert hello["type"] == "hello" and hello["v"] == 1
        assert hello["coins"] == list(engine.coins()) and hello["horizons"] == [1, 5, 15, 60]
        assert hello["mode"] == "DEMO"
        snap = recv(ws)
        assert snap["type"] == "snapshot"
        assert [c["coin"] for c in snap["coins"]] == list(engine.coins())
        btc = snap["coins"][0]
        assert len(btc["bars"]) == 40
        assert btc["bars"][-1] == dataclasses.asdict(engine.snapshot("bitcoin").bars[-1])
        engine.advance(5)
        bars = []
        for _ in range(5 * 3 * 4):
            f = recv(ws)
            if f["type"] == "bar":
                bars.append((f["bar"]["coin"], f["bar"]["ts"]))
        assert [ts for c, ts in bars if c == "bitcoin"] == [
            b.ts for b in engine.snapshot("bitcoin").bars[-5:]
        ]
        assert len(bars) == 15


def test_ops_reach_the_engine(server: ServerThread, engine: FakeEngine) -> None:
    ws = open_client(server.url)
    ws.send(json.dumps({"op": "watch", "coin": "solana"}))
    coins, _ = recv_until(ws, lambda f: f["type"] == "coins")
    assert coins["coins"][-1] == "solana" and coins["unknown"] == ["solana"]
    ws.send(json.dumps({"op": "unwatch", "coin": "solana"}))
    coins, _ = recv_until(ws, lambda f: f["type"] == "coins")
    assert "solana" not in coins["coins"] and "solana" not in engine.coins()
    ws.send(json.dumps({"op": "pause", "paused": True, "id": "p"}))
    reply, _ = recv_until(ws, lambda f: f["type"] == "reply")
    assert reply == {"v": 1, "type": "reply", "id": "p", "op": "pause", "ok": True, "result": None}
    assert engine.paused is True
    ws.send(json.dumps({"op": "reset", "coin": "ethereum"}))
    # Events the op causes may come before or after its reply: wait for the one we expect.
    train, _ = recv_until(ws, lambda f: f["type"] == "train" and f["message"] == "model reset")
    assert engine.resets == ["ethereum"] and train["coin"] == "ethereum"
    # The fake is a demo engine: its search finds only the coins it has data for.
    ws.send(json.dumps({"op": "search", "query": "lite", "id": 7}))
    reply, _ = recv_until(ws, lambda f: f["type"] == "reply")
    assert reply["id"] == 7 and reply["result"] == [
        {"id": "litecoin", "name": "Litecoin", "symbol": "LTC", "rank": 20}
    ]
    ws.send(json.dumps({"op": "export", "coin": "bitcoin", "id": "x"}))
    reply, _ = recv_until(ws, lambda f: f["type"] == "reply")
    assert reply["ok"] and reply["result"]["csv"].splitlines()[0] == "timestamp,price"
    assert len(reply["result"]["csv"].splitlines()) == 41
    ws.send(json.dumps({"op": "resync"}))
    snap, _ = recv_until(ws, lambda f: f["type"] == "snapshot")
    assert len(snap["coins"]) == 3
    ws.close()


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"op": "fly"}), "unknown op 'fly'"),
        (json.dumps({"coin": "bitcoin"}), "unknown op"),
        (json.dumps({"op": "watch"}), 'needs "coin"'),
        (json.dumps({"op": "watch", "coin": "../etc/passwd"}), 'needs "coin"'),
        (json.dumps({"op": "pause", "paused": "yes"}), "true or false"),
        (json.dumps({"op": "export", "coin": "bitcoin"}), 'needs an "id"'),
        (json.dumps({"op": "resync", "pad": "x" * MAX_OP_BYTES}), "too large"),
        (b"\x00\x01binary", "binary frames"),
    ],
)
def test_bad_frames_get_an_error_and_the_connection_lives(
    server: ServerThread, frame: str | bytes, words: str
) -> None:
    ws = open_client(server.url)
    ws.send(frame)
    err = recv(ws)
    assert err["type"] == "error" and err["title"] == "Bad request"
    assert words in err["msg"]
    ws.send(json.dumps({"op": "search", "query": "bit", "id": 1}))
    assert recv(ws)["type"] == "reply"
    ws.close()


def test_bad_op_with_an_id_gets_a_failed_reply(server: ServerThread) -> None:
    ws = open_client(server.url)
    ws.send(json.dumps({"op": "search", "id": "q1"}))
    reply = recv(ws)
    assert reply["type"] == "reply" and reply["id"] == "q1" and reply["ok"] is False
    assert "query" in reply["error"]
    ws.close()


def test_huge_frame_closes_only_that_connection(server: ServerThread, engine: FakeEngine) -> None:
    other = open_client(server.url)
    ws = open_client(server.url)
    ws.send("x" * 200_000)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    engine.advance(1)
    assert recv(other)["type"] == "bar"
    other.close()


# Back-pressure ------------------------------------------------------------------------------------
def stalled_client(url: str, port: int) -> ClientConnection:
    """A client whose socket buffers are tiny and who does not read until told to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return _CLIENTS.enter_context(
        connect(url, sock=sock, max_size=None, max_queue=4, close_timeout=0.5)
    )


def test_slow_client_is_resynced_and_does_not_delay_others(engine: FakeEngine) -> None:
    with ServerThread(engine, queue_size=256) as st:
        assert st.server is not None
        fast = open_client(st.url)
        slow = stalled_client(st.url, st.port)
        got: list[tuple[str, int]] = []
        # The engine runs ahead of the fast client by at most 10 minutes (120 events < 256), and
        # never waits for the stalled one, who falls 7200 events behind: the ring overtakes it.
        for _ in range(60):
            engine.advance(10)
            while len(got) < len(engine.coins()) * 10 * (1 + _):
                f = recv(fast)
                if f["type"] == "bar":
                    got.append((f["bar"]["coin"], f["bar"]["ts"]))
        # The fast client got every bar of every coin, in order, none missing.
        for coin in engine.coins():
            expected = [b.ts for b in engine.snapshot(coin).bars[-600:]]
            assert [ts for c, ts in got if c == coin] == expected
        # Now the slow client reads: frames it had, then the notice, then a fresh snapshot.
        err, _ = recv_until(slow, lambda f: f["type"] == "error")
        assert err["title"] == "Too slow"
        found = re.search(r"(\d+) events were dropped", err["msg"])
        assert found is not None
        dropped = int(found.group(1))
        assert dropped > 0 and st.server.stats["resyncs"] == 1
        assert st.server.stats["dropped"] == dropped
        snap = recv(slow)
        assert snap["type"] == "snapshot"
        btc = next(c for c in snap["coins"] if c["coin"] == "bitcoin")
        assert btc["bars"][-1]["ts"] == engine.snapshot("bitcoin").bars[-1].ts
        # After the snapshot the stream goes on from where the snapshot ends.
        engine.advance(2)
        bar, _ = recv_until(slow, lambda f: f["type"] == "bar" and f["bar"]["coin"] == "bitcoin")
        assert bar["bar"]["ts"] == engine.snapshot("bitcoin").bars[-2].ts
        fast.close()
        slow.close()


# Shutdown -----------------------------------------------------------------------------------------
def test_stop_event_closes_clients_and_detaches(engine: FakeEngine) -> None:
    st = ServerThread(engine).start()
    ws = open_client(st.url)
    assert len(engine._listeners) == 1
    st.stop()
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert engine._listeners == []
    assert not st._thread.is_alive()


SERVE_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.fakes.fake_engine import FakeEngine
from engine.feed.server import serve_forever
serve_forever(FakeEngine(history=5), "127.0.0.1", 0, None,
              ready=lambda s: print(s.port, flush=True))
print("stopped", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_serve_forever_cleanly(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT.format(root=str(ROOT))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        ws = open_client(f"ws://127.0.0.1:{port}")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.strip() == "stopped"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_events_reach_clients_and_the_next_snapshot(
    server: ServerThread, engine: FakeEngine
) -> None:
    ws = open_client(server.url)
    engine.emit(StatusEvent("demo", "rate limited", "429, retry in 119 s"))
    status = recv(ws)
    assert status["type"] == "status" and status["state"] == "rate limited"
    ws.send(json.dumps({"op": "resync"}))
    snap, _ = recv_until(ws, lambda f: f["type"] == "snapshot")
    assert snap["status"]["state"] == "rate limited"
    ws.close()


def test_batch_client_gets_the_same_stream_in_fewer_messages(
    server: ServerThread, engine: FakeEngine
) -> None:
    plain = open_client(server.url)
    ws = _CLIENTS.enter_context(connect(server.url + "/?batch=1", max_size=None, close_timeout=1))
    hello = recv(ws)
    assert hello["batch"] is True and recv(ws)["type"] == "snapshot"
    assert server.server is not None and server.server._loop is not None
    # Run the engine on the server's loop: all 600 events are waiting before any is sent.
    server.server._loop.call_soon_threadsafe(engine.advance, 50)
    batched: list[dict[str, Any]] = []
    messages = 0
    while len(batched) < 600:
        msg = recv(ws)
        messages += 1
        batched.extend(msg["frames"] if msg["type"] == "batch" else [msg])
    assert messages < 10
    assert [recv(plain) for _ in range(600)] == batched
    btc = [f["bar"]["ts"] for f in batched if f["type"] == "bar" and f["bar"]["coin"] == "bitcoin"]
    assert btc == [b.ts for b in engine.snapshot("bitcoin").bars[-50:]]


# Pure parts ---------------------------------------------------------------------------------------
def test_ring_keeps_the_last_frames_in_order_across_wraparound() -> None:
    ring = _Ring(4)
    assert ring.read(0, 10) == [] and ring.tail == 0
    for i in range(10):
        ring.append(b"%d" % i)
    assert (ring.tail, ring.head) == (6, 10)
    assert ring.read(6, 10) == [b"6", b"7", b"8", b"9"]  # wraps inside the slots
    assert ring.read(7, 2) == [b"7", b"8"]
    assert ring.read(9, 5) == [b"9"] and ring.read(10, 5) == []


def _reference(value: Any) -> Any:
    # The plain definition the codec's shallow walk must match: asdict, NaN/inf as null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_reference(v) for v in value]
    if isinstance(value, dict):
        return {k: _reference(v) for k, v in value.items()}
    return value


def test_codec_is_exactly_asdict_with_nan_as_null() -> None:
    engine = FakeEngine(history=45)
    events: list[Any] = []
    engine.subscribe(events.append)
    engine.advance(3)
    engine.set_paused(True)
    events += [
        SnapshotEvent(tuple(engine.snapshot(c) for c in engine.coins()), StatusEvent("demo", "ok")),
        StatusEvent("coingecko", "rate limited", "429", 1.0, float("inf"), 3, 4, 30, 10000),
        ErrorEvent("T", "m"),
        CoinsEvent(("a", "b"), ("b",), (("a", "A"),)),
        ForecastEvent("x", 60, 1.0, (1, 5), (float("nan"), 0.1), (0.0, -1.0)),
        TrainEvent("x", "training", losses=(0.5, float("nan"), 0.2)),
        BarEvent(Bar("x", 60, 1.0)),
    ]
    assert {e.type for e in events} == {
        "bar",
        "forecast",
        "metrics",
        "train",
        "snapshot",
        "status",
        "error",
        "coins",
    }
    for event in events:
        expected = {"v": 1, "type": event.type, **_reference(dataclasses.asdict(event))}
        assert to_dict(event) == expected
        wire = json.dumps(expected, separators=(",", ":")).encode()
        assert encode(to_dict(event)) == wire


def test_client_that_floods_ops_and_never_reads_is_closed(tmp_path: Path) -> None:
    class OneFileExports(FakeEngine):
        # The flood's exports go to the test's folder, not to the fake's default file in /tmp.
        def export(self, coin: str, path: Path | None = None) -> Path:
            return super().export(coin, tmp_path / "x.csv")

    engine = OneFileExports(history=1400)  # an export answer is then ~25 KB
    # The op rate limit would ignore this flood; lifted here to test the cap on unread replies.
    with ServerThread(engine, ops_per_second=1e6, ops_burst=100_000) as st:
        server = st.server
        assert server is not None
        other = open_client(st.url)
        flood = stalled_client(st.url, st.port)
        op = json.dumps({"op": "export", "coin": "bitcoin", "id": 1})
        with contextlib.suppress(ConnectionClosed):  # the server may cut it off mid-flood
            for _ in range(1000):  # 25 MB of answers: far beyond its socket buffers
                flood.send(op)
        wait_for(lambda: server.client_count == 1)
        # Its unread answers stayed bounded (it was closed), and the others were not affected.
        engine.advance(1)
        assert recv(other)["type"] == "bar"
        assert server.client_count == 1


def test_feed_modules_stay_headless() -> None:
    # `cryptotui serve` and the remote client must not pull in the UI or torch.
    code = (
        "import sys, engine.feed.server, engine.feed.remote; "
        "top = {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(top & {'textual', 'rich', 'tui', 'torch'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert out.strip() == "[]"
