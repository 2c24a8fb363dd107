"""The plot of the main chart: the figure (``tui.chart_canvas``) as Textual strips, kept until the
data, the size or the theme changes.

``tui.widgets.price_chart.PriceChart`` mounts it once the first frame is on screen and draws into it
when it posts ``PlotResized``.
"""

from __future__ import annotations

from itertools import compress
from operator import is_not
from typing import Any

from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.color import Color as TextualColor
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tui.chart_canvas import AXIS_ROWS, Axes, Canvas, Ink, draw_lines, draw_marks, frame
from tui.chart_data import ChartData, Dots, level_points, time_ticks
from tui.format import format_clock, nice_ticks, tick_labels
from tui.gcpause import collections_paused
from tui.widgets.palette import Palette

# What the chart draws, bottom layer first: ("marks", a chart_canvas.Mark) or ("lines", a Line).
Layer = tuple[str, Any]


class PlotResized(Message):
    """The plot changed size (or has its first): the owner downsamples again for the new width."""


# (ink, background) -> Rich style, shared by every chart.
_STYLES: dict[tuple[Ink, Ink], Style] = {}


def _colour(ink: Ink) -> Color:
    return Color.from_rgb(*ink) if isinstance(ink, tuple) else Color.parse(ink)


def _style(ink: Ink, background: tuple[int, int, int]) -> Style:
    key = (ink, background)
    found = _STYLES.get(key)
    if found is None:
        bg = Color.from_rgb(*background)
        found = _STYLES[key] = Style(color=None if ink is None else _colour(ink), bgcolor=bg)
    return found


def _cuts(cells: list[Any], n: int) -> list[int]:
    """Columns 1..n-1 where ``cells`` changes object, found in C (map/compress), not a Python loop."""
    return list(compress(range(1, n), map(is_not, cells[1:], cells)))


def canvas_strips(cv: Canvas, width: int, background: tuple[int, int, int]) -> list[Strip]:
    """The figure's rows, top first, one segment per run of cells drawn in the same colour object.

    Every cell of a series, of the frame or of the labels shares one colour object, so a change of
    object is where a run ends (an equal but distinct object only splits a run).
    """
    strips: list[Strip] = []
    top = cv.height - 1
    for r in range(top, -1, -1):
        chars, inks = cv.chars[r], cv.inks[r]
        n = len(chars)
        cuts = _cuts(inks, n)
        cuts.append(n)
        text = "".join(chars)
        one_char = len(text) == n  # every glyph drawn is one character; be safe if not
        segments: list[Segment] = []
        start = 0
        for end in cuts:
            piece = text[start:end] if one_char else "".join(chars[start:end])
            segments.append(Segment(piece, _style(inks[start], background)))
            start = end
        # Every cell drawn is one cell wide except in the title (the top row), which holds the
        # coin's name: wide characters (CJK, emoji) take two, and a length declared too short
        # let the row run past the screen's edge. Only that row is measured (the others would
        # cost a tenth of a redraw).
        wide = r == top and cell_len(text) != n
        strip = Strip(segments) if wide else Strip(segments, n)
        strips.append(strip if strip.cell_length == width else strip.adjust_cell_length(width))
    return strips


