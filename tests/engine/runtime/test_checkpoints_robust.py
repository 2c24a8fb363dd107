"""Damaged, hostile or foreign checkpoints: Forecaster.load raises ModelError only; the engine sets them aside.

A pickle payload inside a .pt file must never run (weights_only=True).
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from engine.errors import ModelError
from engine.events import Bar, ErrorEvent, Event
from engine.forecast.forecaster import ForecastConfig, Forecaster
from engine.runtime.engine import Engine
from engine.settings.config import Settings
from engine.settings.locations import Locations
from tests.fakes.chaos import ScriptedSource, bar
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

torch.set_num_threads(1)
MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "cryptotui-pwned-marker"


class Payload:
    """Unpickling this would create MARKER: proof that code ran."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fc = Forecaster("bitcoin", ForecastConfig())
    for m in range(1, 40):
        fc.observe(Bar("bitcoin", 1_704_067_200 + 60 * m, 100.0 + math.sin(m / 3)))
    path = tmp_path_factory.mktemp("ck") / "bitcoin.pt"
    fc.save(path)
    return path


def corrupt_variants(good: Path, d: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    out: dict[str, bytes] = {
        "empty": b"",
        "garbage": os.urandom(4096),
        "truncated": raw[: len(raw) // 2],
        "flipped": raw[:200] + bytes(b ^ 0xFF for b in raw[200:400]) + raw[400:],
        "text": b'{"format": 1}',
    }
    buf = io.BytesIO()
    torch.save({"format": "something else"}, buf)
    out["foreign_dict"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save([1, 2, 3], buf)
    out["a_list"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save({"model": Payload()}, buf)
    out["pickle_payload"] = buf.getvalue()
    ckpt = torch.load(good, weights_only=True)
    ckpt["config"]["hidden"] = int(ckpt["config"]["hidden"]) * 2
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    out["other_config"] = buf.getvalue()
    ckpt = torch.load(good, weights_only=True)
    del ckpt["learner"]
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    out["missing_key"] = buf.getvalue()
    paths = {}
    for name, data in out.items():
        p = d / f"{name}.pt"
        p.write_bytes(data)
        paths[name] = p
    # A zip (the .pt container) whose pickle was swapped for the payload's.
    z = d / "swapped.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(z, "w") as dst:
        evil = zipfile.ZipFile(io.BytesIO(out["pickle_payload"]))
        evil_pkl = next(n for n in evil.namelist() if n.endswith("data.pkl"))
        for info in src.infolist():
            data = evil.read(evil_pkl) if info.filename.endswith("data.pkl") else src.read(info)
            dst.writestr(info, data)
    paths["swapped"] = z
    return paths


def test_good_checkpoint_round_trips(good: Path) -> None:
    fc = Forecaster.load(good, "bitcoin")
    assert fc.coin == "bitcoin"


def test_every_damaged_or_hostile_checkpoint_is_a_model_error_and_runs_nothing(
    good: Path, tmp_path: Path
) -> None:
    MARKER.unlink(missing_ok=True)
    for name, path in corrupt_variants(good, tmp_path).items():
        with pytest.raises(ModelError) as info:
            Forecaster.load(path, "bitcoin")
        assert str(path) in info.value.msg or path.name in info.value.msg, (name, info.value.msg)
    assert not MARKER.exists(), "a pickle payload ran while loading a checkpoint"


def run_to_idle(engine: Engine, idle_timeout: float) -> list[Event]:
    """Start ``engine``, let its scripted source run out and the engine go idle, stop it; its events."""
    events: list[Event] = []
    engine.subscribe(events.append)
    engine.start()
    try:
        assert engine.source.done.wait(10)  # type: ignore[attr-defined]
        assert engine.wait_idle(idle_timeout)
    finally:
        engine.stop()
    return events


def test_engine_sets_a_bad_checkpoint_aside_says_so_and_starts_fresh(home: Path) -> None:
    models = Locations.resolve(home).models_dir(False)
    models.mkdir(parents=True)
    (models / "bitcoin.pt").write_bytes(b"\x00garbage")
    engine = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(home),
        source=ScriptedSource([bar("bitcoin", m, 100.0 + m) for m in range(1, 8)]),
        forecaster_factory=StubFactory(StubForecaster),
    )
    events = run_to_idle(engine, 10)
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.coin == "bitcoin"]
    assert errors and "set aside as bitcoin.pt.bad-" in errors[0].msg
    aside = list(models.glob("bitcoin.pt.bad-*"))
    assert (
        len(aside) == 1 and aside[0].read_bytes() == b"\x00garbage"
    )  # kept for the user, unchanged
    assert (models / "bitcoin.pt").exists()  # the fresh model was saved on stop


def test_a_checkpoint_of_an_earlier_model_configuration_is_kept_and_retrained_without_alarm(
    home: Path,
) -> None:
    # As saved by 0.1.0 (hidden 24): sound, but for another network shape.
    from dataclasses import replace

    from engine.errors import ModelConfigChanged

    old = Forecaster("bitcoin", replace(ForecastConfig(), hidden=24))
    for m in range(1, 40):
        old.observe(Bar("bitcoin", 1_704_067_200 + 60 * m, 100.0 + math.sin(m / 3)))
    models = Locations.resolve(home).models_dir(False)
    models.mkdir(parents=True)
    old.save(models / "bitcoin.pt")
    saved = (models / "bitcoin.pt").read_bytes()
    with pytest.raises(ModelConfigChanged):
        Forecaster.load(models / "bitcoin.pt", "bitcoin", ForecastConfig())

    engine = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(home),
        source=ScriptedSource([bar("bitcoin", m, 100.0 + m) for m in range(1, 8)]),
    )
    events = run_to_idle(engine, 30)
    assert not [e for e in events if isinstance(e, ErrorEvent) and e.coin == "bitcoin"]  # no alarm
    kept = list(models.glob("bitcoin.pt.old-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == saved  # the old model, unchanged
    assert not list(models.glob("bitcoin.pt.bad-*"))
    fresh = Forecaster.load(
        models / "bitcoin.pt", "bitcoin", ForecastConfig()
    )  # retrained, current shape
    assert fresh.config.hidden == ForecastConfig().hidden


def test_a_checkpoint_of_the_earlier_format_is_an_upgrade_not_damage(tmp_path: Path) -> None:
    # Format 1 (conformal calibration, 8 input features) as the earlier release wrote it: the
    # engine keeps it aside as .old and retrains quietly, like any configuration change.
    import torch

    from engine.errors import ModelConfigChanged, ModelError

    fc = Forecaster("bitcoin", ForecastConfig())
    for m in range(1, 40):
        fc.observe(Bar("bitcoin", 1_704_067_200 + 60 * m, 100.0 + math.sin(m / 3)))
    path = tmp_path / "bitcoin.pt"
    fc.save(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["format"] = 1
    torch.save(ckpt, path)
    with pytest.raises(ModelConfigChanged):
        Forecaster.load(path, "bitcoin", ForecastConfig())
    ckpt["format"] = 99  # from a newer cryptotui: not ours to rewrite
    torch.save(ckpt, path)
    with pytest.raises(ModelError, match="newer"):
        Forecaster.load(path, "bitcoin", ForecastConfig())
