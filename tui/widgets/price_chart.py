"""The main chart: price, past predictions, the forward forecast with its 80 % band, and state notices."""

from __future__ import annotations

import logging

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui.chart_data import ChartData, time_ticks
from tui.format import format_clock, format_price, nice_ticks, tick_labels
from tui.widgets.palette import Palette

log = logging.getLogger(__name__)

# Cells plotext spends outside the data area: title row, x-axis row and tick labels.
_AXIS_ROWS = 3


class ChartPlot(PlotextPlot):
    """The plotext canvas; it draws whatever ``ChartData`` it was last given."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: ChartData | None = None
        self.title_text = ""
        self.draws = 0  # how many times the figure was rebuilt (tests check coalescing)

    def show(self, data: ChartData, title: str) -> None:
        self.data = data
        self.title_text = title
        self._draw()

    def _draw(self) -> None:
        data = self.data
        plt = self.plt
        plt.clear_figure()
        plt.title(self.title_text)
        self.draws += 1
        if data is None or data.empty or data.y_range is None:
            self.refresh()
            return
        pal = Palette.of(self)
        cols = max(10, self.size.width - 12)
        rows = max(4, self.size.height - _AXIS_ROWS)
        if data.band:
            plt.scatter([p[0] for p in data.band], [p[1] for p in data.band], marker="·",
                        color=pal.rgb("primary"))
        for seg in data.price:
            plt.plot([p[0] for p in seg], [p[1] for p in seg], marker="braille", color=pal.rgb("accent"))
        # Predictions go over the price, so a prediction that merely lags the price shows as such.
        for seg in data.predicted:
            plt.plot([p[0] for p in seg], [p[1] for p in seg], marker="braille", color=pal.rgb("predicted"))
        if len(data.forward) > 1:
            plt.plot([p[0] for p in data.forward], [p[1] for p in data.forward], marker="braille",
                     color=pal.rgb("up"))
        if data.now is not None:
            plt.vertical_line(data.now, color=pal.rgb("foreground"))
        plt.xlim(data.x0, data.x1)
        lo, hi = data.y_range
        plt.ylim(lo, hi)
        yt = nice_ticks(lo, hi, max(2, rows // 3))
        plt.yticks(yt, tick_labels(yt))
        xt = time_ticks(data.x0, data.x1, cols)
        plt.xticks(xt, [format_clock(t) for t in xt])
        self.refresh()

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
        parts.append((f"━ predicted {horizon}m ahead  ", pal.predicted))
        if len(data.forward) > 1:
            parts.append(("━ forecast ", pal.up))
            parts.append(("· 80% band  ", pal.primary))
        else:
            parts.append(("(no forecast yet)  ", "dim"))
        parts.append(("│ now", "dim"))
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
