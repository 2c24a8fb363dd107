"""Shared helpers of the benchmarks: percentiles, RSS, CPU time of a process, test data, free ports."""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEMO = ROOT / "engine" / "data" / "demo"
BTC_DEMO = DEMO / "BTCUSD_coinbase_1m_20180404-20180406.csv"
EVAL = Path(os.environ.get("CRYPTOTUI_SHARED_DATA", "/work/shared/data")) / "eval"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics; nan for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """median/p90/p99/max of durations given in seconds, in milliseconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "n": len(ms),
        "median_ms": pct(ms, 50),
        "p90_ms": pct(ms, 90),
        "p99_ms": pct(ms, 99),
        "max_ms": max(ms) if ms else math.nan,
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def evict_library_pages() -> int:
    """Drop the page cache of the installed shared libraries (clean pages only); returns the count.

    How a file was written decides how much of it one page fault maps: a wheel that pip has just
    unpacked sits in the cache in large folios, and ``import torch`` then reads 80 MB more RSS
    (294 against 212 MB on this machine) for the same process. Evicting first measures the app,
    not how recently its libraries were installed; the pages still count once the app maps them.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths["purelib"], paths["platlib"], *site.getsitepackages()}
    n = 0
    for root in roots:
        for path in Path(root).rglob("*.so*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                n += 1
            finally:
                os.close(fd)
    return n


def rss_mb(pid: int | str = "self") -> float:
    """Current resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        # The command name may hold spaces: the fields after it start past the last ')'.
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_bars(coin: str = "bitcoin", path: Path = BTC_DEMO, limit: int | None = None) -> list[Any]:
    """Real minute bars from the bundled demo data, as ``engine.events.Bar`` for ``coin``."""
    from engine.forecast.backtest import read_bars

    bars = read_bars(path, coin)
    return bars[:limit] if limit else bars


def recent_bars(coin: str, n: int, end_ts: int, base: Sequence[Any]) -> list[Any]:
    """``n`` consecutive minute bars ending at ``end_ts``, prices from ``base`` (cycled), no gaps."""
    from engine.events import Bar

    out = []
    start = end_ts - 60 * (n - 1)
    for i in range(n):
        b = base[i % len(base)]
        out.append(Bar(coin, start + 60 * i, b.price, b.open, b.high, b.low, b.volume, "coingecko"))
    return out


def write_json(name: str, obj: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_num) + "\n", encoding="utf-8")
    return path


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else str(v)


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def populate(home: Path, coins: Sequence[str], minutes: int = 1440, models: bool = True,
             demo: bool = False) -> dict[str, Any]:
    """A data dir as after a day of live use: ``minutes`` recent bars and forecasts per coin, models.

    Bars end at the last full minute, so a live source finds nothing to backfill. One forecaster
    is run over real demo prices (observe only, then a few training steps so it counts as trained);
    its forecasts and checkpoint are copied to every coin (their size, not their skill, matters).
    """
    import time as _time
    from dataclasses import replace as _replace

    from engine.settings.locations import Locations
    from engine.store import Store

    loc = Locations.resolve(home)
    loc.ensure()
    end = int(_time.time()) // 60 * 60 - 60
    base = demo_bars(limit=minutes + 60)
    template = recent_bars("template", minutes, end, base)
    fc_events: list[Any] = []
    fc = None
    if models:
        import torch

        from engine.forecast.forecaster import Forecaster

        torch.set_num_threads(1)
        first = coins[0]
        fc = Forecaster(first, seed=0)
        for b in template:
            out = fc.observe(_replace(b, coin=first))
            if out is not None:
                fc_events.append(out)
        fc.learner.train_steps(5)
    store = Store(loc.database(demo))
    try:
        for coin in coins:
            store.add_bars([_replace(b, coin=coin) for b in template])
            for f in fc_events:
                store.add_forecast(_replace(f, coin=coin))
    finally:
        store.close()
    if fc is not None:
        mdir = loc.models_dir(demo)
        for coin in coins:
            fc.coin = coin
            fc.save(mdir / f"{coin}.pt")
    return {"bars_per_coin": minutes, "forecasts_per_coin": len(fc_events), "coins": list(coins)}
