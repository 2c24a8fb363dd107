"""Fault injection for robustness tests: a random-fault CoinGecko, a virtual clock, a referee, scripted sources.

``ChaosCoinGecko`` is the shared ``FakeCoinGecko`` with random faults on ``/simple/price`` (every
kind the fake knows, plus bad values inside an otherwise good body) and a record of exactly which
good bodies were delivered. ``Referee`` judges, at the moment the source emits a status, whether
the status matches what the server really did, and later whether every delivered good quote
reached the store once. Nothing here sleeps in real time except the fake's "slow" fault.
"""

from __future__ import annotations

import math
import random
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.api import CoinMatch
from engine.events import Bar, StatusEvent
from engine.sources.base import Emit, Source, SourceOutput
from engine.store import Store
from tests.fakes.coingecko_server import FakeCoinGecko, Fault

# Kinds drawn at random, with weights. "bad_values" is ours: a 200 body where one coin's price is
# zero, negative, NaN, infinite, a string or null (the other coins stay good).
CHAOS_WEIGHTS: dict[str, float] = {
    "429": 3.0,
    "429_html": 1.0,
    "status": 2.0,
    "html_5xx": 1.0,
    "reset": 2.0,
    "truncated": 1.0,
    "wrong_shape": 1.0,
    "slow": 0.3,
    "bad_values": 2.0,
}
WRONG_SHAPES: tuple[Any, ...] = (
    [{"unexpected": "list"}],
    "just a string",
    {"bitcoin": "x", "ethereum": [1, 2], "solana": {"usd": "abc", "last_updated_at": "later"}},
    {
        "bitcoin": {"eur": 1.0},
        "ethereum": {"usd": 1.0},
        "solana": {"usd": True, "last_updated_at": 1},
    },
)
BAD_VALUES: tuple[Any, ...] = (0, -1.5, float("nan"), float("inf"), "123.4", None, True, [])

# What a status must say after each kind of fault (state, words in the message).
EXPECTED_STATUS: dict[str, tuple[str, str]] = {
    "429": ("rate limited", "rate limit"),
    "429_html": ("rate limited", "rate limit"),
    "status": ("error", "server error (HTTP 5"),
    "html_5xx": ("error", "HTML error page"),
    "reset": ("offline", "connection"),
    "truncated": ("error", "not valid JSON"),
    "wrong_shape": ("error", "unexpected shape"),
    "slow": ("offline", "no answer"),
}


