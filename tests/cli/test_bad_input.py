"""Bad files and bad input: config TOML, CLI values, replay CSVs, bad bars, read-only dirs, full disk, corrupt DB.

What each must do: one clear message naming what is wrong (file, line, key), a non-zero exit or a
visible error, and nothing stored is lost or silently replaced. tests/test_cli.py has the first
CLI cases; these extend them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError, StoreError
from engine.events import Bar, ErrorEvent, Event
from engine.runtime.engine import Engine
from engine.settings.config import Settings, load_config_file
from engine.settings.locations import Locations
from engine.sources.replay import read_csv
from engine.store import Store
from tests.conftest import ROOT, one_line_error, run_cli
from tests.fakes.chaos import ScriptedSource, bar
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

HEADER = "timestamp_ms,open,high,low,close,volume\n"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (immutable flag), or by mode bits for a normal user."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if (
            chattr is None
            or subprocess.run(
                [chattr, "+i", str(path)], capture_output=True, check=False
            ).returncode
        ):
            pytest.skip("running as root without chattr: cannot make a path read-only")
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)


# Config TOML --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('vs = "usd"\ncoins = ["bitcoin",\n', ["line 2"]),  # unterminated array
        ('vs = "usd"\nspeed = \n', ["line 2", "invalid TOML"]),
        ('vs = "usd"\nvs = "eur"\n', ["invalid TOML"]),
        ('[cryptotui]\nvs = "usd"\nflavour = "mint"\n', ["line 3", "unknown key 'flavour'"]),
        ('vs = "usd"\nspeed = "fast"\n', ["line 2", "'speed'", "wrong type"]),
        ("[alerts]\nvs_limit = 3\n[cryptotui]\nvs = 5\n", ["line 4", "'vs'", "wrong type"]),
        ("speed = 0\n", ["line 1", "'speed'", "> 0"]),
        ("speed = nan\n", ["line 1", "'speed'"]),
        ("poll_seconds = -5\n", ["line 1", "'poll_seconds'"]),
        ("calls_per_minute = 0\n", ["line 1", "'calls_per_minute'"]),
        ('log_level = "LOUD"\n', ["line 1", "'log_level'", "DEBUG"]),
        ('api_plan = "gold"\n', ["line 1", "'api_plan'"]),
        ('source = "pigeon"\n', ["line 1", "'source'"]),
        ("\n\nhorizons = [0, 5]\n", ["line 3", "'horizons'", "1..1440"]),
        ("coins = []\n", ["line 1", "'coins'", "no coins"]),
        ('coins = ["bit coin"]\n', ["line 1", "'coins'", "invalid coin id"]),
        ('api_url = "ftp://example.com"\n', ["line 1", "'api_url'", "http"]),
        ('kraken_url = "http://example.com"\n', ["line 1", "'kraken_url'", "ws://"]),
        ("cryptotui = 5\n", ["line 1", "'cryptotui'", "table"]),
        ('shared_model = "yes"\n', ["line 1", "'shared_model'", "wrong type"]),
        ("calls_per_month = 1.5\n", ["line 1", "'calls_per_month'", "wrong type"]),
    ],
)
def test_invalid_config_names_file_line_and_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    msg = info.value.msg
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_an_api_key_with_spaces_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('api_key = "CG-abc def-SECRET"\n')
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert "'api_key'" in info.value.msg and "SECRET" not in info.value.msg


def test_valid_config_values_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[cryptotui]\nlog_level = "debug"\napi_plan = " Pro "\nspeed = 2\n')
    assert load_config_file(path) == {"log_level": "DEBUG", "api_plan": "pro", "speed": 2}


def test_unreadable_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()  # a directory where the file should be
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(tmp_path / "config.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'vs = "\xe9"\n')
    with pytest.raises(ConfigError, match=f"{bad}.*cannot read"):
        load_config_file(bad)


def test_cli_bad_config_value_is_one_line_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('vs = "usd"\nlog_level = "LOUD"\n')
    one_line_error(
        run_cli("serve", "--demo", "--port", "0", home=home), "config.toml, line 2", "'log_level'"
    )


# CLI values (beyond tests/test_cli.py) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--speed", "nan"], {}, ["invalid speed"]),
        (["--speed", "inf"], {}, ["invalid speed"]),
        (["--speed", "0"], {}, ["invalid speed"]),
        (["--horizons", "5,abc"], {}, ["invalid horizons"]),
        (["--coins", ","], {}, ["no coins"]),
        (["--log-level", "loud"], {}, ["invalid choice"]),
        (["serve", "--port", "-1"], {}, ["invalid port"]),
        (["serve", "--port", "http"], {}, ["invalid port"]),
        (["serve", "--host", "0.0.0.0", "--token", ""], {}, ["--token"]),
        (["export"], {}, ["--coin"]),
        (["serve", "--port", "0"], {"COINGECKO_API_PLAN": "gold"}, ["invalid API plan"]),
    ],
)
def test_wrong_cli_values_are_one_line_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], words: list[str]
) -> None:
    one_line_error(run_cli(*args, home=tmp_path / "h", env=env), *words)


def test_serve_with_an_unusable_replay_file_says_so_and_exits(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    try:
        r = run_cli(
            "serve", "--replay", f"bitcoin={bad}", "--port", "0", home=tmp_path / "h", timeout=8
        )
    except subprocess.TimeoutExpired:
        pytest.fail("serve kept running on an unusable replay file")
    one_line_error(r, str(bad), "header")


# Replay CSVs (beyond tests/test_replay.py) --------------------------------------------------------


def test_replay_rows_edge_cases_are_rejected_with_reasons(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(
        (
            HEADER + "60000,1,1,1,1,1\n"
            "90000,1,1,1,1.001,1\n"  # same minute again (sub-minute timestamp)
            "120000,1,1,1,inf,1\n"
            "180000,1,1,1,1.002,-4\n"  # negative volume
            "-60000,1,1,1,1,1\n"
            "240000,1,1,1,1.003,1,extra\n"  # an extra column is tolerated
            "\n"
            "300000,1e400,1,1,1,1\n"
        ).encode()
        + b"360000,1,1,1,\xff\xfe,1\n"
        + b"420000,1,1,1,1.004,1\n"
    )
    rep = read_csv(p, "bitcoin")
    assert [b.ts for b in rep.bars] == [60, 240, 420]
    reasons = " | ".join(r for _, r in rep.rejected)
    for words in (
        "duplicated or out-of-order",
        "non-finite",
        "negative volume",
        "timestamp not positive",
        "columns",
    ):
        assert words in reasons, reasons
    assert all(isinstance(line, int) and line > 1 for line, _ in rep.rejected)


def test_a_binary_file_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    with pytest.raises(ConfigError, match=str(p)):
        read_csv(p, "bitcoin")


# Bad bars reaching the engine --------------------------------------------------------------------


class RecordingStub(StubForecaster):
    """A stub forecaster that remembers the bars it was given."""

    def __init__(self, coin: str) -> None:
        super().__init__(coin)
        self.bars: list[Bar] = []

    def observe(self, bar: Bar) -> Any:
        self.bars.append(bar)
        return super().observe(bar)


def feed(
    home: Path, items: list[Any], coins: tuple[str, ...] = ("bitcoin",)
) -> tuple[Engine, dict[str, RecordingStub], list[Event]]:
    """Run the engine over ``items`` from a scripted source; return it stopped, with what it saw."""
    src = ScriptedSource(items)
    factory = StubFactory(RecordingStub)
    fcs = factory.made
    engine = Engine(
        Settings(coins=coins), Locations.resolve(home), source=src, forecaster_factory=factory
    )
    events: list[Event] = []
    engine.subscribe(events.append)
    engine.start()
    try:
        assert src.done.wait(10)
        assert engine.wait_idle(10)
    finally:
        engine.stop()
    return engine, fcs, events


def stored(home: Path, coin: str = "bitcoin") -> list[Bar]:
    s = Store(Locations.resolve(home).database())
    try:
        return s.bars(coin)
    finally:
        s.close()


@pytest.mark.parametrize("price", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, "101.5", None])
def test_bad_prices_are_rejected_with_a_reason_and_never_stored_or_learned(
    home: Path, price: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.runtime.engine")
    items = [bar("bitcoin", 1, 100.0), bar("bitcoin", 2, price), bar("bitcoin", 3, 100.5)]
    _, fcs, _ = feed(home, items)
    assert [b.price for b in stored(home)] == [100.0, 100.5]
    assert [b.price for b in fcs["bitcoin"].bars] == [100.0, 100.5]
    assert any("rejected" in r.getMessage() and "price" in r.getMessage() for r in caplog.records)


def test_duplicated_minutes_are_stored_and_learned_once(home: Path) -> None:
    items = [
        bar("bitcoin", 1, 100.0),
        bar("bitcoin", 1, 100.0),
        bar("bitcoin", 2, 101.0),
        bar("bitcoin", 2, 999.0),
    ]
    _, fcs, _ = feed(home, items)
    assert [(b.ts, b.price) for b in stored(home)] == [
        (b.ts, b.price) for b in (items[0], items[2])
    ]
    assert [b.price for b in fcs["bitcoin"].bars] == [100.0, 101.0]


def test_unaligned_timestamps_are_put_on_the_minute(home: Path) -> None:
    items = [Bar("bitcoin", 1_704_067_260 + 17, 100.0), Bar("bitcoin", 1_704_067_320 + 59, 100.2)]
    feed(home, items)
    assert [b.ts for b in stored(home)] == [1_704_067_260, 1_704_067_320]


def test_out_of_order_bars_are_neither_stored_nor_learned(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine")
    items = [bar("bitcoin", 1, 100.0), bar("bitcoin", 5, 101.0), bar("bitcoin", 3, 100.5)]
    _, fcs, _ = feed(home, items)
    assert [b.price for b in fcs["bitcoin"].bars] == [100.0, 101.0]
    assert [b.price for b in stored(home)] == [100.0, 101.0]
    assert any("order" in r.getMessage() for r in caplog.records)


def test_absurd_spikes_are_flagged_and_not_learned(home: Path) -> None:
    items = [bar("bitcoin", m, 100.0 + m / 10) for m in range(1, 6)]
    items.insert(3, bar("bitcoin", 10, 10_000.0))
    items.append(bar("bitcoin", 11, 100.7))
    _, fcs, _ = feed(home, items)
    assert all(b.price < 1000 for b in fcs["bitcoin"].bars)


def test_a_boolean_price_is_rejected(home: Path) -> None:
    _, fcs, _ = feed(home, [bar("bitcoin", 1, 100.0), bar("bitcoin", 2, True)])
    assert [b.price for b in fcs["bitcoin"].bars] == [100.0]


# Read-only data dir, full disk, corrupt database ----------------------------------------------


def test_read_only_data_dir_is_refused_with_one_line_and_left_untouched(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    s = Store(home / "demo.sqlite3")
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 50)])
    s.close()
    before = digest(home / "demo.sqlite3")
    with read_only(home):
        r = run_cli("serve", "--demo", "--port", "0", home=home)
    one_line_error(r, "cannot write to data dir", str(home))
    assert digest(home / "demo.sqlite3") == before


def test_read_only_database_file_is_refused_at_start(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    s = Store(home / "demo.sqlite3")
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 50)])
    s.close()
    before = digest(home / "demo.sqlite3")
    with read_only(home / "demo.sqlite3"):
        with pytest.raises(StoreError, match="cannot be written"):
            Store(home / "demo.sqlite3")
        r = run_cli("serve", "--demo", "--port", "0", home=home)
    one_line_error(r, "demo.sqlite3", "cannot be written")
    assert digest(home / "demo.sqlite3") == before


FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    from engine.events import Bar
    from engine.errors import StoreError
    from engine.store import Store
    path = sys.argv[1]
    s = Store(path)
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 301)])
    size = sum(os.path.getsize(path + x) for x in ("", "-wal") if os.path.exists(path + x))
    # A disk that is full a few pages from now: writes past the limit fail with EFBIG.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 16384, resource.RLIM_INFINITY))
    ok = 0
    for i in range(301, 200000):
        try:
            s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i)])
            ok += 1
        except StoreError as exc:
            print("ERROR", exc.msg)
            break
        except Exception as exc:
            print("FOREIGN", type(exc).__name__, exc)
            break
    print("OK", ok)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    s.add_bars([Bar("bitcoin", 60 * 10**6, 1.0)])  # the disk has room again: writing works
    print("COUNT", s.count_bars(), s.integrity_ok())
    """
)


