"""RollingWindow: bounded, strictly increasing, immutable snapshots."""

from __future__ import annotations

import pytest

from engine.events import Bar
from engine.runtime.window import RollingWindow


def test_bounded_and_ordered() -> None:
    w = RollingWindow("bitcoin", maxlen=3)
    for t in (1, 2, 3, 4):
        assert w.append(Bar("bitcoin", t * 60, float(t)))
    assert [b.ts for b in w.snapshot()] == [120, 180, 240]
    assert not w.append(Bar("bitcoin", 240, 9.0))  # repeated minute
    assert not w.append(Bar("bitcoin", 60, 9.0))  # older minute
    assert len(w) == 3


def test_snapshot_is_an_immutable_copy() -> None:
    w = RollingWindow("bitcoin")
    w.append(Bar("bitcoin", 60, 1.0))
    snap = w.snapshot()
    w.append(Bar("bitcoin", 120, 2.0))
    assert isinstance(snap, tuple) and len(snap) == 1
    assert len(w.snapshot()) == 2


def test_other_coin_is_refused() -> None:
    with pytest.raises(ValueError):
        RollingWindow("bitcoin").append(Bar("ethereum", 60, 1.0))
