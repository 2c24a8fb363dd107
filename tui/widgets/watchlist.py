"""The watchlist: one row per coin with price, change, forecast, skill and a sparkline."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from tui.widgets.palette import Palette
from tui.format import arrow, format_percent, format_price, sparkline


@dataclass(frozen=True)
class CoinRow:
    """What one watchlist row shows; built by the app from the events it has seen."""

    coin: str
    label: str  # short display name (symbol)
    price: float | None = None
    change: float | None = None  # relative change over the chart window
    forecast: float | None = None  # predicted relative change at the selected horizon
    rel_mae: float | None = None  # model MAE / persistence MAE at the selected horizon
    spark: tuple[float, ...] = ()
    unknown: bool = False
    state: str = ""  # training state, shown as a marker


class Watchlist(Widget, can_focus=True):
    """Coins and their numbers; the app owns the selection and the keys."""

    DEFAULT_CSS = """
    Watchlist { height: auto; }
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
        self.rows = rows
        self.horizon = horizon
        self.window = window
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(2, len(self.rows) + 1)

    def columns(self, width: int) -> list[str]:
        """The optional columns that fit in ``width`` cells, most useful first."""
        label_w = min(10, max([len(r.label) for r in self.rows] + [4]))
        price_w = max([len(format_price(r.price)) for r in self.rows] + [8])
        used = 2 + label_w + 1 + price_w + 1 + 7
        cols = []
        for name, w in (("fc", 9), ("skill", 6), ("trend", 9)):
            if used + w <= width:
                cols.append(name)
                used += w
        return cols

    def render(self) -> Table:
        width = self.size.width or 40
        cols = self.columns(width)
        table = Table(box=None, padding=(0, 1), collapse_padding=True, pad_edge=False,
                      expand=False, show_edge=False)
        table.add_column("#", style="dim", width=1, no_wrap=True)
        label_w = min(10, max([len(r.label) for r in self.rows] + [4]))
        table.add_column("coin", no_wrap=True, overflow="ellipsis", min_width=label_w)
        table.add_column("price", justify="right", no_wrap=True)
        table.add_column(self.window, justify="right", no_wrap=True, min_width=6)
        if "fc" in cols:
            table.add_column(f"{self.horizon}m fc", justify="right", no_wrap=True, min_width=8)
        if "skill" in cols:
            table.add_column("skill", justify="right", no_wrap=True)
        if "trend" in cols:
            table.add_column("trend", no_wrap=True, width=8)
        pal = Palette.of(self)
        for i, row in enumerate(self.rows, 1):
            cells: list[Text | str] = [str(i) if i < 10 else " ", Text(row.label)]
            if row.unknown:
                cells += [Text("unknown coin", style=f"bold {pal.warning}"), ""]
            elif row.price is None:
                cells += [Text("waiting…", style="dim"), ""]
            else:
                cells += [format_price(row.price), _signed(row.change, pal)]
            if "fc" in cols:
                cells.append(_forecast(row.forecast, pal) if not row.unknown else "")
            if "skill" in cols:
                cells.append(_skill(row.rel_mae, pal) if not row.unknown else "")
            if "trend" in cols:
                cells.append(Text(sparkline(list(row.spark), 8), style=pal.accent))
            style = "reverse" if row.coin == self.selected else ""
            table.add_row(*cells, style=style)
        if not self.rows:
            table.add_row("", Text("no coins: press a to add", style="dim"))
        return table

    def on_click(self, event: events.Click) -> None:
        # Row 0 is the header.
        index = event.y - 1
        if 0 <= index < len(self.rows):
            self.post_message(self.Clicked(self.rows[index].coin))

    def watch_selected(self) -> None:
        self.refresh()


def _signed(change: float | None, pal: Palette) -> Text:
    if change is None:
        return Text("–", style="dim")
    style = pal.up if change > 0 else pal.down if change < 0 else ""
    return Text(format_percent(change), style=style)


def _forecast(change: float | None, pal: Palette) -> Text:
    if change is None:
        return Text("–", style="dim")
    a = arrow(change)
    style = pal.up if a == "▲" else pal.down if a == "▼" else "dim"
    return Text(f"{a}{format_percent(change)}", style=style)


def _skill(rel: float | None, pal: Palette) -> Text:
    if rel is None or not math.isfinite(rel):
        return Text("–", style="dim")
    # Below 1 the model beats "no change"; above 1 it is worse, and the row says so in red.
    return Text(f"{rel:.2f}", style=pal.up if rel < 1 else pal.down)
