"""The watchlist: one row per coin with price, change, forecast, relative MAE and a sparkline."""

from __future__ import annotations

import math

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.format import arrow, format_percent, format_price, sparkline
from tui.state import SPARK_CELLS, CoinRow
from tui.widgets.columns import Column, layout_columns
from tui.widgets.palette import Palette

# Optional columns, most useful first, with the cells each takes (its gap included).
OPTIONAL = (("fc", 10), ("rel", 8), ("trend", 9))
# A served forecast this close to zero is "no change", not an arrow and "+0.00%".
FLAT = 0.00005


class Watchlist(Widget):
    """Coins and their numbers; the app owns the selection and the keys."""

    DEFAULT_CSS = """
    Watchlist { height: auto; text-wrap: nowrap; text-overflow: clip; }
    """

    selected: reactive[str | None] = reactive(None)

    class Clicked(Message):
        def __init__(self, coin: str) -> None:
            super().__init__()
            self.coin = coin

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: tuple[CoinRow, ...] = ()
        self.horizon = 5
        self.window = "6h"

    def set_rows(self, rows: tuple[CoinRow, ...], horizon: int, window: str) -> None:
        if rows == self.rows and horizon == self.horizon and window == self.window:
            return
        relayout = len(rows) != len(self.rows)
        self.rows = rows
        self.horizon = horizon
        self.window = window
        self.refresh(layout=relayout)  # the height (rows + header) only changes with the count

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(2, len(self.rows) + 1)

    def _fixed_width(self) -> int:
        # Cells, not characters: a symbol in CJK takes two cells a character.
        label_w = min(10, max([cell_len(r.label) for r in self.rows] + [4]))
        # An unknown coin's words span the price and change columns: they do not widen them.
        price_w = max([len(_price_cell(r)) for r in self.rows if not r.unknown] + [8])
        return 2 + label_w + 1 + price_w + 1 + 7

    def columns(self, width: int) -> list[str]:
        """The optional columns that fit in ``width`` cells, most useful first."""
        used = self._fixed_width()
        cols = []
        for name, w in OPTIONAL:
            if used + w <= width:
                cols.append(name)
                used += w
        return cols

    def wanted_width(self) -> int:
        """Cells the rows need with every column shown (the side column sizes itself on this)."""
        return self._fixed_width() + sum(w for _, w in OPTIONAL)

    def render(self) -> Text:
        width = self.size.width or 40
        cols = self.columns(width)
        label_w = min(10, max([cell_len(r.label) for r in self.rows] + [4]))
        columns = [
            Column("#", "left", 1, 1),
            Column("coin", "left", label_w, label_w),
            Column("price", "right"),
            Column(self.window, "right", 6),
        ]
        if "fc" in cols:
            columns.append(Column(f"in {self.horizon}m", "right", 9))
        if "rel" in cols:
            columns.append(Column("rel MAE", "right"))
        if "trend" in cols:
            columns.append(Column("trend", "left", 8, 8))
        pal = Palette.of(self)
        rows: list[list[Text | str]] = []
        styles: list[str] = []
        for i, row in enumerate(self.rows, 1):
            cells: list[Text | str] = [
                Text(str(i) if i < 10 else " ", style="dim"),
                Text(row.label),
            ]
            if row.unknown:
                cells += ["", ""]  # written over the two columns below
            elif row.stale and row.price is not None:
                cells += [
                    Text(_price_cell(row), style="dim"),
                    Text("stale", style=f"bold {pal.warning}"),
                ]
            elif row.price is None:
                cells += [Text(_price_cell(row), style="dim"), ""]
            else:
                cells += [_price_cell(row), _signed(row.change, pal)]
            if "fc" in cols:
                cells.append(_forecast(row.forecast, pal) if not row.unknown else "")
            if "rel" in cols:
                cells.append(_rel(row.rel_mae, pal) if not row.unknown else "")
            if "trend" in cols:
                cells.append(Text(sparkline(list(row.spark), SPARK_CELLS), style=pal.accent))
            rows.append(cells)
            styles.append("reverse" if row.coin == self.selected else "")
        lines = layout_columns(columns, rows, styles)
        start = 2 + label_w + 1  # where the price column begins
        for i, row in enumerate(self.rows, 1):
            if row.unknown:
                line = lines[i][:start]
                line.append(_price_cell(row), style=f"bold {pal.warning}")
                if row.coin == self.selected:
                    line.stylize("reverse", 0, len(line))
                lines[i] = line
        if not self.rows:
            lines.append(Text("  no coins: press a to add", style="dim"))
        return Text("\n", no_wrap=True, overflow="crop").join(lines)

    def on_click(self, event: events.Click) -> None:
        # Row 0 is the header.
        index = event.y - 1
        if 0 <= index < len(self.rows):
            self.post_message(self.Clicked(self.rows[index].coin))

    def watch_selected(self) -> None:
        self.refresh()


def _price_cell(row: CoinRow) -> str:
    if row.unknown:
        return row.note or "unknown coin"
    return "waiting…" if row.price is None else format_price(row.price)


def _signed(change: float | None, pal: Palette) -> Text:
    if change is None:
        return Text("–", style="dim")
    style = pal.up if change > 0 else pal.down if change < 0 else ""
    return Text(format_percent(change), style=style)


def _forecast(change: float | None, pal: Palette) -> Text:
    if change is None:
        return Text("–", style="dim")
    if abs(change) < FLAT:
        # The served forecast is flat (the model has not earned a direction): say it in words.
        return Text("no change", style="dim")
    a = arrow(change)
    style = pal.up if a == "▲" else pal.down if a == "▼" else "dim"
    return Text(f"{a}{format_percent(change)}", style=style)


def _rel(rel: float | None, pal: Palette) -> Text:
    if rel is None or not math.isfinite(rel):
        return Text("–", style="dim")
    # Below 1 the model beats "no change"; above 1 it is worse (red); 1.00 is no better (dim),
    # which must not read as a perfect score.
    if abs(rel - 1) < 0.005:
        return Text(f"{rel:.2f}", style="dim")
    return Text(f"{rel:.2f}", style=pal.up if rel < 1 else pal.down)
