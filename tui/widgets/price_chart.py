"""The main chart: price, past predictions, the forward forecast with its 80 % band, and state notices."""

from __future__ import annotations

import logging

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui.chart_data import ChartData, render_cells
from tui.format import format_price
from tui.widgets.palette import Palette

log = logging.getLogger(__name__)

# Cells spent outside the data area: title row, the frame's two edges and the time labels.
_AXIS_ROWS = 3


class ChartPlot(Widget):
    """The chart canvas; it draws whatever ``ChartData`` it was last given.

    Rendered line by line from a grid built once per ``show`` (or resize): Textual asks for lines
    on every screen refresh, so nothing is recomputed unless the data or the size changed.
    """

    DEFAULT_CSS = """
    ChartPlot { width: 1fr; height: 1fr; background: $surface; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: ChartData | None = None
        self.title_text = ""
        self.draws = 0  # how many times the figure was rebuilt (tests check coalescing)
        self._strips: list[Strip] = []
        self._built_for: tuple[int, int, int] | None = None  # (width, height, draws)

    def show(self, data: ChartData, title: str) -> None:
        self.data = data
        self.title_text = title
        self._draw()

    def _draw(self) -> None:
        self.draws += 1
        self.refresh()

    def _build(self) -> None:
        width, height = self.size.width, self.size.height
        pal = Palette.of(self)
        base = self.rich_style
        styles = {
            None: base,
            "price": base + Style(color=pal.accent),
            "predicted": base + Style(color=pal.warning),
            "forward": base + Style(color=pal.up),
            "band": base + Style(color=pal.primary),
            "now": base + Style(color=pal.foreground),
        }
        data = self.data or ChartData(0.0, 1.0, None)
        rows = render_cells(data, width, height, self.title_text)
        self._strips = [Strip([Segment(text, styles[role]) for text, role in runs], width) for runs in rows]
        self._built_for = (width, height, self.draws)

    def render_line(self, y: int) -> Strip:
        if self._built_for != (self.size.width, self.size.height, self.draws):
            self._build()
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(self.size.width)

    def notify_style_update(self) -> None:
        # A theme change restyles the widget: rebuild the strips with the new colours.
        super().notify_style_update()
        self._built_for = None

    class Resized(Message):
        """The plot changed size: the owner downsamples again for the new width."""

    def on_resize(self) -> None:
        self.post_message(self.Resized())


class PriceChart(Vertical):
    """Chart area: a notice banner, the plot (or a full notice when there is nothing to plot), a legend."""

    DEFAULT_CSS = """
    PriceChart { height: 1fr; }
    PriceChart > #chart-banner { height: auto; display: none; padding: 0 1; }
    PriceChart > #chart-notice { height: 1fr; display: none; content-align: center middle;
                                 text-align: center; padding: 1 2; }
    PriceChart > #chart-legend { height: 1; padding: 0 1; }
    PriceChart.-empty > ChartPlot { display: none; }
    PriceChart.-empty > #chart-notice { display: block; }
    PriceChart.-banner > #chart-banner { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="chart-banner")
        yield ChartPlot(id="chart-plot")
        yield Static(id="chart-notice")
        yield Static(id="chart-legend")

    @property
    def plot(self) -> ChartPlot:
        return self.query_one(ChartPlot)

    @property
    def plot_size(self) -> tuple[int, int]:
        """Data columns and rows of the plot, as the series are downsampled for them."""
        size = self.plot.size
        if size.width == 0:
            size = self.size
        return max(10, size.width - 12), max(4, size.height - _AXIS_ROWS)

    def show(self, data: ChartData, title: str, horizon: int, notice: tuple[str, str] | None) -> None:
        """Draw ``data``; ``notice`` (title, what to do) replaces an empty chart or heads a full one."""
        empty = data.empty
        self.set_class(empty, "-empty")
        self.set_class(notice is not None and not empty, "-banner")
        if notice is not None:
            head, body = notice
            text = Text.assemble((head, "bold"), "\n" if empty else ": ", body)
            target = "#chart-notice" if empty else "#chart-banner"
            self.query_one(target, Static).update(text)
        if empty and notice is None:
            self.query_one("#chart-notice", Static).update(Text(f"{title}: no data yet", style="dim"))
        self.plot.show(data, title)
        self.query_one("#chart-legend", Static).update(self._legend(data, horizon))

    def _legend(self, data: ChartData, horizon: int) -> Text:
        pal = Palette.of(self)
        if data.empty:
            return Text("")
        parts: list[tuple[str, str] | str] = [("━ price ", pal.accent)]
        if data.last_price is not None:
            parts.append((f"{format_price(data.last_price)}  ", "bold"))
        parts.append((f"━ predicted {horizon}m ahead  ", pal.warning))
        if len(data.forward) > 1:
            parts.append(("━ forecast ", pal.up))
            parts.append(("· 80% band  ", pal.primary))
        else:
            parts.append(("(no forecast yet)  ", "dim"))
        parts.append(("│ now", "dim"))
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
