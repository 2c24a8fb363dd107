"""The chart's figure drawn cell by cell: title, frame, ticks and labels, and the series on a braille
canvas (no Textual here: ``tui.widgets.chart_plot`` turns the cells into strips).

The layout is plotext 5's for a figure with a title, a framed canvas, price ticks on the left and
times below, so the chart looks as it did when plotext laid it out; tests/tui/chart/test_render.py
checks it cell for cell against plotext's public ``build()``. Rows are counted from the bottom, as
plotext counts them, so a value's row is the same arithmetic as plotext's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui.chart_data import Dots, Point

# Rows the figure spends outside the data area as the series are downsampled for it (the title, the
# bottom edge, the time labels): ``PriceChart.plot_size`` subtracts them from the plot's height.
AXIS_ROWS = 3

# A cell's colour as the chart hands it over: an (r, g, b) tuple or a Rich colour name; None is
# the plot's own (blank cells). Runs of cells are split where the colour object changes.
Ink = Any

# plotext coloured the blank anchoring point (see ``Axes``) with its first default colour, "blue+"
# (ANSI colour 12). A blank cell's colour never shows; it is kept so the rendered segments, and so
# the snapshot SVGs, stay the same as when plotext drew the frame.
ANCHOR_INK = "color(12)"


@dataclass(frozen=True)
class Axes:
    """Limits and ticks of a figure that has data: price ticks on the left, time ticks below.

    A figure with axes also has an (invisible) anchoring point at its lower-left corner: plotext
    drew ticks only for sides holding data, so the chart gave it one there.
    """

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    xticks: Sequence[float]
    xlabels: Sequence[str]
    yticks: Sequence[float]
    ylabels: Sequence[str]


class Canvas:
    """The figure's cells: ``chars[row][col]`` and ``inks[row][col]``, row 0 at the bottom.

    The data area is columns ``c0 .. c0 + w - 1`` and rows ``r0 .. r0 + h - 1`` (``w`` and ``h`` may
    be zero or negative on a tiny plot: then nothing is drawn there).
    """

    __slots__ = ("c0", "chars", "h", "height", "inks", "r0", "w", "width", "xlim", "ylim")

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = max(0, width), max(0, height)
        self.chars = [[" "] * self.width for _ in range(self.height)]
        self.inks: list[list[Ink]] = [[None] * self.width for _ in range(self.height)]
        self.c0 = self.r0 = self.w = self.h = 0
        self.xlim: tuple[float, float] = (0.0, 1.0)
        self.ylim: tuple[float, float] = (0.0, 1.0)

    def put(self, col: int, row: int, text: Sequence[str], ink: Ink) -> None:
        """Write ``text`` left to right from (col, row); cells off the figure are dropped."""
        if not 0 <= row < self.height:
            return
        n = len(text)
        lo, hi = max(col, 0), min(col + n, self.width)
        if lo < hi:
            self.chars[row][lo:hi] = list(text[lo - col : hi - col])
            self.inks[row][lo:hi] = [ink] * (hi - lo)

    def put_if_free(self, col: int, row: int, text: str, ink: Ink) -> bool:
        """Write ``text`` only if it fits and the cells from one before to one after are blank."""
        n, cells = len(text), self.chars[row]
        if col < 0 or col + n > self.width:
            return False
        if any(c != " " for c in cells[max(col - 1, 0) : min(col + n + 1, self.width)]):
            return False
        self.put(col, row, text, ink)
        return True

    def put_column(self, col: int, row: int, text: Sequence[str], ink: Ink) -> None:
        """Write ``text`` bottom to top from (col, row); cells off the figure are dropped."""
        if not 0 <= col < self.width:
            return
        chars, inks = self.chars, self.inks
        for r in range(max(row, 0), min(row + len(text), self.height)):
            chars[r][col] = text[r - row]
            inks[r][col] = ink


def matrix_cells(values: Sequence[float], lim: tuple[float, float], bins: int) -> list[int]:
    """The cell (or dot) of each value on ``bins`` cells spanning ``lim``: plotext's
    ``floor(round(0.5 + (bins - 1) * (v - lo) / (hi - lo), 8))``, halves of the 8th decimal taken
    up as plotext's own ``round`` does, in the same order of operations (so the same cells, bit
    for bit: a tick or a dot one cell off would show).

    n = x * 10**8, f = floor(n), r = f if n - f < 0.5 else f + 1, then r * 1e-8, floored.
    """
    lo, hi = lim
    span, k, floor = hi - lo, bins - 1, math.floor
    scaled = [(0.5 + k * (v - lo) / span) * 100000000 for v in values]
    return [floor((f + (n - f >= 0.5)) * 1e-08) for n in scaled for f in (floor(n),)]


def _place_label(cells: list[str], label: str, col: int) -> int:
    """Where a time label centred on ``col`` starts: plotext's placement, which shifts a label
    near a border (or crowded by one already placed) into the blank cells around ``col``."""
    n = len(label)
    b, e = max(col - n + 1, 0), min(col + n, len(cells) - 1)
    free = [i for i in range(b, e) if cells[i] == " "]
    first, last = (free[0], free[-1]) if free else (col - n + 1, col + n)
    return (first + last + 1 - n) // 2


def frame(
    width: int,
    height: int,
    title: str,
    ink: Ink,
    axes: Axes | None = None,
    now: float | None = None,
    now_ink: Ink = None,
) -> Canvas:
    """The figure before its series: the title centred over the data area, the frame, the ticks
    and their labels, and the "now" line (``┬``/``┴`` where it meets the frame's edges).

    Drawn in plotext's order (title, time labels, top edge, price labels, side edges, corners,
    bottom edge, "now" line), which decides what wins where two of them meet on a small plot.
    """
    ylabels: list[str] = []
    if axes is not None:
        wide = max((len(s) for s in axes.ylabels), default=0)
        ylabels = [s.rjust(wide) for s in axes.ylabels]
    wy = max((len(s) for s in ylabels), default=0)
    hx = 1 if axes is not None and axes.xlabels else 0
    title = title.strip()  # a blank title takes no row
    w, h = width - 2 - wy, height - 2 - hx - bool(title)  # data area: less frame, labels, title
    c0, r0 = wy + 1, hx + 1
    c1, r1 = c0 + w, r0 + h
    cv = Canvas(width, height)
    cv.c0, cv.r0, cv.w, cv.h = c0, r0, w, h
    if title and height > 0:
        cv.put_if_free(c0 + w // 2 - len(title) // 2, r1 + 1, title, ink)
    cticks: list[int] = []
    rticks: list[int] = []
    vticks: list[int] = []
    if axes is not None:
        cv.xlim, cv.ylim = axes.xlim, axes.ylim
        row = min(r0 - 2, height - 1)
        if hx and height > 0:
            cells = cv.chars[row]
            for c, label in zip(matrix_cells(axes.xticks, axes.xlim, w), axes.xlabels):
                if cv.put_if_free(_place_label(cells, label, c0 + c), row, label, ink):
                    cticks.append(c)
        rticks = matrix_cells(axes.yticks, axes.ylim, h)
        if now is not None:
            vticks = matrix_cells([now], axes.xlim, w)
    if h >= -1:
        cv.put(c0, r1, ["┬" if i in vticks else "─" for i in range(w)], ink)
    if width >= wy:
        for r, label in zip(rticks, ylabels):
            cv.put(0, r0 + r, label, ink)
    if width >= wy + 1:
        cv.put_column(wy, r0, ["┤" if i in rticks else "│" for i in range(h)], ink)
    if width >= wy + 2:
        cv.put_column(c1, r0, "│" * max(h, 0), ink)
    if h >= 0 and w >= 0:
        for col, row, corner in (
            (c0 - 1, r0 - 1, "└"),
            (c1, r0 - 1, "┘"),
            (c0 - 1, r1, "┌"),
            (c1, r1, "┐"),
        ):
            cv.put(col, row, corner, ink)
    if h >= -1:
        cv.put(
            c0, r0 - 1, ["┴" if i in vticks else "┬" if i in cticks else "─" for i in range(w)], ink
        )
    for c in vticks:
        cv.put_column(c0 + c, r0, "│" * max(h, 0), now_ink)
    if axes is not None and w > 0 and h > 0:
        cv.put(c0, r0, " ", ANCHOR_INK)
    return cv


# Braille dot bits by [dot row counted from the bottom][dot column] (Unicode U+2800 block).
_DOT = ((0x40, 0x80), (0x04, 0x20), (0x02, 0x10), (0x01, 0x08))
_DOTS = [bit for row in _DOT for bit in row]  # the same, flat: [(dot row << 1) | dot column]
_BRAILLE = [chr(0x2800 + i) for i in range(256)]

Line = tuple[Sequence[Sequence[Point]], Ink]  # segments of one series, its colour
Mark = tuple[Dots, str, Ink]  # where one series goes, its one-character glyph, its colour


def _bins(lo: float, hi: float, n: int) -> tuple[float, float]:
    """Scale and offset of the value -> dot mapping: floor(0.5 + (n - 1) * (v - lo) / (hi - lo))."""
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
    """The dots of a polyline wholly inside the canvas.

    From one point to the next, ``n = max(|dx|, |dy|)`` dots, dot ``i`` at
    ``(int(px + dx*i/n), int(py + dy*i/n))`` (plotext's line stepping, so a line looks as plotext
    drew it). A step left to right that climbs or falls at least as far as it moves across (most
    steps of a price line) is, exactly, one vertical run of dots per dot column it crosses: those
    runs are set a cell (up to 4 dots) at a time. Any other step goes dot by dot.
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


