"""Chart redraw: 24 h of minutes (price, past predictions, forward band) at 200x50, downsampled vs every point.

    python bench/bench_chart.py [--quick] [--out FILE.json]

The real widget (``tui.widgets.price_chart.ChartPlot``, a textual-plotext ``PlotextPlot``) is
mounted alone in a headless app sized 200x50. One app redraw = ``build_chart`` (downsampling to the
plot width) + ``ChartPlot.show`` (plotext calls) + ``render`` (plotext builds the figure, Rich parses
its ANSI). Beside it, in the same run: plotext handed every one of the 1440 price and 1440
prediction points, and an experimental braille-grid renderer that bypasses plotext (not shipped:
the project's chart is textual-plotext).
"""

from __future__ import annotations

import argparse
import asyncio
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


def snapshot_24h() -> Any:
    """A coin with 1440 real minutes and the live forecaster's forecast for each (bands included)."""
    import torch

    torch.set_num_threads(1)
    from engine.events import CoinSnapshot
    from engine.forecaster import Forecaster

    bars = demo_bars(limit=1440 + 120)
    fc = Forecaster("bitcoin", seed=0)
    forecasts = []
    for b in bars:
        f = fc.observe(b)
        if f is not None:
            forecasts.append(f)
    bars = bars[-1440:]
    forecasts = [f for f in forecasts if f.ts >= bars[0].ts]
    return CoinSnapshot("bitcoin", tuple(bars), tuple(forecasts))


def every_point(data: Any, snap: Any, horizon: int) -> Any:
    """The same chart with no downsampling: every bar and every past prediction becomes a point."""
    from tui.chart_data import downsample

    n = len(snap.bars) * 4
    price = downsample(((float(b.ts), b.price) for b in snap.bars), data.x0, data.x1, n, 90.0)
    pts = sorted((float(f.ts + 60 * horizon), p) for f in snap.forecasts
                 if (p := f.price_at(horizon)) is not None)
    predicted = downsample(pts, data.x0, data.x1, n, 90.0)
    return replace(data, price=price, predicted=predicted)


async def measure(reps: int) -> dict[str, Any]:
    from textual.app import App, ComposeResult

    from bench.grid_chart import render_cells
    from tui.chart_data import WINDOWS, build_chart
    from tui.widgets.price_chart import ChartPlot

    snap = snapshot_24h()
    horizon = 5
    title = "Bitcoin (BTC)"

    class ChartApp(App[None]):
        CSS = "ChartPlot { width: 1fr; height: 1fr; }"

        def compose(self) -> ComposeResult:
            yield ChartPlot(id="plot")

    app = ChartApp()
    out: dict[str, Any] = {}
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        await pilot.pause()
        plot = app.query_one("#plot", ChartPlot)
        width, height = plot.size.width, plot.size.height
        cols, rows = max(10, width - 12), max(4, height - 3)
        base = build_chart(snap, horizon, WINDOWS["24h"], cols, rows)
        naive = every_point(base, snap, horizon)

        def redraw_app() -> None:
            # What the app does per redraw: downsample, hand the series to plotext, render.
            data = build_chart(snap, horizon, WINDOWS["24h"], cols, rows)
            plot.show(data, title)
            plot.render()

        def redraw_grid_experiment() -> None:
            data = build_chart(snap, horizon, WINDOWS["24h"], cols, rows)
            render_cells(data, width, height, title)

        def redraw_plotext_every_point() -> None:
            # The same preparation cost, then every point to plotext.
            build_chart(snap, horizon, WINDOWS["24h"], cols, rows)
            plot.show(naive, title)  # the same widget, handed every point
            plot.render()

        sides = (("downsampled", redraw_app), ("grid_experiment", redraw_grid_experiment),
                 ("every_point", redraw_plotext_every_point))
        for _, fn in sides:
            fn()
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        prep: list[float] = []
        # Interleaved, so machine noise hits every side alike.
        for _ in range(reps):
            for name, fn in sides:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            build_chart(snap, horizon, WINDOWS["24h"], cols, rows)
            prep.append(time.perf_counter() - t0)
        out = {k: summary_ms(v) for k, v in times.items()}
        out["build_chart"] = summary_ms(prep)
        out["plot_size"] = [width, height]
        out["points"] = {
            "downsampled": sum(len(s) for s in base.price + base.predicted) + len(base.forward),
            "every_point": sum(len(s) for s in naive.price + naive.predicted) + len(naive.forward)
            + len(naive.band),
        }
    return out


def run(quick: bool) -> dict[str, Any]:
    res = asyncio.run(measure(10 if quick else 60))
    d, e, g = res["downsampled"], res["every_point"], res["grid_experiment"]
    res["speedup"] = e["median_ms"] / d["median_ms"]
    w, h = res["plot_size"]
    print(f"chart redraw at {w}x{h}, 24 h window (1440 minutes, price + past predictions + 80 % band)")
    print(f"  app (downsampled, textual-plotext) median {d['median_ms']:.2f} ms  p90 {d['p90_ms']:.2f} ms"
          f"  ({res['points']['downsampled']} points; target <= 5 ms)")
    print(f"  braille grid, no plotext (experiment, not shipped) median {g['median_ms']:.2f} ms")
    print(f"  plotext, every point              median {e['median_ms']:.2f} ms  p90 {e['p90_ms']:.2f} ms"
          f"  ({res['points']['every_point']} points)")
    print(f"  speed-up vs every point to plotext  {res['speedup']:.1f}x (target >= 5x);"
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
