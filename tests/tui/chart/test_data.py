"""The chart's data layer: the past band at the minute it is about, misses, candles, the network's
line and its words, alert levels, and the zoom/pan window math (pure code, no Textual)."""

from __future__ import annotations

import itertools
import math

import pytest

from engine.events import Bar, CoinSnapshot, ForecastEvent, HorizonMetrics, MetricsEvent
from tests.fakes.fake_engine import FakeEngine
from tui.chart_data import ZOOM_SPANS, Candle, ChartView, build_chart, candle_marks, network_score

H = (1, 5)


def bar(i: int, price: float, ohlc: bool = False, filled: bool = False) -> Bar:
    if ohlc:
        return Bar("x", 60 * i, price, price - 0.5, price + 1.0, price - 1.0, 1.0, "kraken", filled)
    return Bar("x", 60 * i, price, source="coingecko", filled=filled)


def forecast(
    i: int, price: float, half: float = 0.01, raw: tuple[float, ...] = ()
) -> ForecastEvent:
    """Made at minute ``i``: no change, an 80 % band of +-``half`` (log) at every horizon."""
    return ForecastEvent(
        "x",
        60 * i,
        price,
        H,
        (0.0, 0.0),
        (-half, -half),
        (half, half),
        (-2 * half, -2 * half),
        (2 * half, 2 * half),
        raw,
    )


def metrics(rel: float, n: int = 100) -> MetricsEvent:
    rows = tuple(
        HorizonMetrics(h, n, 0.1, 0.1, 0.1, 0.1, rel, 1.0, 0.5, 0.8, 0.95, 0.01, 0) for h in H
    )
    return MetricsEvent("x", rows)


def test_the_band_issued_h_minutes_before_is_judged_at_the_minute_it_is_about() -> None:
    # Flat at 100 for 40 minutes, then a jump to 103 at minute 40 (outside a +-1 % band).
    bars = tuple(bar(i, 103.0 if i == 40 else 100.0) for i in range(60))
    fcs = tuple(forecast(i, 100.0) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars, fcs), 5, 3600, 120, 30)
    # Minutes 5..59 each had a band issued 5 minutes before them; only minute 40 left it.
    assert data.scored == 55
    assert data.misses == [(60.0 * 40, 103.0, True)]
    # The same jump, judged against bands that are issued only from minute 38 on: minute 40's
    # 5-minute band would come from minute 35, which has none: not scored, not a miss.
    late = tuple(f for f in fcs if f.ts >= 60 * 38)
    data = build_chart(CoinSnapshot("x", bars, late), 5, 3600, 120, 30)
    assert data.misses == [] and data.scored == 59 - 43 + 1
    # At horizon 1 the band for minute 40 was issued at 39 (and minute 41's too: back to 100 is
    # inside, since that band is centred on 103... no: forecasts here are made from 100 always).
    data = build_chart(CoinSnapshot("x", bars, fcs), 1, 3600, 120, 30)
    assert [m.ts for m in data.misses] == [60.0 * 40]


def test_a_band_from_a_forecast_made_from_another_price_is_judged_as_issued() -> None:
    bars = tuple(bar(i, 100.0) for i in range(30))
    # Made at minute 10 from 95: its band at 5 minutes is 95 * e^(+-1 %) = [94.05, 95.95].
    fcs = (forecast(10, 95.0),)
    data = build_chart(CoinSnapshot("x", bars, fcs), 5, 3600, 120, 30)
    assert data.scored == 1
    assert data.misses == [(60.0 * 15, 100.0, True)]
    (above, below) = data.miss_marks
    assert len(above) == 1 and not below
    # The mark sits just above the price, not on it (it does not hide the candle or line).
    assert above.ys[0] > 100.0