def draw_lines(cv: Canvas, lines: Sequence[Line]) -> None:
    """Draw braille lines into the data area, 2x4 dots per cell.

    A later series replaces an earlier one's glyph and colour in a shared cell; the dots of one
    series merge. The value -> dot mapping is ``matrix_cells``' on the dot grid.
    """
    c0, w, r0, h = cv.c0, cv.w, cv.r0, cv.h
    if w <= 0 or h <= 0:
        return
    bw, bh = 2 * w, 4 * h
    kx, ox = _bins(cv.xlim[0], cv.xlim[1], bw)
    ky, oy = _bins(cv.ylim[0], cv.ylim[1], bh)
    floor = math.floor
    chars, inks = cv.chars, cv.inks
    for segments, colour in lines:
        cells: dict[int, int] = {}  # (cell row << 16 | cell col) -> dot bits
        get = cells.get
        for seg in segments:
            if not seg:
                continue
            # floor(round(v, 8)) without round()'s decimal work: only a value within 5e-9 below an
            # integer rounds up to it.
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
                    dots.extend(
                        [(int(px + dx * i / n), int(py + dy * i / n)) for i in range(1, n + 1)]
                    )
                px, py = X, Y
            for sx, sy in dots:
                if 0 <= sx < bw and 0 <= sy < bh:
                    key = (sy >> 2) << 16 | (sx >> 1)
                    cells[key] = get(key, 0) | _DOTS[(sy & 3) << 1 | (sx & 1)]
        for key, bits in cells.items():
            r, c = r0 + (key >> 16), c0 + (key & 0xFFFF)
            chars[r][c] = _BRAILLE[bits]
            inks[r][c] = colour


def draw_marks(cv: Canvas, marks: Sequence[Mark]) -> None:
    """One glyph per point on the cell grid of the data area, series after series (a later one
    takes the cell)."""
    c0, w, r0, h = cv.c0, cv.w, cv.r0, cv.h
    if w <= 0 or h <= 0:
        return
    chars, inks = cv.chars, cv.inks
    for dots, glyph, colour in marks:
        if not dots:
            continue
        xs = matrix_cells(dots.xs, cv.xlim, w)
        ys = matrix_cells(dots.ys, cv.ylim, h)
        for x, y in zip(xs, ys):
            if 0 <= x < w and 0 <= y < h:
                chars[r0 + y][c0 + x] = glyph
                inks[r0 + y][c0 + x] = colour
