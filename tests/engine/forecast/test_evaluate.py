"""Evaluator math on hand-made series: persistence, lags, direction, coverage, state."""

from __future__ import annotations

import math
import random

from engine.forecast.evaluate import Evaluator, best_lag


def _series(n: int, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0, 1e-3) for _ in range(n)]


def _score_all(
    ev: Evaluator, h: int, ys: list[float], preds: list[float], width: float = 1.0
) -> None:
    for t, (y, p) in enumerate(zip(ys, preds)):
        ev.score(h, t, y, p, p, 0.0, (p - width, p + width, p - 2 * width, p + 2 * width))


def test_zero_predictor_is_persistence() -> None:
    ys = _series(500)
    ev = Evaluator((1,))
    _score_all(ev, 1, ys, [0.0] * len(ys))
    row = ev.row(1)
    assert row.n == 500
    assert row.rel_mae == 1.0 and row.rel_rmse == 1.0
    assert math.isclose(row.mae, sum(abs(y) for y in ys) / 500)
    assert row.dir_acc == 0.5  # no opinion: a coin flip
    assert row.best_lag == 0


def test_perfect_predictor_and_coverage() -> None:
    ys = _series(400)
    ev = Evaluator((5,))
    _score_all(ev, 5, ys, ys, width=1e-9)
    row = ev.row(5)
    assert row.mae == 0.0 and row.rel_mae == 0.0
    assert row.dir_acc == 1.0
    assert row.coverage80 == 1.0 and row.coverage95 == 1.0
    assert row.best_lag == 0


def test_a_lagged_copy_shows_up_as_lag_one() -> None:
    ys = _series(600)
    preds = [0.0] + ys[:-1]  # predicts the move that just happened
    ev = Evaluator((1,))
    _score_all(ev, 1, ys, preds)
    row = ev.row(1)
    assert row.best_lag == 1
    assert row.rel_mae > 1.2  # and it loses to "no change", as in the notebooks


def test_best_lag_ignores_shifts_within_noise() -> None:
    ys = _series(800, seed=5)
    rng = random.Random(9)
    noise = [rng.gauss(0.0, 1e-3) for _ in ys]
    recs = [(t, n, y) for t, (n, y) in enumerate(zip(noise, ys))]
    assert best_lag(recs, 3) == 0


def test_coverage_counts_and_median_width() -> None:
    ev = Evaluator((1,))
    for t in range(10):
        y = 0.0 if t < 8 else 5.0  # two misses out of ten
        b95 = 4.0 if t == 8 else 6.0
        ev.score(1, t, y, 0.0, 0.0, 0.0, (-1.0, 1.0, -b95, b95))
    row = ev.row(1)
    assert row.coverage80 == 0.8
    assert row.coverage95 == 0.9  # 5.0 is outside +-4, inside +-6
    assert row.width80 == 2.0


def test_direction_excludes_zero_moves() -> None:
    ev = Evaluator((1,))
    for t, (y, p) in enumerate([(0.0, 1.0), (1.0, 1.0), (-1.0, 1.0), (2.0, 3.0), (0.0, -1.0)]):
        ev.score(1, t, y, p, p, 0.0, (-9, 9, -9, 9))
    assert ev.row(1).dir_acc == 2 / 3


def test_no_scores_gives_nan_row() -> None:
    row = Evaluator((15,)).row(15)
    assert row.n == 0 and math.isnan(row.rel_mae) and row.best_lag == 0


def test_drift_baseline_is_scored() -> None:
    ev = Evaluator((1,))
    ev.score(1, 0, 0.002, 0.0, 0.0, 0.001, (-1, 1, -1, 1))
    assert math.isclose(ev.row(1).mae_drift, 0.001)


def test_state_round_trip() -> None:
    ys = _series(300)
    ev = Evaluator((1, 5))
    _score_all(ev, 1, ys, [0.5 * y for y in ys])
    _score_all(ev, 5, ys, [0.0] * len(ys))
    copy = Evaluator((1, 5))
    copy.load_state(ev.state())
    assert copy.rows() == ev.rows()


def test_cheap_rows_refresh_the_lag_every_so_often() -> None:
    from engine.forecast.evaluate import LAG_REFRESH

    ys = _series(600)
    ev = Evaluator((1,))
    _score_all(ev, 1, ys[:200], [0.0] * 200)
    assert ev.row(1, exact=False).best_lag == 0
    lagged = [0.0] + ys[:-1]
    for t in range(200, 200 + LAG_REFRESH - 1):  # a lagged copy from now on
        ev.score(1, t, ys[t], lagged[t], lagged[t], 0.0, (-1, 1, -1, 1))
    assert ev.row(1, exact=False).best_lag == 0  # cached
    assert ev.row(1, exact=True).best_lag == 1
    ev2 = Evaluator((1,))
    _score_all(ev2, 1, ys[:200], [0.0] * 200)
    ev2.row(1, exact=False)
    for t in range(200, 200 + LAG_REFRESH):
        ev2.score(1, t, ys[t], lagged[t], lagged[t], 0.0, (-1, 1, -1, 1))
    assert ev2.row(1, exact=False).best_lag == 1  # refreshed after LAG_REFRESH scores