def rss_kb() -> int:
    """Resident set size of this process in KiB (Linux), or the peak where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class VirtualClock:
    """Unix time that only moves when the code under test sleeps; ``park_at`` holds it still.

    Once ``now`` reaches ``park_at`` a sleeper waits (really) until ``release()``, so a test can
    inspect a quiet engine and then let it stop.
    """

    def __init__(self, start: float, park_at: float = math.inf) -> None:
        self.now = float(start)
        self.park_at = park_at
        self.parked = threading.Event()
        self._released = threading.Event()
        self._hooks: list[tuple[float, Callable[[], None]]] = []
        self._lock = threading.Lock()
        self.busy: Callable[[], bool] | None = None

    def clock(self) -> float:
        return self.now

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        with self._lock:
            self._hooks.append((when, fn))

    def sleep(self, seconds: float) -> None:
        if self.now >= self.park_at:
            self.parked.set()
            self._released.wait()
            return
        # Back-pressure: virtual minutes pass only as fast as the engine keeps up (its queues are
        # unbounded; a real source is paced by the wall clock).
        while self.busy is not None and self.busy() and not self._released.is_set():
            time.sleep(0.001)
        self.now = min(self.now + max(0.0, seconds), max(self.park_at, self.now))
        with self._lock:
            due = [h for h in self._hooks if h[0] <= self.now]
            for h in due:
                self._hooks.remove(h)
        for _, fn in due:
            fn()
        # Let the engine's other threads run; virtual minutes would otherwise starve them.
        time.sleep(0.0005)

    def release(self) -> None:
        self._released.set()


@dataclass
class Referee:
    """What the server did, what the source said about it, and what must be in the store."""

    kinds: Counter[str] = field(default_factory=Counter)  # faults injected, by kind
    requests: int = 0
    good_bodies: int = 0
    statuses: int = 0
    violations: list[str] = field(default_factory=list)
    expected: dict[tuple[str, int], tuple[float, float]] = field(
        default_factory=dict
    )  # -> (price, t)
    verified: int = 0
    last_price_kind: str | None = "none yet"
    last_kind: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, path: str, kind: str | None) -> None:
        with self._lock:
            self.requests += 1
            if kind is not None:
                self.kinds[kind] += 1
            self.last_kind = kind
            if path == "/simple/price":
                self.last_price_kind = kind

    def on_good_body(self, body: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._lock:
            self.good_bodies += 1
            for coin, entry in body.items():
                updated = entry.get("last_updated_at")
                price = next(v for k, v in entry.items() if k != "last_updated_at")
                key = (coin, int(updated) // 60 * 60)
                if key not in self.expected:
                    self.expected[key] = (float(price), now)

    def judge(self, status: StatusEvent) -> None:
        """Called on the source thread as it emits: the request that led here is complete."""
        with self._lock:
            self.statuses += 1
            last, last_price = self.last_kind, self.last_price_kind
        problem = _judge(status, last, last_price)
        if problem:
            self.violations.append(f"{problem}: {status.state!r} {status.message!r}")

    def verify(self, store: Store, settled_for: float = 0.0) -> list[str]:
        """Check expectations at least ``settled_for`` s old against the store; drop the ones met."""
        cutoff = time.monotonic() - settled_for
        with self._lock:
            due = [(k, v) for k, v in self.expected.items() if v[1] <= cutoff]
        missing: list[str] = []
        by_coin: dict[str, list[tuple[int, float]]] = {}
        for (coin, minute), (price, _) in due:
            by_coin.setdefault(coin, []).append((minute, price))
        for coin, items in by_coin.items():
            stored = {b.ts: b for b in store.bars(coin, since=min(m for m, _ in items))}
            for minute, price in items:
                bar = stored.get(minute)
                if bar is None or bar.filled or bar.price != price:
                    missing.append(f"{coin}@{minute}: served {price}, stored {bar}")
        with self._lock:
            for (coin, minute), _ in due:
                self.expected.pop((coin, minute), None)
            self.verified += len(due) - len(missing)
        return missing


def _judge(status: StatusEvent, last: str | None, last_price: str | None) -> str | None:
    state, msg = status.state, status.message
    good_price = last_price in (None, "bad_values")
    if state == "connecting":
        return None if last_price == "none yet" else "connecting after requests were made"
    if state == "ok":
        return None if good_price else f"ok after a {last_price!r} answer"
    if state == "rate limited":
        if "request budget" in msg or last in ("429", "429_html"):
            return None
        return f"rate limited after a {last!r} answer"
    if state in ("error", "offline"):
        if msg == "stopped":
            return None
        want = EXPECTED_STATUS.get(last or "")
        if want is None:
            return f"{state} after a good answer"
        if want[0] != state or want[1] not in msg:
            return f"after {last!r} expected {want}"
        return None
    return f"unexpected state after {last!r}"


class ChaosCoinGecko(FakeCoinGecko):
    """``FakeCoinGecko`` injecting a random fault into a share ``rate`` of price requests."""

    def __init__(
        self,
        *,
        rng: random.Random,
        rate: float = 0.3,
        weights: dict[str, float] | None = None,
        slow_delay: float = 1.5,
        max_slow: int | None = None,
        keep_requests: int = 200,
        referee: Referee | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        # Headers and body go out in two writes; with Nagle on, each answer waits ~40 ms for a
        # delayed ACK, which would make a soak of thousands of requests crawl.
        self._server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        self.rng = rng
        self.rate = rate
        self.weights = dict(CHAOS_WEIGHTS if weights is None else weights)
        self.slow_delay = slow_delay
        self.max_slow = max_slow
        self.keep_requests = keep_requests
        self.referee = referee or Referee()
        self.enabled = False
        self._local = threading.local()

    # Chaos control --------------------------------------------------------------------------
    def vanish(self, coin: str) -> None:
        """CoinGecko stops answering for ``coin`` (it is left out of /simple/price)."""
        with self._lock:
            self._vanished = getattr(self, "_vanished", {})
            if coin in self.known:
                self._vanished[coin] = self.known.pop(coin)

    def restore(self, coin: str) -> None:
        with self._lock:
            saved = getattr(self, "_vanished", {}).pop(coin, None)
            if saved is not None:
                self.known[coin] = saved

    def _draw(self) -> Fault | None:
        if not self.enabled or self.rng.random() >= self.rate:
            return None
        weights = dict(self.weights)
        if self.max_slow is not None and self.referee.kinds["slow"] >= self.max_slow:
            weights.pop("slow", None)
        kinds = list(weights)
        kind = self.rng.choices(kinds, [weights[k] for k in kinds])[0]
        options: dict[str, Any] = {}
        if kind == "429":
            variant = self.rng.randrange(3)
            if variant == 0:
                options["retry_after"] = self.rng.choice([1, 5, 30, 119])
            elif variant == 1:
                options["reset"] = int(self.clock()) + self.rng.choice([2, 20, 90])
        elif kind in ("status", "html_5xx"):
            options["status"] = self.rng.choice([500, 502, 503])
        elif kind == "wrong_shape":
            options["body"] = self.rng.choice(WRONG_SHAPES)
        elif kind == "slow":
            options["delay"] = self.slow_delay
        return Fault(kind, "/simple/price", 1, options)

    # FakeCoinGecko hooks --------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        fault = super()._take_fault(path)
        if fault is None and path == "/simple/price":
            fault = self._draw()
        self._local.kind = fault.kind if fault else None
        self.referee.on_request(path, self._local.kind)
        return fault

    def _serve(self, h: Any) -> None:
        try:
            super()._serve(h)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a "slow" answer: that is the point of the fault
        with self._lock:
            if len(self.requests) > self.keep_requests:
                del self.requests[: -self.keep_requests]

    def _apply_fault(self, h: Any, fault: Fault, path: str) -> bool:
        if fault.kind == "bad_values":
            return False  # answered normally; simple_price spoils one coin
        return super()._apply_fault(h, fault, path)

    def simple_price(
        self, ids: list[str], vs_list: list[str], with_updated: bool
    ) -> dict[str, Any]:
        body = super().simple_price(ids, vs_list, with_updated)
        kind = getattr(self._local, "kind", None)
        if kind == "slow":
            return body  # the client has given up by the time this is written
        good = {c: dict(e) for c, e in body.items()}
        if kind == "bad_values" and body:
            coin = self.rng.choice(sorted(body))
            body[coin] = dict(body[coin])
            body[coin][vs_list[0]] = self.rng.choice(BAD_VALUES)
            good.pop(coin)
        if with_updated:
            self.referee.on_good_body(good)
        return body


class RecordingSource(Source):
    """Wraps a source: every status it emits is judged by the referee on the source thread."""

    def __init__(self, inner: Any, referee: Referee) -> None:
        self.inner = inner
        self.name = inner.name
        self.referee = referee
        self.emitted: Counter[str] = Counter()

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None:
        def wrapped(item: SourceOutput) -> None:
            self.emitted[type(item).__name__] += 1
            if isinstance(item, StatusEvent):
                self.referee.judge(item)
            emit(item)

        self.inner.run(coins, wrapped, stop)

    def search(self, query: str) -> list[CoinMatch]:
        return list(self.inner.search(query))


class ScriptedSource(Source):
    """A source that emits a fixed list of items, then waits for stop (for bad-data tests)."""

    def __init__(self, items: Iterable[SourceOutput], name: str = "scripted") -> None:
        self.items: Sequence[SourceOutput] = tuple(items)
        self.name = name
        self.done = threading.Event()

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None:
        for item in self.items:
            emit(item)
        self.done.set()
        stop.wait()

    def search(self, query: str) -> list[CoinMatch]:
        return []


def bar(coin: str, minute: int, price: Any, **kw: Any) -> Bar:
    """A bar at ``minute`` (minutes since an arbitrary 2024 epoch), price not type-checked."""
    return Bar(coin, 1_704_067_200 + 60 * minute, price, **kw)


__all__ = [
    "BAD_VALUES",
    "CHAOS_WEIGHTS",
    "EXPECTED_STATUS",
    "ChaosCoinGecko",
    "RecordingSource",
    "Referee",
    "ScriptedSource",
    "VirtualClock",
    "bar",
    "rss_kb",
]
