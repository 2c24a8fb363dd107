"""A local WebSocket server that speaks Kraken's v2 ``ohlc`` channel, replaying the real frames.

On ``subscribe`` it answers like Kraken (an ack per pair, then a snapshot of recent candles), sends
heartbeats, and pushes ``update`` frames when a test calls ``advance()`` (a new minute) or
``tick()`` (the open candle changes). Its history starts from the real recorded candles in the
shared data folder (including their real gap at 17:42), scaled to each pair's price. ``drop()``
aborts every connection without a close frame, the way a network failure looks; every
subscription is recorded so tests can check the client re-subscribes.

    with FakeKraken() as kr:
        source = KrakenSource(replace(settings, kraken_url=kr.url))

Standalone, with candles in real time (rebased to now) and optional drops::

    python -m tests.fakes.kraken_server --port 8998 [--minute-seconds 2] [--drop-every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import copy
import json
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

DATA = (
    Path(
        os.environ.get(
            "CRYPTOTUI_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
        )
    )
    / "exchanges"
)

# Pairs the fake lists, with a price to scale the recorded BTC candles to.
PAIRS: dict[str, float] = {
    "BTC/USD": 77340.0,
    "ETH/USD": 2950.0,
    "SOL/USD": 142.0,
    "LTC/USD": 84.0,
    "DOGE/USD": 0.16,
    "BTC/EUR": 71150.0,
    "ETH/EUR": 2714.0,
}


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def fmt_time(ts: float, nanos: bool = True) -> str:
    d = datetime.fromtimestamp(ts, tz=UTC)
    frac = f"{round((ts % 1) * 1e9):09d}" if nanos else f"{round((ts % 1) * 1e6):06d}"
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


def _parse(value: str) -> int:
    return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))


@dataclass(frozen=True)
class Subscription:
    connection: int  # 1 for the first connection, 2 after the first reconnect, ...
    method: str
    symbols: tuple[str, ...]
    interval: int | None


class FakeKraken:
    """The server; a context manager, or ``start()`` / ``close()``. Thread-safe control methods."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pairs: dict[str, float] | None = None,
        heartbeat: float = 0.2,
        rebase: bool = False,
        behind: int = 0,
        seed: int = 7,
    ) -> None:
        self.host, self._port = host, port
        self.pairs = dict(PAIRS if pairs is None else pairs)
        self.heartbeat = heartbeat
        self.subscriptions: list[Subscription] = []
        self.connections = 0
        self._rng = random.Random(seed)
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._subs: dict[ServerConnection, set[str]] = {}
        self._lock = threading.RLock()  # history() is called with the lock held
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._beats: asyncio.Task[None] | None = None
        snap = _load("kraken_v2_ohlc_snapshot_real_2026.json")["data"]
        upd = _load("kraken_v2_ohlc_update_real_shape_2026.json")["data"]
        self._recorded = [*snap, *upd]  # 17:40, 17:41, 17:43 (17:42 had no trade), 17:44
        self._shift = 0
        if rebase:
            # Make the last recorded candle the current minute (or ``behind`` minutes before it),
            # for runs against the real clock.
            last = _parse(self._recorded[-1]["interval_begin"])
            self._shift = int(time.time()) // 60 * 60 - 60 * behind - last

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run_loop, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Kraken did not start")
        return self

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._server = await serve(self._handler, self.host, self._port, ping_interval=None)
            self._port = self._server.sockets[0].getsockname()[1]
            self._beats = loop.create_task(self._heartbeats())

        loop.run_until_complete(boot())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def close(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._beats is not None:
                self._beats.cancel()
            self._server.close()
            for ws in list(self._subs):
                ws.transport.abort()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- candles ------------------------------------------------------------------------------

    def history(self, pair: str) -> list[dict[str, Any]]:
        """All candles of ``pair`` so far, oldest first (built from the recorded ones)."""
        with self._lock:
            if pair not in self._history:
                scale = self.pairs[pair] / 77340.0
                rows = []
                for c in self._recorded:
                    row = copy.deepcopy(c)
                    row["symbol"] = pair
                    for k in ("open", "high", "low", "close", "vwap"):
                        row[k] = round(row[k] * scale, 8)
                    begin = _parse(row["interval_begin"]) + self._shift
                    row["interval_begin"] = fmt_time(begin)
                    row["timestamp"] = fmt_time(begin + 60, nanos=False)
                    rows.append(row)
                self._history[pair] = rows
            return self._history[pair]

    def _next_candle(self, pair: str) -> dict[str, Any]:
        last = self.history(pair)[-1]
        begin = _parse(last["interval_begin"]) + 60
        o = last["close"]
        c = round(o * (1 + self._rng.gauss(0, 0.0008)), 8)
        return {
            "symbol": pair,
            "open": o,
            "high": max(o, c),
            "low": min(o, c),
            "close": c,
            "trades": self._rng.randint(1, 40),
            "volume": round(self._rng.uniform(0.01, 3.0), 8),
            "vwap": round((o + c) / 2, 8),
            "interval_begin": fmt_time(begin),
            "interval": 1,
            "timestamp": fmt_time(begin + 60, nanos=False),
        }

    def advance(self, pairs: list[str] | None = None) -> None:
        """A new minute begins: append a candle per pair and push it as an ``update``."""
        targets = pairs or sorted(self.pairs)
        rows = []
        for pair in targets:
            row = self._next_candle(pair)
            with self._lock:
                self._history[pair].append(row)
            rows.append(row)
        self._call(self._broadcast(rows))

    def tick(self, pair: str, close: float) -> None:
        """A trade in the open minute: the current candle's close (and high/low) change."""
        with self._lock:
            row = self.history(pair)[-1]
            row["close"] = close
            row["high"] = max(row["high"], close)
            row["low"] = min(row["low"], close)
            row["trades"] += 1
        self._call(self._broadcast([copy.deepcopy(row)]))

    def push_raw(self, text: str) -> None:
        """Send ``text`` as one frame to every connection (a hostile or broken Kraken)."""

        async def send() -> None:
            for ws in list(self._subs):
                try:
                    await ws.send(text)
                except ConnectionClosed:
                    pass

        self._call(send())

    def drop(self) -> None:
        """Abort every connection with no close frame (what a network failure looks like)."""

        async def abort() -> None:
            for ws in list(self._subs):
                ws.transport.abort()

        self._call(abort())

    def subscribed(self, connection: int) -> set[str]:
        return {
            s
            for sub in self.subscriptions
            if sub.connection == connection and sub.method == "subscribe"
            for s in sub.symbols
        }

    # -- protocol -----------------------------------------------------------------------------

    async def _broadcast(self, rows: list[dict[str, Any]]) -> None:
        now = fmt_time(time.time())
        for ws, symbols in list(self._subs.items()):
            data = [r for r in rows if r["symbol"] in symbols]
            if data:
                frame = {"channel": "ohlc", "type": "update", "timestamp": now, "data": data}
                try:
                    await ws.send(json.dumps(frame))
                except ConnectionClosed:
                    pass

    async def _heartbeats(self) -> None:
        beat = json.dumps(_load("kraken_v2_heartbeat_and_ping.json")["heartbeat"])
        while True:
            await asyncio.sleep(self.heartbeat)
            for ws in list(self._subs):
                try:
                    await ws.send(beat)
                except ConnectionClosed:
                    pass

    async def _handler(self, ws: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
        self._subs[ws] = set()
        status = {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "version": "2.0.10",
                    "system": "online",
                    "api_version": "v2",
                    "connection_id": 1000 + number,
                }
            ],
        }
        try:
            await ws.send(json.dumps(status))
            async for raw in ws:
                await self._on_message(ws, number, raw)
        except ConnectionClosed:
            pass
        finally:
            self._subs.pop(ws, None)

    async def _on_message(self, ws: ServerConnection, number: int, raw: str | bytes) -> None:
        now = fmt_time(time.time(), nanos=False)
        try:
            msg = json.loads(raw)
        except ValueError:
            bad = {"error": "Malformed request", "success": False, "time_in": now, "time_out": now}
            await ws.send(json.dumps(bad))
            return
        method = msg.get("method")
        req_id = msg.get("req_id")
        if method == "ping":
            await ws.send(
                json.dumps({"method": "pong", "req_id": req_id, "time_in": now, "time_out": now})
            )
            return
        params = msg.get("params") or {}
        symbols = tuple(params.get("symbol") or ())
        with self._lock:
            sub = Subscription(number, str(method), symbols, params.get("interval"))
            self.subscriptions.append(sub)
        if method not in ("subscribe", "unsubscribe") or params.get("channel") != "ohlc":
            return
        for sym in symbols:
            if sym not in self.pairs:
                # The real error frame, with the pair named as Kraken names it.
                err = _load("kraken_v2_subscribe_error_real_2026.json")
                err.update(
                    {
                        "error": f"Currency pair not supported {sym}",
                        "symbol": sym,
                        "method": method,
                        "req_id": req_id,
                        "time_in": now,
                        "time_out": now,
                    }
                )
                await ws.send(json.dumps(err))
                continue
            ack = {
                "method": method,
                "result": {
                    "channel": "ohlc",
                    "symbol": sym,
                    "interval": params.get("interval", 1),
                    "snapshot": True,
                },
                "success": True,
                "req_id": req_id,
                "time_in": now,
                "time_out": now,
            }
            await ws.send(json.dumps(ack))
            if method == "unsubscribe":
                self._subs.get(ws, set()).discard(sym)
                continue
            self._subs.setdefault(ws, set()).add(sym)
            snapshot = {
                "channel": "ohlc",
                "type": "snapshot",
                "timestamp": fmt_time(time.time()),
                "data": copy.deepcopy(self.history(sym)[-10:]),
            }
            await ws.send(json.dumps(snapshot))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8998)
    parser.add_argument(
        "--minute-seconds",
        type=float,
        default=60.0,
        help="real seconds between new candles (60: real time)",
    )
    parser.add_argument(
        "--drop-every", type=int, default=0, help="drop connections every N candles"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Faster than real time, candles would soon run ahead of the clock, and the app refuses
    # candles from the future: start them two hours back (120 candles: two minutes at 1 s each).
    behind = 0 if args.minute_seconds >= 60 else 120
    with FakeKraken(host=args.host, port=args.port, rebase=True, behind=behind) as server:
        # CLI output: the lead's tmux tests read the URL from here.
        print(f"fake Kraken on {server.url}", flush=True)
        n = 0
        try:
            while not stop.wait(args.minute_seconds):
                server.advance()
                n += 1
                if args.drop_every and n % args.drop_every == 0:
                    server.drop()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
