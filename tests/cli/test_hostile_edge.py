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
import threading
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from engine.errors import ConfigError
from engine.events import ErrorEvent, Event, StatusEvent
from engine.ids import coin_id, is_coin_id
from engine.runtime.engine import Engine
from engine.settings.config import Settings
from engine.settings.locations import Locations
from engine.sources.base import Source
from tests.conftest import ROOT, one_line_error, run_cli
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

HEADER = "timestamp_ms,open,high,low,close,volume\n"
START = 1_600_000_020 - 1_600_000_020 % 60


def make_csv(path: Path, minutes: int, start: int = START) -> Path:
    rows = "".join(f"{(start + 60 * m) * 1000},1,1,1,{100 + m % 7},1\n" for m in range(minutes))
    path.write_text(HEADER + rows)
    return path


# 1. Coin ids --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        "bitcoin\n",
        "../../etc/passwd",
        "..",
        "",
        "-x",
        "Bitcoin",
        "a_b",
        "a.b",
        "a/b",
        "bit coin",
        "x" * 101,
        "b\x00",
        "ß",
    ],
)
def test_coin_id_alphabet_is_checked_in_full(bad: str) -> None:
    assert not is_coin_id(bad)
    if bad.strip().lower() != "bitcoin":  # typed input may differ in spaces and case only
        with pytest.raises(ConfigError):
            coin_id(bad)


def test_coin_ids_coingecko_uses_are_accepted() -> None:
    for good in ("bitcoin", "usd-coin", "avalanche-2", "0x", "x" * 100):
        assert is_coin_id(good) and coin_id(good) == good
    assert coin_id("  Bitcoin ") == "bitcoin"  # typed input is forgiven spaces and case


def test_the_protocol_schema_uses_the_same_coin_id_rule() -> None:
    from engine.ids import COIN_ID_PATTERN

    schema = json.loads((ROOT / "engine" / "data" / "protocol.schema.json").read_text())
    assert schema["$defs"]["coin_id"]["pattern"] == COIN_ID_PATTERN
    assert schema["$defs"]["op"]["properties"]["coin"]["pattern"] == COIN_ID_PATTERN


def test_search_drops_ids_that_could_name_a_file_and_they_never_reach_state(tmp_path: Path) -> None:
    from tests.fakes.coingecko_server import FakeCoinGecko

    known = {
        "../../evil": ("Evil", "EVL", 1, 1.0),
        "evil\n": ("Evil2", "EVL", 2, 1.0),
        "evilcoin": ("Evil Coin", "EVC", 3, 1.0),
    }
    home = tmp_path / "h"
    with FakeCoinGecko(known=known) as cg:
        e = Engine(
            Settings(api_url=cg.url, coins=("evilcoin",)),
            Locations.resolve(home),
            forecaster_factory=StubFactory(StubForecaster),
            train=False,
        )
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
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "state.json").write_text(
        json.dumps(
            {"coins": ["bitcoin", "../../x", "eth\n", 7, "ethereum"], "demo_coins": ["litecoin"]}
        )
    )
    with caplog.at_level(logging.WARNING, logger="engine.settings.config"):
        e = Engine(
            Settings(),
            Locations.resolve(home),
            forecaster_factory=StubFactory(StubForecaster),
            train=False,
        )
    try:
        assert e.coins() == ("bitcoin", "ethereum")
    finally:
        e.stop()
    assert "dropped 3 invalid coin ids" in caplog.text
    state = json.loads((home / "state.json").read_text())
    assert state == {"coins": ["bitcoin", "ethereum"], "demo_coins": ["litecoin"]}


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--coin", "../../x"],
        ["--coins", "bitcoin,../x"],
        ["--replay", "../x=f.csv"],
        ["serve", "--coins", "a.b"],
    ],
)
def test_cli_refuses_a_bad_coin_id_in_one_line(tmp_path: Path, args: list[str]) -> None:
    line = one_line_error(run_cli(*args, home=tmp_path / "h"))
    assert "invalid coin id" in line


