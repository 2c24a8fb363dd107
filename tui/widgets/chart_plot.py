"""The plot of the main chart: plotext lays the figure out, the series are drawn into its matrix.

Imported after the first frame is on screen (plotext and textual-plotext cost tens of ms to import);
``tui.widgets.price_chart.PriceChart`` mounts it then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress
from operator import is_not
from typing import Any

from plotext._matrix import matrix_class
from plotext._utility import colors_to_ansi, no_color, space
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual_plotext import PlotextPlot

from tui.chart_data import ChartData, Dots, Point, level_points, time_ticks
from tui.format import format_clock, nice_ticks, tick_labels
from tui.gcpause import collections_paused
from tui.widgets.palette import Palette

# Cells plotext spends outside the data area: title row, x-axis row and tick labels.
AXIS_ROWS = 3


# plotext colour triples (foreground, style, background) -> Rich styles, shared by every chart.
_STYLES: dict[Any, Style] = {}


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _cell_style(key: tuple[Any, Any, Any]) -> Style:
    """The Rich style of a plotext cell's (foreground, style, background): plotext's own ANSI for
    it, decoded once by Rich."""
    try:
        found = _STYLES.get(key)
    except TypeError:  # a colour given as a list
        key = (_hashable(key[0]), _hashable(key[1]), _hashable(key[2]))
        found = _STYLES.get(key)
    if found is None:
        spans = Text.from_ansi(colors_to_ansi(*key) + "x").spans
        sp = spans[0].style if spans else Style.null()
        found = _STYLES[key] = sp if isinstance(sp, Style) else Style.parse(sp)
    return found


def _cuts(cells: list[Any], n: int) -> list[int]:
    """Columns 1..n-1 where ``cells`` changes object, found in C (map/compress), not a Python loop."""
    return list(compress(range(1, n), map(is_not, cells[1:], cells)))


def matrix_strips(matrix: Any, width: int) -> list[Strip]:
    """Lines of a built plotext matrix (rows are stored bottom-up), one segment per run of equal colours.

    This is what ``Figure.build`` + ``Text.from_ansi`` + Textual's text layout would produce, without
    writing every cell as an ANSI string and parsing it back (two thirds of a redraw's cost).
    """
    strips: list[Strip] = []
    for r in range(matrix.rows - 1, -1, -1):
        marker, fg, st, bg = matrix.marker[r], matrix.fullground[r], matrix.style[r], matrix.background[r]
        n = len(marker)
        # plotext hands every cell of a series the same colour object, so a change of object is
        # where a run ends (an equal but distinct object only splits a run). Style and background
        # are usually one value across the row: then only the foreground is scanned.
        cuts = _cuts(fg, n)
        if n and (st.count(st[0]) != n or bg.count(bg[0]) != n):
            cuts = sorted(set(cuts).union(_cuts(st, n), _cuts(bg, n)))
        cuts.append(n)
        text = "".join(marker)
        one_char = len(text) == n  # plotext's markers are single characters; be safe if not
        segments: list[Segment] = []
        start = 0
        for end in cuts:
            chars = text[start:end] if one_char else "".join(marker[start:end])
            segments.append(Segment(chars, _cell_style((fg[start], st[start], bg[start]))))
            start = end
        # Every cell plotext draws is one cell wide except in the title (the top row), which holds
        # the coin's name: wide characters (CJK, emoji) take two, and a length declared too short
        # let the row run past the screen's edge. Only that row is measured (the others would
        # cost a tenth of a redraw).
        wide = r == matrix.rows - 1 and cell_len(text) != n
        strip = Strip(segments) if wide else Strip(segments, n)
        strips.append(strip if strip.cell_length == width else strip.adjust_cell_length(width))
    return strips


class FastMatrix(matrix_class):
    """plotext's cell matrix, but filled a row or a string at a time rather than a cell at a time.

    plotext's own ``set_matrices`` evaluates a Python lambda per cell to pick the canvas or axes
    background (over half of its figure build at 200x50), and its frame, ticks, labels and lines
    go in one ``insert_element`` call per character (about 700 per build). These overrides write
    the same cells with list slices; the matrices they build are the same as plotext's own
    (tests/test_chart_render.py compares all four, cell by cell).
    """

    def add_horizontal_string(self, col: int, row: int, string: str, fullground: Any = None,
                              style: Any = None, background: Any = None, alignment: str = "left",
                              check_space: bool = False, check_canvas: bool = False) -> bool:
        if alignment not in ("left", "center", "right"):  # plotext's "dynamic" placement
            return bool(super().add_horizontal_string(col, row, string, fullground, style, background,
                                                      alignment, check_space, check_canvas))
        n = len(string)
        col = col if alignment == "left" else col - n // 2 if alignment == "center" else col - n + 1
        if check_space:
            # As plotext: the cells from one before to one after must be blank, and it must fit.
            cells = self.marker[row]
            if not (all(cells[c] == space for c in range(max(col - 1, 0), min(col + n + 1, self.cols)))
                    and col >= 0 and col + n <= self.cols):
                return False
        lo, hi = max(col, 0), min(col + n, self.cols)
        if check_canvas:
            lo, hi = max(lo, self.Cols_canvas.start), min(hi, self.Cols_canvas.stop)
            if row not in self.Rows_canvas:
                return True
        if lo < hi and 0 <= row < self.rows:
            self.marker[row][lo:hi] = list(string[lo - col:hi - col])
            for cells, value in ((self.fullground, fullground), (self.background, background),
                                 (self.style, style)):
                if value is not None:
                    cells[row][lo:hi] = [value] * (hi - lo)
        return True

    def add_vertical_string(self, col: int, row: int, string: str, fullground: Any = None,
                            style: Any = None, background: Any = None, alignment: str = "bottom",
                            check_canvas: bool = False) -> None:
        n = len(string)
        row = row if alignment == "bottom" else row - n // 2 if alignment == "center" else row - n + 1
        lo, hi = max(row, 0), min(row + n, self.rows)
        if check_canvas:
            lo, hi = max(lo, self.Rows_canvas.start), min(hi, self.Rows_canvas.stop)
            if col not in self.Cols_canvas:
                return
        if not 0 <= col < self.cols:
            return
        marker, fg, bg, st = self.marker, self.fullground, self.background, self.style
        for r in range(lo, hi):
            marker[r][col] = string[r - row]
            if fullground is not None:
                fg[r][col] = fullground
            if background is not None:
                bg[r][col] = background
            if style is not None:
                st[r][col] = style

    def set_matrices(self) -> None:
        cols, rows = self.cols, self.rows
        self.marker = [[space] * cols for _ in range(rows)]
        self.fullground = [[no_color] * cols for _ in range(rows)]
        self.style = [[no_color] * cols for _ in range(rows)]
        axes, canvas = self.axes_color, self.canvas_color
        c1 = min(cols, max(0, self.Cols_canvas.start))
        c2 = min(cols, max(c1, self.Cols_canvas.stop))
        inside = [axes] * c1 + [canvas] * (c2 - c1) + [axes] * (cols - c2)
        rows_canvas = self.Rows_canvas
        self.background = [list(inside) if r in rows_canvas else [axes] * cols for r in range(rows)]


# Braille dot bits by [dot row counted from the bottom][dot column] (Unicode U+2800 block).
_DOT = ((0x40, 0x80), (0x04, 0x20), (0x02, 0x10), (0x01, 0x08))
_DOTS = [bit for row in _DOT for bit in row]  # the same, flat: [(dot row << 1) | dot column]
_BRAILLE = [chr(0x2800 + i) for i in range(256)]

Line = tuple[Sequence[Sequence[Point]], Any]  # segments of one series, its plotext colour


def _bins(lo: float, hi: float, n: int) -> tuple[float, float]:
    """Scale and offset of plotext's data -> canvas mapping: floor(0.5 + (n - 1) * (v - lo) / (hi - lo))."""
    k = (n - 1) / (hi - lo) if hi > lo else 0.0
    return k, 0.5 - k * lo


# _RUN[column][lo][hi]: the bits of dot rows lo..hi (from the bottom) of one dot column of a cell.
_RUN = [[[0] * 4 for _ in range(4)] for _ in range(2)]
for _col in range(2):
    for _lo in range(4):
        for _hi in range(_lo, 4):
            for _r in range(_lo, _hi + 1):
                _RUN[_col][_lo][_hi] |= _DOT[_r][_col]


def _steps_inside(xs: list[int], ys: list[int], cells: dict[int, int]) -> None:
    """The dots of a polyline wholly inside the canvas, as plotext's get_line places them.

    plotext steps ``n = max(|dx|, |dy|)`` dots from one point to the next, dot ``i`` at
    ``(int(px + dx*i/n), int(py + dy*i/n))``. A step left to right that climbs or falls at least as
    far as it moves across (most steps of a price line) is, exactly, one vertical run of dots per
    dot column it crosses: those runs are set a cell (up to 4 dots) at a time. Any other step goes
    dot by dot.
    """
    get = cells.get
    px, py = xs[0], ys[0]
    key = (py >> 2) << 16 | (px >> 1)
    cells[key] = get(key, 0) | _DOTS[(py & 3) << 1 | (px & 1)]
    for X, Y in zip(xs[1:], ys[1:]):
        dx, dy = X - px, Y - py
        n = dy if dy >= 0 else -dy
        if -1 <= dx <= 1 and n <= 1:
            if dx or n:
                key = (Y >> 2) << 16 | (X >> 1)
                cells[key] = get(key, 0) | _DOTS[(Y & 3) << 1 | (X & 1)]
        elif 0 <= dx <= n:
            # Dot i (1..n) is in dot column px + dx*i//n and dot row py +/- i; the column moves to
            # j + 1 after i = ((j + 1)*n - 1)//dx.
            i = 1
            while i <= n:
                j = dx * i // n
                e = min(n, ((j + 1) * n - 1) // dx) if dx else n
                a, b = (py + i, py + e) if dy > 0 else (py - e, py - i)
                x = px + j
                run, cx = _RUN[x & 1], x >> 1
                for cy in range(a >> 2, (b >> 2) + 1):
                    lo = a - 4 * cy if a > 4 * cy else 0
                    hi = b - 4 * cy if b < 4 * cy + 3 else 3
                    key = cy << 16 | cx
                    cells[key] = get(key, 0) | run[lo][hi]
                i = e + 1
        else:
            m = max(abs(dx), n)
            for i in range(1, m + 1):
                sx, sy = int(px + dx * i / m), int(py + dy * i / m)
                key = (sy >> 2) << 16 | (sx >> 1)
                cells[key] = get(key, 0) | _DOTS[(sy & 3) << 1 | (sx & 1)]
        px, py = X, Y


def draw_lines(matrix: Any, lines: Sequence[Line], xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Draw braille lines into the canvas of a built plotext matrix, as plotext's own plot() would.

    Same mapping (plotext's ``get_matrix_data`` on a 2x4-dot grid per cell), same line stepping
    (``get_line``: one dot per step along the longer axis) and the same layering (a later series
    replaces an earlier one's glyph and colour in a shared cell); dots of one series merge. plotext
    does this per dot in generic Python (about 13 ms for a 24 h chart at 200x50); this is the same
    work in one tight loop.
    """
    cols, rows = matrix.Cols_canvas, matrix.Rows_canvas
    c0, w, r0, h = cols.start, len(cols), rows.start, len(rows)
    if w <= 0 or h <= 0:
        return
    bw, bh = 2 * w, 4 * h
    kx, ox = _bins(xlim[0], xlim[1], bw)
    ky, oy = _bins(ylim[0], ylim[1], bh)
    floor = math.floor
    marker, fullground = matrix.marker, matrix.fullground
    for segments, colour in lines:
        cells: dict[int, int] = {}  # (cell row << 16 | cell col) -> dot bits
        get = cells.get
        for seg in segments:
            if not seg:
                continue
            # plotext's floor(round(v, 8)), without round()'s decimal work: only a value within
            # 5e-9 below an integer rounds up to it.
            xs = [floor(v) + (v - floor(v) >= 0.999999995) for v in [kx * x + ox for x, _ in seg]]
            ys = [floor(v) + (v - floor(v) >= 0.999999995) for v in [ky * y + oy for _, y in seg]]
            if 0 <= min(xs) and max(xs) < bw and 0 <= min(ys) and max(ys) < bh:
                _steps_inside(xs, ys, cells)  # the usual case, no checks per dot
                continue
            px, py = xs[0], ys[0]
            dots = [(px, py)]
            for X, Y in zip(xs[1:], ys[1:]):
                dx, dy = X - px, Y - py
                n = max(abs(dx), abs(dy))
                if n == 1:
                    dots.append((X, Y))
                elif n:
                    # plotext's get_line: n + 1 evenly spaced points, truncated toward zero.
                    dots.extend([(int(px + dx * i / n), int(py + dy * i / n)) for i in range(1, n + 1)])
                px, py = X, Y
            for sx, sy in dots:
                if 0 <= sx < bw and 0 <= sy < bh:
                    key = (sy >> 2) << 16 | (sx >> 1)
                    cells[key] = get(key, 0) | _DOTS[(sy & 3) << 1 | (sx & 1)]
        for key, bits in cells.items():
            r, c = r0 + (key >> 16), c0 + (key & 0xFFFF)
            marker[r][c] = _BRAILLE[bits]
            fullground[r][c] = colour


def matrix_cells(values: Sequence[float], lim: tuple[float, float], bins: int) -> list[int]:
    """plotext's ``get_matrix_data`` for plain numbers: the same arithmetic in the same order, so
    the same cells, bit for bit, without its two Python calls per value (a third of a 24 h redraw).

    plotext: ``floor(round(0.5 + (bins - 1) * (v - lo) / (hi - lo), 8))``, with its own ``round``
    that takes halves up: n = x * 10**8, f = floor(n), r = f if n - f < 0.5 else ceil(n), r * 1e-8.
    """
    lo, hi = lim
    span, k, floor = hi - lo, bins - 1, math.floor
    scaled = [(0.5 + k * (v - lo) / span) * 100000000 for v in values]
    return [floor((f + (n - f >= 0.5)) * 1e-08) for n in scaled for f in (floor(n),)]


Mark = tuple[Dots, str, Any]  # where one series goes, its one-character glyph, its colour
# What the chart draws, bottom layer first: ("marks", Mark) or ("lines", Line).
Layer = tuple[str, Any]


def draw_marks(matrix: Any, xaxis: bool, now: float | None, now_colour: Any, marks: Sequence[Mark],
               xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """The "now" line and glyph series, as plotext's ``vertical_line`` and ``scatter(marker=...)``.

    plotext would place them, in its build, after the axes and before the data: the line down the
    canvas in its colour (the x axes get a ``┴``/``┬`` where it meets them), then one glyph per
    point on plotext's cell grid, series after series. They are drawn here after plotext's build,
    in the same order as the braille series (``draw_lines``), which keeps that layering; plotext's
    own way costs a flatten of every user line per axis cell.
    """
    cols, rows = matrix.Cols_canvas, matrix.Rows_canvas
    w, h = len(cols), len(rows)
    c0, r0 = cols.start, rows.start
    if now is not None:
        col = matrix_cells([now], xlim, w)[0]
        if xaxis and h >= -1 and 0 <= col < w:  # plotext's condition for drawing the x axes
            matrix.insert_element(c0 + col, r0 - 1, "┴")
            matrix.insert_element(c0 + col, r0 + h, "┬")
        matrix.add_vertical_string(c0 + col, r0, "│" * h, now_colour)
    if not (w and h):
        return
    marker, fg, st = matrix.marker, matrix.fullground, matrix.style
    for dots, glyph, colour in marks:
        if not dots:
            continue
        xs = matrix_cells(dots.xs, xlim, w)
        ys = matrix_cells(dots.ys, ylim, h)
        for x, y in zip(xs, ys):
            if 0 <= x < w and 0 <= y < h:
                marker[r0 + y][c0 + x] = glyph
                fg[r0 + y][c0 + x] = colour
                st[r0 + y][c0 + x] = no_color


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
        layers.append(("marks", (Dots([x for x, _ in data.band], [y for _, y in data.band]),
                                 BAND_GLYPH, primary)))
    if data.levels:
        layers.append(("marks", (level_points(data.levels, data.x0, data.x1, cols), LEVEL_GLYPH,
                                 pal.rgb("warning"))))
    if data.network:
        layers.append(("lines", (data.network, pal.rgb("predicted"))))
    if data.candles:
        up_w, up_b, dn_w, dn_b = data.candle_marks
        up, down = pal.rgb("up"), pal.rgb("down")
        layers += [("marks", (up_w, WICK_GLYPH, up)), ("marks", (dn_w, WICK_GLYPH, down)),
                   ("marks", (up_b, BODY_GLYPH, up)), ("marks", (dn_b, BODY_GLYPH, down))]
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


class ChartPlot(PlotextPlot):
    """The plotext canvas; it draws whatever ``ChartData`` it was last given.

    plotext lays out the figure (title, frame, ticks and labels) into its cell matrix; the "now"
    line and the glyph series (bands' dots, alert levels, candles, misses: ``draw_marks``) and
    the braille series (price line, the network's line, forecast: ``draw_lines``) are drawn into
    that matrix, layer after layer (``chart_layers``), exactly where plotext's ``vertical_line``,
    ``scatter`` and braille ``plot()`` would place them (``plotext_lines=True`` lets plotext draw
    them all itself through those public calls, for comparison). The widget turns the matrix
    straight into Textual strips (line API) and keeps them until the data, the size or the theme
    changes, so a repaint of an unchanged chart costs nothing. Until its first data it is blank.
    """

    matrix_class: type = FastMatrix  # tests swap in plotext's own to compare the two

    def __init__(self, *, id: str | None = None, plotext_lines: bool = False) -> None:
        super().__init__(id=id)
        self.plotext_lines = plotext_lines
        self._layers: list[Layer] = []
        self._now: tuple[float | None, Any] = (None, None)  # the "now" line and its colour
        self._limits: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.data: ChartData | None = None
        self.title_text = ""
        self.draws = 0  # how many times the figure was rebuilt (tests check coalescing)
        self.builds = 0  # how many times plotext laid the figure out (cached per draw/size/theme)
        self.built_draw = 0  # the draw the current lines show (0: none yet)
        self._strips: list[Strip] = []
        self._strips_key: tuple[Any, ...] | None = None

    def _build_strips(self) -> list[Strip]:
        width, height = self.size
        key = (self.draws, width, height, self.theme, self.app.theme)
        if key != self._strips_key and self.data is None:
            # Nothing was shown yet (the plot is painted once before its first data arrives):
            # blank, rather than a frame without ticks for one frame.
            self._strips = [Strip.blank(width)] * height
            self._strips_key = key
        elif key != self._strips_key:
            with collections_paused():
                self._figure()  # at the size the plot has now: the ticks depend on it
                plt = self.plt
                # As PlotextPlot.render does before plotext's build (size twice: see its comment).
                plt.plotsize(width, height)
                plt._set_size(width, height)
                plt.theme(self._get_plotext_theme_name(self.app.theme))
                plt._set_sizes()
                plt._build_matrix()
                matrix = plt.monitor.matrix
                if self._limits is not None:
                    draw_marks(matrix, bool(plt.monitor.xaxes[0]), *self._now, (), *self._limits)
                    for kind, layer in self._layers:
                        if kind == "marks":
                            draw_marks(matrix, False, None, None, (layer,), *self._limits)
                        else:
                            draw_lines(matrix, (layer,), *self._limits)
                self._strips = matrix_strips(matrix, width)
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

    @staticmethod
    def _clear(plt: Any) -> None:
        """A clean slate: a new monitor, which holds every plot setting and series of the figure.

        The same state as plotext's ``clear_figure()``, which also rebuilds the figure itself and
        deep-copies a spare monitor for subplots the chart never has: half of this method's time.
        """
        monitor = plt.monitor
        monitor.__init__()
        monitor.set_date(plt.date)
        monitor.set_size(plt._size)

    def _figure(self) -> None:
        """Hand the current data to plotext (the layers are kept for the fast drawing)."""
        data = self.data
        plt = self.plt
        self._clear(plt)
        plt.monitor.matrix = self.matrix_class()
        plt.title(self.title_text)
        self._layers = []
        self._now = (None, None)
        self._limits = None
        if data is None or data.empty or data.y_range is None:
            return
        pal = Palette.of(self)
        cols = max(10, self.size.width - 12)
        rows = max(4, self.size.height - AXIS_ROWS)
        lo, hi = data.y_range
        # An invisible point anchors the axes: plotext draws ticks only for sides holding data.
        plt.scatter([data.x0], [lo], marker=" ")
        layers = chart_layers(data, pal, cols)
        if self.plotext_lines:
            if data.now is not None:
                plt.vertical_line(data.now, color=pal.rgb("foreground"))
            for kind, layer in layers:
                if kind == "marks":
                    dots, glyph, colour = layer
                    plt.scatter(dots.xs, dots.ys, marker=glyph, color=colour)
                else:
                    segments, colour = layer
                    for seg in segments:
                        plt.plot([p[0] for p in seg], [p[1] for p in seg], marker="braille",
                                 color=colour)
        else:
            self._now = (data.now, pal.rgb("foreground"))
            self._layers = layers
        self._limits = ((data.x0, data.x1), (lo, hi))
        plt.xlim(data.x0, data.x1)
        plt.ylim(lo, hi)
        yt = nice_ticks(lo, hi, max(2, rows // 3))
        plt.yticks(yt, tick_labels(yt))
        xt = time_ticks(data.x0, data.x1, cols)
        plt.xticks(xt, [format_clock(t) for t in xt])

    def on_resize(self) -> None:
        from tui.widgets.price_chart import PlotResized

        self.post_message(PlotResized())

    def on_mount(self) -> None:
        # (PlotextPlot's own on_mount runs too: Textual calls each class's handler.)
        self.call_after_refresh(self._announce_first_layout)

    def _announce_first_layout(self, tries: int = 0) -> None:
        """Post ``PlotResized`` once the plot has its first size.

        Textual does not deliver a Resize for every first layout of a newly mounted widget: with no
        other layout to follow, the owner would wait for unrelated events to draw the chart (half
        a second at start-up). A Resize that does come just posts the message a second time.
        """
        from tui.widgets.price_chart import PlotResized

        if self.size.width:
            self.post_message(PlotResized())
        elif tries < 10:  # not laid out yet, or hidden (no data to draw): look again after a frame
            self.call_after_refresh(self._announce_first_layout, tries + 1)