def test_filled_minutes_are_context_never_scored() -> None:
    bars = tuple(bar(i, 103.0 if i == 20 else 100.0, filled=i == 20) for i in range(30))
    data = build_chart(
        CoinSnapshot("x", bars, tuple(forecast(i, 100.0) for i in range(30))), 5, 3600, 120, 30
    )
    assert data.misses == [] and data.scored == 24


def test_old_forecasts_without_bands_or_raw_means_draw_the_price_alone() -> None:
    bars = tuple(bar(i, 100.0 + i % 2) for i in range(60))
    fcs = tuple(ForecastEvent("x", 60 * i, 100.0, H, (0.0, 0.0)) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars, fcs), 5, 3600, 120, 30)
    assert data.price and not data.ribbon and data.scored == 0 and not data.misses
    assert data.network == [] and data.network_words == ""


def test_a_stored_forecast_without_a_band_is_neither_scored_nor_a_miss() -> None:
    # The store gives NaN for a band it did not record (and for a missing raw mean).
    nan = float("nan")
    bars = tuple(bar(i, 100.0 + i % 2) for i in range(60))
    fcs = tuple(
        ForecastEvent(
            "x",
            60 * i,
            100.0,
            H,
            (0.0, 0.0),
            (nan, nan),
            (nan, nan),
            (nan, nan),
            (nan, nan),
            (nan, nan),
        )
        for i in range(60)
    )
    data = build_chart(CoinSnapshot("x", bars, fcs, metrics(0.9)), 5, 3600, 120, 30)
    assert data.scored == 0 and not data.misses and not data.ribbon and data.network == []
    assert data.y_range is not None and all(math.isfinite(v) for v in data.y_range)


def test_ribbon_covers_the_price_in_every_column_and_not_the_future() -> None:
    bars = tuple(bar(i, 100.0) for i in range(60))
    fcs = tuple(forecast(i, 100.0, half=0.05) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars, fcs), 5, 3600, 120, 30)
    lo, hi = 100.0 * math.exp(-0.05), 100.0 * math.exp(0.05)
    assert data.ribbon and all(lo - 1e-9 <= y <= hi + 1e-9 for y in data.ribbon.ys)
    xs = sorted(set(data.ribbon.xs))
    # From the first minute with a band (5) to the last bar (59): no column left out when zoomed
    # in (a minute is two columns here), nothing drawn ahead of "now".
    width = (data.x1 - data.x0) / 120
    assert xs[0] < 60 * 5 + width and xs[-1] <= 60 * 60
    assert all(b - a <= width * 1.01 for a, b in itertools.pairwise(xs))


def test_candles_one_per_column_when_zoomed_out() -> None:
    bars = tuple(bar(i, 100.0 + i, ohlc=True) for i in range(600))
    data = build_chart(CoinSnapshot("x", bars), 5, 6 * 3600, 60, 20)
    assert data.candles and not data.price  # OHLC: candles, no line
    width = (data.x1 - data.x0) / 60
    assert len(data.candles) <= 60
    # Each candle: the first open, the highest high, the lowest low, the last close of its column.
    columns: dict[int, list[Bar]] = {}
    for b in bars:
        if data.x0 <= b.ts <= data.x1:
            columns.setdefault(int((b.ts - data.x0) / width), []).append(b)
    assert len(data.candles) == len(columns)
    for c, (col, inside) in zip(data.candles, sorted(columns.items())):
        assert c.x == pytest.approx(data.x0 + (col + 0.5) * width)
        assert c.open == inside[0].open and c.close == inside[-1].price
        assert c.high == max(b.high for b in inside if b.high is not None)
        assert c.low == min(b.low for b in inside if b.low is not None)


