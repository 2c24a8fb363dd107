"""The WebSocket feed: one engine's events served to many clients (``cryptotui serve``).

Protocol ``"v": 1`` (see docs/protocol.md and engine/data/protocol.schema.json). On connect a client
gets ``hello`` then a ``snapshot``; afterwards every engine event as one JSON text frame. Clients
send small JSON ops (``watch``, ``unwatch``, ``resync``, ``pause``, ``reset``, ``search``,
``export``); an op carrying an ``id`` is answered by a ``reply`` frame with the same id.

Thread rule: engine listeners run on engine threads and only hand the event to the asyncio loop
with ``call_soon_threadsafe``. Everything else (client queues, the snapshot cache) is owned by the
loop thread. Each client has a bounded queue; when it overflows, that client's backlog is dropped,
it is told so (an ``error`` frame) and resynced with a fresh snapshot. Nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import json
import logging
import re
import signal
import threading
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from engine.api import EngineAPI
from engine.errors import ConfigError, CryptotuiError
from engine.events import (
    PROTOCOL_VERSION,
    ErrorEvent,
    Event,
    SnapshotEvent,
    StatusEvent,
    to_dict,
)

log = logging.getLogger(__name__)

try:
    from importlib.metadata import version as _pkg_version

    SERVER_VERSION = _pkg_version("cryptotui")
except Exception:  # not installed (running from a checkout)
    SERVER_VERSION = "0.1.0"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_CLIENTS = 200
DEFAULT_QUEUE_SIZE = 2048  # frames per client: ~2.5 minutes of events for 50 coins
MAX_OP_BYTES = 4096  # a client op larger than this gets an ``error`` frame
# Hard cap enforced by websockets itself (close code 1009): beyond it we do not even buffer the frame.
TRANSPORT_MAX_SIZE = 64 * 1024
MAX_EXPORT_BYTES = 64 * 1024 * 1024

OPS = ("watch", "unwatch", "resync", "pause", "reset", "search", "export")
_COIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class _RedactAuthorization(logging.Filter):
    """websockets logs every handshake header at DEBUG; the bearer token must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and isinstance(args[0], str):
            if args[0].lower() == "authorization":
                record.args = (args[0], "[redacted]")
        return True


def redacting_logger(name: str) -> logging.Logger:
    """A logger for websockets connections whose records never carry an Authorization value."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _RedactAuthorization) for f in logger.filters):
        logger.addFilter(_RedactAuthorization())
    return logger


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ConfigError) to listen beyond loopback without a token."""
    if not host:
        raise ConfigError("empty --host: give an address such as 127.0.0.1")
    if token is not None and not token.strip():
        raise ConfigError("empty --token: give a non-empty secret or none at all")
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host} without a token: any machine that can reach it could "
            "control this engine. Pass --token T (clients send it as 'Authorization: Bearer T') "
            "or bind 127.0.0.1."
        )


def _encode(obj: dict[str, Any]) -> bytes:
    # allow_nan=False: a NaN that slipped past events._clean must fail here, not on the client.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _error_frame(title: str, msg: str, coin: str | None = None) -> bytes:
    return _encode(to_dict(ErrorEvent(title, msg, coin)))


class _BadOp(Exception):
    """A client op we refuse; its message goes back to that client."""


class _Client:
    """One connection: its bounded queue and resync state (owned by the loop thread)."""

    # Queue items: ("frame", bytes) an event; ("reply", bytes) an answer to an op (survives a
    # backlog drop, a client waits for it); ("resync", reason) build and send a snapshot now.
    __slots__ = ("ws", "peer", "queue", "resync_pending", "dropped", "resyncs", "sender")

    def __init__(self, ws: ServerConnection, peer: str, queue_size: int) -> None:
        self.ws = ws
        self.peer = peer
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.resync_pending = False
        self.dropped = 0
        self.resyncs = 0
        self.sender: asyncio.Task[None] | None = None

    def offer(self, kind: str, payload: Any) -> bool:
        """Queue an item without waiting; False if the backlog had to be dropped."""
        if kind == "frame" and self.resync_pending:
            # The snapshot built when the pending resync is sent will include this event.
            self.dropped += 1
            return True
        if kind == "resync" and self.resync_pending:
            return True
        try:
            self.queue.put_nowait((kind, payload))
            if kind == "resync":
                self.resync_pending = True
            return True
        except asyncio.QueueFull:
            self._overflow(kind, payload)
            return False

    def _overflow(self, kind: str, payload: Any) -> None:
        kept: list[tuple[str, Any]] = []
        dropped = 1 if kind == "frame" else 0
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item[0] == "reply":
                kept.append(item)
            elif item[0] == "frame":
                dropped += 1
        if kind == "reply":
            kept.append((kind, payload))
        if len(kept) >= self.queue.maxsize:
            # Only a client that sends ops and never reads the answers gets here.
            kept = kept[-(self.queue.maxsize - 1):]
            asyncio.ensure_future(self.ws.close(1008, "too many unread replies"))
        self.dropped += dropped
        self.resync_pending = True
        self.resyncs += 1
        self.queue.put_nowait(("resync", "overflow"))
        for item in kept:
            self.queue.put_nowait(item)


