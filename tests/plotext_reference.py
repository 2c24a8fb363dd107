"""The chart drawn by plotext itself, through public calls only: the reference the app's own figure is
compared with (tests/test_chart_render.py) and timed against (bench/bench_chart.py).

A textual-plotext ``PlotextPlot`` is given the same title, limits, ticks and layers as the app's
``ChartPlot`` (``chart_axes``, ``chart_layers``) as ``plt`` calls: ``vertical_line`` for "now",
``scatter(marker=glyph)`` for the glyph series, braille ``plot`` for the lines; ``render()`` builds
it (plotext's ANSI text, parsed by Rich).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot

from tui.chart_data import ChartData
from tui.widgets.chart_plot import chart_axes, chart_layers
from tui.widgets.palette import Palette


class PlotextChart(PlotextPlot):
    """plotext's own drawing of a ``ChartData``, for comparison."""

    def draw(self, data: ChartData | None, title: str) -> Text:
        """The figure as plotext builds it at the widget's size and theme."""
        plt: Any = self.plt
        plt.clear_figure()
        plt.title(title)
        width, height = self.size
        axes = chart_axes(data, width, height) if data is not None else None
        if data is not None and axes is not None:
            pal = Palette.of(self)
            lo = axes.ylim[0]
            # An invisible point anchors the axes: plotext draws ticks only for sides holding data.
            plt.scatter([data.x0], [lo], marker=" ")
            if data.now is not None:
                plt.vertical_line(data.now, color=pal.rgb("foreground"))
            for kind, layer in chart_layers(data, pal, max(10, width - 12)):
                if kind == "marks":
                    dots, glyph, colour = layer
                    plt.scatter(dots.xs, dots.ys, marker=glyph, color=colour)
                else:
                    segments, colour = layer
                    for seg in segments:
                        plt.plot(
                            [p[0] for p in seg], [p[1] for p in seg], marker="braille", color=colour
                        )
            plt.xlim(*axes.xlim)
            plt.ylim(*axes.ylim)
            plt.yticks(list(axes.yticks), list(axes.ylabels))
            plt.xticks(list(axes.xticks), list(axes.xlabels))
        text = self.render()
        assert isinstance(text, Text)
        return text
