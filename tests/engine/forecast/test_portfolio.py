"""The total's range from per-coin bands and their correlation, and probabilities from the band."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.events import ForecastEvent
from engine.forecast.portfolio import (
    P,
    PortfolioRun,
    ValueRange,
    correlation,
    holding_range,
    parse_weights,
    prob_beyond,
    scaled_returns,
    served_cdf,
    served_cdf_z,
    summed,
    total_range,
)


def test_total_range_between_independence_and_adding_the_ends() -> None:
    a, b = holding_range(100.0, -0.01, 0.01), holding_range(50.0, -0.02, 0.02)
    ends = total_range([a, b], [[1, 1], [1, 1]])
    indep = total_range([a, b], [[1, 0], [0, 1]])
    mid = total_range([a, b], [[1, 0.5], [0.5, 1]])
    # Perfect co-movement is exactly adding the ends.
    assert ends.lo == pytest.approx(a.lo + b.lo) and ends.hi == pytest.approx(a.hi + b.hi)
    da, db = (a.hi - a.lo) / 2, (b.hi - b.lo) / 2
    assert indep.hi - indep.centre == pytest.approx(math.hypot(da, db))
    assert mid.hi - mid.centre == pytest.approx(math.sqrt(da**2 + db**2 + da * db))
    assert indep.hi - indep.lo < mid.hi - mid.lo < ends.hi - ends.lo


def test_opposite_moves_hedge() -> None:
    a = ValueRange(90, 110, 100)
    hedged = total_range([a, a], [[1, -1], [-1, 1]])
    assert hedged.lo == pytest.approx(200) and hedged.hi == pytest.approx(200)


def test_correlation_of_scaled_returns() -> None:
    rng = random.Random(1)
    pa, pb, pc = [], [], []
    x = y = z = 100.0
    for i in range(600):
        common = rng.gauss(0, 0.001)
        x *= math.exp(common + rng.gauss(0, 0.0005))
        y *= math.exp(common + rng.gauss(0, 0.0005))
        z *= math.exp(rng.gauss(0, 0.001))
        pa.append((60 * i, x))
        pb.append((60 * i, y))
        pc.append((60 * i, z))
    r = correlation([scaled_returns(pa), scaled_returns(pb), scaled_returns(pc)])
    assert r[0][1] == r[1][0] and 0.7 < r[0][1] < 0.9  # 1 / (1 + 0.25) = 0.8 in theory
    assert abs(r[0][2]) < 0.15 and r[2][2] == 1.0


def test_correlation_needs_common_minutes() -> None:
    a = scaled_returns([(60 * i, 100 + (i % 3)) for i in range(100)])
    b = scaled_returns([(60 * (i + 1000), 100 + (i % 2)) for i in range(100)])
    assert correlation([a, b]) == [[1.0, 0.0], [0.0, 1.0]]


def test_scaled_returns_skip_gaps() -> None:
    s = scaled_returns([(0, 100.0), (60, 101.0), (120, 100.0), (300, 130.0), (360, 131.0)])
    assert 300 not in s and 120 in s and 360 in s


Q = (-0.02, -0.01, 0.0, 0.01, 0.02)


def test_cdf_passes_through_the_served_points() -> None:
    for q, p in zip(Q, P):
        assert served_cdf(Q, q) == pytest.approx(p)
    assert served_cdf(Q, 0.005) == pytest.approx(0.7)  # linear between 50 % and 90 %
    assert served_cdf(Q, -0.015) == pytest.approx(0.0625)


def test_cdf_tails_are_gaussian_and_monotone() -> None:
    xs = [i / 1000 for i in range(-80, 81)]
    cs = [served_cdf(Q, x) for x in xs]
    assert all(a <= b for a, b in itertools.pairwise(cs))
    assert 0 < served_cdf(Q, -0.03) < 0.025 and served_cdf(Q, -0.2) < 1e-12
    # Beyond 97.5 %: the scale fitted to the 90-97.5 % spacing (0.01 over 0.678 z).
    s = 0.01 / (1.959963984540054 - 1.2815515655446004)
    assert 1 - served_cdf(Q, 0.02 + s) == pytest.approx(
        0.5 * math.erfc((1.96 + 1) / math.sqrt(2)), rel=1e-3
    )


def test_cdf_degenerate_band_is_a_step() -> None:
    assert served_cdf((0, 0, 0, 0, 0), -1e-9) == 0.0 and served_cdf((0, 0, 0, 0, 0), 1e-9) == 1.0


def test_prob_beyond_level() -> None:
    f = ForecastEvent("bitcoin", 0, 100.0, (5,), (0.0,), (-0.01,), (0.01,), (-0.02,), (0.02,))
    assert prob_beyond(f, 5, 100 * math.exp(0.01)) == pytest.approx(0.10)
    assert prob_beyond(f, 5, 100 * math.exp(-0.02)) == pytest.approx(0.025)
    assert prob_beyond(f, 15, 101) is None


def test_weights() -> None:
    assert parse_weights(None, 2) == (1.0, 1.0) and parse_weights("2,0.5", 2) == (2.0, 0.5)
    for bad in ("1", "1,x", "1,-1", "1,nan"):
        with pytest.raises(ConfigError):
            parse_weights(bad, 2)


def test_portfolio_run_scores_when_labels_mature() -> None:
    run = PortfolioRun(("a", "b"), (1,), (1.0, 1.0), window=60)
    rng = random.Random(3)
    price = [100.0, 50.0]
    for m in range(200):
        ts = 60 * m
        for i in range(2):
            price[i] *= math.exp(rng.gauss(0, 0.001))
            f = ForecastEvent(
                "ab"[i],
                ts,
                price[i],
                (1,),
                (0.0,),
                (-0.00128,),
                (0.00128,),
                (-0.00196,),
                (0.00196,),
            )
            run.add(i, ts, price[i], f)
        run.end_minute(ts)
    rows = run.range_rows()
    assert rows[0]["corr"]["n"] == 199
    assert 0.65 < rows[0]["indep"]["coverage80"] < 0.95
    assert rows[0]["ends"]["coverage80"] >= rows[0]["indep"]["coverage80"]
    # Levels need a day's sigma (30 returns first); every level is scored with both CDF shapes.
    n = sum(r["n"] for r in run.reliability())
    assert 150 * 2 * 4 < n < 199 * 2 * 4
    assert sum(r["n"] for r in run.reliability("linear")) == n
    assert run.brier_rows()[0]["z-linear"]["brier"] is not None


def test_z_linear_cdf_is_gaussian_for_a_gaussian_band() -> None:
    s = 0.01
    q = tuple(
        z * s
        for z in (
            -1.959963984540054,
            -1.2815515655446004,
            0.0,
            1.2815515655446004,
            1.959963984540054,
        )
    )
    for x in (-0.03, -0.015, -0.005, 0.0, 0.004, 0.012, 0.025):
        assert served_cdf_z(q, x) == pytest.approx(0.5 * math.erfc(-x / s / math.sqrt(2)), abs=1e-9)
    # The linear shape puts more probability beyond half a sigma than a Gaussian does.
    assert 1 - served_cdf(q, 0.5 * s) == pytest.approx(0.344, abs=1e-3)
    assert 1 - served_cdf_z(q, 0.5 * s) == pytest.approx(0.3085, abs=1e-3)


def test_summed_returns_match_the_horizon() -> None:
    s = {60 * i: 1.0 for i in range(10)}
    del s[300]
    assert summed(s, 3) == {120: 3.0, 180: 3.0, 240: 3.0, 480: 3.0, 540: 3.0}
    assert summed(s, 1) is s


def test_backtest_portfolio_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.engine.forecast.test_backtest import main, write_csv

    a = write_csv(tmp_path / "coin-a.csv", 150, seed=1)
    b = write_csv(tmp_path / "coin-b.csv", 150, seed=2, skip=(40,))
    args = [str(a), str(b), "--horizons", "1,5", "--steps", "0", "--portfolio"]
    assert main([*args, "--json", "--weights", "2,1"]) == 0
    obj = json.loads(capsys.readouterr().out)
    port = obj["portfolio"]
    assert port["weights"] == [2.0, 1.0] and [r["horizon"] for r in port["range"]] == [1, 5]
    row = port["range"][0]
    assert row["corr"]["n"] > 50 and 0 <= row["corr"]["coverage80"] <= 1
    assert set(row) == {"horizon", "corr", "corr1m", "ends", "indep"}
    assert {"linear", "z-linear"} <= set(port["brier"][0])
    assert sum(r["n"] for r in port["reliability"]["z-linear"]) > 0
    assert main(args) == 0
    text = capsys.readouterr().out
    table = text[text.index("portfolio:") :]
    assert "reliability" in table and max(len(line) for line in table.splitlines()) <= 100
    assert main([str(a), "--portfolio"]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main([str(a), str(b), "--portfolio", "--weights", "1"]) == 2
