"""Feature rows and targets: past data only, scaled, winsorised, gaps visible."""

from __future__ import annotations

import math
import random

from engine.forecast.features import CLIP, N_FEATURES, Normaliser, log_return, scaled_target


def _walk(n: int, seed: int = 1, vol: float = 1e-3) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    p, out = 100.0, []
    for i in range(n):
        p *= math.exp(rng.gauss(0.0, vol))
        out.append((1_600_000_020 + 60 * i - 20, p))  # ts a multiple of 60
    return out


def _rows(series: list[tuple[int, float]]) -> list[list[float]]:
    norm = Normaliser()
    return [norm.update(ts, p) for ts, p in series]


def test_rows_use_only_the_past() -> None:
    series = _walk(300)
    full = _rows(series)
    prefix = _rows(series[:150])
    assert full[:150] == prefix
    assert all(len(r) == N_FEATURES for r in full)


def test_return_is_scaled_by_volatility_known_before_the_bar() -> None:
    norm = Normaliser()
    for ts, p in _walk(200, vol=1e-3):
        norm.update(ts, p)
    vol_before = norm.vol
    ts = 1_600_000_000 + 60 * 200
    row = norm.update(ts, norm.last_price * math.exp(0.5 * vol_before))
    assert math.isclose(row[0], 0.5, rel_tol=1e-9)
    assert math.isclose(row[1], 0.5, rel_tol=1e-9)


def test_a_jump_is_winsorised_and_cannot_blow_up_the_scale() -> None:
    norm = Normaliser()
    for ts, p in _walk(200, vol=1e-3):
        norm.update(ts, p)
    vol_before = norm.vol
    row = norm.update(1_600_000_000 + 60 * 200, norm.last_price * 2.0)  # +69 % in a minute
    assert row[0] == CLIP
    assert norm.vol < 3 * vol_before


def test_gap_feature_and_per_bar_scaling_of_gap_returns() -> None:
    norm = Normaliser()
    norm.update(0, 100.0)
    norm.update(60, 100.1)
    row = norm.update(60 + 4 * 60, 100.1)  # three minutes missing
    assert math.isclose(row[4], math.log(4))
    assert norm.last_index == 5


def test_flat_market_keeps_a_volatility_floor() -> None:
    norm = Normaliser()
    for i in range(500):
        row = norm.update(60 * i, 100.0)
        assert all(math.isfinite(v) for v in row)
    assert norm.vol > 0
    assert math.isfinite(scaled_target(100.0, 100.01, norm.scale(5)))


def test_scale_grows_with_the_square_root_of_the_horizon() -> None:
    norm = Normaliser()
    for ts, p in _walk(100):
        norm.update(ts, p)
    assert math.isclose(norm.scale(16), 4 * norm.scale(1))


def test_state_round_trip() -> None:
    norm = Normaliser()
    series = _walk(120)
    for ts, p in series[:100]:
        norm.update(ts, p)
    copy = Normaliser.from_state(norm.state())
    for ts, p in series[100:]:
        assert copy.update(ts, p) == norm.update(ts, p)


def test_bad_prices_give_no_return() -> None:
    assert log_return(0.0, 1.0) == 0.0
    assert log_return(1.0, float("nan")) == 0.0
    assert math.isclose(log_return(100.0, 110.0), math.log(1.1))
