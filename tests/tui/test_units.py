"""Unit tests of the TUI's pure parts: chart preparation, alert rules, saved preferences, notices."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from engine.events import Bar, CoinSnapshot, ForecastEvent, StatusEvent
from tests.fakes.fake_engine import FakeEngine
from tui.alerts.rules import AlertChecker
from tui.chart_data import build_chart, downsample
from tui.commands import COMMANDS, all_bindings
from tui.notices import notice_for
from tui.prefs import Prefs, load_prefs, save_prefs


def test_downsample_keeps_low_and_high_per_bucket_and_cuts_gaps() -> None:
    pts = [(float(60 * i), float(i)) for i in range(100)]
    pts += [(float(60 * i), float(i)) for i in range(200, 300)]  # 100 missing minutes
    segs = downsample(pts, 0.0, 60.0 * 300, 50, 90.0)
    assert len(segs) == 2  # the hole is a hole, not a line across it
    assert sum(len(s) for s in segs) <= 2 * 50 + 2
    assert segs[0][-1] == (60.0 * 99, 99.0)  # each segment ends on its real last point
    assert segs[1][-1] == (60.0 * 299, 299.0)
    for seg in segs:
        assert [x for x, _ in seg] == sorted(x for x, _ in seg)  # time order kept


def test_downsample_keeps_a_spike_inside_a_bucket() -> None:
    pts = [(60.0 * i, 100.0) for i in range(600)]
    pts[301] = (60.0 * 301, 130.0)  # one minute's spike, and a dip right after it
    pts[302] = (60.0 * 302, 80.0)
    (seg,) = downsample(pts, 0.0, 60.0 * 600, 20, 90.0)  # 30 minutes per bucket
    ys = [y for _, y in seg]
    assert max(ys) == 130.0 and min(ys) == 80.0
    assert len(seg) <= 2 * 20 + 1


def _downsample_by_definition(
    points: list[tuple[float, float]], x0: float, x1: float, buckets: int, gap: float
) -> list[list[tuple[float, float]]]:
    """downsample's contract, written plainly: finite points inside [x0, x1]; a new segment after
    a gap wider than max(gap, 1.5 buckets); per bucket the first lowest and first highest point in
    time order, and a segment's last bucket also keeps its last point."""
    width = (x1 - x0) / buckets
    limit = max(gap, 1.5 * width)
    kept = [p for p in points if x0 <= p[0] <= x1 and math.isfinite(p[1])]
    runs: list[list[tuple[float, float]]] = []
    for i, p in enumerate(kept):
        if i == 0 or p[0] - kept[i - 1][0] > limit:
            runs.append([])
        runs[-1].append(p)
    out = []
    for run in runs:
        groups: dict[int, list[tuple[float, float]]] = {}
        for p in run:
            groups.setdefault(int((p[0] - x0) / width), []).append(p)
        seg: list[tuple[float, float]] = []
        for k, (b, g) in enumerate(sorted(groups.items())):
            lo = min(g, key=lambda p: p[1])
            hi = max(g, key=lambda p: p[1])
            seg += sorted({lo, hi, g[-1]} if k == len(groups) - 1 else {lo, hi})
        out.append(seg)
    return out


def test_downsample_matches_its_definition_on_random_series() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        xs = sorted(
            rng.choice((rng.uniform(0, 100), float(rng.randint(0, 100))))
            for _ in range(rng.randint(0, 60))
        )
        pts = [
            (x, rng.choice((rng.uniform(-5, 5), float(rng.randint(-2, 2)), math.nan, math.inf)))
            for x in xs
        ]
        args = (
            pts,
            rng.uniform(-10, 50),
            rng.uniform(50, 120),
            rng.randint(1, 30),
            rng.uniform(0, 20),
        )
        assert downsample(*args) == _downsample_by_definition(*args), args


def test_downsample_one_missing_minute_is_visible_only_when_wider_than_a_column() -> None:
    pts = [(60.0 * i, 1.0) for i in range(10)] + [(60.0 * i, 1.0) for i in range(11, 20)]
    assert len(downsample(pts, 0, 60 * 20, 100, 90.0)) == 2
    assert len(downsample(pts, 0, 60 * 20, 4, 90.0)) == 1


