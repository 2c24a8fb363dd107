"""Kill -9: `cryptotui serve --demo` killed at random moments and restarted; nothing written is lost.

After every kill: ``PRAGMA integrity_check`` is ok; each coin's stored bars are exactly a prefix
of its demo file (no duplicate, no out-of-order, no invented minute, at most the in-flight minute
missing and replayed on restart); the stored history only grows; predictions are unique; every
checkpoint loads, or was set aside with a message. A SIGTERM now and then makes the engine write
checkpoints, so later kills land on a data dir that has them.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.sources.replay import demo_files, read_csv
from tests.conftest import ROOT

SPEED = "60"  # demo minutes per second: ~180 bars/s over the three coins, ~65 s for the whole demo
from tests.dbread import count_bars


def demo_bars() -> dict[str, list[tuple[int, float]]]:
    return {
        coin: [(b.ts, b.price) for b in read_csv(path, coin, "demo").bars]
        for coin, path in demo_files().items()
    }


def count_predictions(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def start(home: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINGECKO_")}
    env["CRYPTOTUI_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--demo", "--speed", SPEED, "--port", "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "stderr.txt", "ab"),
    )


def inspect(
    home: Path, expected: dict[str, list[tuple[int, float]]]
) -> dict[str, list[tuple[int, float]]]:
    db = home / "demo.sqlite3"
    con = sqlite3.connect(db)  # read-write: recovers the WAL the killed process left
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        got: dict[str, list[tuple[int, float]]] = {}
        for coin in expected:
            got[coin] = [
                (int(t), float(p))
                for t, p in con.execute(
                    "SELECT ts, price FROM bars WHERE coin=? ORDER BY ts", (coin,)
                )
            ]
        dup = con.execute(
            "SELECT COUNT(*) FROM (SELECT coin, made_ts, horizon FROM predictions "
            "GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert dup == 0
    finally:
        con.close()
    for coin, bars in got.items():
        assert bars == expected[coin][: len(bars)], (
            f"{coin}: stored bars are not a prefix of the recording"
        )
    return got


def kill_loop(home: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    expected = demo_bars()
    home.mkdir(parents=True, exist_ok=True)
    db = home / "demo.sqlite3"
    previous = {coin: 0 for coin in expected}
    sigkills = sigterms = 0
    for round_ in range(kills + kills // 4):
        graceful = round_ % 5 == 2  # now and then a clean stop, which writes checkpoints
        before = count_bars(db)
        proc = start(home)
        try:
            # Kill at a random point of the stream (startup, bar writes, training), not a fixed time.
            target = before + rng.randrange(1, 500)
            deadline = time.monotonic() + 60
            while count_bars(db) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(rng.uniform(0.005, 0.05))
            assert proc.poll() is None, (home / "stderr.txt").read_text()[-2000:]
            assert count_bars(db) >= target, "no progress after a restart"
            if graceful:
                # Stop cleanly only once the model is predicting, so checkpoints get written.
                preds = count_predictions(db)
                while count_predictions(db) <= preds and time.monotonic() < deadline + 60:
                    time.sleep(0.1)
        finally:
            if graceful:
                proc.send_signal(signal.SIGTERM)
                sigterms += 1
            else:
                proc.kill()
                sigkills += 1
            proc.wait(30)
        got = inspect(home, expected)
        total = sum(len(b) for b in got.values())
        assert total > sum(previous.values()), "the stored history did not grow"
        for coin, bars in got.items():
            assert len(bars) >= previous[coin], f"{coin}: bars were lost"
        previous = {coin: len(b) for coin, b in got.items()}
        if sigkills >= kills:
            break
    return {"sigkill": sigkills, "sigterm": sigterms, "bars": sum(previous.values())}


def check_checkpoints(home: Path) -> tuple[int, int]:
    """Every checkpoint left loads; a set-aside one was announced. Returns (loaded, set aside)."""
    import torch

    torch.set_num_threads(1)
    from engine.errors import ModelError
    from engine.forecast.forecaster import Forecaster

    models = home / "models-demo"
    loaded = 0
    for path in sorted(models.glob("*.pt")) if models.is_dir() else []:
        try:
            Forecaster.load(path, path.stem)
            loaded += 1
        except ModelError as exc:
            pytest.fail(f"a checkpoint written by the app does not load: {exc.msg}")
    aside = list(models.glob("*.bad-*")) if models.is_dir() else []
    if aside:
        log = (home / "cryptotui.log").read_text(errors="replace") + (
            home / "stderr.txt"
        ).read_text(errors="replace")
        assert "set aside" in log
    return loaded, len(aside)


def test_kill9_short(tmp_path: Path) -> None:
    home = tmp_path / "h"
    figures = kill_loop(home, kills=5, seed=3)
    loaded, aside = check_checkpoints(home)
    assert figures["sigkill"] == 5
    assert loaded + aside == 3  # the clean stop wrote one checkpoint per demo coin
    print(f"\nkill -9 short: {figures}, checkpoints loaded {loaded}, set aside {aside}")


@pytest.mark.slow
def test_kill9_long(tmp_path: Path) -> None:
    home = tmp_path / "h"
    figures = kill_loop(home, kills=20, seed=17)
    loaded, aside = check_checkpoints(home)
    assert figures["sigkill"] == 20
    assert loaded + aside == 3
    print(f"\nkill -9 long: {figures}, checkpoints loaded {loaded}, set aside {aside}")
