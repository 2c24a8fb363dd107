"""The chart widget's drawing: the series drawn into plotext's matrix match plotext's own braille plot,
and the built lines are kept until the data, the size or the theme changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from plotext._matrix import matrix_class
from textual.app import App, ComposeResult
from textual.strip import Strip

from tests.fake_engine import FakeEngine
from tui.chart_data import WINDOWS, ChartData, build_chart
from tui.widgets.chart_plot import ChartPlot, FastMatrix

pytestmark = pytest.mark.usefixtures("utc")


class PlotPair(App[None]):
    """Two plots stacked, the same size: the one under test and its reference."""

    CSS = "ChartPlot { width: 1fr; height: 1fr; }"

    def __init__(self, first: ChartPlot, second: ChartPlot) -> None:
        super().__init__()
        self.plots = (first, second)

    def compose(self) -> ComposeResult:
        yield from self.plots


def run_pair(first: ChartPlot, second: ChartPlot, size: tuple[int, int],
             body: Callable[[Any, ChartPlot, ChartPlot], Awaitable[None]]) -> None:
    """Run ``body(pilot, first, second)`` once both plots are laid out at the same size."""

    async def run() -> None:
        async with PlotPair(first, second).run_test(size=size) as pilot:
            await pilot.pause()
            assert first.size == second.size
            await body(pilot, first, second)

    asyncio.run(run())


def ours_and_plotexts() -> tuple[ChartPlot, ChartPlot]:
    """Our drawing, and the same figure with plotext drawing the series, line and band itself."""
    return ChartPlot(id="ours"), ChartPlot(id="plotext", plotext_lines=True)


def cells(strips: list[Strip]) -> dict[tuple[int, int], tuple[str, str]]:
    """(x, y) -> (glyph, colour) of every cell (a space's colour does not show: None)."""
    out: dict[tuple[int, int], tuple[str, str]] = {}
    for y, strip in enumerate(strips):
        x = 0
        for seg in strip:
            for ch in seg.text:
                out[(x, y)] = (ch, str(seg.style.color if seg.style and ch != " " else None))
                x += 1
    return out


def _braille(ch: str) -> bool:
    return 0x2800 < ord(ch) <= 0x28FF


def braille_cells(strips: list[Strip]) -> dict[tuple[int, int], tuple[str, str]]:
    """(x, y) -> (glyph, colour) of every braille cell."""
    return {k: v for k, v in cells(strips).items() if _braille(v[0])}


def other_cells(strips: list[Strip]) -> dict[tuple[int, int], tuple[str, str]]:
    """(x, y) -> (glyph, colour) of every cell that is not a braille dot cell."""
    return {k: v for k, v in cells(strips).items() if not _braille(v[0])}


@pytest.mark.parametrize("size,window,history,ohlc", [((120, 60), "24h", 1440, True),
                                                       ((90, 40), "1h", 200, False),
                                                       ((200, 100), "6h", 700, True),
                                                       ((160, 48), "6h", 700, False)])
def test_series_drawn_into_the_matrix_match_plotexts_own_braille_plot(
    size: tuple[int, int], window: str, history: int, ohlc: bool
) -> None:
    """Every layer (band ribbon, forward band, alert levels, candles or the price line, the
    network's line, the forecast, the misses) lands where plotext's own scatter and plot put it."""
    engine = FakeEngine(coins=("bitcoin",), history=history, ohlc=ohlc, rel_mae={5: 0.97})
    snap = engine.snapshot("bitcoin")

    async def body(_pilot: Any, ours: ChartPlot, theirs: ChartPlot) -> None:
        w, h = ours.size
        last = snap.bars[-1].price
        data = build_chart(snap, 5, WINDOWS[window], w - 12, h - 3, levels=(last * 1.002,))
        assert data.network and len(data.forward) > 1 and data.ribbon and data.levels
        assert data.miss_marks[0] or data.miss_marks[1]
        assert bool(data.candles) == ohlc and bool(data.price) != ohlc
        ours.show(data, "Bitcoin (BTC)")
        theirs.show(data, "Bitcoin (BTC)")
        a, b = ours.render_lines_now(), theirs.render_lines_now()
        # Every other cell (frame, ticks, labels, the "now" line where it meets the axes, the
        # bands' dots, levels, candles, misses) is the same glyph in the same colour.
        oa, ob = other_cells(a), other_cells(b)
        assert oa == ob
        glyphs = {ch for ch, _ in oa.values()}
        assert {"·", "─", "┴", "┬"} <= glyphs  # bands, an alert level, "now" meeting the axes
        assert glyphs & {"▲", "▼"}  # misses
        if ohlc:
            assert {"│", "┃"} <= glyphs  # candles
            assert glyphs & set("▁▂▃▄▅▆▇█")  # volume
        assert sum(ch == "│" for ch, _ in oa.values()) > h // 2  # the "now" line
        ca, cb = braille_cells(a), braille_cells(b)
        # Braille: the price line, or (over candles) what shows of the network's line and the
        # forecast.
        assert len(ca) > (20 if ohlc else 50)
        assert set(ca) == set(cb)  # the same cells are inked
        assert all(ca[k][1] == cb[k][1] for k in ca)  # in the same colours
        # The same dots: plotext's braille table has a few wrong glyphs, so allow a handful.
        same = sum(ca[k][0] == cb[k][0] for k in ca)
        assert same >= 0.98 * len(ca)

    run_pair(*ours_and_plotexts(), size, body)


class StockMatrixPlot(ChartPlot):
    matrix_class = matrix_class  # plotext's own, cell by cell


@pytest.mark.parametrize("size,window,history,title", [((200, 100), "24h", 1440, "Bitcoin (BTC)"),
                                                        ((60, 24), "1h", 90, "A much longer title than fits"),
                                                        ((30, 12), "6h", 400, "")])
def test_fast_matrix_builds_the_same_cells_as_plotexts_own(
    size: tuple[int, int], window: str, history: int, title: str
) -> None:
    """Frame, ticks, labels, title, band dots and the "now" line: FastMatrix's row-at-a-time writes
    leave every marker, colour, style and background exactly as plotext's per-cell ones."""
    snap = FakeEngine(coins=("bitcoin",), history=history).snapshot("bitcoin")

    async def body(_pilot: Any, fast: ChartPlot, stock: ChartPlot) -> None:
        w, h = fast.size
        data = build_chart(snap, 5, WINDOWS[window], max(10, w - 12), max(4, h - 3))
        for plot in (fast, stock):
            plot.show(data, title)
            plot.render_lines_now()
        a, b = fast.plt.monitor.matrix, stock.plt.monitor.matrix
        assert type(a) is FastMatrix and type(b) is matrix_class
        assert a.marker == b.marker
        assert a.fullground == b.fullground
        assert a.style == b.style
        assert a.background == b.background
        assert fast.render_lines_now() == stock.render_lines_now()

    run_pair(ChartPlot(id="fast"), StockMatrixPlot(id="stock"), size, body)


class ClearFigurePlot(ChartPlot):
    @staticmethod
    def _clear(plt: object) -> None:
        plt.clear_figure()  # type: ignore[attr-defined]  # plotext's own clean slate


def test_a_fresh_monitor_draws_what_plotexts_clear_figure_would() -> None:
    """Figure after figure (new data, no data, another window, a resize, another theme), the chart
    built on a fresh monitor is cell for cell the one built after plotext's clear_figure()."""
    engine = FakeEngine(coins=("bitcoin", "ethereum"), history=900)

    async def body(pilot: Any, fresh: ChartPlot, plotext: ChartPlot) -> None:
        def check(coin: str | None, window: str) -> None:
            w, h = fresh.size
            snap = engine.snapshot(coin) if coin else None
            for plot in (fresh, plotext):
                if snap is None:
                    plot.show(ChartData(0.0, 3600.0, None), "")  # nothing to draw
                else:
                    plot.show(build_chart(snap, 5, WINDOWS[window], w - 12, h - 3), coin)
                plot.render_lines_now()
            a, b = fresh.plt.monitor.matrix, plotext.plt.monitor.matrix
            assert (a.marker, a.fullground, a.style, a.background) == (
                b.marker, b.fullground, b.style, b.background), (coin, window, fresh.size)
            assert fresh.render_lines_now() == plotext.render_lines_now()

        check("bitcoin", "24h")
        check("ethereum", "1h")
        check(None, "1h")
        check("bitcoin", "6h")
        await pilot.resize_terminal(90, 40)
        await pilot.pause()
        check("ethereum", "24h")
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        check("bitcoin", "1h")

    run_pair(ChartPlot(id="fresh-monitor"), ClearFigurePlot(id="clear-figure"), (120, 60), body)


def test_fast_matrix_string_writes_match_plotexts_cell_by_cell() -> None:
    """Random horizontal and vertical strings (every alignment, colours, style, background, space and
    canvas checks, partly or wholly off the matrix) land exactly where plotext's own put them."""
    import random

    rng = random.Random(3)
    for trial in range(400):
        cols, rows = rng.randint(1, 30), rng.randint(1, 12)
        c1, r1 = rng.randint(0, cols), rng.randint(0, rows)
        area = (c1, rng.randint(c1, cols), r1, rng.randint(r1, rows))
        mats = []
        for cls in (FastMatrix, matrix_class):
            m = cls()
            m.set_size(cols, rows)
            m.set_canvas_area(*area)
            m.set_axes_color("red")
            m.set_canvas_color("blue")
            m.set_matrices()
            mats.append(m)
        for _ in range(rng.randint(1, 8)):
            text = "".join(rng.choice("ab─│ ") for _ in range(rng.randint(0, 12)))
            col, row = rng.randint(-5, cols + 5), rng.randint(-2, rows + 2)
            colours = [rng.choice((None, "green", (1, 2, 3))) for _ in range(3)]
            canvas = rng.random() < 0.3
            if rng.random() < 0.5:
                space = rng.random() < 0.3 and 0 <= row < rows  # plotext itself fails off the matrix
                align = rng.choice(("left", "center", "right"))
                got = [m.add_horizontal_string(col, row, text, *colours, alignment=align,
                                               check_space=space, check_canvas=canvas) for m in mats]
                assert bool(got[0]) == bool(got[1])
            else:
                align = rng.choice(("bottom", "center", "top"))
                for m in mats:
                    m.add_vertical_string(col, row, text, *colours, alignment=align, check_canvas=canvas)
        a, b = mats
        assert (a.marker, a.fullground, a.style, a.background) == (b.marker, b.fullground, b.style, b.background), trial


def test_built_lines_are_kept_until_data_size_or_theme_change() -> None:
    engine = FakeEngine(coins=("bitcoin",), history=300)

    async def body(pilot: Any, plot: ChartPlot, _other: ChartPlot) -> None:
        app = pilot.app
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

    run_pair(*ours_and_plotexts(), (100, 40), body)


def _reference_dots(xs: list[int], ys: list[int]) -> dict[int, int]:
    """plotext's get_line, dot by dot: n = max(|dx|, |dy|) steps, dot i at int(p + d*i/n)."""
    from tui.widgets.chart_plot import _DOTS

    cells: dict[int, int] = {}
    dots = [(xs[0], ys[0])]
    for (px, py), (X, Y) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        n = max(abs(X - px), abs(Y - py))
        dots += [(int(px + (X - px) * i / n), int(py + (Y - py) * i / n)) for i in range(1, n + 1)]
    for x, y in dots:
        key = (y >> 2) << 16 | (x >> 1)
        cells[key] = cells.get(key, 0) | _DOTS[(y & 3) << 1 | (x & 1)]
    return cells


def test_vertical_runs_place_exactly_plotexts_dots() -> None:
    """Steps drawn a cell at a time set the same dots as plotext's one-dot-per-step line, for steep,
    shallow, flat, backward and single-dot steps alike."""
    import random

    from tui.widgets.chart_plot import _steps_inside

    rng = random.Random(7)
    for trial in range(3000):
        k = rng.randint(1, 12)
        xs, ys = [rng.randint(0, 60)], [rng.randint(0, 120)]
        for _ in range(k):
            step_x = rng.choice((0, 1, 1, 2, 3, rng.randint(-5, 20)))
            step_y = rng.choice((0, 1, -1, rng.randint(-40, 40), rng.randint(-3, 3)))
            xs.append(min(399, max(0, xs[-1] + step_x)))
            ys.append(min(199, max(0, ys[-1] + step_y)))
        cells: dict[int, int] = {}
        _steps_inside(xs, ys, cells)
        assert cells == _reference_dots(xs, ys), (trial, xs, ys)


def test_matrix_cells_are_plotexts_get_matrix_data_value_for_value() -> None:
    """The chart's own value -> cell mapping gives plotext's cells exactly, halves and all."""
    import random

    from plotext._utility import get_matrix_data

    from tui.widgets.chart_plot import matrix_cells

    rng = random.Random(5)
    for _ in range(300):
        lo = rng.uniform(-1e4, 1e4)
        hi = lo + rng.choice((1e-3, 1.0, 37.5, 1e5))
        bins = rng.randint(1, 300)
        # Random values, and values that land exactly on cell edges and centres.
        values = [rng.uniform(lo - 1, hi + 1) for _ in range(50)]
        values += [lo + (hi - lo) * (j + 0.5) / max(1, bins - 1) for j in range(-1, bins)]
        values += [lo + (hi - lo) * j / max(1, bins - 1) for j in range(-1, bins + 1)]
        assert matrix_cells(values, (lo, hi), bins) == get_matrix_data(values, [lo, hi], bins)
