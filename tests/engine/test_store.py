"""Store: idempotent bar writes, filled upgrades, predictions with outcomes, schema and corruption."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.errors import StoreError
from engine.events import Bar, ForecastEvent
from engine.store import SCHEMA_VERSION, Store


def bar(ts: int, price: float = 100.0, filled: bool = False, coin: str = "bitcoin") -> Bar:
    return Bar(coin, ts, price, source="test", filled=filled)


def test_redelivered_bars_are_not_duplicated(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite3")
    assert s.add_bars([bar(60), bar(120)]) == 2
    assert s.add_bars([bar(60, 999.0), bar(120)]) == 0
    assert [b.price for b in s.bars("bitcoin")] == [100.0, 100.0]
    assert s.count_bars() == 2


def test_real_bar_replaces_filled_but_not_the_reverse(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite3")
    s.add_bars([bar(60, 1.0, filled=True), bar(120, 2.0)])
    assert s.add_bars([bar(60, 1.5), bar(120, 9.0, filled=True)]) == 1
    got = {b.ts: (b.price, b.filled) for b in s.bars("bitcoin")}
    assert got == {60: (1.5, False), 120: (2.0, False)}


def test_bars_since_and_limit_keep_time_order(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite3")
    s.add_bars([bar(t * 60, float(t)) for t in range(1, 11)])
    assert [b.ts for b in s.bars("bitcoin", limit=3)] == [480, 540, 600]
    assert [b.ts for b in s.bars("bitcoin", since=540)] == [540, 600]
    assert s.last_ts("bitcoin") == 600
    assert s.last_ts("ethereum") is None


def test_forecast_round_trip_and_outcome(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite3")
    fc = ForecastEvent(
        "bitcoin",
        600,
        100.0,
        (1, 5),
        (0.01, -0.02),
        (0.0, -0.03),
        (0.02, -0.01),
        (-0.01, -0.04),
        (0.03, 0.0),
    )
    s.add_forecast(fc)
    assert s.forecasts("bitcoin") == [fc]
    assert s.record_outcome(bar(660, 110.0)) == 1
    assert s.record_outcome(bar(900, 90.0, filled=True)) == 0  # filled bars never score
    rows = {r[1]: r[9] for r in s.predictions_rows("bitcoin")}
    assert rows[1] == pytest.approx(math.log(1.1))
    assert rows[5] is None
    with_raw = ForecastEvent("ethereum", 660, 100.0, (1, 5), (0.0, 0.0), raw=(0.001, -0.002))
    s.add_forecast(with_raw)
    assert s.forecasts("ethereum", since=660)[0].raw == (0.001, -0.002)


def test_reopen_keeps_data_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    Store(path).add_bars([bar(60)])
    s = Store(path)
    assert s.count_bars() == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.integrity_ok()


def test_corrupt_database_is_named_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as err:
        Store(path)
    assert str(path) in err.value.msg
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_bars_from_rows_are_the_bars_the_dataclass_makes(tmp_path: Path) -> None:
    """The store's fast row -> Bar path gives objects equal, field for field and in type, to
    Bar(...) itself, and covers every field of Bar in its order."""
    import dataclasses
    import random

    from engine.events import _BAR_FIELDS, bars_from_rows

    assert _BAR_FIELDS == tuple(f.name for f in dataclasses.fields(Bar))
    rng = random.Random(2)
    rows: list[tuple[Any, ...]] = [
        (
            rng.choice(("bitcoin", "ethereum")),
            60 * i,
            rng.uniform(1, 9e4),
            *(rng.choice((None, rng.uniform(1, 9e4))) for _ in range(4)),
            rng.choice(("coingecko", "kraken", "")),
            rng.choice((0, 1)),
        )
        for i in range(500)
    ]
    made = bars_from_rows(rows)
    want = [
        Bar(c, ts, p, o, h, lo, v, src, filled=bool(f)) for c, ts, p, o, h, lo, v, src, f in rows
    ]
    assert made == want
    assert all(type(b.filled) is bool and hash(b) == hash(w) for b, w in zip(made, want))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].price = 1.0  # type: ignore[misc]
    store = Store(tmp_path / "s.sqlite3")
    store.add_bars(want)
    assert store.bars("bitcoin") == [b for b in want if b.coin == "bitcoin"]
    store.close()


def test_an_export_page_reads_predictions_by_their_target_index(tmp_path: Path) -> None:
    # Walking the primary key instead (every prediction of the coin, for each page) made an
    # export quadratic: 2 M minutes took 133 s instead of 50.
    from engine.store import PREDICTIONS_ABOUT

    store = Store(tmp_path / "db.sqlite3")
    store.add_forecast(ForecastEvent("bitcoin", 60, 1.0, (1, 5), (0.0, 0.0)))
    plan = store._db.execute(
        "EXPLAIN QUERY PLAN " + PREDICTIONS_ABOUT, ("bitcoin", 0, 1)
    ).fetchall()
    assert "predictions_target" in str(plan)
    assert [r[:3] for r in store.predictions_about("bitcoin", 120, 120)] == [(60, 1, 120)]
    store.close()
