"""Chart redraw: 24 h of minutes (candles, past band, misses, network, forecast, levels) at 200x50.

    python bench/bench_chart.py [--quick] [--out FILE.json]

The real widget (``tui.widgets.chart_plot.ChartPlot``) is mounted in a headless app, a plot 200x50.
Every side is timed to the same end point: the plot's 50 lines as Textual strips, ready for the
compositor.

- app: ``build_chart`` (low/high per column) + ``ChartPlot.show`` + the figure laid out and the
  series drawn in the app's own code (``tui.chart_canvas``) + the cells become strips.
- the same data drawn by plotext: the same downsampled series handed to plotext through its
  public calls (``tests.plotext_reference.PlotextChart``: ``scatter``, braille ``plot``,
  ``vertical_line``), textual-plotext's ``render()`` (plotext's ANSI text, parsed by Rich) and
  Textual's own text-to-strips step: what the chart cost on plotext's public API.
- every point, same widget: the app's path, handed every one of the 1440 price and 1440
  network points as lines (isolates what downsampling buys).
- every point, stock textual-plotext: every point through plotext as above: the plain way of
  handing the data to plotext.

Sides alternate in runs of BLOCK redraws, after ``gc.freeze()`` as in the running app.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from bench._util import demo_bars, summary_ms, write_json  # noqa: E402

WIDTH, HEIGHT = 200, 50
BLOCK = 5  # redraws of one side in a row


def snapshot_24h() -> Any:
    """A coin with 1440 real minutes and the live forecaster's forecast for each (bands included)."""
    import torch

    torch.set_num_threads(1)
    from engine.events import CoinSnapshot, HorizonMetrics, MetricsEvent
    from engine.forecast.forecaster import Forecaster

    bars = demo_bars(limit=1440 + 120)
    fc = Forecaster("bitcoin", seed=0)
    forecasts = []
    for b in bars:
        f = fc.observe(b)
        if f is not None:
            forecasts.append(f)
    bars = bars[-1440:]
    forecasts = [f for f in forecasts if f.ts >= bars[0].ts]
    # The chart's most expensive case: a network line that is drawn (it beats "no change"), with
    # its own mean on every forecast (a model that does not fill it gets a stand-in).
    if forecasts and not forecasts[-1].raw:
        forecasts = [replace(f, raw=tuple(0.5 * m + 1e-4 for m in f.mean)) for f in forecasts]
    rows = tuple(HorizonMetrics(h, 1000, 1.0, 1.0, 1.0, 1.0, 0.98, 0.99, 0.51, 0.8, 0.95, 0.01, 0)
                 for h in forecasts[-1].horizons)
    return CoinSnapshot("bitcoin", tuple(bars), tuple(forecasts), MetricsEvent("bitcoin", rows))


def every_point(data: Any, snap: Any, horizon: int) -> Any:
    """The same chart with no downsampling: every bar and every past prediction becomes a point."""
    from tui.chart_data import downsample

    n = len(snap.bars) * 4
    price = downsample(((float(b.ts), b.price) for b in snap.bars), data.x0, data.x1, n, 90.0)
    pts = sorted((float(f.ts + 60 * horizon), p) for f in snap.forecasts
                 if (p := f.price_at(horizon, f.raw)) is not None)
    network = downsample(pts, data.x0, data.x1, n, 90.0)
    return replace(data, price=price, candles=[], network=network)


