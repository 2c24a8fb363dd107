"""Snapshots of the holdings panel (rows, total row, range), its privacy mask and the holding
dialog, at 80x24 and 160x48 (the style of ``test_tui_snapshots.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.settings.holdings import Holding, save_holdings
from tests.conftest import snap_settle
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp

SIZES = [(80, 24), (160, 48)]
pytestmark = pytest.mark.usefixtures("utc")


def app_with_holdings(tmp_path: Path) -> CryptoApp:
    save_holdings(
        tmp_path / "holdings.json",
        {
            "bitcoin": Holding("bitcoin", 0.25, 1500.0),
            "ethereum": Holding("ethereum", 3.0),
        },
    )
    return CryptoApp(FakeEngine(history=400), state_path=tmp_path / "ui.json")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_holdings_total_and_range(snap_compare: Any, size: tuple[int, int], tmp_path: Path) -> None:
    app = app_with_holdings(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_holdings_masked(snap_compare: Any, size: tuple[int, int], tmp_path: Path) -> None:
    app = app_with_holdings(tmp_path)

    async def run_before(pilot: Any) -> None:
        await snap_settle(app)(pilot)
        await pilot.press("m")
        app.clear_notifications()
        await snap_settle(app)(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_holding_dialog(snap_compare: Any, size: tuple[int, int], tmp_path: Path) -> None:
    app = app_with_holdings(tmp_path)
    assert snap_compare(app, terminal_size=size, press=["H"], run_before=snap_settle(app))


def test_holding_dialog_bad_amount(snap_compare: Any, tmp_path: Path) -> None:
    app = app_with_holdings(tmp_path)
    keys = ["H", "ctrl+a", "ctrl+k", *"1e99", "enter"]
    assert snap_compare(app, terminal_size=(80, 24), press=keys, run_before=snap_settle(app))


def test_alert_level_with_its_chance(snap_compare: Any, tmp_path: Path) -> None:
    app = app_with_holdings(tmp_path)
    keys = ["A", *"7370", "enter", *"7340", "enter"]
    assert snap_compare(app, terminal_size=(80, 24), press=keys, run_before=snap_settle(app))
