"""The chart widget's drawing: the series drawn into plotext's matrix match plotext's own braille plot,
and the built lines are kept until the data, the size or the theme changes."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip

from tests.fake_engine import FakeEngine
from tui.chart_data import WINDOWS, build_chart
from tui.widgets.chart_plot import ChartPlot

pytestmark = pytest.mark.usefixtures("utc")


class TwoCharts(App[None]):
    CSS = "ChartPlot { width: 1fr; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield ChartPlot(id="ours")
        yield ChartPlot(id="plotext", plotext_lines=True)


def braille_cells(strips: list[Strip]) -> dict[tuple[int, int], tuple[str, str]]:
    """(x, y) -> (glyph, colour) of every braille cell."""
    out: dict[tuple[int, int], tuple[str, str]] = {}
    for y, strip in enumerate(strips):
        x = 0
        for seg in strip:
            for ch in seg.text:
                if 0x2800 < ord(ch) <= 0x28FF:
                    out[(x, y)] = (ch, str(seg.style.color if seg.style else None))
                x += 1
    return out


@pytest.mark.parametrize("size,window,history", [((120, 60), "24h", 1440), ((90, 40), "1h", 200),
                                                  ((200, 100), "6h", 700)])
def test_series_drawn_into_the_matrix_match_plotexts_own_braille_plot(
    size: tuple[int, int], window: str, history: int
) -> None:
    engine = FakeEngine(coins=("bitcoin",), history=history)
    snap = engine.snapshot("bitcoin")

    async def run() -> None:
        app = TwoCharts()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            ours = app.query_one("#ours", ChartPlot)
            theirs = app.query_one("#plotext", ChartPlot)
            assert ours.size == theirs.size
            w, h = ours.size
            data = build_chart(snap, 5, WINDOWS[window], w - 12, h - 3)
            assert data.price and data.predicted and len(data.forward) > 1
            ours.show(data, "Bitcoin (BTC)")
            theirs.show(data, "Bitcoin (BTC)")
            a, b = ours.render_lines_now(), theirs.render_lines_now()
            # Everything but the braille series is plotext's own work in both.
            assert [s.text for s in a][:2] == [s.text for s in b][:2]
            ca, cb = braille_cells(a), braille_cells(b)
            assert len(ca) > 50
            assert set(ca) == set(cb)  # the same cells are inked
            assert all(ca[k][1] == cb[k][1] for k in ca)  # in the same colours
            # The same dots: plotext's braille table has a few wrong glyphs, so allow a handful.
            same = sum(ca[k][0] == cb[k][0] for k in ca)
            assert same >= 0.98 * len(ca)

    asyncio.run(run())


def test_built_lines_are_kept_until_data_size_or_theme_change() -> None:
    engine = FakeEngine(coins=("bitcoin",), history=300)

    async def run() -> None:
        app = TwoCharts()
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            plot = app.query_one("#ours", ChartPlot)
            w, h = plot.size
            plot.show(build_chart(engine.snapshot("bitcoin"), 5, 3600, w - 12, h - 3), "BTC")
            first = plot.render_lines_now()
            builds = plot.builds
            plot.refresh()
            await pilot.pause()
            assert plot.render_lines_now() == first and plot.builds == builds  # a repaint: no rebuild
            engine.advance(1)
            plot.show(build_chart(engine.snapshot("bitcoin"), 5, 3600, w - 12, h - 3), "BTC")
            await pilot.pause()
            assert plot.builds == builds + 1  # the screen's own paint rebuilt it, once for all lines
            assert plot.render_lines_now() != first and plot.builds == builds + 1  # new data
            app.theme = "textual-light" if app.theme != "textual-light" else "nord"
            await pilot.pause()
            plot.render_lines_now()
            assert plot.builds >= builds + 2  # new colours
            old_size = plot.size
            await pilot.resize_terminal(120, 50)
            await pilot.pause()
            assert plot.size != old_size
            lines = plot.render_lines_now()  # the widget's own lines at the new size, not the old ones
            assert len(lines) == plot.size.height
            assert all(s.cell_length == plot.size.width for s in lines)

    asyncio.run(run())
