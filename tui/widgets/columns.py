"""Aligned text columns and a lines widget: what the panels redrawn on every key press are made of.

``rich.table.Table`` measures and renders every cell again on each frame (about a third of a
coin switch's frame with the watchlist and the scoreboard as tables). These panels have a handful
of short, single-line cells, so they are laid out once per update as plain ``Text`` lines, and the
widget asks Textual for a new layout only when its number of lines changes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

Cell = str | Text


@dataclass(frozen=True)
class Column:
    """One column of a text table: header, alignment and width bounds."""

    header: str
    justify: str = "right"  # "left" or "right"
    min_width: int = 0
    max_width: int | None = None  # longer cells end in an ellipsis


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _fit(cell: Text, width: int, justify: str) -> Text:
    n = cell.cell_len
    if n > width:
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis")
        n = cell.cell_len
    pad = " " * (width - n)
    if not pad:
        return cell
    return Text.assemble(pad, cell) if justify == "right" else Text.assemble(cell, pad)


def layout_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    row_styles: Sequence[str] = (),
    *,
    gap: int = 1,
    header_style: str = "bold",
) -> list[Text]:
    """A header line and one line per row, each column as wide as its widest cell (within bounds)."""
    cells = [[_text(c) for c in row] for row in rows]
    widths = []
    for i, col in enumerate(columns):
        w = max(
            [cell_len(col.header), col.min_width] + [r[i].cell_len for r in cells if i < len(r)]
        )
        widths.append(min(w, col.max_width) if col.max_width is not None else w)
    sep = " " * gap
    head = Text(style=header_style, no_wrap=True, end="")
    for i, (col, w) in enumerate(zip(columns, widths)):
        if i:
            head.append(sep)
        head.append_text(_fit(Text(col.header), w, col.justify))
    lines = [head]
    for n, row in enumerate(cells):
        line = Text(no_wrap=True, end="")
        for i, (col, w) in enumerate(zip(columns, widths)):
            if i:
                line.append(sep)
            line.append_text(_fit(row[i] if i < len(row) else Text(""), w, col.justify))
        style = row_styles[n] if n < len(row_styles) else ""
        if style:
            line.stylize(style, 0, len(line))
        lines.append(line)
    return lines


def wrap_words(text: str, width: int, style: str = "") -> list[Text]:
    """``text`` broken into lines of at most ``width`` cells at spaces."""
    return [
        Text(line, style=style, no_wrap=True, end="") for line in textwrap.wrap(text, max(8, width))
    ] or [Text("")]


def update_static(static: Static, content: Text, *, layout: bool = True) -> None:
    """``static.update(content)`` unless it already shows exactly that: an unchanged panel is then
    not rendered again on a coin switch or a status tick."""
    if getattr(static, "_cryptotui_shown", None) == content:
        return
    static._cryptotui_shown = content  # type: ignore[attr-defined]
    static.update(content, layout=layout)


class TextLines(Widget):
    """Lines laid out by their owner for the width they get; Textual only crops them.

    The owner hands over a builder (width -> lines), so the lines fit the width Textual lays the
    widget out at, even on the first frame; a new layout is asked for only when the number of
    lines at the current width changes.
    """

    DEFAULT_CSS = """
    TextLines { height: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._build: Callable[[int], list[Text]] = lambda width: [Text("")]
        self._by_width: dict[int, Text] = {}  # width -> the joined lines
        self._counts: dict[int, int] = {}

    def set_builder(self, build: Callable[[int], list[Text]]) -> None:
        width = self.size.width
        before = self._joined(width) if width else None
        count = self._counts.get(width)
        self._build, self._by_width, self._counts = build, {}, {}
        if width and before is not None and self._joined(width) == before:
            return  # nothing visible changed
        self.refresh(layout=not width or self._counts.get(width) != count)

    def _joined(self, width: int) -> Text:
        text = self._by_width.get(width)
        if text is None:
            lines = self._build(max(1, width))
            text = Text("\n", no_wrap=True, overflow="crop").join(lines)
            text.no_wrap = True
            text.overflow = "crop"
            self._by_width[width] = text
            self._counts[width] = max(1, len(lines))
        return text

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        self._joined(width)
        return self._counts[width]

    def render(self) -> Text:
        return self._joined(self.size.width)
