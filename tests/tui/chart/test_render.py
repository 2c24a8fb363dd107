"""The chart's figure: cell for cell what plotext's own public drawing of the same data builds
(frame, ticks, labels, title, "now" line, glyph series; braille lines dot for dot but for plotext's
few wrong glyphs), and the built lines kept until the data, the size or the theme changes."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from tests.fakes.fake_engine import FakeEngine
from tests.plotext_reference import PlotextChart
from tui.chart_canvas import _DOTS, Axes, Canvas, _steps_inside, frame, matrix_cells
from tui.chart_data import WINDOWS, ChartData, build_chart
from tui.widgets.chart_plot import ChartPlot

pytestmark = pytest.mark.usefixtures("utc")

Cells = dict[tuple[int, int], tuple[str, str | None, str | None]]


class PlotPair(App[None]):
    """Two plots stacked, the same size: the one under test and its reference."""

    CSS = "ChartPlot, PlotextChart { width: 1fr; height: 1fr; }"

    def __init__(self, first: Widget, second: Widget) -> None:
        super().__init__()
        self.plots = (first, second)

    def compose(self) -> ComposeResult:
        yield from self.plots


def run_pair(
    first: Widget,
    second: Widget,
    size: tuple[int, int],
    body: Callable[[Any, Any, Any], Awaitable[None]],
) -> None:
    """Run ``body(pilot, first, second)`` once both plots are laid out at the same size."""

    async def run() -> None:
        async with PlotPair(first, second).run_test(size=size) as pilot:
            await pilot.pause()
            assert first.size == second.size
            await body(pilot, first, second)

    asyncio.run(run())


def strip_cells(strips: list[Strip]) -> Cells:
    """(x, y) -> (glyph, colour, background) of every cell (a space's colour does not show: None)."""
    out: Cells = {}
    for y, strip in enumerate(strips):
        x = 0
        for seg in strip:
            style = seg.style
            for ch in seg.text:
                fg = str(style.color) if style and style.color and ch != " " else None
                out[(x, y)] = (ch, fg, str(style.bgcolor) if style and style.bgcolor else None)
                x += 1
    return out


def text_cells(text: Text) -> Cells:
    """The same for plotext's built figure, as textual-plotext's ``render()`` hands it over."""
    console = Console(width=1000, color_system="truecolor")
    lines = [list(line.render(console)) for line in text.split("\n", allow_blank=True)]
    return strip_cells([Strip(segments) for segments in lines])


def _braille(ch: str) -> bool:
    return 0x2800 < ord(ch) <= 0x28FF


def compare(
    ours: Cells, theirs: Cells
) -> dict[tuple[int, int], tuple[str, str | None, str | None]]:
    """Assert the two figures agree: every cell that is not a braille dot cell the same glyph in
    the same colours, every braille cell inked in both in the same colours, nearly all with the
    same dots (plotext's braille table has a few wrong glyphs). Returns the non-braille cells."""
    oa = {k: v for k, v in ours.items() if not _braille(v[0])}
    ob = {k: v for k, v in theirs.items() if not _braille(v[0])}
    assert oa == ob, sorted(
        (k, oa.get(k), ob.get(k)) for k in set(oa) | set(ob) if oa.get(k) != ob.get(k)
    )[:10]
    ca = {k: v for k, v in ours.items() if _braille(v[0])}
    cb = {k: v for k, v in theirs.items() if _braille(v[0])}
    assert set(ca) == set(cb)  # the same cells are inked
    assert all(ca[k][1:] == cb[k][1:] for k in ca)  # in the same colours
    same = sum(ca[k][0] == cb[k][0] for k in ca)
    assert same >= 0.98 * len(ca)
    return oa


@pytest.mark.parametrize(
    "size,window,history,ohlc",
    [
        ((120, 60), "24h", 1440, True),
        ((90, 40), "1h", 200, False),
        ((200, 100), "6h", 700, True),
        ((160, 48), "6h", 700, False),
    ],
)
def test_the_figure_is_plotexts_own_drawing_of_the_same_data(
    size: tuple[int, int], window: str, history: int, ohlc: bool
) -> None:
    """Every layer (band ribbon, forward band, alert levels, candles or the price line, the
    network's line, the forecast, the misses) and the frame, ticks, labels and title land where
    plotext's own vertical_line, scatter and plot put them, in the same colours."""
    engine = FakeEngine(coins=("bitcoin",), history=history, ohlc=ohlc, rel_mae={5: 0.97})
    snap = engine.snapshot("bitcoin")

    async def body(_pilot: Any, ours: ChartPlot, theirs: PlotextChart) -> None:
        w, h = ours.size
        last = snap.bars[-1].price
        data = build_chart(snap, 5, WINDOWS[window], w - 12, h - 3, levels=(last * 1.002,))
        assert data.network and len(data.forward) > 1 and data.ribbon and data.levels
        assert data.miss_marks[0] or data.miss_marks[1]
        assert bool(data.candles) == ohlc and bool(data.price) != ohlc
        ours.show(data, "Bitcoin (BTC)")
        a = strip_cells(ours.render_lines_now())
        oa = compare(a, text_cells(theirs.draw(data, "Bitcoin (BTC)")))
        glyphs = {ch for ch, _, _ in oa.values()}
        assert {"·", "─", "┴", "┬", "┤", "┌", "┘"} <= glyphs  # bands, a level, "now", the frame
        assert glyphs & {"▲", "▼"}  # misses
        if ohlc:
            assert {"│", "┃"} <= glyphs  # candles
            assert glyphs & set("▁▂▃▄▅▆▇█")  # volume
        assert sum(ch == "│" for ch, _, _ in oa.values()) > h // 2  # the "now" line
        assert "".join(a[(x, 0)][0] for x in range(w)).strip() == "Bitcoin (BTC)"
        # Braille: the price line, or (over candles) what shows of the network's line and the
        # forecast.
        assert sum(_braille(v[0]) for v in a.values()) > (20 if ohlc else 50)

    run_pair(ChartPlot(id="ours"), PlotextChart(id="plotext"), size, body)


def test_figure_after_figure_matches_plotext() -> None:
    """New data, no data, another window, a long or blank title, a resize, another theme: each
    figure is plotext's own, cell for cell."""
    engine = FakeEngine(coins=("bitcoin", "ethereum"), history=900)

    async def body(pilot: Any, ours: ChartPlot, theirs: PlotextChart) -> None:
        def check(coin: str | None, window: str, title: str) -> None:
            w, h = ours.size
            snap = engine.snapshot(coin) if coin else None
            data = (
                build_chart(snap, 5, WINDOWS[window], w - 12, h - 3)
                if snap is not None
                else ChartData(0.0, 3600.0, None)
            )  # nothing to draw: title and frame
            ours.show(data, title)
            compare(strip_cells(ours.render_lines_now()), text_cells(theirs.draw(data, title)))

        check("bitcoin", "24h", "Bitcoin (BTC)")
        check("ethereum", "1h", "A much longer title than fits in the sixty columns of this plot")
        check(None, "1h", "Empty")
        check("bitcoin", "6h", "")
        check("bitcoin", "6h", "  Bitcoin  ")
        await pilot.resize_terminal(60, 48)
        await pilot.pause()
        check("ethereum", "24h", "Ethereum (ETH)")
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        check("bitcoin", "1h", "Bitcoin (BTC)")

    run_pair(ChartPlot(id="ours"), PlotextChart(id="plotext"), (120, 60), body)


@pytest.mark.parametrize("size", [(30, 12), (20, 10), (14, 8), (12, 6), (8, 5), (5, 4), (3, 2)])
def test_a_tiny_figure_is_plotexts_too(size: tuple[int, int]) -> None:
    """Where the frame, labels and title crowd each other, the same one wins as in plotext."""
    snap = FakeEngine(coins=("bitcoin",), history=400).snapshot("bitcoin")

    async def body(_pilot: Any, ours: ChartPlot, theirs: PlotextChart) -> None:
        w, h = ours.size
        data = build_chart(snap, 5, WINDOWS["6h"], max(10, w - 12), max(4, h - 3))
        ours.show(data, "Bitcoin (BTC)")
        compare(
            strip_cells(ours.render_lines_now()), text_cells(theirs.draw(data, "Bitcoin (BTC)"))
        )

    # Stacked, each plot gets half the terminal's height.
    run_pair(ChartPlot(id="ours"), PlotextChart(id="plotext"), (size[0], 2 * size[1]), body)


def test_time_labels_shift_off_the_edges_and_never_touch() -> None:
    """A time label centred on its tick moves inside the figure at an edge; one that would touch a
    label already placed is left out, and its tick with it."""
    axes = Axes(
        (0.0, 100.0),
        (0.0, 1.0),
        [0.0, 3.0, 50.0, 100.0],
        ["aaaaaaa", "bbbbb", "ccccc", "ddddd"],
        [0.5],
        ["x"],
    )
    cv = frame(40, 10, "T", "ink", axes)
    labels = "".join(cv.chars[0])
    edge = "".join(cv.chars[1])
    # The first tick is at column 2: centred there its label would start at column -1.
    assert labels.startswith(" aaaaaaa ")
    assert "bbbbb" not in labels  # it would touch "aaaaaaa"
    assert "ccccc" in labels and labels.rstrip().endswith("ddddd")
    assert edge[2] == "┬" and edge.count("┬") == 3  # ticks only where a label went
    assert cv.inks[0][2] == "ink" and cv.inks[0][0] is None


def test_the_canvas_clips_what_falls_off_it() -> None:
    cv = Canvas(5, 3)
    cv.put(-2, 1, "abcdefgh", "a")
    cv.put(0, 7, "zz", "b")
    cv.put_column(4, -1, "pqrst", "c")
    assert ["".join(r) for r in cv.chars] == ["    q", "cdefr", "    s"]
    assert not cv.put_if_free(3, 0, "xyz", "d")  # does not fit
    assert not cv.put_if_free(3, 0, "x", "d")  # next to "q"
    assert cv.put_if_free(1, 0, "x", "d") and cv.chars[0][1] == "x"


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

    run_pair(ChartPlot(id="one"), ChartPlot(id="two"), (100, 40), body)


def _reference_dots(xs: list[int], ys: list[int]) -> dict[int, int]:
    """plotext's get_line, dot by dot: n = max(|dx|, |dy|) steps, dot i at int(p + d*i/n)."""
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


def _plotext_cell(v: float, lo: float, hi: float, bins: int) -> int:
    """plotext 5's value -> cell, as its source states it: floor(round(0.5 + (bins - 1) *
    (v - lo) / (hi - lo), 8)) with its own round, which takes halves up."""
    n = (0.5 + (bins - 1) * (v - lo) / (hi - lo)) * 10**8
    f = math.floor(n)
    r = f if n - f < 0.5 else math.ceil(n)
    return math.floor(r * 10**-8)


def test_matrix_cells_are_plotexts_value_for_value() -> None:
    """The chart's own value -> cell mapping gives plotext's cells exactly, halves and all."""
    import random

    rng = random.Random(5)
    for _ in range(300):
        lo = rng.uniform(-1e4, 1e4)
        hi = lo + rng.choice((1e-3, 1.0, 37.5, 1e5))
        bins = rng.randint(1, 300)
        # Random values, and values that land exactly on cell edges and centres.
        values = [rng.uniform(lo - 1, hi + 1) for _ in range(50)]
        values += [lo + (hi - lo) * (j + 0.5) / max(1, bins - 1) for j in range(-1, bins)]
        values += [lo + (hi - lo) * j / max(1, bins - 1) for j in range(-1, bins + 1)]
        assert matrix_cells(values, (lo, hi), bins) == [
            _plotext_cell(v, lo, hi, bins) for v in values
        ]
