"""The main chart area: a notice banner, the plot, a legend, and state notices.

The plot itself (``tui.widgets.chart_plot.ChartPlot``) is mounted by ``mount_plot`` once the first
frame is on screen; once laid out it posts ``PlotResized`` and the owner draws into it.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from tui.chart_canvas import AXIS_ROWS
from tui.chart_data import ChartData
from tui.format import format_price
from tui.safe_text import clean
from tui.widgets.chart_plot import ChartPlot, PlotResized
from tui.widgets.columns import update_static
from tui.widgets.palette import Palette

__all__ = ["PlotResized", "PriceChart"]  # PlotResized: the plot's message, which the owner handles


class PriceChart(Vertical):
    """Chart area: a notice banner, the plot (or a full notice when there is nothing to plot), a legend."""

    class Wheel(Message):
        """The mouse wheel over the chart: ``zoom`` steps in (positive) or out, ``pan`` back
        (negative) or towards now."""

        def __init__(self, zoom: int = 0, pan: int = 0) -> None:
            super().__init__()
            self.zoom = zoom
            self.pan = pan

    DEFAULT_CSS = """
    PriceChart { height: 1fr; }
    PriceChart > #chart-banner { height: auto; display: none; padding: 0 1; }
    PriceChart > #chart-notice { height: 1fr; display: none; content-align: center middle;
                                 text-align: center; padding: 1 2; }
    PriceChart > #chart-legend { height: 1; padding: 0 1; }
    PriceChart > #chart-holder { height: 1fr; }
    PriceChart.-empty > #chart-plot, PriceChart.-empty > #chart-holder { display: none; }
    PriceChart.-empty > #chart-notice { display: block; }
    PriceChart.-banner > #chart-banner { display: block; }
    """

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.post_message(self.Wheel(zoom=1))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.post_message(self.Wheel(zoom=-1))

    def on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        event.stop()
        self.post_message(self.Wheel(pan=-1))

    def on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        event.stop()
        self.post_message(self.Wheel(pan=1))

    def compose(self) -> ComposeResult:
        yield Static(id="chart-banner")
        yield Widget(id="chart-holder")  # holds the plot's place until mount_plot
        yield Static(id="chart-notice")
        yield Static(id="chart-legend")

    def mount_plot(self) -> None:
        """Put the real plot in its place. Once laid out it posts ``PlotResized``, and the owner
        draws into it, downsampled for its real width."""
        if self.plot is not None:
            return
        plot = ChartPlot(id="chart-plot")
        self.mount(plot, before="#chart-holder")
        self.query_one("#chart-holder").remove()

    @property
    def plot(self) -> ChartPlot | None:
        """The plot, once mounted (None before ``mount_plot``)."""
        found = self.query("#chart-plot")
        return found.first() if found else None  # type: ignore[return-value]

    @property
    def plot_size(self) -> tuple[int, int]:
        """Data columns and rows of the plot, as the series are downsampled for them."""
        plot = self.plot
        size = plot.size if plot is not None else None
        if size is None or size.width == 0:
            # Not laid out yet: the placeholder it replaces has its size.
            holders = self.query("#chart-holder")
            size = holders.first().size if holders else self.size
        return max(10, size.width - 12), max(4, size.height - AXIS_ROWS)

    def show(
        self, data: ChartData, title: str, horizon: int, notice: tuple[str, str] | None
    ) -> None:
        """Draw ``data``; ``notice`` (title, what to do) replaces an empty chart or heads a full one."""
        empty = data.empty
        self.set_class(empty, "-empty")
        self.set_class(notice is not None and not empty, "-banner")
        if notice is not None:
            # Notices quote coin ids and the source's own message: foreign text.
            head, body = clean(notice[0]), clean(notice[1], 600)
            text = Text.assemble((head, "bold"), "\n" if empty else ": ", body)
            self._update("#chart-notice" if empty else "#chart-banner", text)
        if empty and notice is None:
            self._update("#chart-notice", Text(f"{clean(title)}: no data yet", style="dim"))
        plot = self.plot
        if plot is not None:
            # The title's characters go straight into the plot's cells: no codes may reach it.
            plot.show(data, clean(title, 80))
        update_static(
            self.query_one("#chart-legend", Static), self._legend(data, horizon), layout=False
        )  # height 1

    def _update(self, target: str, text: Text) -> None:
        update_static(self.query_one(target, Static), text)

    def _legend(self, data: ChartData, horizon: int) -> Text:
        """What each mark means, most important first (a narrow chart cuts the tail)."""
        pal = Palette.of(self)
        if data.empty:
            return Text("")
        parts: list[tuple[str, str] | str] = []
        if data.candles:
            parts += [("┃", pal.up), ("┃ ", pal.down)]
        else:
            parts.append(("━ ", pal.accent))
        if data.last_price is not None:
            parts.append((f"{format_price(data.last_price)}  ", "bold"))
        # A narrow chart (80 columns) gets the short words, so the misses' count still shows.
        narrow = self.size.width < 80
        if data.scored:
            band = "80% band" if narrow else f"80% band from {horizon}m before"
            parts.append((f"· {band}  ", pal.primary))
            n = len(data.misses)
            parts.append((f"▲▼ {'out' if narrow else 'outside'} {n}/{data.scored}  ", ""))
        if data.network:
            parts.append((f"━ {data.network_words}  ", pal.predicted))
        elif data.network_words:
            parts.append((f"{data.network_words}  ", pal.muted))
        if len(data.forward) > 1:
            parts.append(("━ forecast  ", pal.up))
        elif data.live:
            parts.append(("(no forecast yet)  ", "dim"))
        if data.levels:
            parts.append(("─ alert  ", pal.warning))
        if data.levels_off:
            far = ", ".join(format_price(v) for v in data.levels_off)
            parts.append((f"alert {far} off chart  ", pal.warning))
        if data.volume:
            parts.append(("▂▅ volume  ", pal.faint))
        if data.live:
            parts.append(("│ now", "dim"))
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