class FeedServer:
    """Serves one engine to many WebSocket clients; lives on one asyncio loop."""

    def __init__(
        self,
        engine: EngineAPI,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_op_bytes: int = MAX_OP_BYTES,
        ping_interval: float | None = 20.0,
    ) -> None:
        check_bind(host, token)
        self.engine = engine
        self.host = host
        self.port = port
        self._token = token  # never logged, never in repr
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.max_op_bytes = max_op_bytes
        self.ping_interval = ping_interval
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._seq = 0  # events dispatched so far: the snapshot cache key
        self._snapshot_cache: tuple[int, bytes] | None = None
        self._last_status: StatusEvent | None = None
        self.stats: dict[str, int] = {
            "connections": 0,
            "refused_auth": 0,
            "refused_full": 0,
            "events": 0,
            "frames_sent": 0,
            "resyncs": 0,
            "dropped": 0,
            "bad_ops": 0,
        }

    def __repr__(self) -> str:
        return f"FeedServer(host={self.host!r}, port={self.port}, token={'set' if self._token else None})"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # Lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and start accepting clients; ``port`` 0 picks a free port (read it back after)."""
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=TRANSPORT_MAX_SIZE,
            # permessage-deflate would cost one zlib stream per client per frame; frames are small.
            compression=None,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            close_timeout=2.0,
            logger=redacting_logger("engine.server.ws"),
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.engine.subscribe(self._on_event)
        log.info("serving %s engine on %s (%s)", self.engine.mode, self.url,
                 "token required" if self._token else "no token, loopback only")

    async def close(self) -> None:
        """Stop listening, close every client (code 1001) and detach from the engine."""
        self.engine.unsubscribe(self._on_event)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        log.info("server stopped: %s", self.stats)

    # Engine side (any thread) ---------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:  # loop already closed during shutdown
            pass

    # Loop thread ---------------------------------------------------------------------------------
    def _dispatch(self, event: Event) -> None:
        self._seq += 1
        self.stats["events"] += 1
        if isinstance(event, StatusEvent):
            self._last_status = event
        if not self._clients:
            return
        try:
            frame = _encode(to_dict(event))
        except (TypeError, ValueError):
            log.exception("cannot serialise %s event; dropped", event.type)
            return
        for client in self._clients:
            before = client.resyncs
            client.offer("frame", frame)
            if client.resyncs != before:
                self.stats["resyncs"] += 1
                log.warning("client %s too slow: backlog dropped, resync queued", client.peer)

    def _hello_frame(self) -> bytes:
        return _encode(
            {
                "v": PROTOCOL_VERSION,
                "type": "hello",
                "server": f"cryptotui/{SERVER_VERSION}",
                "protocol": PROTOCOL_VERSION,
                "mode": self.engine.mode,
                "coins": list(self.engine.coins()),
                "horizons": list(self.engine.horizons),
                "vs_currency": self.engine.vs_currency,
                "ops": list(OPS),
                "max_op_bytes": self.max_op_bytes,
                "queue_size": self.queue_size,
            }
        )

    def _snapshot_frame(self) -> bytes:
        # Built on the loop thread, so no dispatch interleaves: every event dispatched after this
        # point is queued behind it, and the ones before are in the engine state it copies.
        cached = self._snapshot_cache
        if cached is not None and cached[0] == self._seq:
            return cached[1]
        coins = tuple(self.engine.snapshot(c) for c in self.engine.coins())
        frame = _encode(to_dict(SnapshotEvent(coins=coins, status=self._last_status)))
        self._snapshot_cache = (self._seq, frame)
        return frame

    def _reply(self, client: _Client, rid: Any, op: str, ok: bool, result: Any = None,
               error: str | None = None) -> None:
        body: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": "reply", "id": rid, "op": op, "ok": ok}
        if ok:
            body["result"] = result
        else:
            body["error"] = error or "failed"
        client.offer("reply", _encode(body))

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        peer = _peer(connection)
        if self._token is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {self._token}"
            # Constant time, on bytes: compare_digest refuses non-ASCII str.
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                       expected.encode("utf-8", "surrogateescape")):
                self.stats["refused_auth"] += 1
                log.warning("refused %s: %s token", peer, "wrong" if given else "missing")
                response = connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
                response.headers["WWW-Authenticate"] = 'Bearer realm="cryptotui"'
                return response
        if len(self._clients) >= self.max_clients:
            self.stats["refused_full"] += 1
            log.warning("refused %s: %d clients already connected", peer, len(self._clients))
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many clients\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        peer = _peer(ws)
        if len(self._clients) >= self.max_clients:  # lost a race with other handshakes
            await ws.close(1013, "too many clients")
            return
        client = _Client(ws, peer, self.queue_size)
        self._clients.add(client)
        self.stats["connections"] += 1
        log.info("client %s connected (%d now)", peer, len(self._clients))
        client.offer("reply", self._hello_frame())
        client.offer("resync", "connect")
        client.sender = asyncio.create_task(self._sender(client))
        try:
            async for message in ws:
                await self._handle_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            client.sender.cancel()
            self.stats["dropped"] += client.dropped
            log.info("client %s disconnected (%d now)", peer, len(self._clients))

    async def _sender(self, client: _Client) -> None:
        ws = client.ws
        try:
            while True:
                kind, payload = await client.queue.get()
                if kind == "resync":
                    frames = []
                    if payload == "overflow":
                        frames.append(_error_frame(
                            "Too slow",
                            f"this client fell behind: {client.dropped} queued events were "
                            "dropped; a fresh snapshot follows",
                        ))
                    client.dropped = 0
                    # Clear the flag before building: later events queue behind this snapshot.
                    client.resync_pending = False
                    frames.append(self._snapshot_frame())
                    for frame in frames:
                        await ws.send(frame, text=True)
                        self.stats["frames_sent"] += 1
                else:
                    await ws.send(payload, text=True)
                    self.stats["frames_sent"] += 1
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sender for %s failed", client.peer)
            await ws.close(1011, "server error")

    async def _handle_message(self, client: _Client, message: str | bytes) -> None:
        rid: Any = None
        op = ""
        try:
            if isinstance(message, bytes):
                raise _BadOp("binary frames are not part of the protocol; send JSON text")
            if len(message.encode("utf-8")) > self.max_op_bytes:
                raise _BadOp(f"frame too large ({len(message)} chars; limit {self.max_op_bytes} bytes)")
            try:
                data = json.loads(message)
            except ValueError:
                raise _BadOp("malformed JSON") from None
            if not isinstance(data, dict):
                raise _BadOp("an op must be a JSON object like {\"op\": \"resync\"}")
            rid = data.get("id")
            if rid is not None and not (isinstance(rid, (int, str)) and len(str(rid)) <= 64):
                rid = None
                raise _BadOp("id must be a string or integer of at most 64 characters")
            op = data.get("op", "")
            if not isinstance(op, str) or op not in OPS:
                raise _BadOp(f"unknown op {str(op)[:40]!r}; known: {', '.join(OPS)}")
            result = await self._run_op(client, op, data)
            if rid is not None:
                self._reply(client, rid, op, True, result)
        except _BadOp as exc:
            self.stats["bad_ops"] += 1
            log.info("bad op from %s: %s", client.peer, exc)
            self._fail(client, rid, op, "Bad request", str(exc))
        except CryptotuiError as exc:
            self._fail(client, rid, op, exc.title, exc.msg)
        except Exception as exc:
            log.exception("op %r from %s failed", op, client.peer)
            self._fail(client, rid, op, "Server error", f"{op} failed: {exc.__class__.__name__}")

    def _fail(self, client: _Client, rid: Any, op: str, title: str, msg: str) -> None:
        if rid is not None:
            self._reply(client, rid, op, False, error=msg)
        else:
            client.offer("reply", _error_frame(title, msg))

    async def _run_op(self, client: _Client, op: str, data: dict[str, Any]) -> Any:
        if op == "resync":
            client.offer("resync", "request")
            return None
        if op == "pause":
            paused = data.get("paused")
            if not isinstance(paused, bool):
                raise _BadOp("pause needs \"paused\": true or false")
            self.engine.set_paused(paused)
            return None
        if op == "search":
            query = data.get("query")
            if not isinstance(query, str) or len(query) > 100:
                raise _BadOp("search needs \"query\": a string of at most 100 characters")
            # Search may hit the network: keep it off the loop so other clients are not held up.
            matches = await asyncio.to_thread(self.engine.search, query)
            return [dataclasses.asdict(m) for m in matches]
        coin = data.get("coin")
        if not isinstance(coin, str) or not _COIN_RE.match(coin):
            raise _BadOp(f"{op} needs \"coin\": a coin id such as \"bitcoin\"")
        if op == "watch":
            self.engine.add_coin(coin)
        elif op == "unwatch":
            self.engine.remove_coin(coin)
        elif op == "reset":
            self.engine.reset_model(coin)
        elif op == "export":
            if data.get("id") is None:
                raise _BadOp("export needs an \"id\": its CSV comes back in a reply")
            path = await asyncio.to_thread(self.engine.export, coin)
            text = await asyncio.to_thread(_read_capped, path)
            return {"filename": path.name, "csv": text}
        return None


