"""Engine plumbing with a stub forecaster: replay -> store/window -> forecasts -> events, restart, export."""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    ErrorEvent,
    Event,
    ForecastEvent,
    SnapshotEvent,
    StatusEvent,
)
from engine.runtime.engine import Engine
from engine.runtime.export import export_csv
from engine.settings.config import Settings
from engine.settings.locations import Locations
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

HEADER = "timestamp_ms,open,high,low,close,volume\n"


def make_csv(path: Path, minutes: int, start: int = 1_600_000_020) -> Path:
    start -= start % 60
    rows = "".join(f"{(start + 60 * m) * 1000},1,1,1,{100 + m % 7},1\n" for m in range(minutes))
    path.write_text(HEADER + rows)
    return path


def engine_for(home: Path, files: dict[str, Path], speed: float = 1e5) -> Engine:
    settings = Settings(
        source="replay",
        replay_files=tuple(files.values()),
        replay_coins=tuple(files),
        coins=tuple(files),
        speed=speed,
    )
    return Engine(settings, Locations.resolve(home), forecaster_factory=StubFactory(StubForecaster))


def run_until(engine: Engine, pred: Callable[[Event], bool], timeout: float = 20.0) -> list[Event]:
    seen: list[Event] = []
    done = threading.Event()

    def listen(ev: Event) -> None:
        seen.append(ev)
        if pred(ev):
            done.set()

    engine.subscribe(listen)
    engine.start()
    assert done.wait(timeout), f"timed out; last events: {seen[-3:]}"
    engine.wait_idle()
    return seen


def finished(ev: Event) -> bool:
    return isinstance(ev, StatusEvent) and ev.state == "done"


def test_replay_end_to_end_stores_bars_and_predictions(tmp_path: Path) -> None:
    files = {
        "bitcoin": make_csv(tmp_path / "b.csv", 50),
        "ethereum": make_csv(tmp_path / "e.csv", 30),
    }
    e = engine_for(tmp_path / "home", files)
    seen = run_until(e, finished)
    bars = [ev for ev in seen if isinstance(ev, BarEvent)]
    fcs = [ev for ev in seen if isinstance(ev, ForecastEvent)]
    assert len(bars) == 80
    assert len(fcs) == 80 - 2 * 4  # the stub warms up on 4 bars per coin
    snap = e.snapshot("bitcoin")
    assert len(snap.bars) == 50 and len(snap.forecasts) == 46
    assert snap.train is not None and snap.metrics is not None
    assert e.store.count_bars() == 80
    # every prediction is kept with the minute it is about
    rows = e.store.predictions_rows("bitcoin")
    assert all(target == made + 60 * h for made, h, target, *_ in rows)
    e.stop()


def test_restart_shows_stored_history_and_resumes(tmp_path: Path) -> None:
    files = {"bitcoin": make_csv(tmp_path / "b.csv", 40)}
    home = tmp_path / "home"
    e = engine_for(home, files, speed=1e5)
    run_until(e, finished)
    e.stop()
    assert (e.models_dir / "bitcoin.pt").exists()  # checkpoint written on stop
    e2 = engine_for(home, files)
    assert len(e2.snapshot("bitcoin").bars) == 40  # before start: the stored history
    seen = run_until(e2, finished)
    assert not [ev for ev in seen if isinstance(ev, BarEvent)]  # nothing replayed twice
    # stored forecasts come back once the engine runs, announced with a snapshot
    assert len(e2.snapshot("bitcoin").forecasts) == 36
    snaps = [ev for ev in seen if isinstance(ev, SnapshotEvent)]
    assert snaps and len(snaps[0].coins[0].forecasts) == 36
    assert e2.store.count_bars() == 40
    e2.stop()


def test_unknown_coin_is_reported_while_others_update(tmp_path: Path) -> None:
    files = {"bitcoin": make_csv(tmp_path / "b.csv", 20)}
    settings = Settings(
        source="replay",
        replay_files=(files["bitcoin"],),
        replay_coins=("bitcoin",),
        coins=("bitcoin", "notacoin"),
        speed=1e5,
    )
    e = Engine(
        settings, Locations.resolve(tmp_path / "h"), forecaster_factory=StubFactory(StubForecaster)
    )
    seen = run_until(e, finished)
    assert any(isinstance(ev, CoinsEvent) and "notacoin" in ev.unknown for ev in seen)
    assert any(isinstance(ev, ErrorEvent) and "notacoin" in ev.msg for ev in seen)
    assert len([ev for ev in seen if isinstance(ev, BarEvent)]) == 20
    e.stop()


