"""Hostile input at the edge (issue 14): coin ids, a flooding feed client, extreme CSVs, a damaged
database, worlds kept apart, tokens and config. Each test drives the real thing: a real server and
WebSocket client on 127.0.0.1, real files in tmp, a real corrupted SQLite file, the real CLI.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from engine.config import Locations, Settings
from engine.engine import Engine
from engine.errors import ConfigError
from engine.events import ErrorEvent, Event
from engine.ids import coin_id, is_coin_id
from tests.stub_forecaster import StubForecaster

ROOT = Path(__file__).resolve().parent.parent
HEADER = "timestamp_ms,open,high,low,close,volume\n"
START = 1_600_000_020 - 1_600_000_020 % 60


def make_csv(path: Path, minutes: int, start: int = START) -> Path:
    rows = "".join(f"{(start + 60 * m) * 1000},1,1,1,{100 + m % 7},1\n" for m in range(minutes))
    path.write_text(HEADER + rows)
    return path


def cli(*args: str, home: Path, env: dict[str, str] | None = None,
        **kw: Any) -> subprocess.CompletedProcess[str]:
    """The real ``cryptotui`` in a subprocess, with its own home and no CoinGecko settings."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))}
    base.update(CRYPTOTUI_HOME=str(home), PYTHONPATH=str(ROOT))
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "tui", *args], cwd=ROOT, env=base, text=True,
                          capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL, **kw)


def one_line_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# 1. Coin ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["bitcoin\n", "../../etc/passwd", "..", "", "-x", "Bitcoin",
                                 "a_b", "a.b", "a/b", "bit coin", "x" * 101, "b\x00", "ß"])
def test_coin_id_alphabet_is_checked_in_full(bad: str) -> None:
    assert not is_coin_id(bad)
    if bad.strip().lower() != "bitcoin":  # typed input may differ in spaces and case only
        with pytest.raises(ConfigError):
            coin_id(bad)


def test_coin_ids_coingecko_uses_are_accepted() -> None:
    for good in ("bitcoin", "usd-coin", "avalanche-2", "0x", "x" * 100):
        assert is_coin_id(good) and coin_id(good) == good
    assert coin_id("  Bitcoin ") == "bitcoin"  # typed input is forgiven spaces and case


def test_search_drops_ids_that_could_name_a_file_and_they_never_reach_state(tmp_path: Path) -> None:
    from tests.fakes.coingecko_server import FakeCoinGecko

    known = {"../../evil": ("Evil", "EVL", 1, 1.0), "evil\n": ("Evil2", "EVL", 2, 1.0),
             "evilcoin": ("Evil Coin", "EVC", 3, 1.0)}
    home = tmp_path / "h"
    with FakeCoinGecko(known=known) as cg:
        e = Engine(Settings(api_url=cg.url, coins=("evilcoin",)), Locations.resolve(home),
                   forecaster_factory=StubForecaster, train=False)
        errors: list[Event] = []
        e.subscribe(errors.append)
        try:
            assert [m.id for m in e.search("evil")] == ["evilcoin"]
            e.start()
            e.add_coin("../../evil")  # as if a peer or an old client sent it anyway
            e.add_coin("evil\n")
            e.wait_idle()
            assert e.coins() == ("evilcoin",)
            with pytest.raises(ConfigError):
                e.export("../../evil")
        finally:
            e.stop()
    state = json.loads((home / "state.json").read_text()) if (home / "state.json").exists() else {}
    assert all(is_coin_id(c) for c in state.get("coins", []))
    assert any(isinstance(ev, ErrorEvent) and "invalid coin id" in ev.msg for ev in errors)
    assert not list(tmp_path.glob("evil*")) and not list(tmp_path.rglob("*evil.pt"))


def test_bad_ids_in_state_json_are_dropped_on_load_with_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "state.json").write_text(json.dumps(
        {"coins": ["bitcoin", "../../x", "eth\n", 7, "ethereum"], "demo_coins": ["litecoin"]}))
    with caplog.at_level(logging.WARNING, logger="engine.config"):
        e = Engine(Settings(), Locations.resolve(home), forecaster_factory=StubForecaster,
                   train=False)
    try:
        assert e.coins() == ("bitcoin", "ethereum")
    finally:
        e.stop()
    assert "dropped 3 invalid coin ids" in caplog.text
    state = json.loads((home / "state.json").read_text())
    assert state == {"coins": ["bitcoin", "ethereum"], "demo_coins": ["litecoin"]}


