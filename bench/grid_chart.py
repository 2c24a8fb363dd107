"""An experimental braille-grid chart renderer that bypasses plotext, kept only for comparison.

``bench/bench_chart.py`` measures it beside the shipped textual-plotext chart. The app does not use it:
the project's chart is textual-plotext (see DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from tui.chart_data import ChartData, Point, _interp, time_ticks
from tui.format import format_clock, nice_ticks, tick_labels

Run = tuple[str, str | None]  # text, colour role (None: the widget's own colour)

# Braille dot bits by [dot row 0..3][dot column 0..1] (Unicode U+2800 block).
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE = [chr(0x2800 + i) for i in range(256)]


def render_cells(data: ChartData, width: int, height: int, title: str) -> list[list[Run]]:
    """The whole chart as ``height`` rows of runs, exactly ``width`` cells wide.

    Layout (like plotext's): the title, a framed plot with price ticks on the left and local
    times below. Colour roles: "price", "predicted", "forward", "band", "now", or None.
    """
    width, height = max(0, width), max(0, height)
    blank = [[(" " * width, None)] for _ in range(height)]
    if height == 0 or width == 0:
        return blank
    rows: list[list[Run]] = blank
    rows[0] = [(title[:width].center(width), None)]
    if data.empty or data.y_range is None or height < 5 or width < 12:
        return rows
    lo, hi = data.y_range
    ph = height - 4  # plot rows between the frame's top and bottom edges
    yt = nice_ticks(lo, hi, max(2, (height - 3) // 3))
    ylab = tick_labels(yt)
    lw = max((len(s) for s in ylab), default=0)
    pw = width - lw - 2  # plot columns inside the frame
    if pw < 4 or ph < 1:
        return rows
    dw, dh = 2 * pw, 4 * ph  # the dot grid
    sx = (dw - 1) / (data.x1 - data.x0) if data.x1 > data.x0 else 0.0
    sy = (dh - 1) / (hi - lo) if hi > lo else 0.0
    x0 = data.x0
    bits = [[0] * pw for _ in range(ph)]
    role: list[list[str | None]] = [[None] * pw for _ in range(ph)]

    def line(points: Sequence[Point]) -> None:
        prev: tuple[float, float] | None = None
        for x, y in points:
            px, py = (x - x0) * sx, (hi - y) * sy
            if prev is None:
                _dot(px, py)
            else:
                ax, ay = prev
                n = int(max(abs(px - ax), abs(py - ay))) + 1
                for k in range(1, n + 1):
                    t = k / n
                    _dot(ax + (px - ax) * t, ay + (py - ay) * t)
            prev = (px, py)

    def _dot(px: float, py: float) -> None:
        cx, cy = int(px + 0.5), int(py + 0.5)
        if 0 <= cx < dw and 0 <= cy < dh:
            r, c = cy >> 2, cx >> 1
            bits[r][c] |= _DOTS[cy & 3][cx & 1]
            role[r][c] = current[0]
            used[r].add(c)

    current: list[str | None] = [None]
    chars: list[list[str]] = [[" "] * pw for _ in range(ph)]
    used: list[set[int]] = [set() for _ in range(ph)]  # columns drawn on, per row
    lo_edge, hi_edge = data.band_edges
    if len(lo_edge) > 1 and sx > 0 and sy > 0:
        # One shading dot per cell whose centre lies inside the band, on this grid's own cells.
        start, end = lo_edge[0][0], lo_edge[-1][0]
        for c in range(pw):
            x = x0 + (2 * c + 0.5) / sx
            if not start <= x <= end:
                continue
            b_lo, b_hi = _interp(lo_edge, x), _interp(hi_edge, x)
            r_top = max(0, int((hi - b_hi) * sy) >> 2)
            r_bot = min(ph - 1, int((hi - b_lo) * sy) >> 2)
            for r in range(r_top, r_bot + 1):
                yc = hi - (4 * r + 1.5) / sy
                if b_lo <= yc <= b_hi:
                    chars[r][c] = "·"
                    role[r][c] = "band"
                    used[r].add(c)
    now_col = -1
    if data.now is not None and data.x0 <= data.now <= data.x1:
        now_col = int((data.now - x0) * sx + 0.5) >> 1
        for r in range(ph):
            if chars[r][now_col] == " ":
                chars[r][now_col] = "│"
                role[r][now_col] = "now"
                used[r].add(now_col)
    # Predictions go over the price, so a prediction that merely lags the price shows as such.
    for name, segs in (("price", data.price), ("predicted", data.network)):
        current[0] = name
        for seg in segs:
            line(seg)
    if len(data.forward) > 1:
        current[0] = "forward"
        line(data.forward)
    # Price tick rows, on the cell grid the dots use.
    tick_row: dict[int, str] = {}
    for t, s in zip(yt, ylab):
        r = int((hi - t) * sy + 0.5) >> 2
        if 0 <= r < ph:
            tick_row.setdefault(r, s)
    pad = " " * lw
    # The top edge, then the plot rows, the bottom edge with time ticks, the time labels.
    top = "┌" + "─" * pw + "┐"
    rows[1] = [(pad + top, None)]
    for r in range(ph):
        label = tick_row.get(r)
        runs: list[Run] = [((label.rjust(lw) + "┤") if label is not None else (pad + "│"), None)]
        brow, rrow, crow = bits[r], role[r], chars[r]
        text: list[str] = []
        cur: str | None = None
        nxt = 0  # first column not yet emitted
        # Only the drawn cells are visited; the blanks between them are one piece each.
        for c in sorted(used[r]):
            if c > nxt:
                if cur is not None and text:
                    runs.append(("".join(text), cur))
                    text = []
                cur = None
                text.append(" " * (c - nxt))
            b = brow[c]
            ch = _BRAILLE[b] if b else crow[c]
            rl = rrow[c]
            if rl != cur and text:
                runs.append(("".join(text), cur))
                text = []
            cur = rl
            text.append(ch)
            nxt = c + 1
        if nxt < pw:
            if cur is not None and text:
                runs.append(("".join(text), cur))
                text = []
            cur = None
            text.append(" " * (pw - nxt))
        if text:
            runs.append(("".join(text), cur))
        runs.append(("│", None))
        rows[2 + r] = runs
    xt = time_ticks(data.x0, data.x1, pw)
    edge = ["─"] * pw
    labels = [" "] * (width + 8)
    free_from = 0
    for t in xt:
        c = int((t - x0) * sx + 0.5) >> 1
        if not 0 <= c < pw:
            continue
        edge[c] = "┬"
        s = format_clock(t)
        start = lw + 1 + c - len(s) // 2
        if start >= free_from and start + len(s) <= width:
            labels[start:start + len(s)] = list(s)
            free_from = start + len(s) + 1
    if 0 <= now_col < pw:
        edge[now_col] = "┴"
    rows[2 + ph] = [(pad + "└" + "".join(edge) + "┘", None)]
    rows[3 + ph] = [("".join(labels[:width]), None)]
    return rows
