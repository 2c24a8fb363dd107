"""A local HTTP server that behaves like CoinGecko's API v3, with faults a test can inject.

It serves the recorded bodies in the shared data folder: ``/simple/price`` built for the requested
ids (prices move each minute, ``last_updated_at`` is the start of the current minute plus a few
seconds, like CoinGecko's 60 s cache), ``/coins/{id}/market_chart`` from the real 5-minute range
file shifted to end "now", ``/search`` over a small table, ``/ping``, and the real 404 body for an
unknown coin. Every request is recorded (path, query, headers) so tests can check it against the
OpenAPI spec.

    with FakeCoinGecko(clock=fake_clock) as cg:
        cg.add_fault("429", retry_after=5)
        source = CoinGeckoSource(replace(settings, api_url=cg.url), ...)

Run standalone for manual or tmux tests::

    python -m tests.fakes.coingecko_server --port 8999 [--stale] [--require-key]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

DATA = (
    Path(
        os.environ.get(
            "CRYPTOTUI_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
        )
    )
    / "coingecko"
)
API_PREFIX = "/api/v3"

# id -> (name, symbol, rank, usd price around which the fake moves)
KNOWN: dict[str, tuple[str, str, int, float]] = {
    "bitcoin": ("Bitcoin", "BTC", 1, 76975.0),
    "ethereum": ("Ethereum", "ETH", 2, 2950.0),
    "solana": ("Solana", "SOL", 6, 142.0),
    "litecoin": ("Litecoin", "LTC", 17, 84.0),
    "dogecoin": ("Dogecoin", "DOGE", 8, 0.16),
    "cardano": ("Cardano", "ADA", 9, 0.45),
    "ripple": ("XRP", "XRP", 4, 2.1),
    "ethereum-classic": ("Ethereum Classic", "ETC", 30, 16.0),
}
FX = {"usd": 1.0, "eur": 0.92, "gbp": 0.79, "jpy": 150.0}

FAULT_KINDS = (
    "429",  # JSON 429 body; headers from retry_after= / reset= (absolute unix or a date string)
    "429_html",  # Cloudflare-style HTML page with status 429
    "html_5xx",  # an HTML error page with a 5xx status (status=)
    "status",  # a plain status (status=, default 500) with a JSON error body
    "error_code",  # a recorded error body: file= (e.g. "error_401_10002_api_key_missing.json")
    "slow",  # answer after delay= seconds (the client should time out first)
    "truncated",  # a 200 whose JSON stops half way
    "wrong_shape",  # a 200 with valid JSON of the wrong shape
    "reset",  # close the TCP connection with RST before answering
    # Hostile answers (issue 14):
    "redirect",  # a 302 to location= (another host:port, to see whether the key follows)
    "gzip_bomb",  # a 200 gzip body that inflates to size= bytes of JSON-ish padding
    "endless",  # a 200 chunked body that never ends (until the client hangs up)
    "drip",  # a 200 whose body (length= bytes) comes one byte every interval= seconds
    "drip_headers",  # the status line, then a header line one byte every interval= seconds
    "future",  # a normal /simple/price answer stamped ahead= seconds in the future
)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the /api/v3 prefix, e.g. "/simple/price"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    fault: str | None = None
    at: float = 0.0  # the server clock when the request arrived


@dataclass
class Fault:
    kind: str
    path: str | None = None  # only requests whose path starts with this
    times: int = 1
    options: dict[str, Any] = field(default_factory=dict)


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


class FakeCoinGecko:
    """The server; use as a context manager, or ``start()`` / ``close()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        known: dict[str, tuple[str, str, int, float]] | None = None,
        stale: bool = False,
        require_key: str | None = None,
        update_offset: int = 7,
    ) -> None:
        self.clock = clock
        self.known = dict(KNOWN if known is None else known)
        self.stale = stale  # freeze last_updated_at (CoinGecko stuck on an old value)
        self.require_key = require_key  # if set, answer 401 10002 unless this key is in a header
        self.update_offset = update_offset
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._frozen_at: int | None = None
        self.sent_bytes = 0  # body bytes the hostile faults managed to write
        chart = _load("market_chart_range/bitcoin_eur_2021_12_16-2021_12_17.json")
        self._chart_prices: list[list[float]] = chart["prices"]
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._shutdown.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_fault(
        self, kind: str, *, path: str | None = None, times: int = 1, **options: Any
    ) -> None:
        """Answer the next ``times`` requests (matching ``path`` prefix) with a fault."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self.faults.append(Fault(kind, path, times, options))

    def calls(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.path is None or path.startswith(f.path):
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                    return f
        return None

    # -- data -----------------------------------------------------------------------------------

    def price(self, coin: str, vs: str, minute: int) -> float:
        """A deterministic price that moves every minute."""
        base = self.known[coin][3] * FX.get(vs, 1.0)
        wave = 0.002 * math.sin(minute / 600.0) + 0.0005 * math.sin(minute * 7 / 60.0)
        return round(base * (1.0 + wave), 8)

    def last_updated_at(self) -> int:
        now = int(self.clock())
        if self.stale:
            if self._frozen_at is None:
                self._frozen_at = now // 60 * 60 - 60 + self.update_offset
            return self._frozen_at
        updated = now // 60 * 60 + self.update_offset
        return updated if updated <= now else updated - 60

    def simple_price(
        self, ids: list[str], vs_list: list[str], with_updated: bool
    ) -> dict[str, Any]:
        updated = self.last_updated_at()
        out: dict[str, Any] = {}
        for coin in ids:
            if coin not in self.known:
                continue  # CoinGecko silently leaves unknown ids out
            entry: dict[str, Any] = {vs: self.price(coin, vs, updated // 60) for vs in vs_list}
            if with_updated:
                entry["last_updated_at"] = updated
            out[coin] = entry
        return out

    def market_chart(self, coin: str, vs: str, days: str) -> dict[str, Any]:
        """The real 5-minute points, shifted to end ~2 min ago and scaled to the coin's price."""
        now_ms = self.clock() * 1000.0
        recorded = self._chart_prices
        shift = now_ms - 120_000 - recorded[-1][0]
        scale = self.known[coin][3] * FX.get(vs, 1.0) / recorded[-1][1]
        horizon_ms = float(days) * 86_400_000 if days.replace(".", "").isdigit() else 86_400_000
        prices = [
            [int(t + shift), p * scale] for t, p in recorded if now_ms - (t + shift) <= horizon_ms
        ]
        # CoinGecko appends the current price as the last point.
        prices.append([int(now_ms), self.price(coin, vs, int(self.clock()) // 60)])
        return {
            "prices": prices,
            "market_caps": [[t, p * 19_800_000] for t, p in prices],
            "total_volumes": [[t, 2.5e10] for t, _ in prices],
        }

    def search(self, query: str) -> dict[str, Any]:
        q = query.strip().lower()
        coins = [
            {
                "id": cid,
                "name": name,
                "api_symbol": cid,
                "symbol": sym,
                "market_cap_rank": rank,
                "thumb": f"https://coin-images.coingecko.com/coins/images/{rank}/thumb/{cid}.png",
                "large": f"https://coin-images.coingecko.com/coins/images/{rank}/large/{cid}.png",
            }
            for cid, (name, sym, rank, _) in sorted(self.known.items(), key=lambda kv: kv[1][2])
            if q and (q in cid or q in name.lower() or q == sym.lower())
        ]
        return {"coins": coins, "exchanges": [], "icos": [], "categories": [], "nfts": []}

    # -- HTTP -----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeCoinGecko/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("fake coingecko: " + format, *args)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass  # the "reset" fault closed the socket already

            def do_GET(self) -> None:
                fake._serve(self)

        return Handler

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        ctype: str = "application/json; charset=utf-8",
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Cache-Control", "max-age=30")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path = unquote(split.path)
        path = path.removeprefix(API_PREFIX)
        query = parse_qs(split.query, keep_blank_values=True)
        fault = self._take_fault(path)
        with self._lock:
            self.requests.append(
                Recorded(
                    "GET",
                    path,
                    query,
                    {k.lower(): v for k, v in h.headers.items()},
                    fault.kind if fault else None,
                    self.clock(),
                )
            )
        if fault is not None and self._apply_fault(h, fault, path):
            return
        if self.require_key and self.require_key not in (
            h.headers.get("x-cg-demo-api-key"),
            h.headers.get("x-cg-pro-api-key"),
        ):
            self._send(h, 401, _load("error_401_10002_api_key_missing.json"))
            return
        self._route(h, path, query)

    def _route(self, h: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        def q(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        parts = [p for p in path.split("/") if p]
        if path == "/ping":
            self._send(h, 200, _load("oas2026_ping.json"))
        elif path == "/simple/price":
            if not q("vs_currencies"):
                self._send(h, 400, {"error": "Missing parameter vs_currencies"})
                return
            ids = [i.strip() for i in q("ids").split(",") if i.strip()]
            vs_list = [v.strip().lower() for v in q("vs_currencies").split(",") if v.strip()]
            with_updated = q("include_last_updated_at").lower() == "true"
            self._send(h, 200, self.simple_price(ids, vs_list, with_updated))
        elif path == "/search":
            self._send(h, 200, self.search(q("query")))
        elif len(parts) == 3 and parts[0] == "coins" and parts[2] == "market_chart":
            coin = parts[1]
            if coin not in self.known:
                self._send(h, 404, _load("error_404_coin_not_found.json"))
            elif not q("vs_currency") or not q("days"):
                self._send(h, 400, {"error": "Missing parameter vs_currency or days"})
            else:
                self._send(h, 200, self.market_chart(coin, q("vs_currency").lower(), q("days")))
        else:
            self._send(h, 404, {"error": "Not found"})

    def _apply_fault(self, h: BaseHTTPRequestHandler, fault: Fault, path: str) -> bool:
        """Answer with the fault; False when the fault only delays the normal answer."""
        o = fault.options
        kind = fault.kind
        if kind == "429":
            headers = {}
            if "retry_after" in o:
                headers["retry-after"] = str(o["retry_after"])
            if "reset" in o:
                headers["x-ratelimit-reset"] = str(o["reset"])
            headers.update({"x-ratelimit-limit": "30", "x-ratelimit-remaining": "0"})
            self._send(h, 429, _load("error_429_rate_limit.json"), headers=headers)
        elif kind == "429_html" or kind == "html_5xx":
            status = int(o.get("status", 429 if kind == "429_html" else 503))
            page = (
                "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
                f"<body><h1>Error {status}</h1><p>Ray ID: 7f00c0ffee</p></body></html>"
            ).encode()
            self._send(h, status, None, raw=page, ctype="text/html; charset=UTF-8")
        elif kind == "status":
            status = int(o.get("status", 500))
            self._send(h, status, {"error": f"HTTP {status}"})
        elif kind == "error_code":
            body = _load(str(o["file"]))
            status = int(o.get("status") or str(o["file"]).split("_")[1])
            self._send(h, status, body)
        elif kind == "slow":
            # Wait on an event so closing the server never hangs on a sleeping handler.
            self._shutdown.wait(float(o.get("delay", 5.0)))
            return False
        elif kind == "truncated":
            good = json.dumps({"bitcoin": {"usd": 76975.0, "last_updated_at": 1779092258}})
            self._send(h, 200, None, raw=good[: len(good) // 2].encode())
        elif kind == "wrong_shape":
            self._send(h, 200, o.get("body", [{"unexpected": "list"}]))
        elif kind == "redirect":
            h.send_response(int(o.get("status", 302)))
            h.send_header("Location", str(o["location"]))
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif kind == "gzip_bomb":
            data = _gzip_zeros(int(o.get("size", 100_000_000)))
            self._send(h, 200, None, raw=data, headers={"Content-Encoding": "gzip"})
        elif kind == "endless":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            chunk = b"[" * 65536
            frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
            try:
                while not self._shutdown.is_set():
                    h.wfile.write(frame)
                    with self._lock:
                        self.sent_bytes += len(chunk)
            except OSError:
                pass  # the client hung up: what the test wants
            h.close_connection = True
        elif kind == "drip":
            length = int(o.get("length", 1000))
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(length))
            h.end_headers()
            try:
                for _ in range(length):
                    if self._shutdown.wait(float(o.get("interval", 0.05))):
                        break
                    h.wfile.write(b" ")
                    h.wfile.flush()
                    with self._lock:
                        self.sent_bytes += 1
            except OSError:
                pass
            h.close_connection = True
        elif kind == "drip_headers":
            try:
                h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                h.wfile.flush()
                while not self._shutdown.wait(float(o.get("interval", 0.05))):
                    h.wfile.write(b"x")
                    h.wfile.flush()
                    with self._lock:
                        self.sent_bytes += 1
            except OSError:
                pass
            h.close_connection = True
        elif kind == "future":
            ids = [i for i in parse_qs(urlsplit(h.path).query).get("ids", [""])[0].split(",") if i]
            updated = int(self.clock() + float(o.get("ahead", 2 * 86400)))
            body = {
                c: {"usd": self.price(c, "usd", updated // 60), "last_updated_at": updated}
                for c in ids
                if c in self.known
            }
            self._send(h, 200, body)
        elif kind == "reset":
            sock = h.connection
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            h.close_connection = True
        return True


def _gzip_zeros(size: int) -> bytes:
    """A gzip member that inflates to ``size`` bytes (about a thousandth of that on the wire)."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * 1_000_000
    parts = [z.compress(block) for _ in range(size // len(block))]
    parts.append(z.compress(b" " * (size % len(block))))
    parts.append(z.flush())
    return b"".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--stale", action="store_true", help="freeze last_updated_at")
    parser.add_argument("--require-key", default=None, help="answer 401 10002 without this key")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = FakeCoinGecko(
        host=args.host, port=args.port, stale=args.stale, require_key=args.require_key
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        # CLI output: the lead's tmux tests read the URL from here.
        print(f"fake CoinGecko on {server.url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