def test_chart_of_real_demo_data_has_the_overnight_gap() -> None:
    # Crosses the 16:50 -> 00:00 gap; price only (as from CoinGecko), so a line is drawn.
    engine = FakeEngine(coins=("bitcoin",), history=1200, ohlc=False)
    snap = engine.snapshot("bitcoin")
    data = build_chart(snap, 5, 24 * 3600, 100, 20)
    assert len(data.price) >= 2
    assert data.now == snap.bars[-1].ts
    assert data.last_price == snap.bars[-1].price


def test_forward_forecast_and_band() -> None:
    bars = tuple(Bar("x", 60 * i, 100.0 + (i % 3)) for i in range(120))
    f = ForecastEvent(
        "x",
        60 * 119,
        101.0,
        (1, 5, 15, 60),
        (0.0, 0.001, 0.002, 0.004),
        (-0.001, -0.002, -0.004, -0.008),
        (0.001, 0.004, 0.008, 0.016),
    )
    data = build_chart(CoinSnapshot("x", bars, (f,)), 5, 3600, 60, 20)
    xs = [x for x, _ in data.forward]
    assert xs[0] == f.ts and xs[1] == f.ts + 60
    assert data.forward[1][1] == f.price_at(1)
    lo, hi = data.band_edges
    assert all(lo_y <= m <= hi_y for (_, lo_y), (_, hi_y), (_, m) in zip(lo, hi, data.forward))
    assert data.band and all(f.ts <= x <= data.x1 for x, _ in data.band)
    # A stale forecast (model reset, source stalled) is not drawn from "now".
    old = ForecastEvent("x", 60 * 100, 101.0, (1, 5), (0.0, 0.001))
    assert build_chart(CoinSnapshot("x", bars, (old,)), 5, 3600, 60, 20).forward == []


def test_empty_snapshot() -> None:
    data = build_chart(CoinSnapshot("x"), 5, 3600, 60, 20)
    assert data.empty and data.y_range is None


def test_surprise_alert_outside_95_band_and_quiet_after() -> None:
    ch = AlertChecker()
    f = ForecastEvent("b", 0, 100.0, (1,), (0.0,), (-0.01,), (0.01,), (-0.02,), (0.02,))
    ch.add_forecast(f)
    assert ch.check(Bar("b", 60, 101.0), [], 1, True, "B") == []  # inside the band
    ch.add_forecast(ForecastEvent("b", 60, 101.0, (1,), (0.0,), lo95=(-0.02,), hi95=(0.02,)))
    out = ch.check(Bar("b", 120, 110.0), [], 1, True, "B")
    assert [a.kind for a in out] == ["surprise"]
    ch.add_forecast(ForecastEvent("b", 120, 110.0, (1,), (0.0,), lo95=(-0.02,), hi95=(0.02,)))
    assert ch.check(Bar("b", 180, 130.0), [], 1, True, "B") == []  # quiet period
    assert ch.check(Bar("b", 240, 130.0), [], 1, False, "B") == []  # switched off


def test_prefs_round_trip_and_keep_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"watchlist": ["bitcoin"], "ui": {"window": "bogus"}}))
    p = load_prefs(path)
    assert p.window == "6h"  # an invalid value falls back to the default
    p.horizon, p.window, p.levels, p.bell = 15, "24h", {"bitcoin": [70000.0]}, True
    save_prefs(path, p)
    data = json.loads(path.read_text())
    assert data["watchlist"] == ["bitcoin"]
    assert load_prefs(path) == p


def test_prefs_survive_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    assert load_prefs(path) == Prefs()
    save_prefs(tmp_path / "missing-dir" / "state.json", Prefs(window="1h"))
    assert load_prefs(tmp_path / "missing-dir" / "state.json").window == "1h"


def test_every_command_has_a_binding_and_keys_are_unique() -> None:
    keys = [b.key for b in all_bindings()]
    assert len(keys) == len(set(keys))
    for required in (
        "up",
        "down",
        "j",
        "k",
        "left_square_bracket",
        "right_square_bracket",
        "1",
        "9",
        "a",
        "x",
        "w",
        "h",
        "p",
        "R",
        "e",
        "q",
        "question_mark",
        "A",
    ):
        assert required in keys
    assert all(c.description for c in COMMANDS)


