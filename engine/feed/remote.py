"""RemoteEngine: the EngineAPI of an engine served by ``cryptotui serve``, over its WebSocket feed.

A background thread runs the websockets client on its own asyncio loop. Frames become events
(``engine.feed.codec.decode_foreign``) and go to the listeners on that thread, as a local engine's would.
The last data stays in memory, so ``snapshot()`` keeps answering while the engine is away; the
client reconnects with exponential backoff and says so with
``StatusEvent(source="remote", state="offline", ...)``. A fresh snapshot replaces the state on
every (re)connect.

A remote engine is foreign input. Every frame is checked field by field where it is decoded
(``engine.feed.codec.decode_foreign`` / ``decode_hello``: strings lose escape sequences and
control characters, ids and numbers are checked), and what the viewer keeps is bounded: at most
``MAX_COINS`` coins, ``MAX_BARS`` bars and ``MAX_FORECASTS`` forecasts per coin, frames of at
most ``MAX_FRAME_BYTES``. A remote engine that goes past a bound is said once per connection (one
log line, one ``ErrorEvent``), not once per frame.

Thread rule: only the client thread mutates the state, under ``_lock``; ``snapshot()`` and
``coins()`` read it under the same lock and return immutable tuples.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, PayloadTooBig

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
from engine.feed.codec import Caps, decode_foreign, decode_hello
from engine.ids import is_coin_id, require_coin_id
from engine.redact import register_url_secrets, safe_url
from engine.runtime.coin_state import FORECAST_HISTORY
from engine.settings.config import DEFAULT_HORIZONS, MAX_COINS, url_problem
from engine.settings.holdings import Holding, holding_from_entry
from engine.settings.locations import Locations
from engine.text import clean, clean_lines
from engine.view import CoinView

log = logging.getLogger(__name__)

# What the viewer keeps of a remote engine. The TUI draws the last day (1440 minutes) and the band
# issued up to 60 minutes before each of them: a day and an hour of bars and forecasts per coin.
MAX_BARS = 1500
MAX_FORECASTS = FORECAST_HISTORY  # 1500, what a local engine keeps
# The largest frame read (websockets closes the connection beyond it, code 1009, without reading
# it). The largest frame a cryptotui server sends is its snapshot, which it keeps under
# engine.feed.server.SNAPSHOT_MAX_BYTES (24 MiB: a day of ~18 coins; more coins, less history);
# the rest are small (an export arrives in 1 MiB parts). Parsing a frame costs about 6 times its
# size at its peak (bench/bench_remote.py), so this bounds one frame's cost near 200 MB.
MAX_FRAME_BYTES = 32 * 1024 * 1024
MAX_SEARCH_RESULTS = 100


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
        max_size: int = MAX_FRAME_BYTES,
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
        # From the last hello, checked: the served engine's mode ("LIVE" | "DEMO"; "" before the
        # first hello or when it sent something else) and what its data is (a replay's file and
        # dates; "" for live sources). ``mode`` stays "REMOTE": this engine is remote.
        self.served_mode = ""
        self.source_info = ""
        # The served engine's holdings (``serve --with-holdings``; None without), each entry
        # checked by the rule of the local holdings file.
        self.holdings: Mapping[str, Holding] | None = None
        self.server_info: dict[str, Any] = {}  # the last hello, checked (server, mode, coins...)
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
        # Export parts by request id: the reply frames go to the waiting exporter's queue.
        self._streams: dict[int, queue.Queue[tuple[bool, Any]]] = {}
        self._caps = Caps(MAX_COINS, MAX_BARS, MAX_FORECASTS)
        self._told: set[str] = set()  # bounds and faults already said on this connection
        self._told_ever: set[str] = set()  # ... and those said once for the engine's lifetime
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
        # A remote engine is foreign input too: an id it sends must pass the same check, and its
        # words are text, bounded.
        if not isinstance(result, list):
            return []
        out: list[CoinMatch] = []
        for m in result[:MAX_SEARCH_RESULTS]:
            if not isinstance(m, dict) or not is_coin_id(m.get("id")):
                continue
            rank = m.get("rank")
            ok_rank = isinstance(rank, int) and not isinstance(rank, bool) and 0 < rank < 10**9
            out.append(
                CoinMatch(
                    m["id"],
                    clean(m.get("name", ""), 80) if isinstance(m.get("name"), str) else m["id"],
                    clean(m.get("symbol", ""), 24) if isinstance(m.get("symbol"), str) else "",
                    rank if ok_rank else None,
                )
            )
        return out

    def export(self, coin: str, path: Path | None = None) -> Path:
        """Export on the server and write the CSV here (blocking: call from a worker thread).

        The CSV arrives in parts and is written as it comes (flat memory), atomically: a failure
        part way leaves no file. Default path: ``export_dir`` (the viewer's ``--home``), named as
        a local engine names it (``COIN-demo-TIME.csv`` for a demo engine). Raises
        CryptotuiError with a title and a one-line message (no data yet, a full disk, the engine
        went away).
        """
        from engine.atomic import atomic_text
        from engine.runtime.export import export_path

        coin = require_coin_id(coin)
        made: Path | None = None
        try:
            if path is None:
                folder = self._export_dir or Locations.resolve().exports_dir
                folder.mkdir(parents=True, exist_ok=True)
                # Named here from the checked id: the server's file name could hold "..", a
                # newline or another folder.
                made = path = export_path(
                    folder, coin, "demo" if self.served_mode == "DEMO" else ""
                )
            parts = self._request_stream({"op": "export", "coin": coin})
            first = next(parts)
            # A regular file (or a new name) is replaced atomically; a device or pipe is written.
            direct = path.exists() and not path.is_file()
            with (
                open(path, "w", encoding="utf-8", newline="") if direct else atomic_text(path) as fh
            ):
                fh.write(first)
                for text in parts:
                    fh.write(text)
        except CryptotuiError:
            if made is not None:
                made.unlink(missing_ok=True)
            raise
        except OSError as exc:
            if made is not None:
                made.unlink(missing_ok=True)
            raise CryptotuiError(
                f"cannot write {path}: {exc.strerror or exc.__class__.__name__}",
                title="Export failed",
            ) from None
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

    def _request_stream(self, op: dict[str, Any]) -> Any:
        """Send an op whose answer comes in parts (export); a generator of its text parts.

        The first part is awaited before this returns the generator's first value, so an error
        (no data, refused) is raised by the first ``next``.
        """
        loop, ws = self._loop, self._ws
        if loop is None or ws is None or not self.connected:
            raise NetworkError(f"engine at {self.url} is not connected")
        rid = next(self._ids)
        parts: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._streams[rid] = parts
        asyncio.run_coroutine_threadsafe(self._send(ws, {**op, "id": rid}), loop)

        def generate() -> Any:
            try:
                while True:
                    try:
                        ok, value = parts.get(timeout=self._request_timeout)
                    except queue.Empty:
                        raise NetworkError(
                            f"engine at {self.url} did not answer {op['op']} in time"
                        ) from None
                    if not ok:
                        raise value
                    text, more = value
                    yield text
                    if not more:
                        return
            finally:
                self._streams.pop(rid, None)

        return generate()

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
        for rid, parts in list(self._streams.items()):
            parts.put((False, NetworkError(msg)))
            self._streams.pop(rid, None)

    def _tell_once(self, key: str, title: str, msg: str, *, ever: bool = False) -> None:
        """Say a fault of the remote engine once per connection (``ever``: once for good)."""
        told = self._told_ever if ever else self._told
        if key in told:
            return
        told.add(key)
        log.warning("%s", msg)
        self._emit(ErrorEvent(title, msg))

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
                    self._told.clear()
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
                self._emit(ErrorEvent("Bad URL", clean(str(exc), 200)))
                reason = "bad URL"
            except ConnectionClosed as exc:
                reason = f"connection lost ({exc.__class__.__name__})"
                if isinstance(exc.__cause__, PayloadTooBig) or (exc.rcvd and exc.rcvd.code == 1009):
                    reason = "a frame over this viewer's limit"
                    self._tell_once(
                        "frame",
                        "Remote engine",
                        f"engine at {self.url} sent a frame larger than "
                        f"{self._max_size // 2**20} MiB; the connection was closed "
                        "(reconnecting; said once)",
                        ever=True,
                    )
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
            except (ValueError, RecursionError):
                self._malformed("JSON", "not JSON, or nested too deeply")
                continue
            if not isinstance(data, dict):
                self._malformed("JSON", "not a JSON object")
                continue
            if data.get("type") == "batch":
                frames = data.get("frames")
                for frame in frames if isinstance(frames, list) else ():
                    if isinstance(frame, dict):
                        self._on_frame(frame)
            else:
                self._on_frame(data)

    def _malformed(self, kind: object, why: str) -> None:
        shown = clean(kind, 20) if isinstance(kind, str) else "?"
        self._tell_once(
            f"malformed {shown}",
            "Remote engine",
            f"engine at {self.url} sent malformed {shown!r} frames ({clean(why, 120)}); "
            "they are ignored (said once per connection)",
        )

    def _on_frame(self, data: dict[str, Any]) -> None:
        """One protocol frame (a batch's frames come here one by one); a malformed one is skipped."""
        try:
            self._handle_frame(data)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            self._malformed(data.get("type"), f"{exc.__class__.__name__}: {exc}")
        for name, what in list(self._caps.hit.items()):
            self._tell_once(
                f"cap {name}",
                "Remote engine",
                f"engine at {self.url} sent more than this viewer keeps ({what}); the rest is "
                "not kept (said once per connection)",
            )
        self._caps.hit.clear()

    def _handle_frame(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "hello":
            self._on_hello(data)
        elif kind == "reply":
            self._on_reply(data)
        else:
            event = decode_foreign(data, self._caps)
            for out in self._apply(event):
                self._emit(out)

    def _on_hello(self, data: dict[str, Any]) -> None:
        if data.get("v") != PROTOCOL_VERSION:
            self._emit(
                ErrorEvent(
                    "Protocol",
                    f"engine at {self.url} speaks protocol "
                    f"v{clean(data.get('v'), 10)}, this client v{PROTOCOL_VERSION}",
                )
            )
        hello = decode_hello(data, self._caps)
        problems = list(hello.problems)
        if hello.horizons is not None:
            self.horizons = hello.horizons
        if hello.vs_currency is not None:
            self.vs_currency = hello.vs_currency
        self.served_mode = hello.mode
        self.source_info = hello.source_info
        if hello.holdings is None:
            self.holdings = None
        else:
            kept: dict[str, Holding] = {}
            refused = 0
            for coin, entry in list(hello.holdings.items())[: 2 * MAX_COINS]:
                h = holding_from_entry(coin, entry)
                if h is None:
                    refused += 1
                else:
                    kept[h.coin] = h
            refused += max(0, len(hello.holdings) - 2 * MAX_COINS)
            if refused:
                problems.append(f"{refused} holdings that break the holdings file's rules")
            self.holdings = kept
        self.server_info = {
            "server": hello.server,
            "mode": hello.mode,
            "coins": list(hello.coins),
            "horizons": list(self.horizons),
            "vs_currency": self.vs_currency,
            "source_info": hello.source_info,
        }
        if problems:
            self._tell_once(
                "hello",
                "Remote engine",
                f"engine at {self.url} sent {'; '.join(problems)}: not used "
                f"(values in {self.vs_currency})",
            )
        self.connected = True
        log.info("connected to %s (%s, %s engine)", self.url, hello.server, hello.mode or "?")
        self._emit(
            StatusEvent(
                source="remote",
                state="ok",
                message=f"connected to engine at {self.url}",
                last_update=time.time(),
            )
        )

    def _on_reply(self, data: dict[str, Any]) -> None:
        rid = data.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool):
            return
        title = data.get("title")
        title = clean(title, 80) if isinstance(title, str) and title.strip() else "Remote engine"
        error = data.get("error")
        failure = CryptotuiError(
            clean(error, 400) if isinstance(error, str) else "failed", title=title
        )
        parts = self._streams.get(rid)
        if parts is not None:
            result = data.get("result")
            if not data.get("ok"):
                parts.put((False, failure))
            elif isinstance(result, dict) and isinstance(result.get("csv"), str):
                # Written to a file the user may cat: no escape sequence survives in it.
                more = result.get("more") is True
                parts.put((True, (clean_lines(result["csv"]), more)))
            else:
                parts.put((False, CryptotuiError("a malformed export reply", title=title)))
            return
        fut = self._pending.get(rid)
        if fut is None or fut.done():
            return
        if data.get("ok"):
            fut.set_result(data.get("result"))
        else:
            fut.set_exception(failure)

    def _view(self, coin: str) -> CoinView:
        view = self._state.get(coin)
        if view is None:
            view = self._state[coin] = self._new_view(coin)
        return view

    def _apply(self, event: Event) -> list[Event]:
        """Fold an event into the local state; the events to pass on (duplicates are not).

        Events of coins that are not on the watchlist are dropped: no view is made for them, so a
        remote engine cannot grow the viewer past ``MAX_COINS`` coins with bars of made-up ids.
        """
        with self._lock:
            if isinstance(event, SnapshotEvent):
                old = self._coins
                self._coins = tuple(c.coin for c in event.coins)[:MAX_COINS]
                self._state = {}
                for cs in event.coins[:MAX_COINS]:
                    self._view(cs.coin).seed(cs)
                if event.status is not None:
                    self._status = event.status
                self._ready.set()
                out: list[Event] = [event]
                if self._coins != old:
                    out.append(CoinsEvent(coins=self._coins))
                return out
            if isinstance(event, BarEvent):
                view = self._state.get(event.bar.coin)
                # Not passed on when already in the snapshot that overtook it.
                return [event] if view is not None and view.apply(event) else []
            if isinstance(event, (ForecastEvent, MetricsEvent, TrainEvent)):
                view = self._state.get(event.coin)
                return [event] if view is not None and view.apply(event) else []
            if isinstance(event, CoinsEvent):
                self._coins = event.coins[:MAX_COINS]
                # Coins that left the watchlist leave the viewer too (their memory with them).
                self._state = {c: self._state.get(c) or self._new_view(c) for c in self._coins}
            elif isinstance(event, StatusEvent):
                self._status = event
            return [event]

    @staticmethod
    def _new_view(coin: str) -> CoinView:
        return CoinView(coin, MAX_BARS, MAX_FORECASTS)


__all__ = ["MAX_BARS", "MAX_FORECASTS", "MAX_FRAME_BYTES", "RemoteEngine"]
