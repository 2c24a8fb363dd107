"""Your files are never lost, and numbers are read one way (issue 24, cases 5, 6, 7, 10, 11).

Real files in a temporary data dir: damaged ones are moved aside before anything can overwrite
them and the loader says so in one line; refused entries are kept in a copy; one numeric rule for
every number read from a file; no recursion limit reachable from a file; holdings are private.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from engine.atomic import remove_stale_temps, write_atomic
from engine.errors import ConfigError
from engine.events import ForecastEvent
from engine.forecast.portfolio import prob_beyond
from engine.settings.config import currency_problem, load_config_file, parse_coins, vs_problem
from engine.settings.holdings import (
    MAX_HOLDINGS,
    Holding,
    cost_currency,
    load_holdings,
    make_holding,
    save_holdings,
)
from engine.settings.jsonfile import MAX_DEPTH, depth_problem
from engine.settings.locations import Locations, replay_world
from engine.settings.numbers import NUMBER_HINT, file_number, parse_user_number
from engine.settings.state import load_state, load_watchlist, update_state
from engine.sources.coins import resolve_coins
from tui.prefs import Prefs, load_prefs, save_prefs

DEEP = "[" * 100_000 + "]" * 100_000


def asides(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bad-*"))


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [("1,250.5", 1250.5), ("1250.5", 1250.5), (" 0.001 ", 0.001), ("2e-3", 0.002), (".5", 0.5)],
)
def test_numbers_as_people_type_them(typed: str, value: float) -> None:
    assert parse_user_number(typed, "amount", 1e15) == value


@pytest.mark.parametrize("typed", ["1,5", "1,,,2", "1.2.3", "1_000", "1 250", "1,2345", ",5"])
def test_ambiguous_numbers_are_refused_with_the_hint(typed: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_user_number(typed, "level", 1e15)
    assert NUMBER_HINT in exc.value.msg and "\n" not in exc.value.msg
    assert exc.value.msg.startswith(f"level {typed!r}")


@pytest.mark.parametrize("typed", ["", "abc", "nan", "inf", "-1", "1e309", "١٢٣", "0x10"])
def test_what_is_not_a_number_is_refused(typed: str) -> None:
    with pytest.raises(ConfigError):
        parse_user_number(typed, "amount", 1e15)


def test_one_numeric_rule_for_files() -> None:
    assert file_number(5) == 5 and file_number(2.5) == 2.5
    for bad in (True, None, "5", 10**400, -(10**400), 10**15 + 1, float("inf"), float("nan")):
        assert file_number(bad) is None, bad
    assert file_number(1e-320, low=1e-15) is None
    assert file_number(3.0, integer=True) is None and file_number(3, integer=True) == 3


def test_currency_is_one_short_a_z_code_everywhere() -> None:
    assert currency_problem("usd") is None and currency_problem(" EUR ") is None
    for bad in ("usd\x1b]52;c;x\x07", "us d", "usd1", "", "a" * 11, 5):
        assert currency_problem(bad) is not None
        assert isinstance(bad, int) or vs_problem(bad) is not None


# --- holdings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"v": 1, "holdings": {"bitcoin": {"amount": 1,}}}',  # a trailing comma
        b"\xff\xfe not utf-8",
        DEEP.encode(),
        b'{"v": 1, "holdings": [1, 2]}',  # not the expected shape
    ],
)
def test_an_unreadable_holdings_file_is_moved_aside_before_a_save(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "holdings.json"
    path.write_bytes(content)
    problems: list[str] = []
    assert load_holdings(path, problems) == {}
    assert len(problems) == 1 and "holdings" in problems[0] and ".bad-" in problems[0]
    (aside,) = asides(path)
    assert aside.read_bytes() == content and not path.exists()
    # The next save writes the one new holding; the damaged file is still there, whole.
    save_holdings(path, {"ethereum": Holding("ethereum", 2.0)})
    assert aside.read_bytes() == content


def test_invalid_entries_are_kept_aside_and_the_good_ones_loaded(tmp_path: Path) -> None:
    path = tmp_path / "holdings.json"
    entries = {
        "bitcoin": {"amount": 0.5, "cost": 10_000.0, "currency": "usd"},
        "ethereum": {"amount": 10**400},  # 400 digits: once an OverflowError
        "solana": {"amount": 1, "cost": 1e999},  # read as infinity
        "dogecoin": {"amount": True},
        "../x": {"amount": 1},
        "cardano": {"amount": 1, "currency": "usd\x1b]52;c;x\x07"},
    }
    text = json.dumps({"v": 1, "holdings": entries}).replace("1e999", "1" + "0" * 400 + ".0")
    path.write_text(text)
    problems: list[str] = []
    assert load_holdings(path, problems) == {"bitcoin": Holding("bitcoin", 0.5, 10_000.0, "usd")}
    assert len(problems) == 1 and "5 entries not loaded" in problems[0], problems
    (aside,) = asides(path)
    assert json.loads(aside.read_text()) == json.loads(text)  # the file as it was
    # Rewritten with the good entries: the next start is clean and makes no second copy.
    again: list[str] = []
    assert load_holdings(path, again) == {"bitcoin": Holding("bitcoin", 0.5, 10_000.0, "usd")}
    assert again == [] and len(asides(path)) == 1


def test_a_100k_entry_holdings_file_costs_one_line(tmp_path: Path) -> None:
    path = tmp_path / "holdings.json"
    entries = {
        f"coin-{i}": {"amount": 1.0, "cost": None, "currency": "usd"} for i in range(100_000)
    }
    path.write_text(json.dumps({"v": 1, "holdings": entries}))
    problems: list[str] = []
    started = time.process_time()
    held = load_holdings(path, problems)
    spent = time.process_time() - started
    assert len(held) == MAX_HOLDINGS and len(problems) == 1
    assert f"beyond the first {MAX_HOLDINGS}" in problems[0] and asides(path)
    print(f"100k-entry holdings file read in {spent:.2f} s of CPU")  # a figure, not a check


def test_holdings_are_private_and_keep_their_currency(tmp_path: Path) -> None:
    path = tmp_path / "holdings.json"
    save_holdings(path, {"bitcoin": Holding("bitcoin", 1.0, 50_000.0, "usd")})
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        os.chmod(path, 0o644)  # an older version, or a copy
    held = load_holdings(path)
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    h = held["bitcoin"]
    assert h.currency == "usd"
    # Under --vs eur: no P&L across currencies, and words for the panel.
    assert h.pnl(60_000.0, "eur") is None and h.pnl(60_000.0, "usd") == 10_000.0
    assert h.cost_note("eur") == "cost in USD, P&L not shown under EUR"
    assert h.cost_note("usd") is None
    # Edited under EUR, the cost keeps the currency it was entered in.
    edited = make_holding("bitcoin", "2", "50,000", currency=cost_currency(h, "eur"))
    save_holdings(path, {"bitcoin": edited})
    assert load_holdings(path)["bitcoin"].currency == "usd"
    assert cost_currency(None, "EUR") == "eur"
    assert cost_currency(Holding("bitcoin", 1.0), "eur") == "eur"  # no cost yet: the app's vs


def test_stale_temp_files_of_atomic_writes_are_removed(tmp_path: Path) -> None:
    alive = tmp_path / f".holdings.json.{os.getpid()}.1.tmp"
    dead = tmp_path / ".holdings.json.999999999.1.tmp"  # no such process
    other = tmp_path / "notes.tmp"
    for p in (alive, dead, other):
        p.write_text("x")
    assert remove_stale_temps(tmp_path) == [dead]
    assert alive.exists() and other.exists()
    # Locations.ensure (every entry point) does it for the data dir and its models/exports dirs.
    (tmp_path / "models").mkdir()
    stale = tmp_path / "models" / ".bitcoin.pt.999999999.7.tmp"
    stale.write_bytes(b"x" * 1000)
    Locations(tmp_path, tmp_path).ensure()
    assert not stale.exists()


def test_a_write_never_replaces_a_device(tmp_path: Path) -> None:
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    with pytest.raises(OSError):
        write_atomic(Path("/dev/null"), "x")
    assert Path("/dev/null").is_char_device()


# --- the UI state file (prefs) --------------------------------------------------------------------


def test_ui_state_values_that_break_the_rules_are_left_out_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ui-demo.json"
    ui = {
        "levels": {"bitcoin": [1e-320, 70_000, 10**400], "../x": [5]},
        "thresholds": {"bitcoin": 0.3, "ethereum": 10**400},
        "horizon": 10**400,
        "window": "6h",
    }
    path.write_text(json.dumps({"ui": ui, "watchlist": ["bitcoin"]}))
    problems: list[str] = []
    prefs = load_prefs(path, problems)
    assert prefs.levels == {"bitcoin": [70_000.0]} and prefs.thresholds == {"bitcoin": 0.3}
    assert prefs.horizon is None
    assert len(problems) == 1 and "left out" in problems[0], problems
    (aside,) = asides(path)
    assert json.loads(aside.read_text())["ui"]["thresholds"]["ethereum"] == 10**400
    assert json.loads(path.read_text())["watchlist"] == ["bitcoin"]  # other keys kept
    again: list[str] = []
    assert load_prefs(path, again) == prefs and again == []


@pytest.mark.parametrize("content", [DEEP, '{"ui": {"window": "1h",}}', "\udcff"])
def test_an_unreadable_ui_state_file_is_moved_aside(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ui.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    problems: list[str] = []
    assert load_prefs(path, problems) == Prefs()
    assert len(problems) == 1 and asides(path)
    save_prefs(path, Prefs(window="1h"))
    assert load_prefs(path).window == "1h"
    assert asides(path)[0].read_bytes() == content.encode("utf-8", "surrogateescape")


def test_a_tiny_level_never_raises() -> None:
    f = ForecastEvent("b", 0, 100.0, (1,), (0.0,), (-0.01,), (0.01,), (-0.02,), (0.02,))
    for level in (1e-320, 5e-324, float("inf"), float("nan"), 1e308):
        p = prob_beyond(f, 1, level)
        assert p is None or 0.0 <= p <= 1.0


# --- state.json and config ---------------------------------------------------------------------


def test_a_damaged_state_file_is_moved_aside_before_the_watchlist_is_saved(tmp_path: Path) -> None:
    loc = Locations(tmp_path, tmp_path)
    loc.state_file.write_text(DEEP)
    problems: list[str] = []
    assert load_watchlist(loc, "coins", problems) == ()
    assert len(problems) == 1 and "state" in problems[0]
    (aside,) = asides(loc.state_file)
    update_state(loc, "coins", ["bitcoin"])
    assert load_state(loc) == {"coins": ["bitcoin"]} and aside.read_text() == DEEP


def test_depth_is_checked_without_recursion() -> None:
    assert depth_problem(DEEP.encode()) is not None
    assert depth_problem(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') is None
    assert depth_problem(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is None
    assert sys.getrecursionlimit() < 100_000


def test_config_numbers_follow_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("calls_per_month = 100000000000000000000\n")
    with pytest.raises(ConfigError, match="too large"):
        load_config_file(path)
    path.write_text("coins = " + DEEP + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config_file(path)


def test_the_request_budget_file_survives_damage(tmp_path: Path) -> None:
    from engine.sources.budget import load_counts

    path = tmp_path / "budget.json"
    for text in (DEEP, '{"month": "2026-01", "month_used": ' + "9" * 400 + "}", "{"):
        path.write_text(text)
        assert load_counts(path) == {}
    path.write_text('{"month": "2026-01", "month_used": 12}')
    assert load_counts(path) == {"month": "2026-01", "month_used": 12}


# --- replay worlds and coins ---------------------------------------------------------------------


def test_a_replay_world_is_named_by_content(tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text("timestamp_ms,open,high,low,close,volume\n60000,1,1,1,17000,1\n")
    first = replay_world(("bitcoin",), (f,))
    assert replay_world(("bitcoin",), (f,)) == first
    mtime = f.stat().st_mtime_ns
    f.write_text("timestamp_ms,open,high,low,close,volume\n60000,1,1,1,0.300,1\n")  # same size
    os.utime(f, ns=(mtime, mtime))  # and the same modification time, as cp -p keeps it
    assert replay_world(("bitcoin",), (f,)) != first
    copy = tmp_path / "copy.csv"
    copy.write_bytes(f.read_bytes())
    assert replay_world(("bitcoin",), (copy,)) == replay_world(("bitcoin",), (f,))


def test_coins_are_taken_by_symbol_and_name() -> None:
    assert resolve_coins("BTC,eth") == (
        ("bitcoin", "ethereum"),
        ("BTC -> bitcoin", "eth -> ethereum"),
    )
    assert resolve_coins("bitcoin,Ethereum") == (("bitcoin", "ethereum"), ())
    ids, notes = resolve_coins("dogee")
    assert ids == ("dogee",) and "did you mean dogecoin" in notes[0]
    assert parse_coins("SOL,solana") == ("solana",)
    with pytest.raises(ConfigError, match="did you mean bitcoin"):
        resolve_coins("bitcoin!")
