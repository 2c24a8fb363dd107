"""Bounded HTTP GETs for the sources: no key leaves the origin, no body or wait runs away.

Three rules, each turned into a ``SourceError`` whose message the status bar shows as it is:

- Redirects are followed only within the configured origin (scheme, host and port). A redirect
  anywhere else is refused, not followed without the key: requests strips only ``Authorization``
  across hosts, so our ``x-cg-*-api-key`` header would otherwise travel to whoever the server names.
- A body is read in a streaming way and capped twice: the bytes on the wire (after chunked framing,
  before content decoding) and the bytes after decompression. We decompress ourselves, with
  ``zlib``'s ``max_length``, so a gzip bomb never inflates past the cap whatever urllib3 does.
- A request has a total deadline. requests' timeout applies to each socket read, so a server
  sending one byte a second never trips it. A timer shuts the request's socket down when the
  deadline passes (that ends a read blocked in the headers too); between body reads, ``read1``
  (what one socket read brought) lets us look at the clock as well. The timer finds the socket
  through ``DeadlineAdapter``, which the source mounts on its session; without it (a session of a
  test's own) the body is still bounded between reads.

    SourceError
     ├── NetworkError   deadline passed, connection failed mid-body
     ├── ApiError       redirect refused (status 3xx)
     └── ParseError     body over the cap, an encoding we did not ask for, damaged compression
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from engine.errors import ApiError, NetworkError, ParseError
from engine.redact import safe_url

# Bytes; the largest answer we ask CoinGecko for (a day of market_chart) is about 40 kB.
MAX_BODY = 2_000_000
DEADLINE = 30.0  # seconds for a whole request: connect, headers and body
MAX_REDIRECTS = 3
READ_SIZE = 16_384
REDIRECTS = (301, 302, 303, 307, 308)
# Only what we decode ourselves; requests would otherwise add br/zstd when those libraries exist.
ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True)
class Answer:
    """A response read in full within the limits: status, headers and the decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Watch:
    """One request's deadline timer: the connection it uses, and whether the deadline cut it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self.fired = False

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn
            late = self.fired
        if late:
            self._shut(conn)

    def cut(self) -> None:
        with self._lock:
            self.fired = True
            conn = self._conn
        if conn is not None:
            self._shut(conn)

    @staticmethod
    def _shut(conn: Any) -> None:
        # shutdown (not close) wakes a recv blocked in another thread; the pool then drops the
        # connection as broken.
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# The watch of the request the current thread is making (a source and a search worker may each
# make one at the same time).
_current = threading.local()


class _Watched:
    """Tells the current request's watch which connection carries it, when it opens or is reused."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections let ``bounded_get``'s deadline timer reach the socket."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        classes = getattr(self.poolmanager, "pool_classes_by_scheme", None)
        if isinstance(classes, dict):  # else: deadline between body reads only (see the docstring)
            self.poolmanager.pool_classes_by_scheme = {
                **classes,
                "http": _WatchedHTTPPool,
                "https": _WatchedHTTPSPool,
            }


def mount_deadline_adapter(session: Any) -> None:
    """Route ``session``'s http(s) requests through ``DeadlineAdapter`` (if it can mount one)."""
    mount = getattr(session, "mount", None)
    if callable(mount):
        adapter = DeadlineAdapter()
        mount("http://", adapter)
        mount("https://", adapter)


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def where(url: str) -> str:
    """``host:port`` of ``url`` for a message; never the user:password part."""
    _scheme, host, port = origin(url)
    return f"{host}:{port}" if port is not None else host or safe_url(url)


def size_words(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n / 1000:g} kB"


