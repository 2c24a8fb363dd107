"""The WebSocket feed: one engine's events served to many clients (``cryptotui serve``).

Protocol ``"v": 1`` (see docs/protocol.md and engine/data/protocol.schema.json). On connect a client
gets ``hello`` then a ``snapshot``; afterwards every engine event as one JSON text frame. Clients
send small JSON ops (``watch``, ``unwatch``, ``resync``, ``pause``, ``reset``, ``search``,
``export``); an op carrying an ``id`` is answered by a ``reply`` frame with the same id. A client
connecting with ``?batch=1`` accepts ``batch`` frames: whatever piled up for it, in one message.

Thread rule: engine listeners run on engine threads and only append the event to an inbox that
one ``call_soon_threadsafe`` callback drains on the asyncio loop. Everything else is owned by the
loop thread: events are encoded once into a shared ring of the last ``queue_size`` frames, and each
client's sender reads the ring at its own cursor, so a client's backlog is bounded by the ring. A
client the ring overtakes has its backlog dropped, is told so (an ``error`` frame) and resynced
with a fresh snapshot. The engine and the other clients never wait for it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hmac
import ipaddress
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from engine.api import EngineAPI
from engine.errors import ConfigError, CryptotuiError
from engine.events import (
    PROTOCOL_VERSION,
    CoinSnapshot,
    ErrorEvent,
    Event,
    SnapshotEvent,
    StatusEvent,
)
from engine.feed.codec import encode, to_dict
from engine.ids import is_coin_id
from engine.settings.holdings import Holding

log = logging.getLogger(__name__)

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _pkg_version

    SERVER_VERSION = _pkg_version("cryptotui")
except PackageNotFoundError:  # not installed (running from a checkout)
    SERVER_VERSION = "0.1.0"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_MAX_CLIENTS = 200
# The longest backlog a client may have, in frames (the ring's size, ~25 MB of typical frames):
# over two hours of events for 50 coins at 4 events a minute, 4.5 s of the 600x demo of 3 coins.
DEFAULT_QUEUE_SIZE = 32768
MAX_OP_BYTES = 4096  # a client op larger than this gets an ``error`` frame
# Hard cap enforced by websockets itself (close code 1009): beyond it the frame is not even read.
TRANSPORT_MAX_SIZE = 64 * 1024
# An export travels as reply frames of at most EXPORT_PART_BYTES of CSV each ("more": true until the
# last), produced from the store as they are sent: the server writes no file and holds one part
# at a time. The total is capped (a viewer has no use for a bigger one over the feed: ``cryptotui
# export`` on the server has no cap), each client may start one every EXPORT_EVERY seconds and
# have one running, and the server runs at most MAX_EXPORTS at once.
MAX_EXPORT_BYTES = 256 * 1024 * 1024
EXPORT_PART_BYTES = 1024 * 1024
EXPORT_EVERY = 5.0
MAX_EXPORTS = 2
EXPORT_STALL_SECONDS = 30.0  # a client that reads none of its export parts for this long loses it
# The snapshot is the largest frame: kept under this by sending less history per coin when the
# watchlist is long (a day of bars and forecasts of a coin is about 1.3 MB of JSON, so a full day
# for up to ~18 coins). engine.feed.remote.MAX_FRAME_BYTES, what a viewer reads, is above it.
SNAPSHOT_MAX_BYTES = 24 * 1024 * 1024
SNAPSHOT_MINUTES = 1500  # history per coin in a snapshot: what a viewer keeps (a day and an hour)
# A client that asked for ``?batch=1`` gets what piled up for it as one ``batch`` frame:
# per-message costs (framing, a syscall, the client's recv) are then paid once per batch.
MAX_BATCH_FRAMES = 512
MAX_CONTROL_FRAMES = 256  # unread replies a client may pile up before it is closed
_BATCH_HEAD = b'{"v":%d,"type":"batch","frames":[' % PROTOCOL_VERSION

# Per-client op rate (a token bucket): a person or RemoteEngine sends a few ops a minute; a client
# beyond this gets one "Too many requests" error frame and its ops are ignored until it slows down.
OPS_PER_SECOND = 10.0
OPS_BURST = 40
# Coins one client may add to the shared watchlist, and the most the watchlist may reach through
# the feed: every coin costs the engine a model, a checkpoint and request budget.
MAX_COINS_PER_CLIENT = 20
MAX_COINS = 50

OPS = ("watch", "unwatch", "resync", "pause", "reset", "search", "export")


class _RedactAuthorization(logging.Filter):
    """websockets logs every handshake header at DEBUG; the bearer token must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() == "authorization"
        ):
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


