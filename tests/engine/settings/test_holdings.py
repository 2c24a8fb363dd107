"""Holdings: validation, round trip, and a kill -9 while saving leaves the old or the new file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.settings.holdings import (
    Holding,
    holdings_path,
    load_holdings,
    make_holding,
    parse_amount,
    save_holdings,
)
from tests.conftest import ROOT, run_cli


def test_parse_amount_accepts_what_people_type() -> None:
    assert parse_amount("1,250.5") == 1250.5
    assert parse_amount(" 2e-3 ") == 0.002
    assert parse_amount("0") == 0.0


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf", "-1", "1e16", "1e309", "--2"])
def test_bad_amount_refused_with_one_message(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_amount(bad)
    assert "\n" not in exc.value.msg and "amount" in exc.value.msg


def test_cost_per_unit_becomes_total() -> None:
    h = make_holding("bitcoin", "0.5", "20,000", per_unit=True)
    assert h.cost == 10_000 and h.unit_cost == 20_000
    assert h.pnl(30_000) == 5_000 and h.value(30_000) == 15_000
    assert make_holding("bitcoin", "2").pnl(1.0) is None


def test_round_trip_and_damaged_entries(tmp_path: Path) -> None:
    path = tmp_path / "holdings.json"
    hs = {"bitcoin": Holding("bitcoin", 0.5, 10_000.0), "ethereum": Holding("ethereum", 3.0)}
    save_holdings(path, hs)
    assert load_holdings(path) == hs
    data = json.loads(path.read_text())
    data["holdings"]["../x"] = {"amount": 1}
    data["holdings"]["solana"] = {"amount": -5}
    data["holdings"]["dogecoin"] = {"amount": True}
    path.write_text(json.dumps(data))
    assert load_holdings(path) == hs
    path.write_text("{broken")
    assert load_holdings(path) == {}
    assert load_holdings(tmp_path / "none.json") == {}
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_holdings_file_per_world(tmp_path: Path) -> None:
    assert holdings_path(tmp_path / "ui.json").name == "holdings.json"
    assert holdings_path(tmp_path / "ui-demo.json").name == "holdings-demo.json"


WRITER = """
import sys
from engine.settings.holdings import Holding, save_holdings
from pathlib import Path
path = Path(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    i += 1
    save_holdings(path, {f"coin-{k}": Holding(f"coin-{k}", float(i), float(k)) for k in range(200)})
"""


def test_kill9_while_saving_leaves_old_or_new(tmp_path: Path) -> None:
    path = tmp_path / "holdings.json"
    save_holdings(path, {"bitcoin": Holding("bitcoin", 1.0)})
    root = ROOT
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # let it write many times; where it is when killed is left to chance
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = json.loads(path.read_text(encoding="utf-8"))  # parses: never half a file
        hs = load_holdings(path)
        assert len(data["holdings"]) in (1, 200) and len(hs) == len(data["holdings"])
        if len(hs) == 200:
            assert len({h.amount for h in hs.values()}) == 1  # one write, not a mix of two


def test_export_carries_holdings_only_when_asked(tmp_path: Path) -> None:
    from engine.events import Bar
    from engine.store import Store

    home = tmp_path / "h"
    home.mkdir()
    s = Store(home / "cryptotui.sqlite3")
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 4)])
    s.close()
    out = tmp_path / "o.csv"
    r = run_cli("export", "--coin", "bitcoin", "--out", str(out), "--with-holdings", home=home)
    assert r.returncode == 2 and "no holding of 'bitcoin'" in r.stderr
    save_holdings(home / "holdings.json", {"bitcoin": Holding("bitcoin", 2.0, 150.0)})
    r = run_cli("export", "--coin", "bitcoin", "--out", str(out), home=home)
    assert r.returncode == 0, r.stderr
    assert "holding" not in out.read_text()  # never by default
    r = run_cli("export", "--coin", "bitcoin", "--out", str(out), "--with-holdings", home=home)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].endswith("holding_amount,holding_value,holding_pnl")
    assert lines[1].endswith("2.0,202,52")


def test_feed_carries_holdings_only_when_asked() -> None:
    import jsonschema
    from websockets.sync.client import connect

    from engine.feed.server import ServerThread
    from tests.engine.feed.test_protocol_schema import FRAME
    from tests.fakes.fake_engine import FakeEngine

    hs = {"bitcoin": Holding("bitcoin", 0.5, 100.0)}
    for holdings, expected in ((None, None), (hs, {"bitcoin": hs["bitcoin"].to_dict()})):
        opts: dict[str, Any] = {} if holdings is None else {"holdings": holdings}
        with (
            ServerThread(FakeEngine(history=5), ping_interval=None, **opts) as st,
            connect(st.url, close_timeout=1) as ws,
        ):
            hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "hello" and hello.get("holdings") == expected
        FRAME.validate(hello)
        with pytest.raises(jsonschema.ValidationError):
            FRAME.validate(
                {**hello, "holdings": {"bitcoin": {"amount": -1, "cost": None, "currency": "usd"}}}
            )
