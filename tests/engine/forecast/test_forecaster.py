"""Forecaster contracts (river style), label maturity, filled bars, checkpoints, divergence guard."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest
import torch

from engine.errors import ModelError
from engine.events import Bar, ForecastEvent
from engine.forecast.forecaster import ForecastConfig, Forecaster, LstmFactory

torch.set_num_threads(1)

SMALL = ForecastConfig(horizons=(1, 5), window=10, hidden=8, batch=8, min_samples=8)
T0 = 1_700_000_040 - 1_700_000_040 % 60


def walk(n: int, coin: str = "bitcoin", seed: int = 7, start: int = T0, **kw: object) -> list[Bar]:
    rng = random.Random(seed)
    p, out = 30_000.0, []
    for i in range(n):
        p *= math.exp(rng.gauss(0.0, 1e-3))
        out.append(Bar(coin, start + 60 * i, p, p, p * 1.0005, p * 0.9995, 1.0, "test", **kw))  # type: ignore[arg-type]
    return out


def run(fc: Forecaster, bars: list[Bar], train: bool = True) -> list[ForecastEvent | None]:
    out = []
    for b in bars:
        out.append(fc.observe(b))
        if train:
            fc.train()
    return out


def test_warm_up_then_forecasts_with_ordered_bands() -> None:
    fc = Forecaster("bitcoin", SMALL)
    outs = run(fc, walk(40))
    assert all(o is None for o in outs[: SMALL.window - 1])
    assert fc.status().state in ("training", "idle")
    ev = outs[-1]
    assert ev is not None and ev.horizons == (1, 5) and ev.coin == "bitcoin"
    for i in range(2):
        assert ev.lo95[i] <= ev.lo80[i] <= ev.mean[i] <= ev.hi80[i] <= ev.hi95[i]
    assert ev.hi80[1] - ev.lo80[1] > ev.hi80[0] - ev.lo80[0]  # wider further out


def test_status_while_warming_up() -> None:
    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(3), train=False)
    st = fc.status()
    assert st.state == "warming up" and st.progress is not None and 0 < st.progress < 1


def test_observe_does_not_mutate_its_input() -> None:
    bars = walk(30)
    before = [dataclasses.astuple(b) for b in bars]
    fc = Forecaster("bitcoin", SMALL)
    run(fc, bars)
    fc.pretrain(bars)
    assert [dataclasses.astuple(b) for b in bars] == before


def test_same_seed_same_forecasts_and_different_seed_differs() -> None:
    bars = walk(120)
    a = run(Forecaster("bitcoin", SMALL, seed=1), bars)
    b = run(Forecaster("bitcoin", SMALL, seed=1), bars)
    c = run(Forecaster("bitcoin", SMALL, seed=2), bars)
    assert a == b
    assert [o.raw for o in a if o] != [o.raw for o in c if o]  # the network's own mean


def test_labels_mature_after_h_bars_and_are_scored_once() -> None:
    n = 60
    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(n), train=False)
    first = SMALL.window - 1  # index of the first forecast
    rows = {r.horizon: r for r in fc.metrics().rows}
    assert rows[1].n == n - first - 1
    assert rows[5].n == n - first - 5
    assert len(fc.learner.buffer) == n - first - 1  # a sample enters on its first label


def test_a_missing_target_bar_is_not_scored() -> None:
    bars = walk(40)
    del bars[25]  # one minute missing: the forecasts 1 and 5 minutes before it lose a label
    full = Forecaster("bitcoin", SMALL)
    run(full, walk(40), train=False)
    gap = Forecaster("bitcoin", SMALL)
    run(gap, bars, train=False)
    r_full = {r.horizon: r.n for r in full.metrics().rows}
    r_gap = {r.horizon: r.n for r in gap.metrics().rows}
    assert r_gap[1] == r_full[1] - 2  # no label for 24 -> 25, no forecast at 25 for 26
    assert r_gap[5] == r_full[5] - 2


def test_filled_bars_are_never_targets_nor_scored() -> None:
    fc = Forecaster("bitcoin", SMALL)
    outs = run(fc, walk(80, filled=True))
    assert outs[-1] is not None  # filled bars still serve as context for a forecast
    assert all(r.n == 0 for r in fc.metrics().rows)
    assert len(fc.learner.buffer) == 0
    assert fc.train() is None  # nothing to learn
    # Real bars after a backfill: only real-to-real pairs count.
    real = walk(20, start=T0 + 80 * 60, seed=8)
    run(fc, real, train=False)
    rows = {r.horizon: r.n for r in fc.metrics().rows}
    assert rows[1] == 19 and rows[5] == 15


def test_train_needs_samples_then_reports() -> None:
    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(12), train=False)
    assert fc.train() is None
    run(fc, walk(30, start=T0 + 12 * 60), train=False)
    ev = fc.train(3)
    assert ev is not None and ev.state == "training" and ev.step == 3
    assert ev.loss is not None and math.isfinite(ev.loss) and len(ev.losses) == 3
    assert ev.samples == len(fc.learner.buffer)


def test_duplicate_and_out_of_order_bars_are_ignored() -> None:
    bars = walk(20)
    fc = Forecaster("bitcoin", SMALL)
    run(fc, bars, train=False)
    assert fc.observe(bars[-1]) is None and fc.observe(bars[3]) is None
    with pytest.raises(ValueError):
        fc.observe(walk(1, coin="ethereum", start=T0 + 3600)[0])


def test_checkpoint_round_trip_gives_identical_forecasts(tmp_path: Path) -> None:
    bars = walk(150)
    fc = Forecaster("bitcoin", SMALL, seed=3)
    run(fc, bars[:100])
    path = tmp_path / "models" / "bitcoin.pt"
    fc.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["bitcoin.pt"]  # no temp file left
    back = Forecaster.load(path, "bitcoin")
    assert back.config == fc.config and back.learner.step == fc.learner.step
    assert back.metrics() == fc.metrics()
    assert run(back, bars[100:], train=False) == run(fc, bars[100:], train=False)


def test_corrupt_or_incompatible_checkpoint_raises_model_error(tmp_path: Path) -> None:
    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(30))
    good = tmp_path / "good.pt"
    fc.save(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    other = tmp_path / "other.pt"
    torch.save({"format": 1, "hello": torch.zeros(2)}, other)
    for bad in (truncated, junk, other, tmp_path / "missing.pt"):
        with pytest.raises(ModelError):
            Forecaster.load(bad, "bitcoin")
    with pytest.raises(ModelError):
        Forecaster.load(good, "bitcoin", dataclasses.replace(SMALL, hidden=12))


def test_divergence_guard_rolls_back_on_injected_nan() -> None:
    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(120))
    good = [p.detach().clone() for p in fc.learner.model.parameters()]
    with torch.no_grad():
        fc.learner.model.lstm.get_parameter("weight_hh_l0")[0, 0] = float("nan")
    ev = fc.train(2)
    assert ev is not None and ev.state == "rolled back"
    assert "rolled back" in ev.message and ev.lr is not None and ev.lr < SMALL.lr
    params = list(fc.learner.model.parameters())
    assert all(bool(torch.isfinite(p).all()) for p in params)
    # Back to the last good snapshot (at most guard_every steps old), then learning goes on.
    assert any(not torch.equal(a, b) for a, b in zip(good, params)) or fc.learner.step % 50 == 0
    assert fc.status().state == "rolled back"
    ev2 = fc.train(2)
    assert ev2 is not None and ev2.loss is not None and math.isfinite(ev2.loss)
    out = fc.observe(walk(1, start=T0 + 200 * 60)[0])
    assert out is not None and all(math.isfinite(v) for v in out.mean + out.hi95)


def test_pretrain_reports_progress_to_one() -> None:
    seen: list[float] = []
    fc = Forecaster("bitcoin", SMALL)
    ev = fc.pretrain(walk(200), seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert ev.state == "training" and ev.step > 0


def test_shared_factory_shares_one_model() -> None:
    make = LstmFactory(SMALL, shared=True, seed=0).make
    btc, eth = make("bitcoin"), make("ethereum")
    assert btc.learner is eth.learner
    run(btc, walk(30), train=False)
    n = len(btc.learner.buffer)
    run(eth, walk(30, coin="ethereum", seed=9), train=False)
    assert len(eth.learner.buffer) == 2 * n
    assert btc.metrics().rows != eth.metrics().rows  # scores stay per coin
    per = LstmFactory(SMALL, shared=False)
    assert per.make("bitcoin").learner is not per.make("ethereum").learner


def test_cross_coin_input_changes_the_forecast() -> None:
    bars = walk(40)
    a, b = Forecaster("bitcoin", SMALL), Forecaster("bitcoin", SMALL)
    for bar in bars:
        ea, eb = a.observe(bar), b.observe(bar, ref=2.0)
    assert ea is not None and eb is not None and ea.raw != eb.raw


def test_a_forecast_cannot_see_later_bars() -> None:
    bars = walk(80)
    other = bars[:50] + walk(30, seed=99, start=bars[50].ts)  # a different future
    a = run(Forecaster("bitcoin", SMALL), bars)
    b = run(Forecaster("bitcoin", SMALL), other)
    assert a[:50] == b[:50]
    assert a[50:] != b[50:]


def test_training_on_another_thread_while_observing() -> None:
    import threading

    fc = Forecaster("bitcoin", SMALL)
    run(fc, walk(40), train=False)
    stop = threading.Event()
    errors: list[BaseException] = []

    def trainer() -> None:
        try:
            while not stop.is_set():
                fc.train(1)
        # Any failure on this thread, whatever its kind: the assert below shows it.
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    th = threading.Thread(target=trainer)
    th.start()
    try:
        outs = run(fc, walk(150, start=T0 + 40 * 60, seed=11), train=False)
    finally:
        stop.set()
        th.join()
    assert not errors
    assert fc.learner.step > 0
    assert all(o is not None and all(math.isfinite(v) for v in o.mean + o.lo95) for o in outs)


def test_shared_mode_survives_a_reload(tmp_path: Path) -> None:
    btc = LstmFactory(SMALL, shared=True, seed=0).make("bitcoin")
    run(btc, walk(60))
    btc.save(tmp_path / "bitcoin.pt")
    factory = LstmFactory(SMALL, shared=True, seed=0)
    eth = factory.make("ethereum")
    back = factory.load(tmp_path / "bitcoin.pt", "bitcoin")
    assert back.learner is eth.learner and back.learner.step == btc.learner.step


def test_warm_feeds_only_the_missed_minutes(tmp_path: Path) -> None:
    bars = walk(90)
    fc = Forecaster("bitcoin", SMALL)
    run(fc, bars[:60])
    fc.save(tmp_path / "b.pt")
    back = Forecaster.load(tmp_path / "b.pt", "bitcoin")
    last = back.warm(bars)  # the whole stored window, as the engine gives it
    assert back.bars_seen == 90 and back.learner.step == fc.learner.step
    assert last is not None and last.ts == bars[-1].ts


def test_scaled_return_at_is_only_for_the_last_bar() -> None:
    bars = walk(20)
    fc = Forecaster("bitcoin", SMALL)
    run(fc, bars, train=False)
    z = fc.scaled_return_at(bars[-1].ts)
    assert z is not None and math.isfinite(z)
    assert fc.scaled_return_at(bars[-2].ts) is None
