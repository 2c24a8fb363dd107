"""Hostile servers against the real clients over real sockets (issue 14): no key leaves the
origin, no body or wait runs away, no time from the future is believed, no delay kills polling."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from engine.events import Bar, ErrorEvent, StatusEvent
from engine.settings.config import Settings
from engine.sources.coingecko import CoinGeckoSource
from engine.sources.kraken import KrakenSource
from engine.sources.retry import (
    MAX_DELAY,
    backoff_delay,
    clamp_delay,
    fmt_seconds,
    retry_after_seconds,
)
from tests.engine.sources.test_coingecko import START, Sim, bars, make_source, statuses
from tests.engine.sources.test_kraken import MINUTES, Run, T, has_bar
from tests.fakes.coingecko_server import FakeCoinGecko
from tests.fakes.kraken_server import FakeKraken

KEY = "CG-hostile-0123456789abcdef"


@pytest.fixture
def sim() -> Sim:
    return Sim()


@pytest.fixture
def cg(sim: Sim) -> Iterator[FakeCoinGecko]:
    with FakeCoinGecko(clock=sim.clock) as server:
        yield server


def failures(out: list[Any]) -> list[StatusEvent]:
    return [s for s in statuses(out) if s.state in ("error", "offline") and s.message != "stopped"]


# Redirects --------------------------------------------------------------------------------------


def test_a_redirect_to_another_port_is_refused_and_the_key_never_reaches_it(cg, sim, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeCoinGecko(clock=sim.clock) as other:
        src = make_source(cg, sim, settings=Settings(api_url=cg.url, api_key=KEY))
        elsewhere = f"{other.url}/simple/price?ids=bitcoin&vs_currencies=usd"
        cg.add_fault("redirect", path="/simple/price", location=elsewhere)
        out = sim.run(src, ("bitcoin",), 400)
        assert other.requests == []  # not followed at all: neither the key nor anything else
    failed = failures(out)[0]
    assert failed.state == "error"
    assert (
        f"redirected the request to 127.0.0.1:{other.port} (HTTP 302); not followed"
        in failed.message
    )
    assert "retrying in 5 min" in failed.message  # a setup problem: no hammering
    assert statuses(out)[-2].state == "ok" and bars(out)  # the next poll went to the right host
    assert KEY not in caplog.text + "".join(repr(e) for e in out)


def test_a_redirect_within_the_origin_is_followed_with_the_key(cg, sim):
    src = make_source(cg, sim, settings=Settings(api_url=cg.url, api_key=KEY))
    here = "/api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true"
    cg.add_fault("redirect", path="/simple/price", location=here, status=307)
    out = sim.run(src, ("bitcoin",), 30)
    calls = cg.calls("/simple/price")
    assert [c.fault for c in calls] == ["redirect", None]
    assert all(c.headers.get("x-cg-demo-api-key") == KEY for c in calls)
    assert len(bars(out)) == 1 and not failures(out)


# Sizes ----------------------------------------------------------------------------------------


def test_a_gzip_bomb_is_cut_at_the_decompressed_cap(cg, sim):
    src = make_source(cg, sim, max_body=200_000)
    cg.add_fault("gzip_bomb", path="/simple/price", size=50_000_000)  # ~50 kB on the wire
    out = sim.run(src, ("bitcoin",), 90)
    failed = failures(out)[0]
    assert "sent more than 200 kB (decompressed); ignored, retrying in 2 s" in failed.message
    errors = [e for e in out if isinstance(e, ErrorEvent)]
    assert len(errors) == 1 and "more than 200 kB" in errors[0].msg
    assert statuses(out)[-2].state == "ok" and bars(out)  # polling went on


def test_an_endless_chunked_body_is_cut_at_the_cap(cg, sim):
    src = make_source(cg, sim, max_body=300_000)
    cg.add_fault("endless", path="/simple/price")
    out = sim.run(src, ("bitcoin",), 90)
    failed = failures(out)[0]
    assert "sent more than 300 kB; ignored, retrying in 2 s" in failed.message
    # The client hung up: the server could write no more than the cap plus what socket buffers
    # hold (a few MB at most), where it used to go on for gigabytes.
    assert cg.sent_bytes < 32_000_000
    assert statuses(out)[-2].state == "ok" and bars(out)


def test_a_declared_length_over_the_cap_is_refused_before_reading(cg, sim):
    src = make_source(cg, sim, max_body=1000)
    cg.add_fault("drip", path="/simple/price", length=5000, interval=0.01)
    out = sim.run(src, ("bitcoin",), 30)
    assert "sent more than 1 kB; ignored" in failures(out)[0].message
    assert cg.sent_bytes < 5000


# Deadline -------------------------------------------------------------------------------------


def test_a_server_dripping_one_byte_at_a_time_hits_the_total_deadline(cg, sim):
    # Each byte comes well within the 1 s read timeout; only a deadline on the whole request ends it.
    src = make_source(cg, sim, deadline=1.0)
    cg.add_fault("drip", path="/simple/price", length=100_000, interval=0.05)
    out = sim.run(src, ("bitcoin",), 90)
    failed = failures(out)[0]
    assert failed.state == "offline"
    assert "did not send a whole answer within 1 s; cut off, retrying in 2 s" in failed.message
    assert cg.sent_bytes < 100_000
    assert statuses(out)[-2].state == "ok" and bars(out)


def test_a_server_dripping_its_headers_hits_the_total_deadline(cg, sim):
    src = make_source(cg, sim, deadline=1.0)
    cg.add_fault("drip_headers", path="/simple/price", interval=0.05)
    out = sim.run(src, ("bitcoin",), 90)
    failed = failures(out)[0]
    assert "did not send a whole answer within 1 s; cut off, retrying in 2 s" in failed.message
    assert statuses(out)[-2].state == "ok" and bars(out)


# Time from the future -------------------------------------------------------------------------


@pytest.mark.parametrize("ahead", [2 * 86400, 1e12])  # two days; 30,000 years (no minute loop)
def test_a_quote_from_the_future_is_refused_with_a_reason_and_polling_goes_on(cg, sim, ahead):
    src = make_source(cg, sim, last_bar_ts=lambda coin: None)  # first sight: the backfill path too
    cg.add_fault("future", path="/simple/price", ahead=ahead)
    out = sim.run(src, ("bitcoin",), 150)
    assert all(b.ts <= sim.now for b in bars(out))  # nothing from the future was emitted
    failed = failures(out)[0]
    words = fmt_seconds(ahead)
    assert f"bitcoin's time is {words} ahead of this computer's clock: refused" in failed.message
    assert "check the system clock" in failed.message
    assert len(bars(out, filled=False)) >= 2  # the retry and the next poll were believed


def test_one_coin_from_the_future_is_named_in_the_status_and_the_others_stream(sim):
    class Skewed(FakeCoinGecko):
        def simple_price(
            self, ids: list[str], vs_list: list[str], with_updated: bool
        ) -> dict[str, Any]:
            out = super().simple_price(ids, vs_list, with_updated)
            out["ethereum"]["last_updated_at"] += 3 * 3600
            return out

    with Skewed(clock=sim.clock) as cg:
        src = make_source(cg, sim)
        out = sim.run(src, ("bitcoin", "ethereum"), 60)
    assert {b.coin for b in bars(out)} == {"bitcoin"}
    last = statuses(out)[-2]
    assert last.state == "ok"
    assert last.message == (
        "live: 1 coin; ethereum's time is 3 h ahead of this computer's clock: refused "
        "(check the system clock)"
    )


def test_a_kraken_candle_from_the_future_is_refused_and_said():
    with FakeKraken(heartbeat=0.1) as kr:
        # The local clock says 17:41:30 of the recorded day: later candles are from its future.
        src = KrakenSource(
            Settings(kraken_url=kr.url, source="kraken"),
            clock=lambda: T + 90 - 180,
            sleep=lambda s: None,
            rng=lambda: 0.5,
            recv_timeout=0.05,
        )
        with Run(src, ("bitcoin",)) as run:
            run.wait_for(
                lambda out: any(isinstance(s, StatusEvent) and "refused" in s.message for s in out)
            )
    assert all(b.ts <= T + 90 - 180 + 120 for b in run.bars())
    refused = next(s for s in run.out if isinstance(s, StatusEvent) and "refused" in s.message)
    assert refused.state == "error"
    assert "ahead of this computer's clock: refused (check the system clock)" in refused.message


# Delays ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["inf", "1e300", "-5", "nan", "Fri, 31 Dec 9999 23:59:59 GMT", "9" * 400]
)
def test_an_absurd_retry_after_is_clamped_and_polling_goes_on(cg, sim, value):
    # Polls 10 min apart keep the real requests few over the simulated hour.
    src = make_source(cg, sim, settings=Settings(api_url=cg.url, poll_seconds=600.0))
    cg.add_fault("429", path="/simple/price", retry_after=value)
    out = sim.run(src, ("bitcoin",), MAX_DELAY + 1800)
    limited = [s for s in statuses(out) if s.state == "rate limited"]
    assert limited and "retrying in" in limited[0].message
    assert max(sim.sleeps) <= MAX_DELAY
    assert statuses(out)[-2].state == "ok"
    assert len(bars(out)) >= 2  # polling went on after the wait


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "inf"}, MAX_DELAY),
        ({"retry-after": "1e300"}, MAX_DELAY),
        ({"retry-after": "0"}, 1.0),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:01 GMT"}, 1.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, MAX_DELAY),
        ({"x-ratelimit-reset": "1e300"}, MAX_DELAY),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "nan"}, None),
    ],
)
def test_every_parsed_delay_lands_in_the_sane_range(headers, expected):
    assert retry_after_seconds(headers, START) == expected


def test_backoff_and_clamp_never_overflow():
    assert backoff_delay(100_000, base=2.0, cap=120.0, rng=lambda: 1.0) == 120.0
    assert clamp_delay(float("nan")) == MAX_DELAY and clamp_delay(float("-inf")) == 1.0
    assert fmt_seconds(float("inf")) == "over 100 years" and fmt_seconds(float("nan")) == "?"


# Kraken frames and URLs -------------------------------------------------------------------------


def test_a_kraken_frame_over_the_size_cap_ends_the_session_with_words_then_reconnects():
    with FakeKraken(heartbeat=0.1) as kr:
        src = KrakenSource(
            Settings(kraken_url=kr.url, source="kraken"),
            clock=lambda: T + 4 * 60 + 30,
            sleep=lambda s: None,
            rng=lambda: 0.5,
            recv_timeout=0.05,
        )
        with Run(src, ("bitcoin",)) as run:
            run.wait_for(has_bar("bitcoin", MINUTES[3]))
            kr.push_raw(json.dumps({"channel": "x", "data": "[" * 1_500_000}))
            run.wait_for(lambda out: kr.connections >= 2)
    offline = [s for s in run.out if isinstance(s, StatusEvent) and s.state == "offline"]
    assert offline and "Kraken sent a message over 1 MB; ignored" in offline[0].message


def test_a_password_in_a_url_is_never_shown(cg, sim, caplog):
    caplog.set_level(logging.DEBUG)
    url = cg.url.replace("http://", "http://alice:pw-s3cret-xyz@")
    src = make_source(cg, sim, settings=Settings(api_url=url))
    cg.add_fault("status", path="/simple/price", status=503)
    out = sim.run(src, ("bitcoin",), 90)
    assert statuses(out)[0].message == f"connecting to 127.0.0.1:{cg.port}"
    assert "pw-s3cret-xyz" not in caplog.text + "".join(repr(e) for e in out)
    with FakeKraken(heartbeat=0.1) as kr:
        kurl = kr.url.replace("ws://", "ws://bob:kr-s3cret-xyz@")
        ksrc = KrakenSource(
            Settings(kraken_url=kurl, source="kraken"),
            clock=lambda: T + 4 * 60 + 30,
            sleep=lambda s: None,
            rng=lambda: 0.5,
            recv_timeout=0.05,
        )
        with Run(ksrc, ("bitcoin",)) as run:
            run.wait_for(has_bar("bitcoin", MINUTES[3]))
    text = "".join(repr(e) for e in run.out)
    assert "kr-s3cret-xyz" not in text and "bob:***@" in text


def test_a_password_in_the_connect_url_is_never_shown(caplog):
    from engine.feed.remote import RemoteEngine

    caplog.set_level(logging.DEBUG)
    r = RemoteEngine("ws://carol:rm-s3cret-xyz@127.0.0.1:9", backoff=(0.05, 0.1), open_timeout=1)
    seen: list[Any] = []
    r.subscribe(seen.append)
    r.start()
    try:
        deadline = threading.Event()
        for _ in range(200):
            if any(isinstance(e, StatusEvent) and e.state == "offline" for e in seen):
                break
            deadline.wait(0.05)
    finally:
        r.stop()
    offline = [e for e in seen if isinstance(e, StatusEvent) and e.state == "offline"]
    assert offline and offline[0].message.startswith(
        "engine at ws://carol:***@127.0.0.1:9 unreachable"
    )
    assert "rm-s3cret-xyz" not in caplog.text + "".join(repr(e) for e in seen) + repr(r)


def test_a_stopped_source_thread_survives_a_huge_wait():
    """A real Event.wait with an absurd timeout raises OverflowError; the source never asks for one."""
    stop = threading.Event()
    src = CoinGeckoSource(Settings(api_url="http://127.0.0.1:9/api/v3"))
    stop.set()
    assert src._wait(1e300, stop) is False


# The Bar type is used in type hints of helpers imported above.
_ = Bar
