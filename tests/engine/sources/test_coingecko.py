"""CoinGecko source against a real local HTTP server: bars, staleness, 429s, faults, keys."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from engine.errors import ApiError, ParseError, RateLimited
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.redact import redact
from engine.settings.config import Settings
from engine.sources.coingecko import CoinGeckoSource, resample_minutes
from engine.sources.retry import fmt_seconds
from tests.fakes.coingecko_server import FakeCoinGecko

START = 1_790_000_000 // 60 * 60 + 30  # half past a minute, UTC
KEY = "CG-testkey-0123456789abcdef"


class Sim:
    """A fake clock whose ``sleep`` advances time and stops the run at ``end``."""

    def __init__(self, start: float = START) -> None:
        self.now = float(start)
        self.stop = threading.Event()
        self.end = float("inf")
        self.sleeps: list[float] = []
        self._hooks: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in [h for h in self._hooks if h[0] <= self.now]:
            self._hooks.remove(hook)
            hook[1]()
        if self.now >= self.end:
            self.stop.set()

    def call_at(self, when: float, fn: Callable[[], None]) -> None:
        self._hooks.append((when, fn))

    def run(self, source: CoinGeckoSource, coins: tuple[str, ...], seconds: float) -> list[Any]:
        self.end = self.now + seconds
        self.stop.clear()
        out: list[Any] = []
        source.run(lambda: coins, out.append, self.stop)
        return out


@pytest.fixture
def sim() -> Sim:
    return Sim()


@pytest.fixture
def cg(sim: Sim) -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko(clock=sim.clock) as server:
        yield server


def make_source(cg: FakeCoinGecko, sim: Sim, **kw: Any) -> CoinGeckoSource:
    settings = kw.pop("settings", None) or Settings(api_url=cg.url)
    kw.setdefault("last_bar_ts", lambda coin: int(sim.now) // 60 * 60 - 120)  # recent: no backfill
    return CoinGeckoSource(
        settings, clock=sim.clock, sleep=sim.sleep, rng=lambda: 0.5, timeout=(1.0, 1.0), **kw
    )


def bars(out: list[Any], *, filled: bool | None = None) -> list[Bar]:
    return [b for b in out if isinstance(b, Bar) and (filled is None or b.filled == filled)]


def statuses(out: list[Any]) -> list[StatusEvent]:
    return [e for e in out if isinstance(e, StatusEvent)]


def assert_honest(out: list[Any], cg: FakeCoinGecko) -> None:
    """No duplicate (coin, minute); time order per coin; live prices are the server's."""
    seen: dict[str, int] = {}
    for b in bars(out):
        assert b.ts % 60 == 0
        assert b.ts > seen.get(b.coin, -1), f"duplicate or out-of-order bar {b}"
        seen[b.coin] = b.ts
        if not b.filled:
            assert b.price == cg.price(b.coin, "usd", b.ts // 60)


def test_one_batched_call_per_minute_and_one_bar_per_coin_per_minute(cg, sim):
    src = make_source(cg, sim)
    out = sim.run(src, ("bitcoin", "ethereum", "solana"), 10 * 60)
    polls = cg.calls("/simple/price")
    assert len(polls) == 10
    assert all(p.query["ids"] == ["bitcoin,ethereum,solana"] for p in polls)
    assert all(p.query["include_last_updated_at"] == ["true"] for p in polls)
    live = bars(out, filled=False)
    assert len(live) == 30
    for coin in ("bitcoin", "ethereum", "solana"):
        ts = [b.ts for b in live if b.coin == coin]
        assert ts == [START // 60 * 60 + 60 * i for i in range(10)]
    assert all(b.source == "coingecko" for b in live)
    assert_honest(out, cg)
    ok = [s for s in statuses(out) if s.state == "ok"]
    assert ok and ok[-1].message == "live: 3 coins"
    assert ok[-1].calls_minute == 1 and ok[-1].limit_minute == 10
    assert not cg.calls("/coins/bitcoin/market_chart")  # history was recent


def test_a_value_whose_last_updated_at_did_not_move_is_not_a_new_bar(sim):
    with FakeCoinGecko(clock=sim.clock, stale=True) as cg:
        src = make_source(cg, sim)
        out = sim.run(src, ("bitcoin",), 5 * 60)
    assert len(cg.calls("/simple/price")) == 5
    assert len(bars(out)) == 1
    last = statuses(out)[-2]  # the one before "stopped"
    assert last.state == "stale"
    assert last.message == "data is 5 min old"


def test_429_retry_after_5_waits_5_s_says_so_and_resumes_without_duplicates(cg, sim):
    src = make_source(cg, sim)
    t429 = START + 3 * 60
    sim.call_at(t429 - 1, lambda: cg.add_fault("429", path="/simple/price", retry_after=5))
    out = sim.run(src, ("bitcoin", "ethereum"), 6 * 60)
    times = [r.at - START for r in cg.calls("/simple/price")]
    assert times[:5] == [0, 60, 120, 180, 185]
    assert cg.calls("/simple/price")[3].fault == "429"
    limited = [s for s in statuses(out) if s.state == "rate limited"]
    assert limited and limited[0].message == "rate limited, retrying in 5 s"
    assert limited[0].next_update == pytest.approx(t429 + 5)
    assert 5.0 in sim.sleeps
    assert statuses(out)[-2].state == "ok"  # resumed
    live = bars(out, filled=False)
    expected = [START // 60 * 60 + 60 * i for i in range(6)]
    assert [b.ts for b in live if b.coin == "bitcoin"] == expected
    assert_honest(out, cg)


@pytest.mark.parametrize(
    ("fault", "options", "wait"),
    [
        ("429", {"reset": "2026-09-10 17:44:40 +0000"}, None),  # CoinGecko's date format
        ("429", {}, 7.5),  # neither header: backoff 10 s * (0.5 + 0.5 * rng=0.5)
        ("429_html", {}, 7.5),  # a Cloudflare page, not JSON
    ],
)
def test_429_variants_are_honoured(cg, sim, fault, options, wait):
    if "reset" in options:
        from engine.sources.retry import _parse_date

        reset = _parse_date(options["reset"])
        assert reset is not None
        sim.now = reset - 40.0
        wait = 40.0
    src = make_source(cg, sim)
    cg.add_fault(fault, path="/simple/price", **options)
    start = sim.now
    out = sim.run(src, ("bitcoin",), 120)
    times = [r.at - start for r in cg.calls("/simple/price")]
    assert times[0] == 0 and times[1] == pytest.approx(wait)
    limited = [s for s in statuses(out) if s.state == "rate limited"]
    assert limited[0].message == f"rate limited, retrying in {fmt_seconds(wait)}"
    assert len(bars(out)) == 2  # minute of the retry and the next poll's minute
    assert_honest(out, cg)


@pytest.mark.parametrize(
    ("fault", "options", "state", "words"),
    [
        ("status", {"status": 500}, "error", "CoinGecko server error (HTTP 500)"),
        ("status", {"status": 502}, "error", "CoinGecko server error (HTTP 502)"),
        ("html_5xx", {"status": 503}, "error", "HTTP 503, an HTML error page"),
        ("html_5xx", {"status": 200}, "error", "got an HTML page instead of JSON (HTTP 200)"),
        ("truncated", {}, "error", "not valid JSON (truncated?)"),
        ("wrong_shape", {}, "error", "unexpected shape"),
        ("reset", {}, "offline", "connection reset"),
        ("slow", {"delay": 3}, "offline", "no answer from 127.0.0.1"),
    ],
)
def test_failures_become_plain_words_then_recover(cg, sim, fault, options, state, words):
    src = make_source(cg, sim)
    cg.add_fault(fault, path="/simple/price", **options)
    out = sim.run(src, ("bitcoin",), 90)
    failed = [s for s in statuses(out) if s.state == state]
    assert failed, statuses(out)
    assert words in failed[0].message
    assert failed[0].message.startswith(f"{state}: prices: ")
    assert "retrying in" in failed[0].message
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and words in errors[0].msg
    assert "Traceback" not in errors[0].msg
    assert statuses(out)[-2].state == "ok"
    assert len(bars(out)) >= 1
    assert_honest(out, cg)


def test_unknown_id_is_reported_by_name_and_the_others_keep_updating(cg, sim):
    src = make_source(cg, sim)
    out = sim.run(src, ("bitcoin", "notacoin", "ethereum"), 3 * 60)
    coins = [e for e in out if isinstance(e, CoinsEvent)]
    assert coins[-1].coins == ("bitcoin", "notacoin", "ethereum")
    assert coins[-1].unknown == ("notacoin",)
    assert ("bitcoin", "BTC") in coins[-1].labels
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and errors[0].coin == "notacoin" and "'notacoin'" in errors[0].msg
    assert {b.coin for b in bars(out)} == {"bitcoin", "ethereum"}
    assert len(bars(out)) == 6


def test_404_on_backfill_marks_the_coin_unknown(cg, sim):
    src = make_source(cg, sim, last_bar_ts=lambda coin: None)
    cg.add_fault("error_code", path="/coins/solana/", file="error_404_coin_not_found.json", times=5)
    out = sim.run(src, ("bitcoin", "solana"), 2 * 60)
    assert [e for e in out if isinstance(e, CoinsEvent)][-1].unknown == ("solana",)
    assert {b.coin for b in bars(out)} == {"bitcoin"}
    assert any(isinstance(e, ErrorEvent) and e.coin == "solana" for e in out)


def test_backfill_fills_minutes_after_the_store_and_before_the_first_live_bar(cg, sim):
    stored = START // 60 * 60 - 3 * 3600  # 3 h old history: backfill
    src = make_source(cg, sim, last_bar_ts=lambda coin: stored)
    out = sim.run(src, ("bitcoin",), 60)
    calls = cg.calls("/coins/bitcoin/market_chart")
    assert len(calls) == 1 and calls[0].query == {"vs_currency": ["usd"], "days": ["1"]}
    filled, live = bars(out, filled=True), bars(out, filled=False)
    assert filled and live
    assert filled[0].ts == stored + 60
    assert filled[-1].ts < live[0].ts
    assert all(b.source == "coingecko" for b in filled)
    # The recorded 5-minute points are ~5 min apart: every minute in between is filled.
    ts = [b.ts for b in filled]
    assert ts == list(range(ts[0], ts[-1] + 60, 60))
    assert ts[-1] == live[0].ts - 60
    assert_honest(out, cg)


def test_no_history_backfills_the_day_once(cg, sim):
    src = make_source(cg, sim, last_bar_ts=lambda coin: None)
    out = sim.run(src, ("bitcoin",), 5 * 60)
    assert len(cg.calls("/coins/bitcoin/market_chart")) == 1
    filled = bars(out, filled=True)
    assert 1300 < len(filled) <= 1440
    assert_honest(out, cg)


def test_resample_never_fills_across_a_long_gap():
    points = [(0.0, 100.0), (290.0, 101.0), (600.0, 102.0), (600.0 + 1800, 110.0), (2700.0, 111.0)]
    out = resample_minutes(points, max_gap=900)
    minutes = [m for m, _ in out]
    assert minutes[0] == 0 and 540 in minutes
    assert not any(600 <= m < 2340 for m in minutes)  # 30 min without points stays a gap
    assert 2400 in minutes
    tail = resample_minutes(points, after=2400, before=2640)
    assert [m for m, _ in tail] == [2460, 2520, 2580]
    assert tail == [(m, p) for m, p in out if 2400 < m < 2640]


def test_key_goes_in_the_demo_header_and_nowhere_else(cg, sim, caplog):
    caplog.set_level(logging.DEBUG)
    settings = Settings(api_url=cg.url, api_key=KEY)
    src = make_source(cg, sim, settings=settings, last_bar_ts=lambda coin: None)
    cg.add_fault("status", path="/simple/price", status=502)
    wrong_host = "error_400_10011_demo_key_on_pro_host.json"
    cg.add_fault("error_code", path="/simple/price", file=wrong_host)
    out = sim.run(src, ("bitcoin", "notacoin"), 400)
    src.search("bit")
    for r in cg.requests:
        assert r.headers.get("x-cg-demo-api-key") == KEY
        assert "x-cg-pro-api-key" not in r.headers
        assert KEY not in str(r.query) and KEY not in r.path
    everything = "".join(repr(e) for e in out) + caplog.text + repr(src.settings)
    assert KEY not in everything
    assert redact(f"bad key {KEY}!") == "bad key ***!"


def test_pro_plan_uses_the_pro_header(cg, sim):
    settings = Settings(api_url=cg.url, api_key=KEY, api_plan="pro")
    src = make_source(cg, sim, settings=settings)
    sim.run(src, ("bitcoin",), 30)
    assert cg.requests[0].headers.get("x-cg-pro-api-key") == KEY
    assert "x-cg-demo-api-key" not in cg.requests[0].headers
    assert src.budget.limit_minute == 500


@pytest.mark.parametrize(
    ("file", "code", "words"),
    [
        ("error_401_10002_api_key_missing.json", 10002, "set COINGECKO_API_KEY"),
        ("error_400_10011_demo_key_on_pro_host.json", 10011, "set COINGECKO_API_PLAN=demo"),
        ("error_401_10012_demo_365_day_limit.json", 10012, "past 365 days"),
    ],
)
def test_error_codes_tell_the_user_what_to_do(cg, sim, file, code, words):
    src = make_source(cg, sim)
    cg.add_fault("error_code", path="/simple/price", file=file)
    out = sim.run(src, ("bitcoin",), 30)
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and words in errors[0].msg and f"code {code}" in errors[0].msg
    failed = next(s for s in statuses(out) if s.state == "error")
    assert "retrying in 5 min" in failed.message  # a 4xx does not heal by hammering


def test_search_returns_matches_through_the_budget(cg, sim):
    src = make_source(cg, sim)
    rows = src.search("  eth ")
    assert [r.id for r in rows] == ["ethereum", "ethereum-classic"]
    assert rows[0].symbol == "ETH" and rows[0].name == "Ethereum" and rows[0].rank == 2
    assert cg.calls("/search")[0].query == {"query": ["eth"]}
    assert src.budget.counts() == (1, 1)
    assert src.search("   ") == []
    cg.add_fault("429", path="/search", retry_after=30)
    with pytest.raises(RateLimited) as info:
        src.search("sol")
    assert info.value.retry_after == 30
    with pytest.raises(RateLimited):  # the budget is blocked now: no call is sent
        src.search("sol")
    assert len(cg.calls("/search")) == 2
    sim.now += 31
    cg.add_fault("wrong_shape", path="/search", body={"coins": "nope"})
    with pytest.raises(ParseError):
        src.search("sol")
    cg.add_fault("status", path="/search", status=500)
    with pytest.raises(ApiError):
        src.search("sol")


def test_stop_is_honoured_promptly_with_the_real_clock(cg):
    src = CoinGeckoSource(Settings(api_url=cg.url), last_bar_ts=lambda c: None)
    stop = threading.Event()
    out: list[Any] = []
    got_bar = threading.Event()

    def emit(item: Any) -> None:
        out.append(item)
        if isinstance(item, Bar) and not item.filled:
            got_bar.set()

    t = threading.Thread(target=src.run, args=(lambda: ("bitcoin",), emit, stop))
    t.start()
    assert got_bar.wait(10)
    stop.set()  # the source is now waiting ~60 s for its next poll
    t.join(5)
    assert not t.is_alive()
    assert statuses(out)[-1].message == "stopped"


def test_settings_repr_and_status_never_show_the_key(cg, sim):
    settings = replace(Settings(api_url=cg.url), api_key=KEY)
    assert KEY not in repr(settings)
    src = make_source(cg, sim, settings=settings)
    out = sim.run(src, ("bitcoin",), 60)
    assert all(KEY not in repr(e) for e in out)


def test_a_coin_added_back_after_hours_is_backfilled_again(cg, sim):
    store: dict[str, int] = {}

    def last(coin: str) -> int | None:
        return store.get(coin)

    src = make_source(cg, sim, last_bar_ts=last)
    watch = ["bitcoin"]
    stop = sim.stop
    out: list[Any] = []

    def emit(item: Any) -> None:
        out.append(item)
        if isinstance(item, Bar):
            store[item.coin] = item.ts

    sim.call_at(START + 120, lambda: watch.remove("bitcoin"))
    sim.call_at(START + 3 * 3600, lambda: watch.append("bitcoin"))
    sim.end = START + 3 * 3600 + 60
    src.run(lambda: tuple(watch), emit, stop)
    assert len(cg.calls("/coins/bitcoin/market_chart")) == 2
    assert_honest(out, cg)


def test_an_unexpected_failure_is_reported_and_the_poller_goes_on(cg, sim):
    import requests

    class Flaky(requests.Session):
        calls = 0

        def get(self, *args: Any, **kwargs: Any) -> Any:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("a bug")
            return super().get(*args, **kwargs)

    src = make_source(cg, sim, session=Flaky())
    out = sim.run(src, ("bitcoin",), 120)
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert [e.msg for e in errors] == ["internal error (RuntimeError), see the log"]
    assert len(bars(out)) == 2


def test_a_long_outage_says_how_old_the_data_is(cg, sim):
    src = make_source(cg, sim)
    outage: dict[str, Any] = {"path": "/simple/price", "status": 503, "times": 50}
    sim.call_at(START + 30, lambda: cg.add_fault("status", **outage))
    out = sim.run(src, ("bitcoin",), 600)
    failing = [s for s in statuses(out) if s.state == "error"]
    assert failing[0].message.endswith("retrying in 2 s")  # the data is still fresh
    assert failing[-1].message.endswith("data is 9 min old")
    assert failing[-1].last_update == START // 60 * 60 + 7  # the last good quote's time
