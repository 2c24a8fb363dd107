"""RemoteEngine: the EngineAPI of an engine served by ``cryptotui serve``, over its WebSocket feed.

A background thread runs the websockets client on its own asyncio loop. Frames become events
(``engine.feed.codec.from_dict``) and go to the listeners on that thread, as a local engine's would.
The last data stays in memory, so ``snapshot()`` keeps answering while the engine is away; the
client reconnects with exponential backoff and says so with
``StatusEvent(source="remote", state="offline", ...)``. A fresh snapshot replaces the state on
every (re)connect.

Thread rule: only the client thread mutates the state, under ``_lock``; ``snapshot()`` and
``coins()`` read it under the same lock and return immutable tuples.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import random
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from engine.api import CoinMatch, Listener
from engine.errors import ConfigError, CryptotuiError, NetworkError
from engine.events import (
    PROTOCOL_VERSION,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    ForecastEvent,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.feed.codec import from_dict
from engine.ids import is_coin_id, require_coin_id
from engine.redact import register_url_secrets, safe_url
from engine.settings.config import DEFAULT_HORIZONS, url_problem
from engine.settings.locations import Locations
from engine.view import CoinView

log = logging.getLogger(__name__)

MAX_BARS = 4320  # three days of minutes kept per coin
MAX_FORECASTS = 4320


class RemoteEngine:
    """An EngineAPI backed by a remote ``cryptotui serve``; ``mode`` is always ``"REMOTE"``."""

    mode = "REMOTE"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        export_dir: Path | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        open_timeout: float = 5.0,
        request_timeout: float = 30.0,
        max_size: int | None = 256 * 1024 * 1024,
    ) -> None:
        problem = url_problem(url, "ws")
        if problem:
            raise ConfigError(f"invalid --connect URL {safe_url(url)!r}: {problem}")
        # Shown in every status, error and log line: never the password of a user:password@ part.
        self.url = safe_url(url)
        register_url_secrets(url)
        # Ask for batch frames: under a burst, one message carries what piled up.
        self._connect_url = url + ("&" if "?" in url else "?") + "batch=1"
        self._token = token  # never logged
        self.horizons: tuple[int, ...] = DEFAULT_HORIZONS
        self.vs_currency = "usd"
        self.server_info: dict[str, Any] = {}  # the last hello frame (server version, remote mode)
        self.connected = False
        self._export_dir = export_dir
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._request_timeout = request_timeout
        self._max_size = max_size
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._coins: tuple[str, ...] = ()
        self._state: dict[str, CoinView] = {}
        self._status: StatusEvent | None = None
        self._ready = threading.Event()  # set at the first snapshot
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"RemoteEngine({self.url!r}, token={'set' if self._token else None})"

    # EngineAPI: lifecycle and listeners -----------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def start(self) -> None:
        """Start the client thread; returns at once (see ``wait_ready``)."""
        if self._thread is not None:
            return
        self._stopping = False
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="remote-engine", daemon=True
        )
        self._thread.start()
        started.wait(5.0)

    def stop(self) -> None:
        self._stopping = True
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(10.0)
        self._thread = None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the first snapshot has arrived; False on timeout."""
        return self._ready.wait(timeout)

    # EngineAPI: state -----------------------------------------------------------------------------
    def coins(self) -> tuple[str, ...]:
        with self._lock:
            return self._coins

    def snapshot(self, coin: str) -> CoinSnapshot:
        with self._lock:
            st = self._state.get(coin)
            return CoinSnapshot(coin=coin) if st is None else st.snapshot()

    # EngineAPI: commands (sent to the server) -----------------------------------------------------
    def add_coin(self, coin: str) -> None:
        self._send_op({"op": "watch", "coin": coin}, f"add {coin}")

    def remove_coin(self, coin: str) -> None:
        self._send_op({"op": "unwatch", "coin": coin}, f"remove {coin}")

    def set_paused(self, paused: bool) -> None:
        what = "pause training" if paused else "resume training"
        self._send_op({"op": "pause", "paused": bool(paused)}, what)

    def reset_model(self, coin: str) -> None:
        self._send_op({"op": "reset", "coin": coin}, f"reset the {coin} model")

    def resync(self) -> None:
        """Ask the server for a fresh snapshot."""
        self._send_op({"op": "resync"}, "resync")

    def search(self, query: str) -> list[CoinMatch]:
        """Search on the server (blocking: call from a worker thread)."""
        result = self._request({"op": "search", "query": query})
        # A remote engine is foreign input too: an id it sends must pass the same check.
        return [
            CoinMatch(m["id"], m["name"], m["symbol"], m.get("rank"))
            for m in result
            if isinstance(m, dict) and is_coin_id(m.get("id"))
        ]

    def export(self, coin: str, path: Path | None = None) -> Path:
        """Export on the server and write the CSV here (blocking: call from a worker thread)."""
        coin = require_coin_id(coin)
        result = self._request({"op": "export", "coin": coin})
        if path is None:
            folder = self._export_dir or Locations.resolve().exports_dir
            folder.mkdir(parents=True, exist_ok=True)
            # Named here from the checked id: the server's file name could hold "..", a newline
            # or another folder.
            path = folder / f"{coin}-{datetime.now():%Y%m%d-%H%M%S}.csv"
        path.write_text(result["csv"], encoding="utf-8")
        return path

    # Requests from other threads -----------------------------------------------------------------
    def _send_op(self, op: dict[str, Any], what: str) -> None:
        loop, ws = self._loop, self._ws
        if loop is None or ws is None or not self.connected:
            self._emit_soon(
                ErrorEvent(
                    "Engine unreachable", f"cannot {what}: engine at {self.url} is not connected"
                )
            )
            return
        try:
            asyncio.run_coroutine_threadsafe(self._send(ws, op), loop)
        except RuntimeError:
            pass

    def _request(self, op: dict[str, Any]) -> Any:
        loop, ws = self._loop, self._ws
        if loop is None or ws is None or not self.connected:
            raise NetworkError(f"engine at {self.url} is not connected")
        rid = next(self._ids)
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._pending[rid] = fut
        asyncio.run_coroutine_threadsafe(self._send(ws, {**op, "id": rid}), loop)
        try:
            return fut.result(self._request_timeout)
        except concurrent.futures.TimeoutError:
            raise NetworkError(f"engine at {self.url} did not answer {op['op']} in time") from None
        finally:
            self._pending.pop(rid, None)

    async def _send(self, ws: ClientConnection, op: dict[str, Any]) -> None:
        try:
            await ws.send(json.dumps(op))
        except ConnectionClosed:
            self._fail_pending(f"engine at {self.url} went away")

    def _emit_soon(self, event: Event) -> None:
        # Listeners run on the client thread only, never on the caller's (the UI) thread.
        loop = self._loop
        if loop is None:
            log.warning("%s: %s", event.type, getattr(event, "msg", ""))
            return
        try:
            loop.call_soon_threadsafe(self._emit, event)
        except RuntimeError:
            pass

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("listener failed on %s event", event.type)

    def _fail_pending(self, msg: str) -> None:
        for rid, fut in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(NetworkError(msg))
            self._pending.pop(rid, None)

    # Client thread --------------------------------------------------------------------------------
    def _run(self, started: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            started.set()
            try:
                await self._connect_loop()
            except asyncio.CancelledError:
                pass

        try:
            asyncio.run(main())
        finally:
            self.connected = False
            self._ws = None
            self._loop = None
            self._fail_pending("remote engine stopped")
            started.set()

    async def _connect_loop(self) -> None:
        delay = self._backoff[0]
        told_401 = False
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        from engine.feed.server import redacting_logger  # the same token-redacting filter

        logger = redacting_logger("engine.feed.remote.ws")
        while not self._stopping:
            reason = ""
            try:
                self._emit(
                    StatusEvent(
                        source="remote",
                        state="connecting",
                        message=f"connecting to engine at {self.url}",
                    )
                )
                async with connect(
                    self._connect_url,
                    additional_headers=headers,
                    open_timeout=self._open_timeout,
                    max_size=self._max_size,
                    compression=None,
                    logger=logger,
                ) as ws:
                    self._ws = ws
                    delay = self._backoff[0]
                    told_401 = False
                    await self._receive(ws)
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                code = exc.response.status_code
                reason = {401: "refused the token (HTTP 401)", 503: "is full (HTTP 503)"}.get(
                    code, f"refused the connection (HTTP {code})"
                )
                if code == 401 and not told_401:
                    # Once: the offline status repeats it at every retry.
                    told_401 = True
                    self._emit(ErrorEvent("Not authorized", f"engine at {self.url} {reason}"))
            except InvalidURI as exc:
                self._emit(ErrorEvent("Bad URL", str(exc)))
                reason = "bad URL"
            except ConnectionClosed as exc:
                reason = f"connection lost ({exc.__class__.__name__})"
            except OSError as exc:  # refused, reset, timeout
                reason = exc.strerror or exc.__class__.__name__
            except Exception as exc:  # never let the client thread die
                log.exception("remote client failed")
                reason = exc.__class__.__name__
            finally:
                was = self.connected
                self.connected = False
                self._ws = None
                self._fail_pending(f"engine at {self.url} went away")
                if was and not self._stopping:
                    log.warning("engine at %s lost: %s", self.url, reason)
            if self._stopping:
                return
            wait = delay * random.uniform(0.8, 1.2)
            self._emit(
                StatusEvent(
                    source="remote",
                    state="offline",
                    message=f"engine at {self.url} unreachable, "
                    f"reconnecting in {max(1, round(wait))} s",
                    last_update=self._status.last_update if self._status else None,
                    next_update=time.time() + wait,
                )
            )
            log.info("engine at %s unreachable (%s); retry in %.1f s", self.url, reason, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._backoff[1])

    async def _receive(self, ws: ClientConnection) -> None:
        async for message in ws:
            try:
                data = json.loads(message)
            except ValueError:
                log.warning("ignored a malformed frame from %s", self.url)
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "batch":
                for frame in data.get("frames") or ():
                    if isinstance(frame, dict):
                        self._on_frame(frame)
            else:
                self._on_frame(data)

    def _on_frame(self, data: dict[str, Any]) -> None:
        """One protocol frame (a batch's frames come here one by one); a malformed one is skipped."""
        try:
            self._handle_frame(data)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            log.warning("ignored a malformed %r frame from %s: %s", data.get("type"), self.url, exc)

    def _handle_frame(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "hello":
            self._on_hello(data)
        elif kind == "reply":
            self._on_reply(data)
        else:
            try:
                event = from_dict(data)
            except (ValueError, TypeError):
                log.warning("ignored an unknown %r frame from %s", kind, self.url)
                return
            for out in self._apply(event):
                self._emit(out)

    def _on_hello(self, data: dict[str, Any]) -> None:
        if data.get("v") != PROTOCOL_VERSION:
            self._emit(
                ErrorEvent(
                    "Protocol",
                    f"engine at {self.url} speaks protocol "
                    f"v{data.get('v')}, this client v{PROTOCOL_VERSION}",
                )
            )
        self.server_info = data
        horizons = tuple(int(h) for h in data.get("horizons") or self.horizons)
        self.horizons = horizons
        self.vs_currency = str(data.get("vs_currency") or self.vs_currency)
        self.connected = True
        log.info("connected to %s (%s, %s engine)", self.url, data.get("server"), data.get("mode"))
        self._emit(
            StatusEvent(
                source="remote",
                state="ok",
                message=f"connected to engine at {self.url}",
                last_update=time.time(),
            )
        )

    def _on_reply(self, data: dict[str, Any]) -> None:
        fut = self._pending.get(data.get("id"))  # type: ignore[arg-type]
        if fut is None or fut.done():
            return
        if data.get("ok"):
            fut.set_result(data.get("result"))
        else:
            error = str(data.get("error", "failed"))
            fut.set_exception(CryptotuiError(error, title="Remote engine"))

    def _view(self, coin: str) -> CoinView:
        view = self._state.get(coin)
        if view is None:
            view = self._state[coin] = CoinView(coin, MAX_BARS, MAX_FORECASTS)
        return view

    def _apply(self, event: Event) -> list[Event]:
        """Fold an event into the local state; the events to pass on (duplicates are not)."""
        with self._lock:
            if isinstance(event, SnapshotEvent):
                old = self._coins
                self._coins = tuple(c.coin for c in event.coins)
                self._state = {}
                for cs in event.coins:
                    self._view(cs.coin).seed(cs)
                if event.status is not None:
                    self._status = event.status
                self._ready.set()
                out: list[Event] = [event]
                if self._coins != old:
                    out.append(CoinsEvent(coins=self._coins))
                return out
            if isinstance(event, BarEvent):
                # Not passed on when already in the snapshot that overtook it.
                return [event] if self._view(event.bar.coin).apply(event) else []
            if isinstance(event, (ForecastEvent, MetricsEvent, TrainEvent)):
                return [event] if self._view(event.coin).apply(event) else []
            if isinstance(event, CoinsEvent):
                self._coins = event.coins
                for c in event.coins:
                    self._view(c)
            elif isinstance(event, StatusEvent):
                self._status = event
            return [event]


__all__ = ["RemoteEngine"]
