"""Kraken source: true 1-minute candles from the WebSocket v2 ``ohlc`` channel, no key needed.

A candle is final when the next interval begins (a candle for a later minute arrives) or, if no
trade comes, once the clock is ``final_grace`` seconds past its end; only final candles become
bars, so each minute is emitted once. After a drop the source reconnects with backoff and
re-subscribes; the snapshot Kraken sends again is merged, never duplicated. Minutes without trades
have no candle and stay gaps. Third-party exceptions (``websockets``, ``OSError``, ``json``) are
translated here into ``engine.errors``.
"""

from __future__ import annotations

import calendar
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import websockets
import websockets.exceptions
import websockets.sync.client

from engine.api import CoinMatch
from engine.errors import NetworkError, ParseError, SourceError
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.redact import register_url_secrets, safe_url
from engine.settings.config import Settings
from engine.sources.base import Emit, Source, ahead_of_clock
from engine.sources.coins import kraken_pair, no_pair_reason, search_table, symbol_of
from engine.sources.retry import backoff_delay, fmt_seconds

log = logging.getLogger(__name__)

SOURCE = "kraken"
# Kraken's largest frame is a snapshot of 720 one-minute candles for one pair (~200 kB); a frame
# beyond this is refused by the WebSocket library before it is buffered whole.
MAX_FRAME = 1_000_000


class _Stopped(Exception):
    """The stop event was set; unwinds the session quietly."""


def parse_time(value: str) -> int:
    """Unix seconds of a Kraken RFC 3339 time (nanosecond fractions are dropped)."""
    # fromisoformat cannot read 9 fractional digits; whole seconds are all a minute bar needs.
    head = value.strip()[:19]
    try:
        return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise ParseError(f"Kraken sent a time that is not RFC 3339: {value[:40]!r}") from None


def _translate(exc: BaseException) -> NetworkError:
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        if exc.sent is not None and exc.sent.code == 1009:  # we closed it: "message too big"
            return NetworkError(f"Kraken sent a message over {MAX_FRAME // 1_000_000} MB; ignored")
        if exc.rcvd is None:  # no close frame: the network or the server went away
            return NetworkError("connection lost (code 1006)")
        return NetworkError(f"connection closed by Kraken (code {exc.rcvd.code})")
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return NetworkError(f"Kraken refused the connection (HTTP {exc.response.status_code})")
    if isinstance(exc, websockets.exceptions.InvalidURI):
        return NetworkError(f"invalid Kraken URL {exc.uri!r}")
    if isinstance(exc, websockets.exceptions.WebSocketException):
        return NetworkError(f"WebSocket error ({exc.__class__.__name__})")
    if isinstance(exc, ConnectionRefusedError):
        return NetworkError("connection refused")
    if isinstance(exc, ConnectionResetError):
        return NetworkError("connection reset")
    if isinstance(exc, TimeoutError):
        return NetworkError("no answer from Kraken in time")
    if isinstance(exc, OSError):
        return NetworkError(f"cannot connect ({exc.strerror or exc.__class__.__name__})")
    return NetworkError(f"connection failed ({exc.__class__.__name__})")