def test_notices_say_what_to_do() -> None:
    rl = StatusEvent("coingecko", "rate limited", "HTTP 429")
    head, body = notice_for(
        mode="LIVE", coin="bitcoin", name="Bitcoin", status=rl, has_data=False, unknown=False
    ) or ("", "")
    assert head.endswith("rate limited") and "COINGECKO_API_KEY" in body
    assert (
        notice_for(
            mode="LIVE",
            coin="bitcoin",
            name="Bitcoin",
            status=StatusEvent("coingecko", "ok"),
            has_data=True,
            unknown=False,
        )
        is None
    )
    head, _ = notice_for(
        mode="LIVE",
        coin="bitcoin",
        name="Bitcoin",
        status=StatusEvent("coingecko", "ok", "backfilling 1 day"),
        has_data=False,
        unknown=False,
    ) or ("", "")
    assert head.startswith("Fetching recent history")
    head, _ = notice_for(
        mode="DEMO", coin=None, name="", status=None, has_data=False, unknown=False
    ) or ("", "")
    assert head == "No coins in the watchlist"


def test_each_state_said_once_in_the_chart_area() -> None:
    # With data on screen, the status bar alone says offline, rate limited or finished.
    for state in ("offline", "rate limited", "error", "done"):
        assert (
            notice_for(
                mode="LIVE",
                coin="bitcoin",
                name="Bitcoin",
                status=StatusEvent("coingecko", state, f"{state}: prices: timeout"),
                has_data=True,
                unknown=False,
            )
            is None
        )
    # Without, the chart area says what to do, without repeating the source's message.
    head, body = notice_for(
        mode="LIVE",
        coin="bitcoin",
        name="Bitcoin",
        status=StatusEvent("coingecko", "offline", "offline: prices: timeout"),
        has_data=False,
        unknown=False,
    ) or ("", "")
    assert "offline" in head and "prices: timeout" not in body


def test_demo_says_no_demo_data_and_stale(utc: None) -> None:
    head, body = notice_for(
        mode="DEMO",
        coin="solana",
        name="Solana",
        status=StatusEvent("demo", "ok"),
        has_data=False,
        unknown=True,
        demo_coins="Bitcoin, Ethereum and Litecoin",
    ) or ("", "")
    assert head == "No demo data for Solana" and "CoinGecko" not in body and "Litecoin" in body
    head, _ = notice_for(
        mode="DEMO",
        coin="solana",
        name="Solana",
        status=StatusEvent("replay", "ok"),
        has_data=False,
        unknown=True,
    ) or ("", "")
    assert head == "No replay data for Solana"
    head, body = notice_for(
        mode="DEMO",
        coin="ethereum",
        name="Ethereum",
        status=StatusEvent("demo", "ok"),
        has_data=True,
        unknown=False,
        stale_since=1_522_972_740,
    ) or ("", "")
    assert head == "No new prices for Ethereum since 2018-04-05 23:59" and "ended" in body


def test_export_names_never_collide(tmp_path: Path) -> None:
    from datetime import datetime

    from engine.runtime.export import export_path

    now = datetime(2018, 4, 4, 12, 0, 0)
    live = export_path(tmp_path, "bitcoin", "", now)
    demo = export_path(tmp_path, "bitcoin", "demo", now)
    again = export_path(tmp_path, "bitcoin", "demo", now)
    assert len({live, demo, again}) == 3
    assert demo.name == "bitcoin-demo-20180404-120000.csv" and again.name.endswith("-2.csv")


def test_served_sentence_in_words() -> None:
    import dataclasses

    from tests.fakes.fake_engine import fake_metrics
    from tui.widgets.model_panel import served_sentence

    assert served_sentence(fake_metrics(60, 5000), 60) == (
        "60 min: the simple band served; the network's band is 15 % worse than the simple one "
        "over the last 3,000 minutes."
    )
    close = dataclasses.replace(fake_metrics(60, 5000), recent_ratio80=0.98)
    assert served_sentence(close, 60).endswith(
        "2 % better than the simple one over the last 3,000 minutes, not yet by a clear margin."
    )
    assert "no band scored yet" in served_sentence(None, 5)
