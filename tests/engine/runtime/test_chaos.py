"""Chaos soak: the real Engine polling a CoinGecko-like server that injects random faults.

Time is virtual (the source's clock and sleep, shared with the fake server), so hundreds of
minutes of polling take seconds. Checked: no crash, no hang, every status the source emits is
true to what the server just did, every good quote the server delivered is stored exactly once
(and nothing else is), the model only sees clean bars, a vanished coin is reported and comes back.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.events import Bar, CoinsEvent, ErrorEvent, Event, StatusEvent
from engine.runtime.engine import Engine
from engine.settings.config import Settings
from engine.settings.locations import Locations
from engine.sources.coingecko import CoinGeckoSource
from tests.fakes.chaos import (
    EXPECTED_STATUS,
    ChaosCoinGecko,
    RecordingSource,
    Referee,
    VirtualClock,
    rss_kb,
)
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

START = 1_790_000_000 // 60 * 60 + 30  # half past a minute, UTC
COINS = ("bitcoin", "ethereum", "solana")


class WatchfulStub(StubForecaster):
    """The stub forecaster, remembering every bar it was given."""

    observed: list[Bar]

    def observe(self, bar: Bar) -> Any:
        self.__dict__.setdefault("observed", []).append(bar)
        return super().observe(bar)


@dataclass
class SoakResult:
    referee: Referee
    missing: list[str]
    stored: dict[str, int]
    duplicates: int
    events: Counter[str] = field(default_factory=Counter)
    errors: list[ErrorEvent] = field(default_factory=list)
    last_coins: CoinsEvent | None = None
    last_status: StatusEvent | None = None
    unknown_seen: set[str] = field(default_factory=set)
    forecasters: dict[str, WatchfulStub] = field(default_factory=dict)
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    threads_alive: list[str] = field(default_factory=list)
    parked: bool = False


def run_soak(
    home: Path,
    *,
    minutes: int,
    seed: int,
    rate: float = 0.35,
    max_slow: int | None = 2,
    verify_every: int = 0,
) -> SoakResult:
    """Run the engine for ``minutes`` virtual minutes of chaos; see the module docstring."""
    referee = Referee()
    end = START + 60 * minutes
    vc = VirtualClock(START, park_at=end)
    cg = ChaosCoinGecko(
        rng=random.Random(seed),
        rate=rate,
        clock=vc.clock,
        referee=referee,
        max_slow=max_slow,
        slow_delay=1.5,
    )
    cg.start()
    settings = Settings(api_url=cg.url, coins=COINS, poll_seconds=60.0)
    holder: list[Engine] = []
    src = CoinGeckoSource(
        settings,
        clock=vc.clock,
        sleep=vc.sleep,
        rng=random.Random(seed).random,
        timeout=(1.0, 1.0),
        last_bar_ts=lambda coin: holder[0].store.last_ts(coin),
    )
    factory = StubFactory(WatchfulStub)
    fcs = factory.made

    engine = Engine(
        settings,
        Locations.resolve(home),
        source=RecordingSource(src, referee),
        forecaster_factory=factory,
    )
    holder.append(engine)
    vc.busy = lambda: engine._inbox.qsize() > 20 or engine._model_q.qsize() > 20
    result = SoakResult(referee, [], {}, 0, forecasters=fcs)

    def listen(ev: Event) -> None:
        result.events[ev.type] += 1
        if isinstance(ev, ErrorEvent):
            result.errors.append(ev)
        elif isinstance(ev, CoinsEvent):
            result.last_coins = ev
            result.unknown_seen.update(ev.unknown)
        elif isinstance(ev, StatusEvent):
            result.last_status = ev

    def enable(on: bool) -> None:
        cg.enabled = on

    # Two quiet minutes for the backfill, chaos, a coin that vanishes for a while, a quiet end.
    vc.call_at(START + 120, lambda: enable(True))
    vc.call_at(START + 60 * minutes * 0.3, lambda: cg.vanish("solana"))
    vc.call_at(START + 60 * minutes * 0.5, lambda: cg.restore("solana"))
    vc.call_at(end - 6 * 60, lambda: enable(False))
    if verify_every:
        # Long runs: check and forget settled expectations as they go, so bookkeeping stays flat.
        for m in range(verify_every, minutes - 6, verify_every):
            vc.call_at(
                START + 60 * m, lambda: result.missing.extend(referee.verify(engine.store, 2.0))
            )
    engine.subscribe(listen)
    try:
        engine.start()
        # Start RSS once the bounded windows (2 days of minutes) are full, so growth means a leak.
        rss_at = START + 60 * max(3, min(3000, minutes // 2))
        vc.call_at(rss_at, lambda: setattr(result, "rss_start_kb", rss_kb()))
        result.parked = vc.parked.wait(max(120.0, minutes * 0.5))
        assert engine.wait_idle(30.0)
        result.rss_end_kb = rss_kb()
        result.missing.extend(referee.verify(engine.store))
        for coin in COINS:
            bars = engine.store.bars(coin)
            live = [b for b in bars if not b.filled]
            result.stored[coin] = len(live)
            result.duplicates += len(bars) - len({b.ts for b in bars})
    finally:
        vc.release()
        engine.stop()
        cg.close()
    result.threads_alive = [t.name for t in engine._threads if t.is_alive()]
    return result


def check(result: SoakResult) -> None:
    ref = result.referee
    assert result.parked, "the source never reached the end of the run (hang?)"
    assert result.threads_alive == [], "engine threads still running after stop()"
    assert ref.violations == [], ref.violations[:5]
    assert result.missing == [], result.missing[:5]
    assert result.duplicates == 0
    assert ref.verified > 0 and sum(result.stored.values()) == ref.verified
    # The model saw only real, clean, time-ordered bars.
    for coin, fc in result.forecasters.items():
        seen = getattr(fc, "observed", [])
        assert seen, coin
        assert all(math.isfinite(b.price) and b.price > 0 for b in seen)
        live = [b.ts for b in seen if not b.filled]
        assert live == sorted(set(live)), (
            f"{coin}: duplicate or out-of-order bars reached the model"
        )
    # The vanished coin was named while gone, and is known again at the end.
    assert "solana" in result.unknown_seen
    assert result.last_coins is not None and result.last_coins.unknown == ()
    assert any(e.title == "Unknown coin" and e.coin == "solana" for e in result.errors)
    # After the quiet end, the status is the truth: live data.
    assert result.last_status is not None
    assert (result.last_status.state, result.last_status.message) == ("ok", "live: 3 coins")
    assert "Traceback" not in " ".join(e.msg for e in result.errors)


def test_chaos_soak_short(home: Path) -> None:
    result = run_soak(home, minutes=240, seed=7)
    check(result)
    kinds = result.referee.kinds
    # A seeded run that actually exercised every kind of fault.
    assert set(kinds) >= set(EXPECTED_STATUS) | {"bad_values"}, kinds
    print(
        f"\nchaos short: {result.referee.requests} requests, faults {dict(kinds)}, "
        f"{result.referee.verified} quotes recorded, RSS {result.rss_start_kb} -> {result.rss_end_kb} KiB"
    )


@pytest.mark.slow
def test_chaos_soak_long_memory_flat(home: Path) -> None:
    result = run_soak(home, minutes=6000, seed=11, max_slow=6, verify_every=200)
    check(result)
    growth = result.rss_end_kb - result.rss_start_kb
    print(
        f"\nchaos long: {result.referee.requests} requests, faults {dict(result.referee.kinds)}, "
        f"{result.referee.verified} quotes recorded, RSS {result.rss_start_kb} -> {result.rss_end_kb} KiB"
    )
    # Windows and forecast history are bounded; 6000 minutes must not grow the process much.
    assert growth < 30_000, f"RSS grew by {growth} KiB"


def test_status_is_ok_again_after_every_kind_of_fault(home: Path) -> None:
    """One fault of each kind in a row, then quiet: the last word is "ok", and each was named."""
    referee = Referee()
    vc = VirtualClock(START, park_at=START + 60 * 30)
    cg = ChaosCoinGecko(
        rng=random.Random(1), rate=0.0, clock=vc.clock, referee=referee, slow_delay=1.5
    )
    cg.start()
    settings = Settings(api_url=cg.url, coins=("bitcoin",), poll_seconds=60.0)
    src = CoinGeckoSource(
        settings,
        clock=vc.clock,
        sleep=vc.sleep,
        rng=lambda: 0.5,
        timeout=(1.0, 1.0),
        last_bar_ts=lambda coin: START // 60 * 60 - 120,
    )
    engine = Engine(
        settings,
        Locations.resolve(home),
        source=RecordingSource(src, referee),
        forecaster_factory=StubFactory(StubForecaster),
    )
    statuses: list[StatusEvent] = []
    engine.subscribe(lambda ev: statuses.append(ev) if isinstance(ev, StatusEvent) else None)
    faults: list[tuple[str, dict[str, Any]]] = [
        ("429", {"retry_after": 5}),
        ("429", {}),
        ("429_html", {}),
        ("status", {"status": 502}),
        ("html_5xx", {"status": 503}),
        ("reset", {}),
        ("truncated", {}),
        ("wrong_shape", {}),
        ("slow", {"delay": 1.5}),
    ]
    for kind, opts in faults:
        cg.add_fault(kind, path="/simple/price", **opts)
    try:
        engine.start()
        assert vc.parked.wait(60)
        assert engine.wait_idle(10)
        assert referee.violations == []
        states = [s.state for s in statuses]
        assert {"rate limited", "error", "offline"} <= set(states)
        assert states[-1] == "ok" and statuses[-1].message == "live: 1 coin"
        assert engine.store.count_bars("bitcoin") >= 10
    finally:
        vc.release()
        engine.stop()
        cg.close()