class KrakenSource(Source):
    """Streams 1-minute candles for the watched coins from Kraken's WebSocket v2 API."""

    name = SOURCE

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Callable[..., Any] = websockets.sync.client.connect,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
        last_bar_ts: Callable[[str], int | None] | None = None,
        final_grace: float = 10.0,
        idle_timeout: float = 15.0,
        open_timeout: float = 5.0,
        recv_timeout: float = 0.5,
    ) -> None:
        self.settings = settings
        self.url = settings.kraken_url
        register_url_secrets(self.url)
        self.vs = settings.vs.lower()
        self._connect = connect
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._last_bar_ts = last_bar_ts
        self._final_grace = final_grace
        self._idle_timeout = idle_timeout
        self._open_timeout = open_timeout
        self._recv_timeout = recv_timeout
        self._emit: Emit = lambda _item: None
        self._req_id = 0
        # Owned by the run() thread only.
        self._current: dict[str, Bar] = {}  # the open (not yet final) candle per coin
        self._emitted: dict[str, int] = {}  # newest final minute per coin
        self._pair_coin: dict[str, str] = {}  # "BTC/USD" -> "bitcoin"
        self._refused: dict[str, str] = {}  # coin -> Kraken's reason
        self._reported: set[str] = set()
        self._coins_state: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._last_status: StatusEvent | None = None
        self._last_update: float | None = None
        self._subscribed: set[str] = set()
        self._session_had_data = False
        self._future_note = ""  # why a candle of the frame in hand was refused

    # -- plumbing ------------------------------------------------------------------------------

    def _wait(self, seconds: float, stop: threading.Event) -> bool:
        seconds = min(seconds, 3600.0)  # backoff is capped lower; this guards the lock's timeout
        if seconds > 0:
            if self._sleep is not None:
                self._sleep(seconds)
            else:
                stop.wait(seconds)
        return not stop.is_set()

    def _status(self, state: str, message: str, *, next_update: float | None = None) -> None:
        event = StatusEvent(
            source=SOURCE,
            state=state,
            message=message,
            last_update=self._last_update,
            next_update=next_update,
        )
        if event != self._last_status:
            self._last_status = event
            self._emit(event)

    def _send(self, ws: Any, method: str, pairs: list[str]) -> None:
        self._req_id += 1
        msg: dict[str, Any] = {
            "method": method,
            "params": {"channel": "ohlc", "symbol": sorted(pairs), "interval": 1},
            "req_id": self._req_id,
        }
        if method == "subscribe":
            msg["params"]["snapshot"] = True
        ws.send(json.dumps(msg))

    def _pairs(self, ids: tuple[str, ...]) -> dict[str, str]:
        """pair -> coin for the coins Kraken can stream; reports the others once, by name."""
        pairs: dict[str, str] = {}
        missing: list[str] = []
        for coin in ids:
            pair = kraken_pair(coin, self.vs)
            if pair is None:
                missing.append(coin)
                if coin not in self._reported:
                    self._reported.add(coin)
                    msg = no_pair_reason(coin, self.vs)
                    log.warning("%s", msg)
                    self._emit(ErrorEvent(title="Kraken", msg=msg, coin=coin))
            elif coin not in self._refused:
                pairs[pair] = coin
        self._update_coins(ids, tuple(c for c in ids if c in missing or c in self._refused))
        return pairs

    def _update_coins(self, ids: tuple[str, ...], unknown: tuple[str, ...]) -> None:
        state = (ids, unknown)
        if state != self._coins_state:
            self._coins_state = state
            labels = tuple((c, symbol_of(c)) for c in ids)
            self._emit(CoinsEvent(coins=ids, unknown=unknown, labels=labels))

    # -- the loop --------------------------------------------------------------------------------

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None:
        """Stream until ``stop`` is set; reconnects and re-subscribes after every drop."""
        self._emit = emit
        failures = 0
        last_error = ""
        while not stop.is_set():
            pairs = self._pairs(tuple(coins()))
            if not pairs:
                self._status("error", f"no watched coin has a Kraken pair in {self.vs.upper()}")
                if not self._wait(1.0, stop):
                    break
                continue
            self._status("connecting", f"connecting to {safe_url(self.url)}")
            self._session_had_data = False
            try:
                with self._connect(
                    self.url,
                    open_timeout=self._open_timeout,
                    close_timeout=1.0,
                    max_size=MAX_FRAME,
                ) as ws:
                    self._session(ws, coins, stop)
                break  # the session only returns when stopped
            except _Stopped:
                break
            except SourceError as exc:
                error: SourceError = exc
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
                error = _translate(exc)
            except Exception as exc:  # a bug must not silently kill the stream: say so, reconnect
                log.exception("Kraken session failed unexpectedly")
                error = SourceError(f"internal error ({exc.__class__.__name__}), see the log")
            if stop.is_set():
                break
            # A session that delivered data resets the backoff: this is a fresh drop.
            if self._session_had_data:
                failures, last_error = 1, ""
            else:
                failures += 1
            wait = backoff_delay(failures - 1, base=1.0, cap=60.0, rng=self._rng)
            msg = error.msg
            self._status(
                "offline",
                f"offline: {msg}, reconnecting in {fmt_seconds(wait)}",
                next_update=self._clock() + wait,
            )
            if msg != last_error:
                log.warning("Kraken: %s", msg)
                self._emit(ErrorEvent(title=error.title, msg=f"Kraken: {msg}"))
                last_error = msg
            if not self._wait(wait, stop):
                break
        self._status("offline", "stopped")

    def _session(
        self, ws: Any, coins: Callable[[], tuple[str, ...]], stop: threading.Event
    ) -> None:
        self._subscribed = set()
        last_message = self._clock()
        while not stop.is_set():
            want = self._pairs(tuple(coins()))
            self._pair_coin.update(want)
            add = sorted(set(want) - self._subscribed)
            drop = sorted(self._subscribed - set(want))
            if add:
                self._send(ws, "subscribe", add)
                self._subscribed.update(add)
            if drop:
                self._send(ws, "unsubscribe", drop)
                self._subscribed.difference_update(drop)
                for pair in drop:
                    self._current.pop(self._pair_coin.get(pair, ""), None)
            try:
                raw = ws.recv(timeout=self._recv_timeout)
            except TimeoutError:
                raw = None
            now = self._clock()
            if raw is not None:
                last_message = now
                self._handle(raw)
            elif now - last_message > self._idle_timeout:
                raise NetworkError(f"no data from Kraken for {fmt_seconds(now - last_message)}")
            self._finalize_due(now)

    # -- messages --------------------------------------------------------------------------------

    def _handle(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            log.warning("Kraken sent a frame that is not JSON; ignored")
            return
        if not isinstance(msg, dict):
            return
        method = msg.get("method")
        if method == "subscribe":
            self._on_subscribe(msg)
            return
        if method is not None:
            return  # pong, unsubscribe acks
        channel = msg.get("channel")
        if channel == "status":
            data = msg.get("data")
            first = data[0] if isinstance(data, list) and data else None
            system = first.get("system") if isinstance(first, dict) else None
            if system not in (None, "online"):
                self._status("offline", f"offline: Kraken says the system is {system}")
        elif channel == "ohlc" and msg.get("type") in ("snapshot", "update"):
            self._on_ohlc(msg.get("data"))

    def _on_subscribe(self, msg: dict[str, Any]) -> None:
        if msg.get("success"):
            raw = msg.get("result")
            result = raw if isinstance(raw, dict) else {}
            log.info("Kraken: subscribed to %s", result.get("symbol"))
            self._session_had_data = True
            live = ", ".join(sorted(self._subscribed))
            self._status("ok", f"live: {live}")
            return
        pair = str(msg.get("symbol") or "")
        reason = str(msg.get("error") or "subscription refused")
        coin = self._pair_coin.get(pair) or next(
            (c for p, c in self._pair_coin.items() if p.split("/")[0] in reason), None
        )
        text = f"Kraken refused {pair or 'the subscription'}: {reason}"
        log.warning("%s", text)
        if coin is not None:
            self._refused[coin] = reason
        self._emit(ErrorEvent(title="Kraken", msg=text, coin=coin))

    def _on_ohlc(self, data: Any) -> None:
        if not isinstance(data, list):
            log.warning("Kraken: ohlc frame without data; ignored")
            return
        candles: list[Bar] = []
        for item in data:
            try:
                candles.append(self._candle(item))
            except (ParseError, KeyError, TypeError, ValueError) as exc:
                log.warning("Kraken: bad candle ignored (%s)", exc)
        if self._future_note:
            self._status("error", f"error: {self._future_note}")
            self._future_note = ""
        for bar in sorted(candles, key=lambda b: (b.coin, b.ts)):
            self._on_candle(bar)
        if candles:
            self._session_had_data = True

    def _candle(self, item: dict[str, Any]) -> Bar:
        pair = str(item["symbol"])
        coin = self._pair_coin.get(pair)
        if coin is None:
            raise ValueError(f"unexpected pair {pair}")
        if int(item.get("interval", 1)) != 1:
            raise ValueError("not a 1-minute candle")
        ts = parse_time(str(item["interval_begin"])) // 60 * 60
        ahead = ahead_of_clock(ts, self._clock())
        if ahead is not None:
            self._future_note = f"{pair} candle {ahead}: refused (check the system clock)"
            raise ValueError(f"a candle stamped {ahead}")
        values = [float(item[k]) for k in ("open", "high", "low", "close")]
        if not all(v > 0 for v in values):
            raise ValueError("non-positive price")
        o, h, lo, c = values
        return Bar(
            coin=coin,
            ts=ts,
            price=c,
            open=o,
            high=h,
            low=lo,
            volume=float(item.get("volume") or 0.0),
            source=SOURCE,
        )

    def _on_candle(self, bar: Bar) -> None:
        coin = bar.coin
        if coin not in self._emitted:
            stored = self._last_bar_ts(coin) if self._last_bar_ts else None
            if stored is not None and ahead_of_clock(stored, self._clock()) is not None:
                stored = None  # a poisoned store must not hold back every real candle
            self._emitted[coin] = int(stored) if stored is not None else -1
        if bar.ts <= self._emitted[coin]:
            return  # final already (a snapshot re-sent after a reconnect)
        current = self._current.get(coin)
        if current is None or bar.ts == current.ts:
            self._current[coin] = bar  # the open candle, updated in place
        elif bar.ts > current.ts:
            self._final(current)  # the next interval began: the previous candle is final
            self._current[coin] = bar
        else:
            self._final(bar)  # an older candle we never saw open (first snapshot)

    def _final(self, bar: Bar) -> None:
        self._emitted[bar.coin] = bar.ts
        self._last_update = self._clock()
        self._emit(bar)

    def _finalize_due(self, now: float) -> None:
        for coin, bar in list(self._current.items()):
            if now >= bar.ts + 60 + self._final_grace:
                del self._current[coin]
                self._final(bar)

    def search(self, query: str) -> list[CoinMatch]:
        """Coins Kraken can stream in the vs currency whose name, symbol or id matches ``query``."""
        return search_table(query, self.vs)


__all__ = ["KrakenSource", "parse_time"]