def chart_axes(data: ChartData, width: int, height: int) -> Axes | None:
    """Limits, ticks and labels of the chart of ``data`` on a plot of ``width`` x ``height``
    (None: nothing to draw, only the title and the frame)."""
    if data.empty or data.y_range is None:
        return None
    cols = max(10, width - 12)
    rows = max(4, height - AXIS_ROWS)
    lo, hi = data.y_range
    yt = nice_ticks(lo, hi, max(2, rows // 3))
    xt = time_ticks(data.x0, data.x1, cols)
    return Axes(
        (data.x0, data.x1), (lo, hi), xt, [format_clock(t) for t in xt], yt, tick_labels(yt)
    )


# Glyphs of the chart's marks (the legend names them with the same characters).
BAND_GLYPH = "·"
LEVEL_GLYPH = "─"
WICK_GLYPH = "│"
BODY_GLYPH = "┃"
MISS_ABOVE_GLYPH = "▲"
MISS_BELOW_GLYPH = "▼"
VOLUME_GLYPHS = "▁▂▃▄▅▆▇█"


def chart_layers(data: ChartData, pal: Palette, cols: int) -> list[Layer]:
    """What to draw, bottom first: volume, bands, alert levels, the network's line, the price
    (candles or a line), the forecast from now, the misses on top.

    The network's line goes under the price: it is the price of h minutes before moved by the
    network's forecast, so over the price it would hide it wherever the two run close (at 6 h and
    24 h, nearly everywhere); under it, it shows where the network departs from what happened.
    """
    primary = pal.rgb("primary")
    layers: list[Layer] = []
    # Volume along the bottom row, under everything: whatever else is there takes the cell.
    faint = pal.rgb("faint")
    for dots, glyph in zip(data.volume, VOLUME_GLYPHS):
        if dots:
            layers.append(("marks", (dots, glyph, faint)))
    if data.ribbon:
        layers.append(("marks", (data.ribbon, BAND_GLYPH, primary)))
    if data.band:
        layers.append(
            (
                "marks",
                (Dots([x for x, _ in data.band], [y for _, y in data.band]), BAND_GLYPH, primary),
            )
        )
    if data.levels:
        layers.append(
            (
                "marks",
                (
                    level_points(data.levels, data.x0, data.x1, cols),
                    LEVEL_GLYPH,
                    pal.rgb("warning"),
                ),
            )
        )
    if data.network:
        layers.append(("lines", (data.network, pal.rgb("predicted"))))
    if data.candles:
        up_w, up_b, dn_w, dn_b = data.candle_marks
        up, down = pal.rgb("up"), pal.rgb("down")
        layers += [
            ("marks", (up_w, WICK_GLYPH, up)),
            ("marks", (dn_w, WICK_GLYPH, down)),
            ("marks", (up_b, BODY_GLYPH, up)),
            ("marks", (dn_b, BODY_GLYPH, down)),
        ]
    if data.price:
        layers.append(("lines", (data.price, pal.rgb("accent"))))
    if len(data.forward) > 1:
        layers.append(("lines", ([data.forward], pal.rgb("up"))))
    above, below = data.miss_marks
    fg = pal.rgb("foreground")
    for dots, glyph in ((above, MISS_ABOVE_GLYPH), (below, MISS_BELOW_GLYPH)):
        if dots:
            layers.append(("marks", (dots, glyph, fg)))
    return layers


class ChartPlot(Widget):
    """The chart's plot; it draws whatever ``ChartData`` it was last given.

    ``tui.chart_canvas`` lays out the figure (title, frame, ticks and labels, the "now" line) and
    draws the layers into it (``chart_layers``: glyph series with ``draw_marks``, braille series
    with ``draw_lines``); the widget turns the cells straight into Textual strips (line API) and
    keeps them until the data, the size or the theme changes, so a repaint of an unchanged chart
    costs nothing. Until its first data it is blank.
    """

    DEFAULT_CSS = """
    ChartPlot { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: ChartData | None = None
        self.title_text = ""
        self.draws = 0  # how many times the figure was rebuilt (tests check coalescing)
        self.builds = 0  # how many times the figure was laid out (cached per draw/size/theme)
        self.built_draw = 0  # the draw the current lines show (0: none yet)
        self._strips: list[Strip] = []
        self._strips_key: tuple[Any, ...] | None = None

    def theme_colours(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """The plot's background and the frame's colour: the theme's surface and foreground (as
        textual-plotext's "auto" theme took them, so the chart kept its look)."""
        variables = self.app.theme_variables
        return (
            TextualColor.parse(variables["surface"]).rgb,
            TextualColor.parse(variables["foreground"]).rgb,
        )

    def figure(self, width: int, height: int, ink: Ink) -> Canvas:
        """The chart of the current data at ``width`` x ``height`` as cells, the frame, ticks and
        labels in ``ink``."""
        data = self.data
        axes = chart_axes(data, width, height) if data is not None else None
        if data is None or axes is None:
            return frame(width, height, self.title_text, ink)
        pal = Palette.of(self)
        cv = frame(width, height, self.title_text, ink, axes, data.now, pal.rgb("foreground"))
        for kind, layer in chart_layers(data, pal, max(10, width - 12)):
            if kind == "marks":
                draw_marks(cv, (layer,))
            else:
                draw_lines(cv, (layer,))
        return cv

    def _build_strips(self) -> list[Strip]:
        width, height = self.size
        key = (self.draws, width, height, self.app.theme)
        if key != self._strips_key and self.data is None:
            # Nothing was shown yet (the plot is painted once before its first data arrives):
            # blank, rather than a frame without ticks for one frame.
            self._strips = [Strip.blank(width)] * height
            self._strips_key = key
        elif key != self._strips_key:
            with collections_paused():
                background, ink = self.theme_colours()
                self._strips = canvas_strips(self.figure(width, height, ink), width, background)
            self._strips_key = key
            self.builds += 1
            self.built_draw = self.draws
        return self._strips

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once per paint rather than once per line: is the figure still current?
        self._build_strips()
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        self._dirty_regions.clear()  # Widget.render_line's own cache is not used
        strips = self._strips if self._strips_key is not None else self._build_strips()
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width)

    def render_lines_now(self) -> list[Strip]:
        """Every line of the chart as it would be painted now (benchmarks and tests)."""
        self._build_strips()
        return [self.render_line(y) for y in range(self.size.height)]

    def show(self, data: ChartData, title: str, force: bool = False) -> None:
        """Draw ``data`` at the next repaint; the same data and title again are a no-op unless
        ``force`` (benchmarks time the whole redraw)."""
        if not force and data == self.data and title == self.title_text:
            return
        self.data = data
        self.title_text = title
        self.draws += 1
        self.refresh()

    def on_resize(self) -> None:
        self.post_message(PlotResized())

    def on_mount(self) -> None:
        # The figure's colours are the theme's: a new theme repaints it (the strips' key holds
        # the theme's name, so the repaint rebuilds them).
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh())
        self.call_after_refresh(self._announce_first_layout)

    def _announce_first_layout(self, tries: int = 0) -> None:
        """Post ``PlotResized`` once the plot has its first size.

        Textual does not deliver a Resize for every first layout of a newly mounted widget: with no
        other layout to follow, the owner would wait for unrelated events to draw the chart (half
        a second at start-up). A Resize that does come just posts the message a second time.
        """
        if self.size.width:
            self.post_message(PlotResized())
        elif tries < 10:  # not laid out yet, or hidden (no data to draw): look again after a frame
            self.call_after_refresh(self._announce_first_layout, tries + 1)