def test_config_file_refuses_a_bad_coin_id(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('coins = ["bitcoin", "../../x"]\n')
    line = one_line_error(run_cli("serve", "--port", "0", home=home))
    assert "config.toml, line 1" in line and "invalid coin id" in line


# 2. A flooding feed client -------------------------------------------------------------------------
def test_watch_flood_is_capped_and_the_bar_stream_goes_on(tmp_path: Path) -> None:
    from engine.feed.server import MAX_COINS_PER_CLIENT, ServerThread

    home = tmp_path / "h"
    csv_file = make_csv(tmp_path / "btc.csv", 3000)
    settings = Settings(
        source="replay",
        replay_files=(csv_file,),
        replay_coins=("bitcoin",),
        coins=("bitcoin",),
        speed=20,
    )
    e = Engine(settings, Locations.resolve(home), forecaster_factory=StubFactory(StubForecaster))
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
    from engine.feed.server import ServerThread
    from tests.fakes.fake_engine import FakeEngine

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
        assert frame["ok"] is False and 'needs "coin"' in frame["error"]
    assert len(engine.coins()) <= len(FakeEngine(history=5).coins()) + 3


# 3. CSV and numbers ---------------------------------------------------------------------------------
def csv_rows(path: Path, rows: list[tuple[str, str]], *, bom: bool = False) -> Path:
    """A bar CSV: the header, 30 ordinary minutes, then ``rows`` of (timestamp_ms, price)."""
    body = [f"{(START + 60 * m) * 1000},100,100,100,{100 + m % 3},1" for m in range(30)]
    body += [f"{ts},{p},{p},{p},{p},1" for ts, p in rows]
    path.write_text(("\ufeff" if bom else "") + HEADER + "\n".join(body) + "\n", encoding="utf-8")
    return path


def minute_ms(m: int) -> str:
    return str((START + 60 * m) * 1000)


def test_backtest_refuses_1e308_then_1e_300_with_the_line(tmp_path: Path) -> None:
    p = csv_rows(tmp_path / "ext.csv", [(minute_ms(30), "1e308"), (minute_ms(31), "1e-300")])
    line = one_line_error(run_cli("backtest", str(p), "--horizons", "1", home=tmp_path / "h"))
    assert f"{p}, line 32" in line and "price outside" in line


def test_backtest_handles_the_extremes_it_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.engine.forecast.test_backtest import main

    # The edges of the accepted range, next to each other: every log return stays finite.
    rows = [(minute_ms(30 + i), p) for i, p in enumerate(["1e15", "1e-15", "1e15", "100"])]
    rows += [(minute_ms(34 + i), "100") for i in range(40)]
    p = csv_rows(tmp_path / "edge.csv", rows)
    assert main([str(p), "--horizons", "1,5", "--json", "--steps", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"] and all(r["n"] > 0 for r in out["results"])


def test_replay_skips_1e308_then_1e_300_and_plays_the_rest(tmp_path: Path) -> None:
    from engine.sources.replay import ReplaySource

    p = csv_rows(
        tmp_path / "ext.csv",
        [(minute_ms(30), "1e308"), (minute_ms(31), "1e-300"), (minute_ms(32), "101")],
    )
    src = ReplaySource({"bitcoin": p}, 1e6)
    bars = src.load()["bitcoin"]
    assert len(bars) == 31 and bars[-1].price == 101.0
    e = Engine(
        Settings(
            source="replay",
            replay_files=(p,),
            replay_coins=("bitcoin",),
            coins=("bitcoin",),
            speed=1e5,
        ),
        Locations.resolve(tmp_path / "h"),
        forecaster_factory=StubFactory(StubForecaster),
    )
    done = threading.Event()
    e.subscribe(
        lambda ev: done.set() if isinstance(ev, StatusEvent) and ev.state == "done" else None
    )
    e.start()
    try:
        assert done.wait(20)
        e.wait_idle()
        assert e.store.count_bars("bitcoin") == 31
    finally:
        e.stop()


def test_engine_refuses_extreme_prices_from_any_source(tmp_path: Path) -> None:
    from engine.runtime.engine import _bad_price

    assert _bad_price(1e308) and _bad_price(1e-300) and _bad_price(100.0) is None


@pytest.mark.parametrize("ts", ["inf", "1e400", "nan", "-inf"])
def test_non_finite_timestamps_are_refused_with_the_line(
    tmp_path: Path, ts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.sources.replay import read_csv
    from tests.engine.forecast.test_backtest import main

    p = csv_rows(tmp_path / "ts.csv", [(ts, "100")])
    assert main([str(p), "--horizons", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{p}, line 32" in err and "finite" in err
    rep = read_csv(p, "bitcoin")  # replay skips the row, with its line and the reason
    assert len(rep.bars) == 30 and rep.rejected[0][0] == 32 and "finite" in rep.rejected[0][1]


def test_seconds_timestamps_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    p = tmp_path / "secs.csv"
    p.write_text(HEADER + "".join(f"{START + 60 * m},1,1,1,1,1\n" for m in range(200)))
    line = one_line_error(run_cli("backtest", str(p), home=tmp_path / "h"))
    assert f"{p}, line 2" in line and "looks like Unix seconds" in line
    line = one_line_error(
        run_cli("serve", "--port", "0", "--replay", f"bitcoin={p}", home=tmp_path / "h", timeout=30)
    )
    assert f"{p}, line 2" in line and "multiply it by 1000" in line


def test_a_utf8_bom_header_is_accepted(tmp_path: Path) -> None:
    from engine.forecast.backtest import read_bars
    from engine.sources.replay import read_csv

    p = csv_rows(tmp_path / "bom.csv", [], bom=True)
    assert len(read_csv(p, "bitcoin").bars) == 30
    assert len(read_bars(p)) == 30
    no_header = tmp_path / "bom2.csv"
    no_header.write_text("\ufeff" + p.read_text(encoding="utf-8-sig").split("\n", 1)[1])
    assert len(read_bars(no_header)) == 30  # the BOM does not hide the first bar either


# 4. A damaged database, a full disk -------------------------------------------------------------------
def write_db(home: Path, minutes: int) -> Path:
    from engine.events import Bar
    from engine.store import Store

    home.mkdir(parents=True, exist_ok=True)
    db = Locations.resolve(home).database()
    store = Store(db)
    store.add_bars(
        [
            Bar("bitcoin", START + 60 * m, 100.0 + m % 7, None, None, None, None, "coingecko")
            for m in range(minutes)
        ]
    )
    store.close()  # checkpoints the WAL into the main file
    return db


def test_a_damaged_page_is_one_line_on_every_entry_point(tmp_path: Path) -> None:
    home = tmp_path / "h"
    db = write_db(home, 5000)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    # The header page (with the schema) stays intact; the bars' b-tree pages become garbage.
    data[page:] = b"\xa5" * (len(data) - page)
    db.write_bytes(bytes(data))
    for args in (
        ["export", "--coin", "bitcoin", "--out", "-"],
        ["export", "--coin", "bitcoin"],
        ["serve", "--port", "0"],
        ["--coins", "bitcoin"],
    ):
        line = one_line_error(run_cli(*args, home=home))
        assert f"database {db} is damaged" in line and "malformed" in line, args
        assert f"data dir {home})" in line and f"sqlite3 {db} .recover" in line
    assert db.read_bytes()[page:] == bytes(data[page:])  # nothing stored was changed


def test_export_to_stdout_works_on_a_full_disk(tmp_path: Path) -> None:
    import resource

    home = tmp_path / "h"
    write_db(home, 50)

    def full_disk() -> None:  # no file may grow by a single byte (EFBIG, like ENOSPC)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    proc = run_cli("export", "--coin", "bitcoin", "--out", "-", home=home, preexec_fn=full_disk)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.strip().splitlines()
    assert rows[0].startswith("time_utc,") and len(rows) == 51
    proc = run_cli(
        "export",
        "--coin",
        "bitcoin",
        "--out",
        str(tmp_path / "o.csv"),
        home=home,
        preexec_fn=full_disk,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "cannot write" in proc.stderr
    assert not list(tmp_path.glob("o.csv*"))  # no empty or half file left behind


# 5. Worlds apart -----------------------------------------------------------------------------------------
class QuietSource(Source):
    """A live source that never produces anything (the live world without a network)."""

    name = "coingecko"

    def run(self, coins: Any, emit: Any, stop: threading.Event) -> None:
        stop.wait()

    def search(self, query: str) -> list[Any]:
        return []


def test_a_replay_keeps_its_own_store_and_models_and_never_shows_as_live(tmp_path: Path) -> None:
    home = tmp_path / "h"
    loc = Locations.resolve(home)
    a = make_csv(tmp_path / "a.csv", 40)
    b = make_csv(tmp_path / "b.csv", 25)
    worlds = []
    for f in (a, b):
        settings = Settings(
            source="replay",
            replay_files=(f,),
            replay_coins=("bitcoin",),
            coins=("bitcoin",),
            speed=1e5,
        )
        e = Engine(settings, loc, forecaster_factory=StubFactory(StubForecaster))
        done = threading.Event()

        def on_event(ev: Event, d: threading.Event = done) -> None:
            if isinstance(ev, StatusEvent) and ev.state == "done":
                d.set()

        e.subscribe(on_event)
        e.start()
        assert done.wait(20)
        e.wait_idle()
        assert e.mode == "DEMO" and e.world.startswith("replay-")
        e.stop()
        worlds.append(e.world)
        assert (loc.models_dir(e.world) / "bitcoin.pt").exists()
    assert worlds[0] != worlds[1]  # another file is another world: no mixing of the two
    assert not loc.database().exists() and not loc.models_dir().exists()
    live = Engine(
        Settings(),
        loc,
        source=QuietSource(),
        forecaster_factory=StubFactory(StubForecaster),
        train=False,
    )
    try:
        assert live.world == "live" and live.mode == "LIVE"
        assert all(not live.snapshot(c).bars for c in live.coins())
        assert live.store.count_bars() == 0
    finally:
        live.stop()
    # Replaying the first file again resumes its own world (nothing replayed twice).
    again = Engine(
        Settings(source="replay", replay_files=(a,), replay_coins=("bitcoin",), coins=("bitcoin",)),
        loc,
        forecaster_factory=StubFactory(StubForecaster),
    )
    try:
        assert again.world == worlds[0] and len(again.snapshot("bitcoin").bars) == 40
    finally:
        again.stop()
    line = one_line_error(run_cli("export", "--coin", "bitcoin", home=home))
    assert "no data" in line or "no database" in line


def test_world_names_are_only_the_ones_made_here(tmp_path: Path) -> None:
    loc = Locations.resolve(tmp_path)
    assert loc.database(True).name == "demo.sqlite3" and loc.database().name == "cryptotui.sqlite3"
    for bad in ("../x", "replay-../../x", "live\n"):
        with pytest.raises(ValueError):
            loc.database(bad)


# 6. Tokens out of the process list; config and command line alike ------------------------------------
def test_serve_takes_its_token_from_a_file_or_the_environment_not_argv(tmp_path: Path) -> None:
    import signal
    import socket
    import time

    from websockets.exceptions import InvalidStatus

    secret = "tok-7Hq2-not-in-argv"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    for how in ("file", "env"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = ["serve", "--demo", "--speed", "1", "--port", str(port)]
        env = {"CRYPTOTUI_TOKEN": secret} if how == "env" else {}
        if how == "file":
            args += ["--token-file", str(token_file)]
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))
        }
        base.update(CRYPTOTUI_HOME=str(tmp_path / how), PYTHONPATH=str(ROOT), **env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", *args],
            cwd=ROOT,
            env=base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert secret not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None and time.monotonic() < deadline
                try:
                    with connect(f"ws://127.0.0.1:{port}", open_timeout=2):
                        pass
                    raise AssertionError("connected without the token")
                except InvalidStatus as exc:
                    assert exc.response.status_code == 401
                    break
                except OSError:
                    time.sleep(0.1)
            with connect(
                f"ws://127.0.0.1:{port}",
                close_timeout=1,
                additional_headers={"Authorization": f"Bearer {secret}"},
            ) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert secret not in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--token", "a", "--token-file", "{file}"], "not both"),
        (["--token-file", "{empty}"], "is empty"),
        (["--token-file", "{missing}"], "cannot read --token-file"),
    ],
)
def test_bad_token_options_are_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "t").write_text("secret\n")
    (tmp_path / "e").write_text("\n")
    paths = {"file": tmp_path / "t", "empty": tmp_path / "e", "missing": tmp_path / "nope"}
    args = [a.format(**paths) for a in args]
    line = one_line_error(run_cli("serve", "--port", "0", *args, home=tmp_path / "h"))
    assert words in line and "secret" not in line


@pytest.mark.parametrize(
    "key, value, flag",
    [("speed", "1e308", "--speed"), ("speed", "-1", "--speed"), ("vs", '"u$d"', "--vs")],
)
def test_config_file_and_command_line_refuse_alike(
    tmp_path: Path, key: str, value: str, flag: str
) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text(f'coins = ["bitcoin"]\n{key} = {value}\n')
    from_file = one_line_error(run_cli("serve", "--port", "0", home=home))
    assert f"config.toml, line 2: key '{key}'" in from_file
    (home / "config.toml").unlink()
    from_flag = one_line_error(run_cli("serve", "--port", "0", flag, value.strip('"'), home=home))
    # The same rule, in the same words, from either place.
    assert from_file.split(f"key '{key}' ", 1)[1] in from_flag


def test_a_flooded_state_json_from_an_older_version_is_cut_to_the_cap(tmp_path: Path) -> None:
    from engine.settings.config import MAX_COINS

    home = tmp_path / "h"
    home.mkdir()
    (home / "state.json").write_text(json.dumps({"coins": [f"flood-{i}" for i in range(10_003)]}))
    e = Engine(
        Settings(),
        Locations.resolve(home),
        source=QuietSource(),
        forecaster_factory=StubFactory(StubForecaster),
        train=False,
    )
    try:
        assert len(e.coins()) == MAX_COINS
    finally:
        e.stop()
    assert len(json.loads((home / "state.json").read_text())["coins"]) == MAX_COINS


def test_bars_an_older_version_replayed_into_the_live_database_are_not_shown(
    tmp_path: Path,
) -> None:
    from engine.events import Bar
    from engine.store import Store

    home = tmp_path / "h"
    home.mkdir()
    loc = Locations.resolve(home)
    store = Store(loc.database())
    store.add_bars(
        [
            Bar("bitcoin", START + 60 * m, 7000.0, None, None, None, None, "replay")
            for m in range(30)
        ]
    )
    store.add_bars(
        [
            Bar("bitcoin", START + 60 * (100 + m), 100.0, None, None, None, None, "coingecko")
            for m in range(10)
        ]
    )
    store.close()
    live = Engine(
        Settings(coins=("bitcoin",)),
        loc,
        source=QuietSource(),
        forecaster_factory=StubFactory(StubForecaster),
        train=False,
    )
    try:
        bars = live.snapshot("bitcoin").bars
        assert len(bars) == 10 and {b.source for b in bars} == {"coingecko"}
        assert live.store.count_bars("bitcoin") == 40  # nothing stored was deleted
    finally:
        live.stop()