def _read_capped(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_EXPORT_BYTES:
        raise CryptotuiError(f"export of {size} bytes is too large to send", title="Export")
    return path.read_text(encoding="utf-8")


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)


async def _serve(
    engine: EngineAPI,
    host: str,
    port: int,
    token: str | None,
    stop_event: threading.Event | None,
    ready: Callable[[FeedServer], None] | None,
    options: dict[str, Any],
) -> None:
    start_engine = options.pop("start_engine", True)
    server = FeedServer(engine, host, port, token, **options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    # Signal handlers can only be installed from the main thread.
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
    try:
        await server.start()
        if start_engine:
            # After subscribing, so no early event is missed; Engine.start is idempotent.
            engine.start()
        if ready is not None:
            ready(server)
        while not stop.is_set():
            if stop_event is not None and stop_event.is_set():
                break
            try:
                # Poll the thread-side stop_event; the asyncio one wakes us at once.
                await asyncio.wait_for(stop.wait(), timeout=0.1)
            except TimeoutError:
                pass
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.close()


def serve_forever(
    engine: EngineAPI,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    stop_event: threading.Event | None = None,
    *,
    ready: Callable[[FeedServer], None] | None = None,
    **options: Any,
) -> None:
    """Serve ``engine`` until SIGINT/SIGTERM (main thread only) or ``stop_event`` is set.

    The engine is started once the server listens (``start_engine=False`` to leave that to the
    caller); stopping it stays with the caller. Raises ConfigError before binding
    if ``host`` is not loopback and no token is given, and OSError if the port cannot be bound.
    ``ready(server)`` is called once listening (``server.port`` is the bound port). ``options``
    go to FeedServer (``max_clients``, ``queue_size``, ``max_op_bytes``, ``ping_interval``), plus
    ``start_engine``.
    """
    check_bind(host, token)
    asyncio.run(_serve(engine, host, port, token, stop_event, ready, options))


class ServerThread:
    """``serve_forever`` on a background thread (tests, bench, embedding); a context manager."""

    def __init__(self, engine: EngineAPI, host: str = DEFAULT_HOST, port: int = 0,
                 token: str | None = None, **options: Any) -> None:
        check_bind(host, token)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.server: FeedServer | None = None
        self._thread = threading.Thread(
            target=self._run, args=(engine, host, port, token, options), name="feed-server",
            daemon=True,
        )

    def _run(self, engine: EngineAPI, host: str, port: int, token: str | None,
             options: dict[str, Any]) -> None:
        def ready(server: FeedServer) -> None:
            self.server = server
            self._ready.set()

        try:
            serve_forever(engine, host, port, token, self._stop, ready=ready, **options)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error
        if self.server is None:
            raise RuntimeError("server did not start")
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_OP_BYTES",
    "OPS",
    "FeedServer",
    "ServerThread",
    "check_bind",
    "is_loopback",
    "redacting_logger",
    "serve_forever",
]