def _error_frame(title: str, msg: str, coin: str | None = None) -> bytes:
    return encode(to_dict(ErrorEvent(title, msg, coin)))


class _BadOp(Exception):
    """A client op we refuse; its message goes back to that client."""


class _Answered(Exception):
    """The op answers by itself (an export's parts): no reply now."""


class _Ring:
    """The last ``size`` encoded event frames, numbered; every client reads it at its own cursor.

    One shared ring instead of a queue per client: appending an event costs the same for 1 or 200
    clients, and a client's backlog (``head - cursor``) is bounded by ``size``. A client the ring
    has overtaken (its cursor fell off the tail) lost events: it is told and resynced.
    """

    __slots__ = ("head", "size", "slots")

    def __init__(self, size: int) -> None:
        self.size = size
        self.slots: list[bytes] = [b""] * size
        self.head = 0  # sequence number of the next frame

    @property
    def tail(self) -> int:
        """Oldest sequence number still held."""
        return max(0, self.head - self.size)

    def append(self, frame: bytes) -> None:
        self.slots[self.head % self.size] = frame
        self.head += 1

    def read(self, cursor: int, limit: int) -> list[bytes]:
        """Frames from ``cursor`` (>= tail) on, at most ``limit``, without wrapping copies."""
        end = min(self.head, cursor + limit)
        i, j = cursor % self.size, end % self.size
        if end - cursor <= 0:
            return []
        if i < j:
            return self.slots[i:j]
        return self.slots[i:] + self.slots[:j]


