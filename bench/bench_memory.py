"""Memory: peak RSS of the real Engine + CryptoApp with 10 coins, 24 h of history each, models loaded.

    python bench/bench_memory.py [--quick] [--out FILE.json]

A first child process fills a data dir (10 coins x 1440 minutes, their forecasts and a model
checkpoint each); a second, fresh one runs the engine and the app (headless, 160x48), waits until
every coin's model is loaded and has caught up, shows each coin's chart once, and reports its peak
RSS (``ru_maxrss``) and current RSS. The source is silent, so only history and models count.
Before the second child starts, the page cache of the installed shared libraries is dropped
(``bench._util.evict_library_pages``): a fresh CI venv otherwise reads ~60 MB more for the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from bench._util import ROOT, evict_library_pages, peak_rss_mb, populate, rss_mb, write_json  # noqa: E402
from engine.sources.base import Source  # noqa: E402

COINS = ("bitcoin", "ethereum", "solana", "litecoin", "dogecoin", "cardano", "ripple", "polkadot",
         "chainlink", "tron")


class SilentSource(Source):
    """A source with nothing to say: the engine runs on its stored history alone."""

    name = "silent"

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Any, stop: threading.Event) -> None:
        stop.wait()

    def search(self, query: str) -> list[Any]:
        return []


async def _measure(home: Path) -> dict[str, Any]:
    from engine.runtime.engine import Engine
    from engine.settings.config import Settings
    from engine.settings.locations import Locations
    from tui.app import CryptoApp

    base_rss = rss_mb()
    loc = Locations.resolve(home)
    engine = Engine(Settings(coins=COINS), loc, source=SilentSource())
    app = CryptoApp(engine, state_path=home / "ui.json")
    t0 = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(engine.snapshot(c).train is not None for c in COINS):
                break
            await pilot.pause(0.1)
        loaded = sum(engine.snapshot(c).train is not None for c in COINS)
        load_s = time.perf_counter() - t0
        for _ in COINS:
            await pilot.press("j")
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        bars = sum(len(engine.snapshot(c).bars) for c in COINS)
        forecasts = sum(len(engine.snapshot(c).forecasts) for c in COINS)
        now_rss = rss_mb()
    if app.stop_thread is not None:
        app.stop_thread.join(30)
    return {"coins": len(COINS), "models_loaded": loaded, "bars": bars, "forecasts": forecasts,
            "load_s": load_s, "rss_mb": now_rss, "peak_rss_mb": peak_rss_mb(),
            "python_baseline_rss_mb": base_rss}


def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        me = str(Path(__file__).resolve())
        subprocess.run([sys.executable, me, "--populate", str(home)], check=True, cwd=ROOT)
        evicted = evict_library_pages()
        out = subprocess.run([sys.executable, me, "--measure", str(home)], check=True, cwd=ROOT,
                             capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["library_files_evicted"] = evicted
    print(f"memory: engine + app, {res['coins']} coins x 24 h ({res['bars']} bars, {res['forecasts']} forecasts),"
          f" {res['models_loaded']} models loaded in {res['load_s']:.1f} s")
    print(f"  peak RSS              {res['peak_rss_mb']:.0f} MB (target <= 400 MB); now {res['rss_mb']:.0f} MB;"
          f" interpreter + imports before the engine {res['python_baseline_rss_mb']:.0f} MB")
    print(f"  (page cache of {evicted} installed shared libraries dropped first: a just-installed wheel's"
          " large folios would add ~60 MB of file pages)")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--populate", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.populate:
        populate(args.populate, COINS)
        return 0
    if args.measure:
        # CLI child: the parent reads this one JSON line from stdout.
        print(json.dumps(asyncio.run(_measure(args.measure))))
        return 0
    res = run(args.quick)
    if args.out:
        args.out.write_text(json.dumps(res, default=str))
    else:
        write_json("memory.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