def test_volume_per_column_in_eighths_of_the_largest_on_the_bottom_row() -> None:
    bars = tuple(
        Bar("x", 60 * i, 100.0, 100.0, 101.0, 99.0, float(i % 10 + 1), "replay") for i in range(600)
    )
    data = build_chart(CoinSnapshot("x", bars), 5, 6 * 3600, 60, 20)
    assert len(data.volume) == 8
    assert data.y_range is not None
    assert {y for d in data.volume for y in d.ys} == {data.y_range[0]}
    assert sum(len(d) for d in data.volume) == len(data.candles)  # one block per candle
    assert len(data.volume[7]) >= 1  # the largest column is a full block
    # A price-only source has no volume to show.
    line = build_chart(
        CoinSnapshot("x", tuple(bar(i, 100.0) for i in range(600))), 5, 6 * 3600, 60, 20
    )
    assert line.volume == ()


def test_a_price_only_source_draws_a_line() -> None:
    engine = FakeEngine(coins=("bitcoin",), history=200, ohlc=False)
    data = build_chart(engine.snapshot("bitcoin"), 5, 3600, 100, 20)
    assert data.price and not data.candles
    engine = FakeEngine(coins=("bitcoin",), history=200)
    data = build_chart(engine.snapshot("bitcoin"), 5, 3600, 100, 20)
    assert data.candles and not data.price


def test_candle_marks_fill_every_row_from_low_to_high() -> None:
    rh = 1.0
    up_w, up_b, dn_w, dn_b = candle_marks(
        [Candle(5.0, 10.0, 14.0, 8.0, 12.0), Candle(6.0, 12.0, 12.5, 11.0, 11.0)], rh
    )
    assert {round(y) for y in up_w.ys} == set(range(8, 15))
    assert {round(y) for y in up_b.ys} == set(range(10, 13))
    assert set(dn_w.xs + dn_b.xs) == {6.0} and len(dn_w.xs) == len(dn_w.ys)
    assert dn_b  # a down candle has a body, even a short one
    # A point per row height (a little under the canvas's): none is skipped.
    assert max(b - a for a, b in itertools.pairwise(sorted(up_w.ys))) <= rh


@pytest.mark.parametrize(
    "rel,words,drawn",
    [
        (0.97, "network: 3 % better than no change", True),
        (1.02, "network: 2 % worse than no change (line hidden)", False),
        (1.001, "network: no better than no change (line hidden)", False),
        (float("nan"), "network: not scored yet (line hidden)", False),
    ],
)
def test_network_line_at_its_target_minute_and_only_when_it_beats_no_change(
    rel: float, words: str, drawn: bool
) -> None:
    bars = tuple(bar(i, 100.0) for i in range(60))
    fcs = tuple(forecast(i, 100.0, raw=(0.0, 0.02)) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars, fcs, metrics(rel)), 5, 3600, 120, 30)
    assert data.network_words == words
    if drawn:
        points = [p for seg in data.network for p in seg]
        # The forecast made at minute i is drawn at minute i + 5, at its own price.
        assert points[0] == (60.0 * 5, pytest.approx(100.0 * math.exp(0.02)))
        assert points[-1][0] == 60.0 * 64  # the newest reaches 5 minutes past "now"
    else:
        assert data.network == []


def test_a_network_mean_of_exactly_no_change_is_never_drawn() -> None:
    # It would be the price shifted by h, whatever its score.
    bars = tuple(bar(i, 100.0 + i % 3) for i in range(60))
    fcs = tuple(forecast(i, 100.0 + i % 3, raw=(0.0, 0.0)) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars, fcs, metrics(0.9)), 5, 3600, 120, 30)
    assert data.network == []


def test_network_score_words() -> None:
    assert network_score(None, 5) == ("network: not scored yet", False)
    assert network_score(metrics(0.9, n=0), 5) == ("network: not scored yet", False)
    assert network_score(metrics(1.1), 15) == ("network: not scored yet", False)  # no such row
    assert network_score(metrics(0.9), 5) == ("network: 10 % better than no change", True)