class _Client:
    """One connection: its cursor in the ring, its own frames (hello, replies), its wake-up."""

    __slots__ = (
        "added",
        "batch",
        "closing",
        "control",
        "cursor",
        "export_task",
        "last_export",
        "limited",
        "peer",
        "refilled",
        "resync",
        "resyncs",
        "sender",
        "tokens",
        "waiter",
        "ws",
    )

    def __init__(
        self, ws: ServerConnection, peer: str, batch: bool = False, now: float = 0.0
    ) -> None:
        self.ws = ws
        self.peer = peer
        self.batch = batch  # the client accepts ``batch`` frames (asked with ?batch=1)
        self.cursor = 0  # next ring sequence number to send
        # Frames for this client only (hello, replies, errors about its ops), sent before events.
        self.control: collections.deque[bytes] = collections.deque()
        self.resync: str | None = "connect"  # a snapshot is due: "connect" | "request"
        self.waiter: asyncio.Future[None] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.resyncs = 0
        self.closing = False
        self.tokens = float(OPS_BURST)  # ops this client may send right now
        self.refilled = now  # clock reading the tokens were last topped up at
        self.limited = False  # told "Too many requests" and not yet slowed down
        self.added: set[str] = set()  # coins this client added to the watchlist
        self.export_task: asyncio.Task[None] | None = None  # the export being sent, if any
        self.last_export = -math.inf  # clock reading of its last export's start

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


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
        ops_per_second: float = OPS_PER_SECOND,
        ops_burst: int = OPS_BURST,
        max_coins: int = MAX_COINS,
        max_coins_per_client: int = MAX_COINS_PER_CLIENT,
        clock: Callable[[], float] = time.monotonic,
        holdings: Mapping[str, Holding] | None = None,
        export_every: float = EXPORT_EVERY,
    ) -> None:
        check_bind(host, token)
        # The user's holdings go out only when the operator asked (serve --with-holdings).
        self.holdings = None if holdings is None else dict(holdings)
        if max_clients < 1 or queue_size < 16 or max_op_bytes < 64:
            raise ConfigError(
                "feed limits too small: need max_clients >= 1, queue_size >= 16, max_op_bytes >= 64"
            )
        if not (
            ops_per_second > 0 and ops_burst >= 1 and max_coins >= 1 and max_coins_per_client >= 1
        ):
            raise ConfigError("feed op limits must be positive")
        self.engine = engine
        self.host = host
        self.port = port
        self._token = token  # never logged, never in repr
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.max_op_bytes = max_op_bytes
        self.ping_interval = ping_interval
        self.ops_per_second = ops_per_second
        self.ops_burst = ops_burst
        self.max_coins = max_coins
        self.max_coins_per_client = max_coins_per_client
        self.export_every = export_every
        self._clock = clock
        # Coins asked for by a watch op that the engine's watchlist does not show yet (its add is
        # queued): counted against max_coins so a burst of watches cannot overshoot it.
        self._pending_adds: set[str] = set()
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._ring = _Ring(queue_size)
        self._idle: set[_Client] = set()  # clients waiting for the next event
        # Events from engine threads wait here; one loop callback drains them all.
        self._inbox: collections.deque[Event] = collections.deque()
        self._drain_scheduled = False
        self._snapshot_cache: tuple[int, bytes] | None = None  # (ring head, frame)
        # A build under way: (ring head it starts from, its future), shared by whoever waits.
        self._snapshot_task: tuple[int, asyncio.Future[tuple[bytes, int]]] | None = None
        self._batches: dict[tuple[int, int], bytes] = {}  # recent batch frames by ring range
        self._exports = 0  # exports being sent now (all clients)
        self._last_status: StatusEvent | None = None
        self.stats: dict[str, int] = {
            "connections": 0,
            "refused_auth": 0,
            "refused_full": 0,
            "events": 0,
            "frames_sent": 0,
            "messages_sent": 0,
            "batches_sent": 0,
            "batches_built": 0,
            "resyncs": 0,
            "dropped": 0,
            "bad_ops": 0,
            "rate_limited": 0,
            "coins_refused": 0,
            "exports": 0,
            "exports_refused": 0,
        }

    def __repr__(self) -> str:
        token = "set" if self._token else None
        return f"FeedServer(host={self.host!r}, port={self.port}, token={token})"

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
            logger=redacting_logger("engine.feed.server.ws"),
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.engine.subscribe(self._on_event)
        log.info(
            "serving %s engine on %s (%s)",
            self.engine.mode,
            self.url,
            "token required" if self._token else "no token, loopback only",
        )

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
        # Append, then check the flag (the loop clears it, then drains): no event is stranded.
        self._inbox.append(event)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # loop already closed during shutdown
                pass

    # Loop thread ---------------------------------------------------------------------------------
    def _drain(self) -> None:
        self._drain_scheduled = False
        inbox = self._inbox
        while inbox:
            self._dispatch(inbox.popleft())
        if self._idle:
            for client in self._idle:
                client.wake()
            self._idle.clear()

    def _dispatch(self, event: Event) -> None:
        self.stats["events"] += 1
        if isinstance(event, StatusEvent):
            self._last_status = event
        try:
            frame = encode(to_dict(event))
        except (TypeError, ValueError):
            log.exception("cannot serialise %s event; dropped", event.type)
            return
        self._ring.append(frame)

    def _hello_frame(self, batch: bool) -> bytes:
        return encode(
            {
                "v": PROTOCOL_VERSION,
                "type": "hello",
                "server": f"cryptotui/{SERVER_VERSION}",
                "protocol": PROTOCOL_VERSION,
                "mode": self.engine.mode,
                # What the data is (a replay's file and dates); "" for live sources.
                "source_info": _source_info(self.engine),
                "coins": list(self.engine.coins()),
                "horizons": list(self.engine.horizons),
                "vs_currency": self.engine.vs_currency,
                "ops": list(OPS),
                "max_op_bytes": self.max_op_bytes,
                "queue_size": self.queue_size,
                "batch": batch,
                **(
                    {}
                    if self.holdings is None
                    else {"holdings": {c: h.to_dict() for c, h in sorted(self.holdings.items())}}
                ),
            }
        )

    async def _snapshot_frame(self, fresh: bool = False) -> tuple[bytes, int]:
        """A snapshot of every watched coin, and the ring position from which events follow it.

        ``fresh``: not one taken before the latest event (an explicit ``resync``).
        """
        head = self._ring.head
        cached = self._snapshot_cache
        # A snapshot stays good while the events after it are still in the ring: the client
        # gets it and then the ring from where it was taken. When many clients resync at once
        # (a load spike), one build serves them all instead of each build deepening the spike.
        reuse = 0 if fresh else self._ring.size // 4
        if cached is not None and head - cached[0] <= reuse:
            return cached[1], cached[0]
        building = self._snapshot_task
        if building is None or (fresh and building[0] < head):
            building = (head, asyncio.ensure_future(self._build_snapshot(head)))
            self._snapshot_task = building
        return await asyncio.shield(building[1])

    async def _build_snapshot(self, head: int) -> tuple[bytes, int]:
        # Events up to ``head`` were emitted before this build starts, so the engine state it
        # copies includes them; later ones may be in it too (clients drop what they already
        # have), none is missing. Built off the loop: a big snapshot must not stall the senders.
        status = self._last_status

        def build() -> bytes:
            coins = tuple(self.engine.snapshot(c) for c in self.engine.coins())
            return snapshot_frame(coins, status)

        try:
            frame = await asyncio.to_thread(build)
        finally:
            if self._snapshot_task is not None and self._snapshot_task[0] == head:
                self._snapshot_task = None
        if self._snapshot_cache is None or self._snapshot_cache[0] < head:
            self._snapshot_cache = (head, frame)
        return frame, head

    def _batch(self, start: int, end: int) -> bytes:
        """The batch frame of ring[start:end]; clients that keep up all ask for the same range."""
        key = (start, end)
        frame = self._batches.get(key)
        if frame is None:
            frame = b"".join((_BATCH_HEAD, b",".join(self._ring.read(start, end - start)), b"]}"))
            if len(self._batches) >= 64:
                self._batches.pop(next(iter(self._batches)))  # the oldest
            self._batches[key] = frame
            self.stats["batches_built"] += 1
        return frame

    def _send_own(self, client: _Client, frame: bytes) -> None:
        """Queue a frame for this client only (hello, a reply, an error about its op)."""
        if len(client.control) >= MAX_CONTROL_FRAMES:
            # Only a client that keeps sending ops and never reads the answers gets here.
            if not client.closing:
                client.closing = True
                log.warning("client %s does not read its replies; closing it", client.peer)
                asyncio.ensure_future(client.ws.close(1008, "too many unread replies"))
            return
        client.control.append(frame)
        client.wake()

    def _reply(
        self,
        client: _Client,
        rid: Any,
        op: str,
        ok: bool,
        result: Any = None,
        error: str | None = None,
        title: str | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "type": "reply",
            "id": rid,
            "op": op,
            "ok": ok,
        }
        if ok:
            body["result"] = result
        else:
            body["error"] = error or "failed"
            if title:
                body["title"] = title
        self._send_own(client, encode(body))

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        peer = _peer(connection)
        if self._token is not None:
            given = request.headers.get("Authorization", "")
            expected = f"Bearer {self._token}"
            # Constant time, on bytes: compare_digest refuses non-ASCII str.
            if not hmac.compare_digest(
                given.encode("utf-8", "surrogateescape"),
                expected.encode("utf-8", "surrogateescape"),
            ):
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
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        client = _Client(
            ws, peer, batch=query.get("batch", [""])[0] in ("1", "true"), now=self._clock()
        )
        self._clients.add(client)
        self.stats["connections"] += 1
        log.info("client %s connected (%d now)", peer, len(self._clients))
        client.control.append(self._hello_frame(client.batch))
        client.sender = asyncio.create_task(self._sender(client))
        try:
            async for message in ws:
                if client.closing:
                    break
                await self._handle_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            self._idle.discard(client)
            client.sender.cancel()
            if client.export_task is not None:
                client.export_task.cancel()
            log.info("client %s disconnected (%d now)", peer, len(self._clients))

    async def _sender(self, client: _Client) -> None:
        ws = client.ws
        ring = self._ring
        stats = self.stats
        loop = asyncio.get_running_loop()
        try:
            while True:
                if client.control:
                    frame = client.control.popleft()
                    await ws.send(frame, text=True)
                    stats["frames_sent"] += 1
                    stats["messages_sent"] += 1
                    continue
                lost = ring.tail - client.cursor
                if client.resync is not None or lost > 0:
                    if lost > 0 and client.resync != "connect":
                        client.resyncs += 1
                        stats["resyncs"] += 1
                        stats["dropped"] += lost
                        log.warning(
                            "client %s too slow: %d events dropped, resyncing", client.peer, lost
                        )
                        await ws.send(
                            _error_frame(
                                "Too slow",
                                f"this client fell behind: {lost} events were dropped; a fresh "
                                "snapshot follows",
                            ),
                            text=True,
                        )
                    fresh = client.resync == "request"
                    client.resync = None
                    frame, client.cursor = await self._snapshot_frame(fresh)
                    await ws.send(frame, text=True)
                    stats["frames_sent"] += 1
                    stats["messages_sent"] += 1
                    continue
                if client.cursor < ring.head:
                    if client.batch:
                        start = client.cursor
                        end = min(ring.head, start + MAX_BATCH_FRAMES)
                        client.cursor = end
                        if end - start == 1:
                            await ws.send(ring.read(start, 1)[0], text=True)
                        else:
                            await ws.send(self._batch(start, end), text=True)
                            stats["batches_sent"] += 1
                        stats["frames_sent"] += end - start
                        stats["messages_sent"] += 1
                    else:
                        frame = ring.read(client.cursor, 1)[0]
                        client.cursor += 1
                        await ws.send(frame, text=True)
                        stats["frames_sent"] += 1
                        stats["messages_sent"] += 1
                    continue
                waiter = loop.create_future()
                client.waiter = waiter
                self._idle.add(client)
                await waiter
        except ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sender for %s failed", client.peer)
            await ws.close(1011, "server error")

    def _allow(self, client: _Client) -> bool:
        """Take one op from the client's token bucket; False when it is sending too fast."""
        now = self._clock()
        client.tokens = min(
            float(self.ops_burst), client.tokens + (now - client.refilled) * self.ops_per_second
        )
        client.refilled = now
        if client.tokens >= 1.0:
            client.tokens -= 1.0
            client.limited = False
            return True
        self.stats["rate_limited"] += 1
        if not client.limited:
            # One frame per episode: an error per ignored op would itself be a flood.
            client.limited = True
            log.warning(
                "client %s sends ops too fast; ignoring them until it slows down", client.peer
            )
            self._send_own(
                client,
                _error_frame(
                    "Too many requests",
                    f"more than {self.ops_per_second:g} ops a second: further ops are ignored "
                    "(no reply) until this client slows down",
                ),
            )
        return False

    async def _handle_message(self, client: _Client, message: str | bytes) -> None:
        rid: Any = None
        op = ""
        if not self._allow(client):
            return
        try:
            if isinstance(message, bytes):
                raise _BadOp("binary frames are not part of the protocol; send JSON text")
            if len(message.encode("utf-8")) > self.max_op_bytes:
                raise _BadOp(
                    f"frame too large ({len(message)} chars; limit {self.max_op_bytes} bytes)"
                )
            try:
                data = json.loads(message)
            except ValueError:
                raise _BadOp("malformed JSON") from None
            if not isinstance(data, dict):
                raise _BadOp('an op must be a JSON object like {"op": "resync"}')
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
        except _Answered:
            pass
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
            self._reply(client, rid, op, False, error=msg, title=title)
        else:
            self._send_own(client, _error_frame(title, msg))

    async def _run_op(self, client: _Client, op: str, data: dict[str, Any]) -> Any:
        if op == "resync":
            client.resync = "request"
            client.wake()
            return None
        if op == "pause":
            paused = data.get("paused")
            if not isinstance(paused, bool):
                raise _BadOp('pause needs "paused": true or false')
            self.engine.set_paused(paused)
            return None
        if op == "search":
            query = data.get("query")
            if not isinstance(query, str) or len(query) > 100:
                raise _BadOp('search needs "query": a string of at most 100 characters')
            # Search may hit the network: keep it off the loop so other clients are not held up.
            matches = await asyncio.to_thread(self.engine.search, query)
            return [dataclasses.asdict(m) for m in matches]
        coin = data.get("coin")
        if not is_coin_id(coin):
            raise _BadOp(f'{op} needs "coin": a coin id such as "bitcoin"')
        if op == "watch":
            self._check_watch(client, coin)
            self.engine.add_coin(coin)
        elif op == "unwatch":
            client.added.discard(coin)
            self._pending_adds.discard(coin)
            self.engine.remove_coin(coin)
        elif op == "reset":
            self.engine.reset_model(coin)
        elif op == "export":
            rid = data.get("id")
            if rid is None:
                raise _BadOp('export needs an "id": its CSV comes back in a reply')
            self._check_export(client)
            client.last_export = self._clock()
            self._exports += 1
            self.stats["exports"] += 1
            client.export_task = asyncio.ensure_future(self._export(client, rid, coin))
            # Counted down when the task ends in any way (even cancelled before it started).
            client.export_task.add_done_callback(self._export_done)
            raise _Answered
        return None

    def _check_export(self, client: _Client) -> None:
        """Refuse an export over the client's or the server's export limits."""
        why = ""
        if client.export_task is not None and not client.export_task.done():
            why = "an export is already being sent to this client; wait for it"
        elif self._clock() - client.last_export < self.export_every:
            why = f"at most one export every {self.export_every:g} s per client"
        elif self._exports >= MAX_EXPORTS:
            why = f"the engine is sending {self._exports} exports already; try again shortly"
        if why:
            self.stats["exports_refused"] += 1
            raise CryptotuiError(why, title="Too many requests")

    def _export_done(self, _task: asyncio.Task[None]) -> None:
        self._exports -= 1

    async def _export(self, client: _Client, rid: Any, coin: str) -> None:
        """Send a coin's CSV to ``client`` as reply parts, produced as they are sent (no file)."""
        parts = export_parts(self.engine, coin, EXPORT_PART_BYTES)
        sent = 0
        try:
            part = await asyncio.to_thread(next, parts, None)
            while part is not None:
                sent += len(part)
                if sent > MAX_EXPORT_BYTES:
                    raise CryptotuiError(
                        f"the export of {coin} is larger than {MAX_EXPORT_BYTES // 2**20} MiB: "
                        "run 'cryptotui export' where the engine runs",
                        title="Export too large",
                    )
                following = await asyncio.to_thread(next, parts, None)
                result = {"filename": f"{coin}.csv", "csv": part, "more": following is not None}
                self._reply(client, rid, "export", True, result)
                part = following
                # Back-pressure: the next part is made only once this client has read this one.
                waited = 0.0
                while len(client.control) > 1 and not client.closing:
                    if waited > EXPORT_STALL_SECONDS:
                        raise CryptotuiError(
                            "this client stopped reading its export", title="Export"
                        )
                    await asyncio.sleep(0.02)
                    waited += 0.02
        except CryptotuiError as exc:
            self._reply(client, rid, "export", False, error=exc.msg, title=exc.title)
        except OSError as exc:
            msg = f"cannot export {coin}: {exc.strerror or exc.__class__.__name__}"
            self._reply(client, rid, "export", False, error=msg, title="Export failed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("export of %s for %s failed", coin, client.peer)
            msg = f"export failed: {exc.__class__.__name__}"
            self._reply(client, rid, "export", False, error=msg, title="Server error")
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    def _check_watch(self, client: _Client, coin: str) -> None:
        """Count a new coin against the client's and the server's caps, or refuse it."""
        watched = set(self.engine.coins())
        self._pending_adds -= watched
        if coin in watched or coin in self._pending_adds:
            return
        if len(client.added) >= self.max_coins_per_client:
            self.stats["coins_refused"] += 1
            raise CryptotuiError(
                f"cannot watch {coin}: this client already added {len(client.added)} coins "
                f"(limit {self.max_coins_per_client}); unwatch one first",
                title="Too many coins",
            )
        if len(watched) + len(self._pending_adds) >= self.max_coins:
            self.stats["coins_refused"] += 1
            raise CryptotuiError(
                f"cannot watch {coin}: the watchlist is full ({self.max_coins} coins); "
                "unwatch one first",
                title="Too many coins",
            )
        client.added.add(coin)
        self._pending_adds.add(coin)


def export_parts(engine: EngineAPI, coin: str, part_bytes: int) -> Iterator[str]:
    """A coin's CSV in parts of about ``part_bytes`` characters, made as they are taken.

    The local engine streams from its store (``Engine.export_parts``); any other EngineAPI
    exports into a private temporary folder that is removed once the parts are read. Either way
    no file is left on the server.
    """
    stream = getattr(engine, "export_parts", None)
    if stream is not None:
        yield from stream(coin, part_bytes)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cryptotui-export-") as folder:
        path = engine.export(coin, Path(folder) / f"{coin}.csv")
        with open(path, encoding="utf-8", newline="") as fh:
            while part := fh.read(part_bytes):
                yield part


def snapshot_frame(coins: tuple[CoinSnapshot, ...], status: StatusEvent | None) -> bytes:
    """The snapshot frame of ``coins``, with at most SNAPSHOT_MINUTES of history per coin and
    fewer when the whole would pass SNAPSHOT_MAX_BYTES (a long watchlist gets a shorter day)."""
    keep = SNAPSHOT_MINUTES
    while True:
        trimmed = tuple(
            dataclasses.replace(c, bars=c.bars[-keep:], forecasts=c.forecasts[-keep:])
            if len(c.bars) > keep or len(c.forecasts) > keep
            else c
            for c in coins
        )
        frame = encode(to_dict(SnapshotEvent(coins=trimmed, status=status)))
        longest = max((max(len(c.bars), len(c.forecasts)) for c in trimmed), default=0)
        if len(frame) <= SNAPSHOT_MAX_BYTES or longest <= 1:
            return frame
        # Scale the history by what is over, with a margin for what does not scale (metrics).
        keep = max(1, min(longest - 1, int(longest * SNAPSHOT_MAX_BYTES / len(frame) * 0.9)))


def _source_info(engine: EngineAPI) -> str:
    info = getattr(engine, "source_info", "")
    return info if isinstance(info, str) else ""


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

    def __init__(
        self,
        engine: EngineAPI,
        host: str = DEFAULT_HOST,
        port: int = 0,
        token: str | None = None,
        **options: Any,
    ) -> None:
        check_bind(host, token)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.server: FeedServer | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(engine, host, port, token, options),
            name="feed-server",
            daemon=True,
        )

    def _run(
        self, engine: EngineAPI, host: str, port: int, token: str | None, options: dict[str, Any]
    ) -> None:
        def ready(server: FeedServer) -> None:
            self.server = server
            self._ready.set()

        try:
            serve_forever(engine, host, port, token, self._stop, ready=ready, **options)
        # Whatever stops the server thread (even a KeyboardInterrupt there) is handed to start(),
        # which raises it on the starting thread.
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 10.0) -> Self:
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

    def __enter__(self) -> Self:
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
