"""The command line: bad input gives one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize(
    "args, words",
    [
        (["--speed", "fast"], "invalid speed"),
        (["--speed", "-3"], "invalid speed"),
        (["--bogus"], "unrecognized arguments"),
        (["--coins", "bit coin"], "invalid coin id"),
        (["--horizons", "0,5"], "invalid horizons"),
        (["--source", "carrier-pigeon"], "invalid choice"),
        (["--connect", "http://x"], "invalid --connect"),
        (["serve", "--host", "0.0.0.0"], "--token"),
        (["serve", "--port", "99999"], "invalid port"),
        (["--replay", "nofile"], "COIN=FILE"),
        (["--replay", "bitcoin=/nonexistent.csv"], "not found"),
        (["export", "--coin", "bitcoin", "--out", "/missing/dir/x.csv"], "no such directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], words: str, tmp_path: Path) -> None:
    r = run_cli(*args, home=tmp_path / "h")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("cryptotui: error:") and words in lines[0]
    assert "Traceback" not in r.stderr


def test_unwritable_home_is_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run_cli("--demo", "--home", str(blocker / "sub"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot write to data dir" in r.stderr


def test_bad_config_file_names_file_and_key(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    (home / "config.toml").write_text('vs = "usd"\nspeed = "fast"\n')
    r = run_cli("--demo", home=home)
    assert r.returncode == 2
    assert "config.toml, line 2" in r.stderr and "'speed'" in r.stderr


def test_export_without_data_is_clear(tmp_path: Path) -> None:
    r = run_cli("export", "--coin", "bitcoin", home=tmp_path / "h")
    assert r.returncode == 2 and "no database" in r.stderr


def test_export_writes_stored_history(tmp_path: Path) -> None:
    from engine.events import Bar
    from engine.store import Store

    home = tmp_path / "h"
    home.mkdir()
    s = Store(home / "cryptotui.sqlite3")
    s.add_bars([Bar("bitcoin", 60 * i, 100.0 + i) for i in range(1, 4)])
    s.close()
    out = tmp_path / "o.csv"
    r = run_cli("export", "--coin", "bitcoin", "--out", str(out), home=home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert len(out.read_text().splitlines()) == 4
    r = run_cli("export", "--coin", "dogecoin", home=home)
    assert r.returncode == 2 and "coins stored: bitcoin" in r.stderr


def test_help_exits_zero() -> None:
    r = run_cli("--help")
    assert r.returncode == 0 and "--demo" in r.stdout


def test_every_argument_has_help_and_readme_matches() -> None:
    from tui.__main__ import (
        build_backtest_parser,
        build_export_parser,
        build_parser,
        build_serve_parser,
    )

    for parser in (
        build_parser(),
        build_serve_parser(),
        build_export_parser(),
        build_backtest_parser(),
    ):
        assert "``" not in (parser.description or "")  # no docstring markup
        for action in parser._actions:  # argparse has no public list of a parser's arguments
            assert action.help, (parser.prog, action.dest)
    assert "--bar 1m|5m|15m|1h" in run_cli("backtest", "--help").stdout
    assert "--bar 1m|5m|15m|1h" in (ROOT / "README.md").read_text(encoding="utf-8")
