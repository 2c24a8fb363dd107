"""The real ``cryptotui`` against its own files and outputs (issue 24, cases 4, 6, 7, 8, 9, 11):
inputs and outputs never overwrite each other, a full disk is one line, a damaged holdings file
is moved aside and said, ``export --out - | head`` is quiet, ``--coins BTC`` means bitcoin."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.errors import CryptotuiError
from engine.events import Bar, ForecastEvent
from engine.settings.locations import Locations
from engine.store import Store
from tests.conftest import ROOT, SHARED, one_line_error, run_cli

START = 1_700_000_000 - 1_700_000_000 % 60


def write_db(home: Path, minutes: int, coin: str = "bitcoin") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    db = Locations.resolve(home).database()
    store = Store(db)
    store.add_bars([Bar(coin, START + 60 * m, 100.0 + m % 7) for m in range(minutes)])
    store.add_forecast(ForecastEvent(coin, START, 100.0, (1,), (0.0,), (-0.01,), (0.01,)))
    store.close()
    return db


def eval_file(tmp_path: Path, rows: int = 300) -> Path:
    src = min((SHARED / "data" / "eval").glob("*.csv"))
    lines = src.read_text().splitlines()[: rows + 1]
    out = tmp_path / "in.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("how", ["same", "symlink", "dotdot", "hardlink"])
def test_backtest_refuses_predictions_onto_an_input(tmp_path: Path, how: str) -> None:
    data = eval_file(tmp_path)
    before = data.read_bytes()
    target = {
        "same": data,
        "symlink": tmp_path / "link.csv",
        "dotdot": tmp_path / "sub" / ".." / "in.csv",
        "hardlink": tmp_path / "hard.csv",
    }[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        target.symlink_to(data)
    elif how == "hardlink":
        os.link(data, target)
    r = run_cli("backtest", str(data), "--predictions", str(target), "--horizons", "1")
    one_line_error(r, "--predictions", "is the input")
    assert data.read_bytes() == before


def test_backtest_predictions_on_a_full_disk_is_one_line(tmp_path: Path) -> None:
    r = run_cli(
        "backtest", str(eval_file(tmp_path)), "--predictions", "/dev/full", "--horizons", "1"
    )
    one_line_error(r, "cannot write --predictions /dev/full", "No space left", status=1)


def test_export_refuses_an_output_that_is_its_database(tmp_path: Path) -> None:
    home = tmp_path / "h"
    db = write_db(home, 30)
    before = db.read_bytes()
    (tmp_path / "db-link.csv").symlink_to(db)
    for out in (db, tmp_path / "db-link.csv", home / "x" / ".." / db.name):
        (home / "x").mkdir(exist_ok=True)
        r = run_cli("export", "--coin", "bitcoin", "--out", str(out), home=home)
        one_line_error(r, "an input of this export")
    assert db.read_bytes() == before


def test_export_to_a_full_disk_is_one_line_and_the_device_stays(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write_db(home, 30)
    r = run_cli("export", "--coin", "bitcoin", "--out", "/dev/full", home=home)
    one_line_error(r, "cannot write /dev/full", "No space left", status=1)
    assert Path("/dev/full").is_char_device()  # never replaced by a file (the app may run as root)


def test_export_to_a_pipe_closed_early_exits_0_quietly(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write_db(home, 20_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))}
    env.update(PYTHONPATH=str(ROOT), CRYPTOTUI_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "export", "--coin", "bitcoin", "--out", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(200)  # as `| head -c 200` would, then the reader goes away
    proc.stdout.close()
    assert proc.wait(60) == 0
    assert head.startswith(b"time_utc,") and proc.stderr.read() == b""


def test_export_with_a_damaged_holdings_file_says_so_and_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write_db(home, 30)
    hfile = home / "holdings.json"
    damaged = '{"v": 1, "holdings": {"bitcoin": {"amount": 1' + "0" * 400 + "},}}"
    hfile.write_text(damaged)
    r = run_cli("export", "--coin", "bitcoin", "--with-holdings", home=home)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    warning, error = r.stderr.strip().splitlines()
    assert warning.startswith("cryptotui: warning: holdings file holdings.json could not be read")
    assert "no holding of 'bitcoin'" in error
    (aside,) = home.glob("holdings.json.bad-*")
    assert aside.read_text() == damaged


def test_export_with_an_overflowing_amount_is_a_warning_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write_db(home, 30)
    entries = {"bitcoin": {"amount": 1.5}, "ethereum": {"amount": int("9" * 400)}}
    (home / "holdings.json").write_text(json.dumps({"v": 1, "holdings": entries}))
    r = run_cli("export", "--coin", "bitcoin", "--with-holdings", home=home)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("cryptotui: warning: holdings file holdings.json: 1 entry")
    out = Path(r.stdout.strip())
    assert next(csv.DictReader(out.open()))["holding_amount"] == "1.5"


def test_export_takes_a_symbol_and_says_which_coin(tmp_path: Path) -> None:
    home = tmp_path / "h"
    write_db(home, 30)
    r = run_cli("export", "--coin", "BTC", home=home)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "cryptotui: warning: BTC -> bitcoin\n"
    assert Path(r.stdout.strip()).name.startswith("bitcoin-")


def serve_stderr_until(args: list[str], home: Path, words: str, timeout: float = 60) -> str:
    """Start ``cryptotui serve ARGS``, read its stderr until ``words`` appear, stop it (SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))}
    env.update(PYTHONPATH=str(ROOT), CRYPTOTUI_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    try:
        while words not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            seen += line
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return seen


def test_serve_demo_with_symbols_plays_the_coins(tmp_path: Path) -> None:
    out = serve_stderr_until(
        ["--demo", "--coins", "BTC,eth", "--speed", "1000"], tmp_path, "serving"
    )
    assert "cryptotui: warning: BTC -> bitcoin" in out and "eth -> ethereum" in out
    assert "Traceback" not in out


def test_serve_with_holdings_reports_a_damaged_file_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "holdings-demo.json").write_text("[" * 100_000)
    out = serve_stderr_until(["--demo", "--with-holdings"], home, "serving")
    assert "RecursionError" not in out and "Traceback" not in out
    lines = [ln for ln in out.splitlines() if "holdings" in ln]
    assert len(lines) == 1 and "nested more than" in lines[0] and "moved to" in lines[0]