@pytest.mark.parametrize("args", [["export", "--coin", "../../x"], ["--coins", "bitcoin,../x"],
                                  ["--replay", "../x=f.csv"], ["serve", "--coins", "a.b"]])
def test_cli_refuses_a_bad_coin_id_in_one_line(tmp_path: Path, args: list[str]) -> None:
    line = one_line_error(cli(*args, home=tmp_path / "h"))
    assert "invalid coin id" in line


def test_config_file_refuses_a_bad_coin_id(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('coins = ["bitcoin", "../../x"]\n')
    line = one_line_error(cli("serve", "--port", "0", home=home))
    assert "config.toml, line 1" in line and "invalid coin id" in line


# 2. A flooding feed client -------------------------------------------------------------------------
def test_watch_flood_is_capped_and_the_bar_stream_goes_on(tmp_path: Path) -> None:
    from engine.server import MAX_COINS_PER_CLIENT, ServerThread

    home = tmp_path / "h"
    csv_file = make_csv(tmp_path / "btc.csv", 3000)
    settings = Settings(source="replay", replay_files=(csv_file,), replay_coins=("bitcoin",),
                        coins=("bitcoin",), speed=20)
    e = Engine(settings, Locations.resolve(home), forecaster_factory=StubForecaster)
    try:
        with ServerThread(e) as st:
            with connect(st.url, max_size=None, close_timeout=1) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
                # 10,000 watch ops of distinct coins, and a few with ids that must never pass.
                for i in range(10_000):
                    ws.send(json.dumps({"op": "watch", "coin": f"flood-{i}"}))
                seen: list[dict[str, Any]] = []
                bars_after = 0
                while bars_after < 3:
                    frame = json.loads(ws.recv(timeout=20))
                    seen.append(frame)
                    if frame["type"] == "bar":
                        bars_after += 1
            titles = {f["title"] for f in seen if f["type"] == "error"}
            assert {"Too many requests", "Too many coins"} <= titles
            assert st.server is not None and st.server.stats["rate_limited"] > 0
        e.wait_idle()
        assert len(e.coins()) <= 1 + MAX_COINS_PER_CLIENT
    finally:
        e.stop()
    state = json.loads((home / "state.json").read_text())
    assert len(next(v for k, v in state.items() if k.endswith("coins"))) <= 1 + MAX_COINS_PER_CLIENT
    checkpoints = list(home.rglob("*.pt"))
    assert len(checkpoints) <= 1 + MAX_COINS_PER_CLIENT


def test_server_wide_coin_cap_holds_across_clients(tmp_path: Path) -> None:
    from engine.server import ServerThread
    from tests.fake_engine import FakeEngine

    engine = FakeEngine(history=5)
    with ServerThread(engine, max_coins=len(engine.coins()) + 3, max_coins_per_client=2) as st:
        answers: list[dict[str, Any]] = []
        for c in range(3):
            with connect(st.url, max_size=None, close_timeout=1) as ws:
                for i in range(3):
                    ws.send(json.dumps({"op": "watch", "coin": f"c{c}-{i}", "id": f"{c}-{i}"}))
                while len([a for a in answers if a["type"] == "reply"]) < 3 * (c + 1):
                    frame = json.loads(ws.recv(timeout=10))
                    if frame["type"] == "reply":
                        answers.append(frame)
        refused = [a for a in answers if not a["ok"]]
        # Client 0: 2 accepted, 1 over its own cap; client 1: 1 accepted, then the server is full.
        assert len(answers) - len(refused) == 3
        assert any("limit 2" in a["error"] for a in refused)
        assert any("watchlist is full" in a["error"] for a in refused)
        with connect(st.url, close_timeout=1) as ws2:
            ws2.send(json.dumps({"op": "watch", "coin": "bitcoin\n", "id": 1}))
            while (frame := json.loads(ws2.recv(timeout=5)))["type"] != "reply":
                pass
        assert frame["ok"] is False and "needs \"coin\"" in frame["error"]
    assert len(engine.coins()) <= len(FakeEngine(history=5).coins()) + 3