def test_alert_levels_near_the_price_are_drawn_far_ones_named() -> None:
    bars = tuple(bar(i, 100.0 + i % 5) for i in range(60))
    data = build_chart(CoinSnapshot("x", bars), 5, 3600, 120, 30, levels=(102.0, 104.8, 500.0))
    assert data.levels == (102.0, 104.8) and data.levels_off == (500.0,)
    assert data.y_range is not None and data.y_range[1] >= 104.8


def test_zoom_steps_keep_the_live_view_live_and_a_panned_view_centred() -> None:
    first, last = 0.0, 86400.0
    v = ChartView(6 * 3600)
    assert v.zoomed(1, first, last) == ChartView(3 * 3600)
    assert v.zoomed(-1, first, last) == ChartView(12 * 3600)
    assert ChartView(ZOOM_SPANS[0]).zoomed(1, first, last).span == ZOOM_SPANS[0]  # no further in
    assert ChartView(ZOOM_SPANS[-1]).zoomed(-3, first, last).span == ZOOM_SPANS[-1]
    # Between two steps (a window not in the list): one step in goes to the next smaller one.
    assert ChartView(5000).zoomed(1, first, last).span == 3600
    assert ChartView(5000).zoomed(-1, first, last).span == 2 * 3600
    # Panned back, zooming keeps the middle of the view where it was.
    p = ChartView(6 * 3600, 50000.0)
    z = p.zoomed(1, first, last)
    assert z.span == 3 * 3600 and z.end is not None
    assert z.end - z.span / 2 == p.end - p.span / 2  # type: ignore[operator]


def test_pan_moves_by_a_fraction_clamps_to_the_history_and_snaps_back_to_live() -> None:
    first, last = 0.0, 86400.0
    v = ChartView(3600)
    back = v.panned(-0.25, first, last)
    assert back == ChartView(3600, last - 900)
    assert back.panned(0.25, first, last) == ChartView(3600)  # reaching "now" is live again
    assert back.panned(1.0, first, last) == ChartView(3600)  # never past "now"
    far = ChartView(3600, 100.0).clamped(first, last)
    assert far.end == first + 1800  # the oldest view still shows half a span of history
    young = ChartView(24 * 3600).panned(-0.25, 0.0, 3000.0)
    assert young == ChartView(24 * 3600)  # less history than the span: nothing to pan to


def test_a_panned_view_shows_that_stretch_without_the_forecast_ahead() -> None:
    engine = FakeEngine(coins=("bitcoin",), history=600)
    snap = engine.snapshot("bitcoin")
    last = snap.bars[-1].ts
    end = last - 3 * 3600
    data = build_chart(snap, 5, 3600, 100, 20, end=end)
    assert (data.x0, data.x1) == (end - 3600, end)
    assert not data.live and data.now is None and data.forward == [] and data.band == []
    assert data.candles and all(data.x0 <= c.x <= data.x1 for c in data.candles)
    # The ribbon and misses of that stretch are there too.
    assert data.scored > 0 and all(data.x0 <= m.ts <= data.x1 for m in data.misses)


def test_zoomed_out_a_column_is_marked_only_where_the_band_clearly_failed() -> None:
    # 10 minutes per column; columns 0-5 with one miss in ten minutes (as a calibrated band
    # misses), column 6 with five.
    prices = [100.0] * 180  # viewed panned back: minutes 0-119, 12 columns of ten minutes
    for i in (15, 25, 35, 45, 55):
        prices[i] = 103.0
    for i in range(61, 66):
        prices[i] = 103.0
    bars = tuple(bar(i, p) for i, p in enumerate(prices))
    fcs = tuple(forecast(i - 5, 100.0) for i in range(5, 180))
    data = build_chart(CoinSnapshot("x", bars, fcs), 5, 7200, 12, 30, end=60 * 120)
    assert (data.x0, data.x1, data.live) == (0, 7200, False)
    assert len(data.misses) == 10
    above, below = data.miss_marks
    assert len(above) == 1 and not below
    assert data.x0 + 6 * 600 <= above.xs[0] < data.x0 + 7 * 600