def test_the_ui_export_raises_one_line_errors(tmp_path: Path) -> None:
    from engine.runtime.engine import Engine
    from engine.settings.config import Settings
    from tests.fakes.stub_forecaster import StubFactory, StubForecaster

    home = tmp_path / "h"
    write_db(home, 30)
    e = Engine(Settings(), Locations.resolve(home), forecaster_factory=StubFactory(StubForecaster))
    try:
        with pytest.raises(CryptotuiError) as full:
            e.export("bitcoin", Path("/dev/full"))
        assert full.value.title == "Export failed" and "No space left" in full.value.msg
        with pytest.raises(CryptotuiError) as empty:
            e.export("solana")
        assert empty.value.msg == "no data for solana yet: nothing to export"
        assert not list((home / "exports").glob("solana*"))  # no header-only file
        rows = list(csv.DictReader(e.export("bitcoin").open()))
        assert len(rows) == 30
    finally:
        e.stop()


def test_the_app_is_told_which_coin_a_symbol_means(tmp_path: Path) -> None:
    from tui import __main__ as cli

    args = cli.build_parser().parse_args(
        ["--demo", "--coins", "BTC,litecoin", "--home", str(tmp_path)]
    )
    assert args.coins == ("bitcoin", "litecoin")
    cli._NOTICES.clear()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        _loc, settings = cli._open(args, headless=False)
        assert settings.coins == ("bitcoin", "litecoin")
        notes = [(n.title, n.msg) for n in cli._NOTICES]
        assert notes == [("Coins", "BTC -> bitcoin")]
    finally:
        cli._NOTICES.clear()
        cli._COIN_NOTES.clear()
        for h in set(root.handlers) - set(handlers):  # _open logs to the data dir's file
            root.removeHandler(h)
            h.close()
        root.setLevel(level)
