"""Two instances on one data dir: the second is refused with a message naming the first; nothing is corrupted."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import StoreError
from engine.runtime.engine import Engine
from engine.settings.config import Settings
from engine.settings.locations import Locations
from tests.conftest import ROOT
from tests.dbread import count_bars
from tests.fakes.chaos import ScriptedSource, bar
from tests.fakes.stub_forecaster import StubFactory, StubForecaster


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINGECKO_")}
    env["CRYPTOTUI_HOME"] = str(home)
    return env


def wait_for_bars(db: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while count_bars(db) < n:
        assert proc.poll() is None, "the first instance died"
        assert time.monotonic() < deadline, "the first instance stores nothing"
        time.sleep(0.05)


def engine(home: Path, demo: bool = False) -> Engine:
    src = ScriptedSource([bar("bitcoin", m, 100.0 + m) for m in range(1, 4)])
    return Engine(
        Settings(coins=("bitcoin",), demo=demo),
        Locations.resolve(home),
        source=src,
        forecaster_factory=StubFactory(StubForecaster),
    )


def test_second_engine_is_refused_naming_the_first_and_the_first_keeps_working(home: Path) -> None:
    first = engine(home)
    try:
        with pytest.raises(StoreError) as info:
            engine(home)
        msg = info.value.msg
        assert f"pid {os.getpid()}" in msg and str(home) in msg and "--home" in msg
        first.start()
        assert first.source.done.wait(10)  # type: ignore[attr-defined]
        assert first.wait_idle(10)
        assert first.store.count_bars("bitcoin") == 3
    finally:
        first.stop()
    # Once the first has stopped, the dir is free again, and its data is intact.
    again = engine(home)
    try:
        assert again.store.count_bars("bitcoin") == 3 and again.store.integrity_ok()
    finally:
        again.stop()


def test_live_and_demo_may_share_a_dir_without_touching_each_others_data(home: Path) -> None:
    live, demo = engine(home), engine(home, demo=True)
    try:
        assert live.store.path != demo.store.path
        live.add_coin("ethereum")
        demo.add_coin("dogecoin")
        live.start()
        demo.start()
        assert live.wait_idle(10) and demo.wait_idle(10)
    finally:
        live.stop()
        demo.stop()
    import json

    state = json.loads((home / "state.json").read_text())
    assert state["coins"] == ["bitcoin", "ethereum"]
    assert "dogecoin" in state["demo_coins"]


def test_cli_second_instance_is_refused_with_one_line_and_nothing_is_corrupted(
    tmp_path: Path,
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    db = home / "demo.sqlite3"
    cmd = [sys.executable, "-m", "tui", "serve", "--demo", "--speed", "30", "--port", "0"]
    first = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env_for(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_bars(db, 20, first)
        for second_cmd in (cmd, [sys.executable, "-m", "tui", "--demo"]):
            r = subprocess.run(
                second_cmd,
                cwd=ROOT,
                env=env_for(home),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert r.returncode == 2, r.stderr[-2000:]
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and f"another cryptotui (pid {first.pid})" in lines[0], r.stderr[
                -2000:
            ]
        # Reading while it runs is safe: export works beside the running engine.
        out = tmp_path / "btc.csv"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tui",
                "export",
                "--demo",
                "--coin",
                "bitcoin",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env_for(home),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert len(out.read_text().splitlines()) > 1
        # The first one kept going after being challenged.
        wait_for_bars(db, count_bars(db) + 20, first)
    finally:
        first.terminate()
        first.wait(30)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, distinct = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT coin || ts) FROM bars"
        ).fetchone()
        assert n == distinct
    finally:
        con.close()