class _Decoder:
    """Content decoding with an output cap; ``identity`` passes through."""

    def __init__(self, encoding: str, limit: int, who: str) -> None:
        self.limit = limit
        self.who = who
        enc = encoding.strip().lower()
        if enc in ("", "identity"):
            self._z: Any = None
        elif enc in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
        else:
            raise ParseError(f"{who} answered in an encoding we did not ask for ({enc[:20]!r})")
        self.out = bytearray()

    def feed(self, data: bytes) -> None:
        if self._z is None:
            self._add(data)
            return
        try:
            while data:
                # One byte more than the room left, so going over the cap is seen, never buffered.
                self._add(self._z.decompress(data, self.limit - len(self.out) + 1))
                data = self._z.unconsumed_tail
        except zlib.error:
            raise ParseError(f"{self.who} sent a damaged compressed body") from None

    def finish(self) -> bytes:
        if self._z is not None:
            try:
                self._add(self._z.flush())
            except zlib.error:
                raise ParseError(f"{self.who} sent a damaged compressed body") from None
        return bytes(self.out)

    def _add(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > self.limit:
            raise ParseError(
                f"{self.who} sent more than {size_words(self.limit)} (decompressed); ignored"
            )


def bounded_get(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str],
    timeout: tuple[float, float],
    who: str,
    deadline: float = DEADLINE,
    max_body: int = MAX_BODY,
    monotonic: Callable[[], float] = time.monotonic,
) -> Answer:
    """GET ``url`` within the three limits of the module docstring.

    ``requests`` exceptions raised before the headers arrive are left to the caller (it already
    words them); everything after is translated here.
    """
    end = monotonic() + deadline
    watch = _Watch()
    timer = threading.Timer(deadline, watch.cut)
    timer.daemon = True
    timer.start()
    _current.watch = watch
    try:
        return _get(
            session,
            url,
            params=params,
            headers=headers,
            timeout=timeout,
            who=who,
            deadline=deadline,
            max_body=max_body,
            monotonic=monotonic,
            end=end,
            watch=watch,
        )
    except requests.RequestException:
        if watch.fired:
            raise _late(who, deadline) from None
        raise
    finally:
        timer.cancel()
        _current.watch = None


def _get(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str],
    timeout: tuple[float, float],
    who: str,
    deadline: float,
    max_body: int,
    monotonic: Callable[[], float],
    end: float,
    watch: _Watch,
) -> Answer:
    home = origin(url)
    hdrs = {**headers, "Accept-Encoding": ACCEPT_ENCODING}
    for _hop in range(MAX_REDIRECTS + 1):
        left = end - monotonic()
        if left <= 0:
            raise _late(who, deadline)
        # Never wait longer for one read than the whole request has left.
        per_read = (min(timeout[0], left), min(timeout[1], left))
        resp = session.get(
            url, params=params, headers=hdrs, timeout=per_read, stream=True, allow_redirects=False
        )
        try:
            if resp.status_code in REDIRECTS and resp.headers.get("location"):
                target = urljoin(url, resp.headers["location"])
                if origin(target) != home:
                    raise ApiError(
                        f"{who} redirected the request to {where(target)} (HTTP "
                        f"{resp.status_code}); not followed, so the API key stays with "
                        f"{where(url)} (check --api-url)",
                        status=resp.status_code,
                    )
                url, params = target, None  # the Location carries its own query
                continue
            body = _read_body(
                resp,
                who=who,
                deadline=deadline,
                max_body=max_body,
                late=lambda: watch.fired or monotonic() > end,
            )
            return Answer(resp.status_code, resp.headers, body)
        finally:
            if resp.raw is not None:  # a test's fake may hand a response without a connection
                resp.close()
    raise ApiError(f"{who} redirected more than {MAX_REDIRECTS} times; not followed", status=310)


def _late(who: str, deadline: float) -> NetworkError:
    return NetworkError(f"{who} did not send a whole answer within {deadline:g} s; cut off")


def _read_body(
    resp: requests.Response,
    *,
    who: str,
    deadline: float,
    max_body: int,
    late: Callable[[], bool],
) -> bytes:
    too_big = f"{who} sent more than {size_words(max_body)}; ignored"
    declared = resp.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > max_body:
        raise ParseError(too_big)
    decoder = _Decoder(resp.headers.get("content-encoding", ""), max_body, who)
    raw = resp.raw
    if raw is None:  # a session that hands a body already read (a test's fake): still capped
        content = resp.content or b""
        if len(content) > max_body:
            raise ParseError(too_big)
        decoder.feed(content)
        return decoder.finish()
    wire = 0
    try:
        while True:
            if late():
                raise _late(who, deadline)
            # read1: whatever one socket read brought, so the deadline is looked at between reads;
            # decode_content=False: the decoder above is the one that knows the cap.
            chunk = raw.read1(READ_SIZE, decode_content=False)
            if not chunk:
                if late():  # the timer shut the socket: not the end of the body
                    raise _late(who, deadline)
                break
            wire += len(chunk)
            if wire > max_body:
                raise ParseError(too_big)
            decoder.feed(chunk)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if late():
            raise _late(who, deadline) from None
        if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
            raise NetworkError(f"{who} stopped sending half way through the answer") from None
        raise NetworkError(
            f"{who} broke off the answer half way ({exc.__class__.__name__})"
        ) from None
    return decoder.finish()


__all__ = [
    "ACCEPT_ENCODING",
    "DEADLINE",
    "MAX_BODY",
    "Answer",
    "DeadlineAdapter",
    "bounded_get",
    "mount_deadline_adapter",
    "origin",
    "size_words",
    "where",
]