def test_full_disk_is_a_store_error_and_loses_nothing_written_before(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path / "x.sqlite3")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert "FOREIGN" not in out, out
    assert "x.sqlite3" in out["ERROR"] and "disk" in out["ERROR"], out
    ok = int(out["OK"])
    assert out["COUNT"] == f"{300 + ok + 1} True"


def test_a_failing_database_write_is_shown_to_the_user(home: Path) -> None:
    engine = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(home),
        source=ScriptedSource([bar("bitcoin", m, 100.0 + m) for m in range(1, 4)]),
        forecaster_factory=StubFactory(StubForecaster),
    )
    real = engine.store.add_bars

    def full(bars: Any) -> int:
        raise StoreError(f"cannot store bars in {engine.store.path}: database or disk is full")

    engine.store.add_bars = full  # type: ignore[method-assign]
    events: list[Event] = []
    engine.subscribe(events.append)
    engine.start()
    try:
        assert engine.source.done.wait(10)  # type: ignore[attr-defined]
        assert engine.wait_idle(10)
    finally:
        engine.store.add_bars = real  # type: ignore[method-assign]
        engine.stop()
    assert any(
        isinstance(e, ErrorEvent) and e.title == "Database" and "full" in e.msg for e in events
    )


def test_corrupt_database_is_refused_by_the_cli_and_never_replaced(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    s = Store(home / "demo.sqlite3")
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 3000)])
    s.close()
    db = home / "demo.sqlite3"
    with open(db, "r+b") as fh:  # a torn file: the second half is gone
        fh.truncate(db.stat().st_size // 2)
    before = digest(db)
    one_line_error(run_cli("serve", "--demo", "--port", "0", home=home), str(db), "move it away")
    one_line_error(run_cli("export", "--demo", "--coin", "bitcoin", home=home), str(db))
    assert digest(db) == before
    assert sorted(p.name for p in home.iterdir() if p.name.startswith("demo.sqlite3")) == [
        "demo.sqlite3"
    ]
