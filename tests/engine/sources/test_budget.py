"""The request budget: counters, 429 blocks, header parsing, a 10-minute run within the limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.events import ErrorEvent, StatusEvent
from engine.settings.config import Settings
from engine.sources.budget import (
    PLAN_LIMITS,
    Budget,
    limits_for,
    load_counts,
    next_month_start,
    plan_name,
)
from engine.sources.coingecko import CoinGeckoSource
from engine.sources.retry import backoff_delay, retry_after_seconds
from tests.engine.sources.test_coingecko import Sim
from tests.fakes.coingecko_server import FakeCoinGecko


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T0 = datetime(2026, 3, 31, 23, 58, tzinfo=UTC).timestamp()


def test_plan_defaults_and_overrides():
    assert plan_name(Settings()) == "keyless"
    assert plan_name(Settings(api_key="k" * 20)) == "demo"
    assert plan_name(Settings(api_key="k" * 20, api_plan="pro")) == "pro"
    assert limits_for(Settings()) == PLAN_LIMITS["keyless"]
    assert limits_for(Settings(api_key="k" * 20)) == (30, 10_000)
    assert limits_for(Settings(calls_per_minute=5, calls_per_month=900)) == (5, 900)


def test_minute_window_slides():
    clock = Clock(T0)
    b = Budget(2, None, clock=clock)
    assert b.reserve().granted and b.reserve().granted
    r = b.reserve()
    assert not r.granted and r.reason == "minute" and r.wait == pytest.approx(60)
    clock.now += 30
    assert b.reserve().wait == pytest.approx(30)
    clock.now += 30
    assert b.reserve().granted
    assert b.counts() == (1, 3)


def test_month_cap_and_calendar_reset():
    clock = Clock(T0)
    b = Budget(100, 3, clock=clock)
    for _ in range(3):
        assert b.reserve().granted
    r = b.reserve()
    assert r.reason == "month" and r.wait == pytest.approx(next_month_start(T0) - T0)
    clock.now = next_month_start(T0) + 1  # 1 April: a new month, a new allowance
    assert b.reserve().granted
    assert b.counts() == (1, 1)
    assert b.state() == {"month": "2026-04", "month_used": 1}


def test_persisted_month_count_is_restored_only_for_the_same_month():
    clock = Clock(T0)
    assert Budget(10, 100, clock=clock, month="2026-03", month_used=40).counts() == (0, 40)
    assert Budget(10, 100, clock=clock, month="2026-02", month_used=40).counts() == (0, 0)


def test_a_429_block_stops_every_caller_and_is_never_shortened():
    clock = Clock(T0)
    b = Budget(10, None, clock=clock)
    b.block_for(40)
    b.block_for(5)
    r = b.reserve()
    assert r.reason == "blocked" and r.wait == pytest.approx(40)
    clock.now += 40
    assert b.reserve().granted


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "5"}, 5.0),
        ({"retry-after": "119"}, 119.0),
        ({"retry-after": "Tue, 31 Mar 2026 23:58:40 GMT"}, 40.0),
        ({"x-ratelimit-reset": "2026-03-31 23:59:00 +0000"}, 60.0),
        ({"x-ratelimit-reset": str(int(T0) + 25)}, 25.0),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_headers(headers, expected):
    got = retry_after_seconds(headers, T0)
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(st.integers(0, 30), st.floats(0, 1))
def test_backoff_grows_is_capped_and_jittered(attempt, u):
    d = backoff_delay(attempt, base=2.0, cap=120.0, rng=lambda: u)
    step = min(120.0, 2.0 * 2**attempt)
    assert step / 2 <= d <= step


def _max_in_any_minute(times: list[float]) -> int:
    return max((sum(1 for u in times if t <= u < t + 60) for t in times), default=0)


def test_ten_minute_run_never_exceeds_the_per_minute_budget():
    sim = Sim()
    coins = ("bitcoin", "ethereum", "solana", "litecoin", "dogecoin")
    settings = Settings(poll_seconds=5, calls_per_minute=4)  # wants 12 polls/min + 5 backfills
    with FakeCoinGecko(clock=sim.clock) as cg:
        src = CoinGeckoSource(
            Settings(**{**settings.__dict__, "api_url": cg.url}),
            clock=sim.clock,
            sleep=sim.sleep,
            last_bar_ts=lambda c: None,
            rng=lambda: 0.5,
        )
        out = sim.run(src, coins, 600)
    times = [r.at for r in cg.requests]
    assert len(cg.calls("/coins/bitcoin/market_chart")) == 1
    assert _max_in_any_minute(times) == 4  # used fully, never exceeded
    assert len(times) <= 4 * 10  # ten disjoint minutes, at most 4 calls each
    waiting = [e for e in out if isinstance(e, StatusEvent) and "request budget" in e.message]
    assert waiting  # the user is told why polls are slower than asked
    shown = [e.calls_minute for e in out if isinstance(e, StatusEvent)]
    assert all(n is None or n <= 4 for n in shown)


def test_ten_minute_run_stops_at_the_monthly_budget_and_says_so():
    sim = Sim()
    with FakeCoinGecko(clock=sim.clock) as cg:
        settings = Settings(api_url=cg.url, api_key="CG-" + "x" * 20, calls_per_month=6)
        src = CoinGeckoSource(
            settings, clock=sim.clock, sleep=sim.sleep, last_bar_ts=lambda c: None, rng=lambda: 0.5
        )
        out = sim.run(src, ("bitcoin", "ethereum"), 600)
    assert len(cg.requests) == 6
    last = [e for e in out if isinstance(e, StatusEvent)][-2]
    assert last.state == "rate limited" and last.calls_month == 6 and last.limit_month == 6
    assert last.message.startswith("the monthly budget of 6 calls is used up; CoinGecko polling")
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0].title == "Request budget"


def test_the_monthly_count_survives_a_restart(tmp_path):
    path = tmp_path / "budget.json"
    sim = Sim()
    with FakeCoinGecko(clock=sim.clock) as cg:
        settings = Settings(api_url=cg.url, api_key="CG-" + "x" * 20)

        def make() -> CoinGeckoSource:
            return CoinGeckoSource(
                settings,
                clock=sim.clock,
                sleep=sim.sleep,
                last_bar_ts=lambda c: None,
                budget_file=path,
            )

        sim.run(make(), ("bitcoin",), 180)  # 3 polls + 1 backfill
        assert load_counts(path) == {"month": "2026-09", "month_used": 4}
        second = make()
        assert second.budget.counts() == (0, 4)
        sim.run(second, ("bitcoin",), 60)
    assert load_counts(path)["month_used"] == 6  # a poll and (no store here) a backfill again
    path.write_text("{not json")
    assert load_counts(path) == {}
