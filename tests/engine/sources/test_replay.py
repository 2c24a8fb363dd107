"""Replay source: CSV parsing with reasons for bad rows, pacing, gaps, resume."""

from __future__ import annotations

import threading
from itertools import pairwise
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.events import Bar, StatusEvent
from engine.sources.replay import ReplaySource, demo_files, read_csv

HEADER = "timestamp_ms,open,high,low,close,volume\n"


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "x.csv"
    p.write_text(HEADER + body)
    return p


def test_demo_files_are_bundled_with_notice() -> None:
    files = demo_files()
    assert set(files) == {"bitcoin", "ethereum", "litecoin"}
    for path in files.values():
        assert path.is_file()
    assert (next(iter(files.values())).parent / "NOTICE").is_file()


def test_demo_has_the_known_gaps() -> None:
    bars = read_csv(demo_files()["bitcoin"], "bitcoin").bars
    gaps = [(a.ts, b.ts) for a, b in pairwise(bars) if b.ts - a.ts > 3600]
    assert len(gaps) == 1  # 2018-04-04 ~16:50 to midnight
    assert gaps[0][1] == 1522886400
    assert all(b.ts % 60 == 0 for b in bars)


def test_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "60000,1,1,1,1,1\n"
        "120000,1,1,1,0,1\n"  # zero close
        "180000,1,1,1,-1,1\n"  # negative
        "240000,1,1,1,nan,1\n"  # NaN
        "60000,1,1,1,1,1\n"  # out of order
        "300000,1,1,1,1000,1\n"  # spike
        "360000,1,1,1,1.01,1\n"
        "420000,abc,1,1,1,1\n"
        "480000,1,1\n",
    )
    rep = read_csv(p, "bitcoin")
    assert [b.ts for b in rep.bars] == [60, 360]
    reasons = [r for _, r in rep.rejected]
    assert len(reasons) == 7
    assert any("zero or negative" in r for r in reasons)
    assert any("non-finite" in r for r in reasons)
    assert any("out-of-order" in r for r in reasons)
    assert any("spike" in r for r in reasons)
    assert any("columns" in r for r in reasons)


def test_unusable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="header"):
        read_csv(_bad_header(tmp_path), "x")
    with pytest.raises(ConfigError, match="cannot read"):
        read_csv(tmp_path / "missing.csv", "x")


def _bad_header(tmp_path: Path) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n")
    return p


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_replay_paces_by_speed_and_crosses_long_gaps(tmp_path: Path) -> None:
    rows = "".join(f"{m * 60000},1,1,1,{1 + m / 1000},1\n" for m in (1, 2, 3, 101, 102))
    p = write(tmp_path, rows)
    clock = FakeClock()
    waits: list[float] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(round(timeout or 0, 6))
            clock.t += timeout or 0
            return False

    src = ReplaySource({"bitcoin": p}, speed=2.0, clock=clock)
    out: list[object] = []
    src.run(lambda: ("bitcoin",), out.append, Stop())
    bars = [o for o in out if isinstance(o, Bar)]
    assert [b.ts for b in bars] == [60, 120, 180, 6060, 6120]
    assert waits == [0.5, 0.5, 0.5, 0.5]  # the 98-minute hole is crossed in one step
    statuses = [o for o in out if isinstance(o, StatusEvent)]
    assert any("gap" in s.message for s in statuses)
    assert statuses[-1].state == "done"


def test_replay_resumes_after_stored_history(tmp_path: Path) -> None:
    p = write(tmp_path, "".join(f"{m * 60000},1,1,1,1,1\n" for m in range(5)))
    src = ReplaySource({"bitcoin": p}, speed=1e6, start_after=lambda coin: 120)
    out: list[object] = []
    src.run(lambda: ("bitcoin",), out.append, threading.Event())
    assert [o.ts for o in out if isinstance(o, Bar)] == [180, 240]
    assert src.remaining() == 2


def test_unknown_coin_is_reported_and_others_play(tmp_path: Path) -> None:
    p = write(tmp_path, "60000,1,1,1,1,1\n")
    src = ReplaySource({"bitcoin": p}, speed=1e6)
    out: list[object] = []
    src.run(lambda: ("bitcoin", "nosuchcoin"), out.append, threading.Event())
    assert any(getattr(o, "unknown", ()) == ("nosuchcoin",) for o in out)
    assert [o.coin for o in out if isinstance(o, Bar)] == ["bitcoin"]


def test_search_matches_name_and_symbol() -> None:
    from engine.sources.replay import DEMO_NAMES

    src = ReplaySource(demo_files(), speed=1, names=DEMO_NAMES)
    assert [m.id for m in src.search("eth")] == ["ethereum"]
    assert [m.id for m in src.search("LTC")] == ["litecoin"]
    assert src.search("") == []


def test_finished_reads_only_the_tail(tmp_path: Path) -> None:
    p = write(tmp_path, "".join(f"{m * 60000},1,1,1,1,1\n" for m in range(1, 6)))
    assert not ReplaySource({"bitcoin": p}, speed=1, start_after=lambda c: None).finished()
    assert not ReplaySource({"bitcoin": p}, speed=1, start_after=lambda c: 240).finished()
    assert ReplaySource({"bitcoin": p}, speed=1, start_after=lambda c: 300).finished()
