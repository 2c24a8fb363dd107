"""Bounded HTTP GETs for the sources: no key leaves the origin, no body or wait runs away.

Three rules, each turned into a ``SourceError`` whose message the status bar shows as it is:

- Redirects are followed only within the configured origin (scheme, host and port). A redirect
  anywhere else is refused, not followed without the key: requests strips only ``Authorization``
  across hosts, so our ``x-cg-*-api-key`` header would otherwise travel to whoever the server names.
- A body is read in a streaming way and capped twice: the bytes on the wire (after chunked framing,
  before content decoding) and the bytes after decompression. We decompress ourselves, with
  ``zlib``'s ``max_length``, so a gzip bomb never inflates past the cap whatever urllib3 does.
- A request has a total deadline on the monotonic clock. requests' timeout applies to each socket
  read, so a server sending one byte a second never trips it; reading with ``read1`` (which returns
  what one read brought) lets us look at the deadline between reads.

    SourceError
     ├── NetworkError   deadline passed, connection failed mid-body
     ├── ApiError       redirect refused (status 3xx)
     └── ParseError     body over the cap, an encoding we did not ask for, damaged compression
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
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
                resp, who=who, end=end, deadline=deadline, max_body=max_body, monotonic=monotonic
            )
            return Answer(resp.status_code, resp.headers, body)
        finally:
            resp.close()
    raise ApiError(f"{who} redirected more than {MAX_REDIRECTS} times; not followed", status=310)


def _late(who: str, deadline: float) -> NetworkError:
    return NetworkError(f"{who} did not send a whole answer within {deadline:g} s; cut off")


def _read_body(
    resp: requests.Response,
    *,
    who: str,
    end: float,
    deadline: float,
    max_body: int,
    monotonic: Callable[[], float],
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
            if monotonic() > end:
                raise _late(who, deadline)
            # read1: whatever one socket read brought, so the deadline is looked at between reads;
            # decode_content=False: the decoder above is the one that knows the cap.
            chunk = raw.read1(READ_SIZE, decode_content=False)
            if not chunk:
                break
            wire += len(chunk)
            if wire > max_body:
                raise ParseError(too_big)
            decoder.feed(chunk)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if monotonic() > end:
            raise _late(who, deadline) from None
        if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
            raise NetworkError(f"{who} stopped sending half way through the answer") from None
        raise NetworkError(
            f"{who} broke off the answer half way ({exc.__class__.__name__})"
        ) from None
    return decoder.finish()


__all__ = ["ACCEPT_ENCODING", "MAX_BODY", "Answer", "bounded_get", "origin", "size_words", "where"]
