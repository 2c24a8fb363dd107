"""End to end: the installed ``cryptotui`` in a real terminal (tmux), driven with keys as a person would."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.tmux import Tmux, cryptotui_command

pytestmark = pytest.mark.e2e

if shutil.which("tmux") is None or cryptotui_command() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have tmux and the installed cryptotui (see .ci/run)")
    pytest.skip("needs tmux and the installed cryptotui", allow_module_level=True)


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    return {
        "CRYPTOTUI_HOME": str(tmp_path / "home"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }


def chart_title(screen: str) -> str | None:
    m = re.search(r"(Bitcoin|Ethereum|Litecoin) \((BTC|ETH|LTC)\)", screen)
    return m.group(1) if m else None


def test_demo_paints_predicts_switches_and_quits_cleanly(
    tmp_path: Path, app_env: dict[str, str]
) -> None:
    t = Tmux(
        [cryptotui_command() or "", "--demo", "--speed", "60"],
        env=app_env,
        width=120,
        height=40,
        workdir=tmp_path,
    )
    try:
        screen = t.wait_for(
            lambda s: "Watchlist" in s and "BTC" in s and "┤" in s, 20, "watchlist and chart"
        )
        assert "DEMO" in screen
        assert chart_title(screen) == "Bitcoin"
        # within a minute of replay the past band is drawn (the legend loses its "no forecast")
        # ... and the watchlist shows the served forecast ("no change" while it is flat)
        t.wait_for(
            lambda s: (
                "80% band" in s
                and "no forecast yet" not in s
                and re.search(r"BTC +[\d,.]+ +\S+ +(no change|[▲▼→][+-])", s) is not None
            ),
            60,
            "predictions",
        )
        t.keys("]")
        t.wait_for(lambda s: chart_title(s) == "Ethereum", 5, "] to switch to Ethereum")
        t.keys("Down")
        t.wait_for(lambda s: chart_title(s) == "Litecoin", 5, "Down to switch to Litecoin")
        t.keys("Up", "[")
        t.wait_for(lambda s: chart_title(s) == "Bitcoin", 5, "Up and [ back to Bitcoin")
        t.keys("q")
        assert t.exit_status() == 0
        after = t.screen()
        assert "Watchlist" not in after  # the alternate screen is gone: terminal left clean
    finally:
        t.kill()


def test_demo_every_key_and_resize(tmp_path: Path, app_env: dict[str, str]) -> None:
    t = Tmux(
        [cryptotui_command() or "", "--demo", "--speed", "30"],
        env=app_env,
        width=120,
        height=40,
        workdir=tmp_path,
    )
    try:
        t.wait_for(lambda s: "Watchlist" in s and "LTC" in s, 20, "app")
        # remove Litecoin (asks first), then add it back through the search modal
        t.keys("3")
        t.wait_for(lambda s: chart_title(s) == "Litecoin", 5, "3 jumps to Litecoin")
        t.keys("x")
        t.wait_for(lambda s: "Remove Litecoin from the watchlist?" in s, 5, "remove confirmation")
        t.keys("y")
        t.wait_for(
            lambda s: " LTC " not in s.split("Score")[0], 5, "LTC removed from the watchlist"
        )
        t.keys("a")
        t.wait_for(lambda s: "Add a coin" in s or "Search" in s, 5, "search modal")
        t.keys("l", "t", "c", pause=0.2)
        t.wait_for(lambda s: "Litecoin" in s, 10, "search results as you type")
        t.keys("Enter")
        t.wait_for(lambda s: " LTC " in s.split("Score")[0], 10, "LTC back in the watchlist")
        # horizon and window
        t.keys("h")
        t.wait_for(lambda s: "horizon 15 min" in s, 5, "h changes the horizon")
        t.keys("w")
        t.wait_for(lambda s: "window 24h" in s, 5, "w changes the window")
        # pause and resume training
        t.keys("p")
        t.wait_for(lambda s: "paused" in s, 5, "p pauses")
        t.keys("p")
        t.wait_for(lambda s: "paused" not in s, 5, "p resumes")
        # export: the path is shown and the file exists
        t.keys("e")
        screen = t.wait_for(lambda s: "Exported" in s, 15, "export notification")
        m = re.search(r"(/\S+\.csv)", screen.replace("\n", ""))
        exports = list((Path(app_env["CRYPTOTUI_HOME"]) / "exports").glob("*.csv"))
        assert exports, screen
        rows = list(csv.reader(exports[0].open()))
        assert rows[0][:3] == ["time_utc", "timestamp", "price"] and len(rows) > 10
        assert m is None or Path(m.group(1)).name.startswith(exports[0].name[:8])
        # help screen
        t.keys("?")
        t.wait_for(lambda s: "Help" in s or "Keys" in s, 5, "help")
        t.keys("Escape")
        # resize: small, big, back; the layout follows and nothing is cut
        t.resize(80, 24)
        small = t.wait_for(lambda s: "Watchlist" in s and "q Quit" in s, 10, "80x24 layout")
        assert all(len(line) <= 80 for line in small.splitlines())
        t.resize(200, 60)
        t.wait_for(
            lambda s: max(len(x) for x in s.splitlines()) > 150 and "Watchlist" in s, 10, "200x60"
        )
        t.resize(120, 40)
        t.wait_for(lambda s: "Watchlist" in s, 10, "back to 120x40")
        t.keys("q")
        assert t.exit_status() == 0
    finally:
        t.kill()


def test_dialogs_at_80x24_by_keys_alone(tmp_path: Path, app_env: dict[str, str]) -> None:
    """The alerts dialog at 80x24 shows Save; both dialogs typed as one burst store what was typed."""
    t = Tmux(
        [cryptotui_command() or "", "--demo"], env=app_env, width=80, height=24, workdir=tmp_path
    )
    home = Path(app_env["CRYPTOTUI_HOME"])
    try:
        t.wait_for(lambda s: "Watchlist" in s and "BTC" in s, 20, "app")
        t.keys("H")
        t.wait_for(lambda s: "Amount of Bitcoin you hold" in s, 5, "holding dialog")
        t.burst("0.5", "Tab", "3000", "Enter")
        t.wait_for(lambda s: "Holdings" in s and "Amount of" not in s, 5, "holding saved")
        holdings = json.loads((home / "holdings-demo.json").read_text())["holdings"]
        assert holdings == {"bitcoin": {"amount": 0.5, "cost": 3000.0, "currency": "usd"}}
        t.keys("A")
        screen = t.wait_for(lambda s: "Alerts: Bitcoin" in s, 5, "alerts dialog")
        lines = screen.splitlines()
        assert len(lines) <= 24 and any("Cancel" in ln and "Save" in ln for ln in lines), screen
        t.burst("7000", "Enter", "7400", "Enter", "Tab", "Tab", "30", "Tab", "Tab", "Space")
        t.burst("Tab", "Space", "Enter")
        t.wait_for(lambda s: "Alerts: Bitcoin" not in s, 5, "alerts saved")
        ui = json.loads((home / "ui-demo.json").read_text())["ui"]
        assert ui["levels"] == {"bitcoin": [7000.0, 7400.0]} and ui["thresholds"] == {
            "bitcoin": 0.3
        }
        assert ui["surprise"] is False and ui["bell"] is True
        t.keys("q")
        assert t.exit_status() == 0
    finally:
        t.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_against_local_coingecko_shows_price_and_unknown_coin(
    tmp_path: Path, app_env: dict[str, str]
) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.coingecko_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t = None
    try:
        assert server.stdout is not None
        server.stdout.readline()  # it prints its URL once listening
        t = Tmux(
            [
                cryptotui_command() or "",
                "--api-url",
                f"http://127.0.0.1:{port}/api/v3",
                "--coins",
                "bitcoin,notacoin,ethereum",
            ],
            env=app_env,
            width=120,
            height=40,
            workdir=tmp_path,
        )
        screen = t.wait_for(
            lambda s: re.search(r"BTC\s+7\d,\d{3}", s) is not None, 30, "bitcoin price"
        )
        assert "LIVE" in screen
        t.wait_for(lambda s: "unknown" in s.lower(), 20, "unknown coin shown as such")
        t.wait_for(
            lambda s: re.search(r"ETH\s+2,\d{3}", s) is not None, 20, "other coins keep updating"
        )
        t.keys("q")
        assert t.exit_status() == 0
    finally:
        if t is not None:
            t.kill()
        server.terminate()
        server.wait(10)
        time.sleep(0.1)


def test_kraken_source_shows_minute_candles_through_dropped_connections(
    tmp_path: Path, app_env: dict[str, str]
) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.kraken_server",
            "--port",
            str(port),
            "--minute-seconds",
            "1",
            "--drop-every",
            "3",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t = None
    try:
        time.sleep(1.5)
        t = Tmux(
            [
                cryptotui_command() or "",
                "--source",
                "kraken",
                "--kraken-url",
                f"ws://127.0.0.1:{port}",
                "--coins",
                "bitcoin,ethereum",
            ],
            env=app_env,
            width=120,
            height=40,
            workdir=tmp_path,
        )
        t.wait_for(
            lambda s: re.search(r"BTC\s+\d{2},\d{3}", s) is not None and "kraken" in s,
            30,
            "BTC candles",
        )
        import sqlite3

        db = Path(app_env["CRYPTOTUI_HOME"]) / "cryptotui.sqlite3"

        def counts() -> int:
            return int(
                sqlite3.connect(db)
                .execute("SELECT COUNT(*) FROM bars WHERE coin='bitcoin'")
                .fetchone()[0]
            )

        first = counts()
        time.sleep(8)  # the server drops every connection every 3 s: the app re-subscribes
        assert counts() > first
        rows = (
            sqlite3.connect(db)
            .execute("SELECT ts FROM bars WHERE coin='bitcoin' ORDER BY ts")
            .fetchall()
        )
        assert all(ts % 60 == 0 for (ts,) in rows) and len({ts for (ts,) in rows}) == len(rows)
        t.keys("q")
        assert t.exit_status() == 0
    finally:
        if t is not None:
            t.kill()
        server.terminate()
        server.wait(10)


def test_demo_without_data_for_a_coin_and_alerts_under_toasts_at_80x24(
    tmp_path: Path, app_env: dict[str, str]
) -> None:
    """Issue 16: the demo says "no demo data" for a coin it lacks, and two toasts pending when the
    alerts dialog opens at 80x24 do not hide its Save button."""
    t = Tmux(
        [cryptotui_command() or "", "--demo", "--coins", "bitcoin,solana", "--speed", "30"],
        env=app_env,
        width=80,
        height=24,
        workdir=tmp_path,
    )
    try:
        # BTC with a price: an export of a coin with no data yet is refused in words (issue 24).
        screen = t.wait_for(
            lambda s: "SOL" in s and "no demo data" in s and bool(re.search(r"BTC +[\d,]+\.\d", s)),
            30,
            "no demo data for solana, and bitcoin's first prices",
        )
        assert "CoinGecko does not know" not in screen and "unknown coin" not in screen
        # Two toasts: two exports in the same second get two files (never one name twice).
        t.keys("e", "e", pause=0.1)
        screen = t.wait_for(lambda s: s.count("Exported Bitcoin") >= 2, 15, "two export toasts")
        names = set(re.findall(r"bitcoin-demo-[0-9-]+\.csv", screen.replace("\n▌ ", "")))
        t.keys("A")
        screen = t.wait_for(lambda s: "Alerts" in s and "For every coin" in s, 10, "alerts dialog")
        # The dialog's own buttons (the footer's "escCancel ^sSave" does not count).
        buttons = [ln for ln in screen.splitlines() if re.search(r"\bCancel\b.*\bSave\b", ln)]
        assert buttons, screen
        assert "Exported" not in buttons[0]
        t.keys("Escape")
        t.wait_for(lambda s: "For every coin" not in s, 5, "dialog closed")
        t.keys("j")
        t.wait_for(lambda s: "No demo data for Solana" in s, 5, "the chart says it for Solana")
        t.keys("q")
        assert t.exit_status() == 0
        exports = sorted((tmp_path / "home" / "exports").glob("bitcoin-demo-*.csv"))
        assert len(exports) == 2, (exports, names)
    finally:
        t.kill()
