"""``cryptotui backtest``: prequential evaluation of the live forecaster over CSV files of bars.

It runs exactly the live code path: per bar, ``Forecaster.observe`` then
``Forecaster.train(config.steps_per_minute)``, so features, trainer, calibration and scores are the
ones the app shows. Input: ``timestamp_ms,open,high,low,close,volume`` (bar open time, UTC).

Horizons count bars: with the default 1-minute bar they are minutes; ``--bar 5m`` (or a 5-minute
file, detected) makes horizon 1 the next 5-minute bar, and ``--bar 1h`` gives hourly forecasts from
the same code. ``--shared-model`` also runs the files together (time-aligned) with one shared model
and the first file's coin as a cross-coin input, and prints both modes side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence, TextIO

from engine.errors import ConfigError
from engine.events import Bar, HorizonMetrics

BAR_SIZES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line instead of argparse's usage dump (the CLI rule: exit 2, no traceback).
        raise _ArgError(message)


def _parser() -> _Parser:
    p = _Parser(prog="cryptotui backtest", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.csv")
    p.add_argument("--horizons", default="1,5,15,60", help="bars ahead, e.g. 1,5,15,60")
    p.add_argument("--bar", default="auto", help="1m|5m|15m|1h, default: the file's own spacing")
    p.add_argument("--shared-model", action="store_true", help="also run one model for all files")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="gradient steps per bar (default: live)")
    return p


def read_bars(path: Path, coin: str | None = None) -> list[Bar]:
    """Read a bar CSV (header optional); raises ConfigError naming the file and line."""
    coin = coin or path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    bars: list[Bar] = []
    last = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or (lineno == 1 and not line[:1].isdigit()):
            continue
        parts = line.split(",")
        try:
            if len(parts) < 5:
                raise ValueError
            ms = int(float(parts[0]))
            o, h, lo, c = (float(v) for v in parts[1:5])
            vol = float(parts[5]) if len(parts) > 5 and parts[5] else None
        except ValueError:
            raise ConfigError(
                f"{path}, line {lineno}: expected timestamp_ms,open,high,low,close,volume"
            ) from None
        if not all(math.isfinite(v) and v > 0 for v in (o, h, lo, c)):
            raise ConfigError(f"{path}, line {lineno}: prices must be positive numbers")
        ts = ms // 1000
        if last is not None and ts <= last:
            raise ConfigError(f"{path}, line {lineno}: timestamps must increase")
        last = ts
        bars.append(Bar(coin, ts, c, o, h, lo, vol, "replay"))
    if not bars:
        raise ConfigError(f"{path}: no bars")
    return bars


def native_spacing(bars: Sequence[Bar]) -> int:
    """The most common spacing between bars, in seconds (60 for a 1-minute file)."""
    gaps: dict[int, int] = {}
    for a, b in zip(bars, bars[1:]):
        gaps[b.ts - a.ts] = gaps.get(b.ts - a.ts, 0) + 1
    return max(gaps, key=lambda g: (gaps[g], -g)) if gaps else 60


def aggregate(bars: Sequence[Bar], seconds: int) -> list[Bar]:
    """OHLCV bars of ``seconds`` (open time = bucket start); a bucket with no bar stays missing."""
    out: list[Bar] = []
    for b in bars:
        key = b.ts - b.ts % seconds
        if out and out[-1].ts == key:
            o = out[-1]
            hi = max(v for v in (o.high, b.high, b.price) if v is not None)
            lo = min(v for v in (o.low, b.low, b.price) if v is not None)
            vol = (o.volume or 0.0) + (b.volume or 0.0)
            out[-1] = replace(o, price=b.price, high=hi, low=lo, volume=vol)
        else:
            out.append(replace(b, ts=key))
    return out


@dataclass
class _Run:
    file: str
    mode: str
    bar: str
    rows: tuple[HorizonMetrics, ...]
    bars: int
    seconds: float


class _Progress:
    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream, self.done, self.last = max(total, 1), stream, 0, -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.stream is None:
            return
        pct = int(100 * self.done / self.total)
        if pct != self.last:
            self.last = pct
            filled = pct * 30 // 100
            self.stream.write(f"\rbacktest [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}%")
            self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.write("\r" + " " * 50 + "\r")
            self.stream.flush()


def _bar_name(seconds: int) -> str:
    for k, v in BAR_SIZES.items():
        if v == seconds:
            return k
    return f"{seconds}s"


def run_file(bars: Sequence[Bar], config: Any, seed: int, progress: _Progress | None = None) -> Any:
    """Feed bars through one per-coin Forecaster exactly as live; returns the forecaster."""
    from engine.forecaster import Forecaster  # torch only when a backtest really runs

    fc = Forecaster(bars[0].coin, config, seed=seed)
    for bar in bars:
        fc.observe(bar)
        fc.train(config.steps_per_minute)
        if progress is not None:
            progress.advance()
    return fc


def run_shared(series: Sequence[Sequence[Bar]], config: Any, seed: int, progress: _Progress | None) -> list[Any]:
    """All series time-aligned through one shared model; the first series is the cross-coin input."""
    from engine.forecaster import make_forecaster_factory

    make = make_forecaster_factory(config, shared=True, seed=seed)
    fcs = [make(s[0].coin) for s in series]
    merged = sorted(((b.ts, i, b) for i, s in enumerate(series) for b in s), key=lambda r: r[:2])
    ref_fc = fcs[0]
    for ts, i, bar in merged:
        ref = ref_fc.scaled_return_at(ts) if i > 0 else None
        fcs[i].observe(bar, ref)
        fcs[i].train(config.steps_per_minute)
        if progress is not None:
            progress.advance()
    return fcs


def _row_dict(r: _Run, m: HorizonMetrics) -> dict[str, Any]:
    def num(v: float) -> float | None:
        return v if math.isfinite(v) else None

    return {
        "file": r.file,
        "mode": r.mode,
        "bar": r.bar,
        "horizon": m.horizon,
        "n": m.n,
        "mae": num(m.mae),
        "rmse": num(m.rmse),
        "mae_persistence": num(m.mae_persistence),
        "rmse_persistence": num(m.rmse_persistence),
        "mae_drift": num(m.mae_drift),
        "rel_mae": num(m.rel_mae),
        "rel_rmse": num(m.rel_rmse),
        "dir_acc": num(m.dir_acc),
        "coverage80": num(m.coverage80),
        "coverage95": num(m.coverage95),
        "width80": num(m.width80),
        "best_lag": m.best_lag,
    }


def _aggregate(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    """Coverage pooled over all files (weighted by scored predictions), per mode and horizon."""
    pooled: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        for m in r.rows:
            if m.n:
                acc = pooled.setdefault((r.mode, m.horizon), [0.0] * 8)
                acc[0] += m.n
                acc[1] += m.coverage80 * m.n
                acc[2] += m.coverage95 * m.n
                acc[3] += m.rel_mae <= 1.0 and m.rel_rmse <= 1.0
                acc[4] += 1
                acc[5] += m.mae * m.n
                acc[6] += m.mae_persistence * m.n
                acc[7] += (m.dir_acc if math.isfinite(m.dir_acc) else 0.5) * m.n
    return [
        {
            "mode": mode,
            "horizon": h,
            "n": int(a[0]),
            "coverage80": a[1] / a[0],
            "coverage95": a[2] / a[0],
            "rel_mae": a[5] / a[6] if a[6] > 0 else None,
            "dir_acc": a[7] / a[0],
            "files_rel_le_1": f"{int(a[3])}/{int(a[4])}",
        }
        for (mode, h), a in sorted(pooled.items())
    ]


def _fmt(v: float, spec: str) -> str:
    return format(v, spec) if math.isfinite(v) else "-"


def _print_tables(runs: Sequence[_Run], agg: list[dict[str, Any]], speed: float, out: TextIO) -> None:
    head = (
        f"{'file':<44} {'mode':<7}{'bar':>4}{'h':>4}{'n':>6}{'relMAE':>8}{'relRMSE':>8}"
        f"{'dirAcc':>7}{'cov80':>7}{'cov95':>7}{'w80bp':>7}{'lag':>4}{'MAE':>10}{'MAEpers':>10}"
    )
    out.write(head + "\n" + "-" * len(head) + "\n")
    for r in runs:
        for m in r.rows:
            out.write(
                f"{r.file[:44]:<44} {r.mode:<7}{r.bar:>4}{m.horizon:>4}{m.n:>6}"
                f"{_fmt(m.rel_mae, '.4f'):>8}{_fmt(m.rel_rmse, '.4f'):>8}"
                f"{_fmt(100 * m.dir_acc, '.1f'):>7}{_fmt(100 * m.coverage80, '.1f'):>7}"
                f"{_fmt(100 * m.coverage95, '.1f'):>7}{_fmt(1e4 * m.width80, '.1f'):>7}"
                f"{m.best_lag:>4}{_fmt(m.mae, '.3e'):>10}{_fmt(m.mae_persistence, '.3e'):>10}\n"
            )
    out.write("\npooled over all files\n")
    out.write(
        f"{'mode':<8}{'h':>4}{'n':>8}{'cov80':>8}{'cov95':>8}{'relMAE':>8}{'dirAcc':>8}"
        f"  files with rel MAE and RMSE <= 1\n"
    )
    for a in agg:
        rel = a["rel_mae"] if a["rel_mae"] is not None else math.nan
        out.write(
            f"{a['mode']:<8}{a['horizon']:>4}{a['n']:>8}{100 * a['coverage80']:>8.1f}"
            f"{100 * a['coverage95']:>8.1f}{_fmt(rel, '.4f'):>8}{100 * a['dir_acc']:>8.1f}"
            f"  {a['files_rel_le_1']}\n"
        )
    out.write(f"\nspeed: {speed:.0f} simulated bars (minutes at 1m) per second\n")


def main(argv: list[str]) -> int:
    """Entry point of ``cryptotui backtest``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        from engine.config import parse_horizons

        horizons = parse_horizons(args.horizons)
        if args.bar != "auto" and args.bar not in BAR_SIZES:
            raise ConfigError(f"invalid --bar {args.bar!r}: expected one of {', '.join(BAR_SIZES)}")
        if args.steps is not None and args.steps < 0:
            raise ConfigError("--steps must be >= 0")
        series_raw = [read_bars(f) for f in args.files]
    except (_ArgError, ConfigError) as exc:
        sys.stderr.write(f"cryptotui backtest: error: {exc}\n")
        return 2

    from engine.forecaster import ForecastConfig  # imports torch, quietly
    import torch

    torch.set_num_threads(1)
    series: list[list[Bar]] = []
    for bars in series_raw:
        native = native_spacing(bars)
        size = native if args.bar == "auto" else BAR_SIZES[args.bar]
        if size < native:
            sys.stderr.write(
                f"cryptotui backtest: warning: {bars[0].coin} has {_bar_name(native)} bars; "
                f"horizons of {_bar_name(size)} bars that fall between them cannot be scored\n"
            )
        series.append(aggregate(bars, size) if size > native else list(bars))
    sizes = [native_spacing(s) if args.bar == "auto" else BAR_SIZES[args.bar] for s in series]
    base = ForecastConfig(horizons=horizons)
    if args.steps is not None:
        base = replace(base, steps_per_minute=args.steps)

    total = sum(len(s) for s in series) * (2 if args.shared_model and len(series) > 1 else 1)
    progress = _Progress(total, sys.stderr if sys.stderr.isatty() and not args.json else None)
    runs: list[_Run] = []
    t_all = time.perf_counter()
    for bars, size in zip(series, sizes):
        cfg = replace(base, bar_seconds=size)
        t0 = time.perf_counter()
        fc = run_file(bars, cfg, args.seed, progress)
        runs.append(
            _Run(Path(bars[0].coin).name, "percoin", _bar_name(size), fc.evaluator.rows(), len(bars),
                 time.perf_counter() - t0)
        )
    if args.shared_model and len(series) > 1:
        size = max(sizes)
        cfg = replace(base, bar_seconds=size)
        aligned = [aggregate(s, size) if size != sz else s for s, sz in zip(series, sizes)]
        t0 = time.perf_counter()
        fcs = run_shared(aligned, cfg, args.seed, progress)
        dt = time.perf_counter() - t0
        for s, fc in zip(aligned, fcs):
            runs.append(_Run(s[0].coin, "shared", _bar_name(size), fc.evaluator.rows(), len(s), dt))
    elapsed = time.perf_counter() - t_all
    progress.close()
    n_bars = sum(r.bars for r in runs)
    speed = n_bars / elapsed if elapsed > 0 else float("inf")
    agg = _aggregate(runs)
    if args.json:
        obj = {
            "results": [_row_dict(r, m) for r in runs for m in r.rows],
            "aggregate": agg,
            "bars": n_bars,
            "seconds": elapsed,
            "minutes_per_second": speed,
            "seed": args.seed,
            "steps_per_minute": base.steps_per_minute,
        }
        sys.stdout.write(json.dumps(obj) + "\n")
    else:
        _print_tables(runs, agg, speed, sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