async def measure(reps: int) -> dict[str, Any]:
    from textual.app import App, ComposeResult
    from textual.visual import Visual, visualize

    from tests.plotext_reference import PlotextChart
    from tui.chart_data import WINDOWS, build_chart
    from tui.widgets.chart_plot import ChartPlot

    snap = snapshot_24h()
    horizon = 5
    title = "Bitcoin (BTC)"

    class ChartApp(App[None]):
        CSS = f"ChartPlot, PlotextChart {{ width: 1fr; height: {HEIGHT}; }}"

        def compose(self) -> ComposeResult:
            yield ChartPlot(id="plot")
            yield PlotextChart(id="plot-plotext")

    app = ChartApp()
    out: dict[str, Any] = {}
    async with app.run_test(size=(WIDTH, 2 * HEIGHT)) as pilot:  # the two charts stacked
        await pilot.pause()
        plot = app.query_one("#plot", ChartPlot)
        plot2 = app.query_one("#plot-plotext", PlotextChart)
        assert plot2.size == plot.size
        width, height = plot.size.width, plot.size.height
        cols, rows = max(10, width - 12), max(4, height - 3)
        levels = (snap.bars[-1].price * 1.002, snap.bars[-1].price * 0.99)
        base = build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels)
        naive = every_point(base, snap, horizon)

        def plotext_strips(data: Any) -> None:
            text = plot2.draw(data, title)
            strips = Visual.to_strips(plot2, visualize(plot2, text), width, height, plot2.visual_style)
            assert len(strips) == height

        def redraw_app() -> None:
            # What the app does per redraw: downsample, lay out and draw the figure, strips.
            data = build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels)
            plot.show(data, title, force=True)
            strips = plot.render_lines_now()
            assert len(strips) == height

        def redraw_plotext() -> None:
            plotext_strips(build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels))

        def redraw_every_point() -> None:
            # The same preparation cost, then every point through the same widget.
            build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels)
            plot.show(naive, title, force=True)
            strips = plot.render_lines_now()
            assert len(strips) == height

        def redraw_every_point_stock() -> None:
            # Every point, the stock textual-plotext way: plotext's ANSI text, parsed, laid out.
            build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels)
            plotext_strips(naive)

        sides = (("downsampled", redraw_app), ("plotext_public", redraw_plotext),
                 ("every_point", redraw_every_point), ("every_point_stock", redraw_every_point_stock))
        for _, fn in sides:
            fn()
        # As the app does once it has started: what was loaded so far (here also torch and the
        # forecaster that made the snapshot) is moved out of the cyclic collector's sight.
        gc.freeze()
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        prep: list[float] = []
        # Interleaved in short runs (BLOCK redraws of one side, then the next), so machine noise
        # hits every side alike, while a side is not timed straight after another side's
        # allocations (the stock path churns through ~50 ms of objects per redraw).
        for _ in range(max(1, reps // BLOCK)):
            for name, fn in sides:
                for _ in range(BLOCK):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            for _ in range(BLOCK):
                t0 = time.perf_counter()
                build_chart(snap, horizon, WINDOWS["24h"], cols, rows, levels=levels)
                prep.append(time.perf_counter() - t0)
        out = {k: summary_ms(v) for k, v in times.items()}
        out["build_chart"] = summary_ms(prep)
        out["plot_size"] = [width, height]
        out["points"] = {
            "downsampled": sum(len(s) for s in base.price + base.network) + len(base.forward)
            + len(base.candles) + len(base.ribbon),
            "every_point": sum(len(s) for s in naive.price + naive.network) + len(naive.forward)
            + len(naive.band),
        }
    return out


def run(quick: bool) -> dict[str, Any]:
    res = asyncio.run(measure(10 if quick else 60))
    d, e, st = res["downsampled"], res["every_point"], res["every_point_stock"]
    res["speedup"] = st["median_ms"] / d["median_ms"]
    res["speedup_same_widget"] = e["median_ms"] / d["median_ms"]
    w, h = res["plot_size"]
    print(f"chart redraw at {w}x{h}, 24 h window (1440 minutes: candles, past band, misses,"
          " network line, forecast, levels), timed to Textual strips")
    print(f"  app (low/high per column, own canvas)       median {d['median_ms']:.2f} ms"
          f"  p90 {d['p90_ms']:.2f} ms  ({res['points']['downsampled']} points; target <= 5 ms)")
    pl = res["plotext_public"]
    print(f"  the same data drawn by plotext (public API) median {pl['median_ms']:.2f} ms"
          f"  p90 {pl['p90_ms']:.2f} ms")
    print(f"  every point, same widget                    median {e['median_ms']:.2f} ms"
          f"  p90 {e['p90_ms']:.2f} ms  ({res['points']['every_point']} points)")
    print(f"  every point, stock textual-plotext render   median {st['median_ms']:.2f} ms"
          f"  p90 {st['p90_ms']:.2f} ms")
    print(f"  speed-up vs every point to stock textual-plotext {res['speedup']:.1f}x (target >= 5x);"
          f" vs every point through the same widget {res['speedup_same_widget']:.1f}x;"
          f" build_chart alone {res['build_chart']['median_ms']:.2f} ms")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    res = run(args.quick)
    if args.out:
        args.out.write_text(json.dumps(res, default=str))
    else:
        write_json("chart.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