def test_watchlist_changes_are_remembered(tmp_path: Path) -> None:
    home = tmp_path / "h"
    files = {
        "bitcoin": make_csv(tmp_path / "b.csv", 5),
        "ethereum": make_csv(tmp_path / "e.csv", 5),
    }
    e = engine_for(home, files, speed=1e5)
    run_until(e, finished)
    e.remove_coin("ethereum")
    e.add_coin("litecoin")
    e.wait_idle()
    assert e.coins() == ("bitcoin", "litecoin")
    e.stop()
    # The same replay (same files for the same coins) is the same world: its watchlist is back.
    settings = Settings(
        source="replay", replay_files=tuple(files.values()), replay_coins=tuple(files), speed=1e5
    )
    e2 = Engine(settings, Locations.resolve(home), forecaster_factory=StubFactory(StubForecaster))
    assert e2.coins() == ("bitcoin", "litecoin")


def test_export_has_bars_and_aligned_predictions(tmp_path: Path) -> None:
    files = {"bitcoin": make_csv(tmp_path / "b.csv", 30)}
    e = engine_for(tmp_path / "h", files)
    run_until(e, finished)
    out = e.export("bitcoin", tmp_path / "out.csv")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30
    assert rows[0]["pred_1m"] == ""  # nothing predicted for the first minutes
    assert float(rows[10]["pred_1m"]) == float(rows[9]["price"])  # the stub predicts no change
    assert rows[10]["net_1m"] == ""  # the stub has no network of its own
    e.stop()


def test_export_carries_the_network_forecast_beside_the_served_one(tmp_path: Path) -> None:
    from engine.store import Store

    store = Store(tmp_path / "db.sqlite3")
    store.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(3)])
    store.add_forecast(
        ForecastEvent("bitcoin", 0, 100.0, (1,), (0.0,), (-0.01,), (0.01,), raw=(0.02,))
    )
    rows = list(csv.DictReader(export_csv(store, "bitcoin", tmp_path / "x.csv", (1,)).open()))
    assert float(rows[1]["pred_1m"]) == 100.0  # served: no change from the base price
    assert float(rows[1]["net_1m"]) == pytest.approx(100.0 * math.exp(0.02))


def test_pause_and_reset_reach_the_model_and_reset_keeps_the_history(tmp_path: Path) -> None:
    files = {
        "bitcoin": make_csv(tmp_path / "b.csv", 30),
        "ethereum": make_csv(tmp_path / "e.csv", 30),
    }
    e = engine_for(tmp_path / "h", files, speed=1e5)
    run_until(e, finished)
    e.set_paused(True)
    e.wait_idle()
    time.sleep(0.1)
    assert e.snapshot("bitcoin").train.state == "paused"  # type: ignore[union-attr]
    before = e.store.predictions_rows("bitcoin")
    other = (e.store.predictions_rows("ethereum"), e.snapshot("ethereum"))
    exported_before = e.export("bitcoin", tmp_path / "before.csv").read_text()
    assert before and "pred_1m" in exported_before
    e.reset_model("bitcoin")
    e.wait_idle()
    time.sleep(0.1)
    # The model starts again; its price and prediction history stay: in the store, on the chart
    # and in a later export, every prediction made before the reset is still there.
    assert e.store.predictions_rows("bitcoin") == before
    assert e.snapshot("bitcoin").forecasts and e.snapshot("bitcoin").bars
    assert e.snapshot("bitcoin").metrics is None
    assert e.export("bitcoin", tmp_path / "after.csv").read_text() == exported_before
    # The other coin's state is untouched.
    assert (e.store.predictions_rows("ethereum"), e.snapshot("ethereum")) == other
    e.stop()


def test_demo_settings_use_bundled_data(tmp_path: Path) -> None:
    s = replace(Settings(), demo=True, speed=1e5)
    e = Engine(s, Locations.resolve(tmp_path / "h"), forecaster_factory=StubFactory(StubForecaster))
    assert e.mode == "DEMO"
    assert e.coins() == ("bitcoin", "ethereum", "litecoin")
    assert e.store.path.name == "demo.sqlite3"
    assert [m.id for m in e.search("btc")] == ["bitcoin"]


def test_a_live_source_is_not_built_to_say_it_has_nothing_to_describe(tmp_path: Path) -> None:
    # The header asks before the first frame; building CoinGecko's client there cost ~40 ms of
    # cold start (requests' import), on the UI thread.
    e = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(tmp_path / "h"),
        forecaster_factory=StubFactory(StubForecaster),
    )
    assert e.source_info == ""
    assert e._source is None  # still unbuilt: the engine builds it when it starts
    e.stop()
