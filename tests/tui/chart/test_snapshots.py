"""Snapshot tests (pytest-textual-snapshot) of the chart telling forecast against outcome, at 80x24
and 160x48, on the fake engine: the past band as a ribbon, the minutes outside it, the network's
line with its score, alert levels, candles (or a line for a price-only source), zoom and pan.

Update after an intended visual change with ``pytest tests/test_chart_snapshots.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import snap_settle
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp

SIZES = [(80, 24), (160, 48)]

pytestmark = pytest.mark.usefixtures("utc")


def chart_app(
    history: int,
    window: str,
    *,
    ohlc: bool = True,
    rel_mae: float = 1.0,
    levels: tuple[float, ...] = (),
) -> CryptoApp:
    engine = FakeEngine(history=history, ohlc=ohlc, rel_mae={5: rel_mae})
    app = CryptoApp(engine)
    app.prefs.window = window
    if levels:
        app.prefs.levels["bitcoin"] = list(levels)
    return app


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_candles_band_misses_network_levels_1h(snap_compare: Any, size: tuple[int, int]) -> None:
    # A network that beats "no change" (drawn, with its score), two alert levels near the price.
    app = chart_app(400, "1h", rel_mae=0.97, levels=(7345.0, 7372.0))
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_price_line_network_hidden_24h(snap_compare: Any, size: tuple[int, int]) -> None:
    # A price-only source (CoinGecko): a line; the network no better than "no change": not drawn.
    app = chart_app(1200, "24h", ohlc=False, levels=(7300.0, 9000.0))
    assert snap_compare(app, terminal_size=size, run_before=snap_settle(app))


def test_zoomed_in_and_panned_back(snap_compare: Any) -> None:
    app = chart_app(400, "6h", rel_mae=0.97)
    assert snap_compare(
        app,
        terminal_size=(160, 48),
        press=["plus", "plus", "left", "left"],
        run_before=snap_settle(app),
    )


def test_candles_one_per_column_24h(snap_compare: Any) -> None:
    # Zoomed out: one candle per column, the volume strip, the network beating "no change".
    app = chart_app(1200, "24h", rel_mae=0.97, levels=(7000.0,))
    assert snap_compare(app, terminal_size=(160, 48), run_before=snap_settle(app))
