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

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any, TextIO

from engine.errors import ConfigError
from engine.events import Bar, HorizonMetrics

BAR_SIZES = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}


@dataclass(frozen=True)
class Options:
    """What ``cryptotui backtest`` was asked to do (its parser is in the CLI, tui/__main__.py)."""

    files: tuple[Path, ...]
    horizons: str = "1,5,15,60"  # as typed; checked by run()
    bar: str = "auto"  # "auto" (each file's own spacing) or a key of BAR_SIZES
    shared_model: bool = False  # also run one model for all files, time-aligned
    json: bool = False
    seed: int = 0
    steps: int | None = None  # gradient steps per bar; None: the live setting
    predictions: Path | None = None  # CSV of every scored prediction
    wide: bool = False
    portfolio: bool = False
    weights: str | None = None  # --portfolio: value held per file, "A,B"


def read_bars(path: Path, coin: str | None = None) -> list[Bar]:
    """Read a bar CSV (header optional); raises ConfigError naming the file and line."""
    # The replay source's rules for timestamps and prices, so both readers refuse the same rows.
    from engine.sources.base import price_problem
    from engine.sources.replay import timestamp_ms

    coin = coin or path.stem
    try:
        # utf-8-sig: a byte-order mark from a spreadsheet would hide the header (or the first bar).
        text = path.read_text(encoding="utf-8-sig")
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
            float(parts[0])  # a timestamp that is not even a number is a format error
            o, h, lo, c = (float(v) for v in parts[1:5])
            vol = float(parts[5]) if len(parts) > 5 and parts[5] else None
        except ValueError:
            raise ConfigError(
                f"{path}, line {lineno}: expected timestamp_ms,open,high,low,close,volume"
            ) from None
        try:
            ms = timestamp_ms(parts[0])
        except ValueError as exc:
            raise ConfigError(f"{path}, line {lineno}: {exc}") from None
        problem = price_problem((o, h, lo, c))
        if problem:
            raise ConfigError(
                f"{path}, line {lineno}: {problem}: prices must be positive finite numbers"
            )
        if vol is not None and not (math.isfinite(vol) and vol >= 0):
            raise ConfigError(f"{path}, line {lineno}: volume must be a finite number >= 0")
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
    for a, b in pairwise(bars):
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


def run_file(
    bars: Sequence[Bar],
    config: Any,
    seed: int,
    progress: _Progress | None = None,
    predictions: Any = None,
) -> Any:
    """Feed bars through one per-coin Forecaster exactly as live; returns the forecaster.

    ``predictions`` (a csv writer) gets one row per scored prediction.
    """
    from engine.forecast.forecaster import Forecaster  # torch only when a backtest really runs

    fc = Forecaster(bars[0].coin, config, seed=seed)
    if predictions is not None:
        coin = bars[0].coin

        def write(
            ts: int, h: int, price: float, y: float, mean: float, raw: float, band: Any
        ) -> None:
            predictions.writerow(
                [coin, ts, h, repr(price), repr(y), repr(mean), repr(raw), *map(repr, band)]
            )

        fc.on_score = write
    for bar in bars:
        fc.observe(bar)
        fc.train(config.steps_per_minute)
        if progress is not None:
            progress.advance()
    return fc


def run_shared(
    series: Sequence[Sequence[Bar]], config: Any, seed: int, progress: _Progress | None
) -> list[Any]:
    """All series time-aligned through one shared model; the first series is the cross-coin input."""
    from engine.forecast.forecaster import LstmFactory

    factory = LstmFactory(config, shared=True, seed=seed)
    fcs = [factory.make(s[0].coin) for s in series]
    merged = sorted(((b.ts, i, b) for i, s in enumerate(series) for b in s), key=lambda r: r[:2])
    ref_fc = fcs[0]
    for ts, i, bar in merged:
        ref = ref_fc.scaled_return_at(ts) if i > 0 else None
        fcs[i].observe(bar, ref)
        fcs[i].train(config.steps_per_minute)
        if progress is not None:
            progress.advance()
    return fcs


# Scores of the three bands (served, the network's own, ewma-band), per row and pooled over files
# as n-weighted means (widths: mean widths, not medians).
BAND_SCORES = (
    "mean_width80",
    "mean_width95",
    "interval_score80",
    "interval_score95",
    "pinball",
    *(
        f"{band}_{score}{level}"
        for band in ("network", "ewma_band")
        for score in ("coverage", "width", "interval_score")
        for level in ("80", "95")
    ),
)
SCORE_KEYS = ("width95", *BAND_SCORES)  # per row, beside the columns above
POOLED = ("coverage80", "coverage95", *BAND_SCORES)


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
        **{k: num(getattr(m, k)) for k in SCORE_KEYS},
        "served80": m.served80,
        "served95": m.served95,
    }


def _aggregate(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    """Scores pooled over all files (weighted by scored predictions), per mode and horizon."""
    pooled: dict[tuple[str, int], dict[str, float]] = {}
    for r in runs:
        for m in r.rows:
            if not m.n:
                continue
            acc = pooled.setdefault(
                (r.mode, m.horizon),
                {
                    "n": 0.0,
                    "files": 0.0,
                    "files_ok": 0.0,
                    "mae": 0.0,
                    "mae_p": 0.0,
                    "sq": 0.0,
                    "sq_p": 0.0,
                    "dir": 0.0,
                    **{k: 0.0 for k in POOLED},
                },
            )
            n = m.n
            acc["n"] += n
            acc["files"] += 1
            acc["files_ok"] += m.rel_mae <= 1.0 and m.rel_rmse <= 1.0
            acc["mae"] += m.mae * n
            acc["mae_p"] += m.mae_persistence * n
            acc["sq"] += m.rmse**2 * n
            acc["sq_p"] += m.rmse_persistence**2 * n
            acc["dir"] += (m.dir_acc if math.isfinite(m.dir_acc) else 0.5) * n
            for k in POOLED:
                v = getattr(m, k)
                acc[k] += (v if math.isfinite(v) else 0.0) * n
    out = []
    for (mode, h), a in sorted(pooled.items()):
        scored = a["n"]
        row: dict[str, Any] = {
            "mode": mode,
            "horizon": h,
            "n": int(scored),
            **{k: a[k] / scored for k in POOLED},
            "rel_mae": a["mae"] / a["mae_p"] if a["mae_p"] > 0 else None,
            "rel_rmse": math.sqrt(a["sq"] / a["sq_p"]) if a["sq_p"] > 0 else None,
            "dir_acc": a["dir"] / scored,
            "files_rel_le_1": f"{int(a['files_ok'])}/{int(a['files'])}",
        }
        for lv in ("80", "95"):
            base = row[f"ewma_band_interval_score{lv}"]
            row[f"served_vs_ewma_band{lv}"] = row[f"interval_score{lv}"] / base if base else None
            row[f"network_vs_ewma_band{lv}"] = (
                row[f"network_interval_score{lv}"] / base if base else None
            )
        out.append(row)
    return out


def _fmt(v: float, spec: str) -> str:
    return format(v, spec) if math.isfinite(v) else "-"


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


_SHORT = {"simple": "S", "network": "N", "blend": "B", "": "-"}


def _print_tables(
    runs: Sequence[_Run], agg: list[dict[str, Any]], speed: float, out: TextIO, wide: bool = False
) -> None:
    """Per-file rows, then pooled tables; 100 columns unless ``wide``.

    Interval scores are shown as ratios to ewma-band's (below 1: better than the simple band).
    """
    if wide:
        head = (
            f"{'file':<44} {'mode':<7}{'bar':>4}{'h':>4}{'n':>6}{'relMAE':>8}{'relRMSE':>8}"
            f"{'dirAcc':>7}{'cov80':>7}{'cov95':>7}{'w80bp':>7}{'lag':>4}{'MAE':>10}{'MAEpers':>10}"
            f"{'IS80':>7}{'IS95':>7}{'net80':>7}{'net95':>7}{'served':>8}"
        )
    else:
        head = (
            f"{'file':<25}{'h':>3}{'n':>6}{'relMAE':>7}{'lag':>4}{'cov80':>6}{'cov95':>6}"
            f"{'w80bp':>7}{'IS80':>6}{'IS95':>6}{'net80':>6}{'net95':>6}{'served':>7}"
        )
    out.write(head + "\n" + "-" * len(head) + "\n")
    for r in runs:
        for m in r.rows:
            is80 = _ratio(m.interval_score80, m.ewma_band_interval_score80)
            is95 = _ratio(m.interval_score95, m.ewma_band_interval_score95)
            n80 = _ratio(m.network_interval_score80, m.ewma_band_interval_score80)
            n95 = _ratio(m.network_interval_score95, m.ewma_band_interval_score95)
            served = f"{_SHORT.get(m.served80, '?')}/{_SHORT.get(m.served95, '?')}"
            if wide:
                out.write(
                    f"{r.file[:44]:<44} {r.mode:<7}{r.bar:>4}{m.horizon:>4}{m.n:>6}"
                    f"{_fmt(m.rel_mae, '.4f'):>8}{_fmt(m.rel_rmse, '.4f'):>8}"
                    f"{_fmt(100 * m.dir_acc, '.1f'):>7}{_fmt(100 * m.coverage80, '.1f'):>7}"
                    f"{_fmt(100 * m.coverage95, '.1f'):>7}{_fmt(1e4 * m.width80, '.1f'):>7}"
                    f"{m.best_lag:>4}{_fmt(m.mae, '.3e'):>10}{_fmt(m.mae_persistence, '.3e'):>10}"
                    f"{_fmt(is80, '.3f'):>7}{_fmt(is95, '.3f'):>7}{_fmt(n80, '.3f'):>7}"
                    f"{_fmt(n95, '.3f'):>7}{served:>8}\n"
                )
            else:
                name = r.file if r.mode == "percoin" else f"{r.file} (shared)"
                if len(name) > 24:
                    name = name[:11] + "~" + name[-12:]
                out.write(
                    f"{name:<25}{m.horizon:>3}{m.n:>6}{_fmt(m.rel_mae, '.3f'):>7}"
                    f"{m.best_lag:>4}{_fmt(100 * m.coverage80, '.1f'):>6}"
                    f"{_fmt(100 * m.coverage95, '.1f'):>6}{_fmt(1e4 * m.width80, '.1f'):>7}"
                    f"{_fmt(is80, '.3f'):>6}{_fmt(is95, '.3f'):>6}{_fmt(n80, '.3f'):>6}"
                    f"{_fmt(n95, '.3f'):>6}{served:>7}\n"
                )
    out.write(
        "\nIS80/IS95: interval score of the served band over ewma-band's; net80/net95: the same\n"
        "for the network's own band (below 1: sharper for the same misses). served: the band\n"
        "served at the end, 80/95 (S simple volatility band, N network, B blend).\n"
    )

    def pct(v: Any) -> str:
        return _fmt(100 * v, ".1f") if v is not None else "-"

    def bp(v: Any) -> str:
        return _fmt(1e4 * v, ".0f") if v is not None else "-"

    def num(v: Any, spec: str) -> str:
        return _fmt(v, spec) if v is not None else "-"

    def band(a: dict[str, Any], pre: str) -> str:
        return (
            f"{pct(a[pre + 'coverage80']):>5} {pct(a[pre + 'coverage95']):>5} "
            f"{bp(a[pre + 'mean_width80' if not pre else pre + 'width80']):>5} "
            f"{bp(a[pre + 'mean_width95' if not pre else pre + 'width95']):>5}"
        )

    out.write("\npooled over all files: coverage (%) and mean width (bp) of each band\n")
    sub = f"{'cov80':>5} {'cov95':>5} {'w80':>5} {'w95':>5}"
    out.write(
        f"{'mode':<8}{'h':>3}{'n':>7} | {'served':<23} | {'network':<23} | {'ewma-band':<23}\n"
    )
    out.write(f"{'':<18} | {sub} | {sub} | {sub}\n")
    out.writelines(
        f"{a['mode']:<8}{a['horizon']:>3}{a['n']:>7} | {band(a, '')} | "
        f"{band(a, 'network_')} | {band(a, 'ewma_band_')}\n"
        for a in agg
    )
    out.write(
        "\npooled over all files: interval score against ewma-band's (below 1: better), "
        'the mean\nagainst "no change", and the pinball loss of the served forecast\n'
    )
    out.write(
        f"{'mode':<8}{'h':>3}{'n':>7}{'IS80':>7}{'IS95':>7}{'net80':>7}{'net95':>7}"
        f"{'relMAE':>8}{'relRMSE':>8}{'dirAcc':>7}{'pinbp':>7}  files <= 1\n"
    )
    out.writelines(
        f"{a['mode']:<8}{a['horizon']:>3}{a['n']:>7}"
        f"{num(a['served_vs_ewma_band80'], '.3f'):>7}{num(a['served_vs_ewma_band95'], '.3f'):>7}"
        f"{num(a['network_vs_ewma_band80'], '.3f'):>7}{num(a['network_vs_ewma_band95'], '.3f'):>7}"
        f"{num(a['rel_mae'], '.4f'):>8}{num(a['rel_rmse'], '.4f'):>8}{100 * a['dir_acc']:>7.1f}"
        f"{num(1e4 * a['pinball'], '.2f'):>7}  {a['files_rel_le_1']}\n"
        for a in agg
    )
    out.write(f"\nspeed: {speed:.0f} simulated bars (minutes at 1m) per second\n")


def run(opts: Options) -> int:
    """Run ``cryptotui backtest``; raises ConfigError (before any output) on unusable input."""
    from engine.settings.config import parse_horizons

    horizons = parse_horizons(opts.horizons)
    if opts.bar != "auto" and opts.bar not in BAR_SIZES:
        raise ConfigError(f"invalid --bar {opts.bar!r}: expected one of {', '.join(BAR_SIZES)}")
    if opts.steps is not None and opts.steps < 0:
        raise ConfigError("--steps must be >= 0")
    series_raw = [read_bars(f) for f in opts.files]
    weights = None
    if opts.weights is not None or opts.portfolio:
        from engine.forecast.portfolio import parse_weights

        weights = parse_weights(opts.weights, len(opts.files))
    pred_file = _open_predictions(opts.predictions) if opts.predictions else None
    try:
        return _run(opts, horizons, series_raw, pred_file, weights)
    finally:
        if pred_file is not None:
            pred_file.close()


PREDICTION_COLUMNS = (
    "coin",
    "issued_ts",
    "horizon",
    "price",
    "outcome",
    "mean",
    "raw_mean",
    "lo80",
    "hi80",
    "lo95",
    "hi95",
)


def _open_predictions(path: Path) -> TextIO:
    """The --predictions file, header written; a missing folder is an error, not created."""
    if not path.parent.is_dir():
        raise ConfigError(f"--predictions {path}: no such folder {path.parent}")
    try:
        # Not a with: the handle is returned, and the run closes it when it ends.
        fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"--predictions {path}: cannot write ({exc.strerror})") from None
    fh.write(",".join(PREDICTION_COLUMNS) + "\n")
    return fh


def _run(
    args: Options,
    horizons: tuple[int, ...],
    series_raw: list[list[Bar]],
    pred_file: TextIO | None,
    weights: Any,
) -> int:
    import csv

    import torch

    from engine.forecast.forecaster import ForecastConfig  # imports torch, quietly

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
        writer = csv.writer(pred_file, lineterminator="\n") if pred_file is not None else None
        fc = run_file(bars, cfg, args.seed, progress, writer)
        runs.append(
            _Run(
                Path(bars[0].coin).name,
                "percoin",
                _bar_name(size),
                fc.metrics(exact=True).rows,
                len(bars),
                time.perf_counter() - t0,
            )
        )
    if args.shared_model and len(series) > 1:
        size = max(sizes)
        cfg = replace(base, bar_seconds=size)
        aligned = [aggregate(s, size) if size != sz else s for s, sz in zip(series, sizes)]
        t0 = time.perf_counter()
        fcs = run_shared(aligned, cfg, args.seed, progress)
        dt = time.perf_counter() - t0
        for s, fc in zip(aligned, fcs):
            rows = fc.metrics(exact=True).rows
            runs.append(_Run(s[0].coin, "shared", _bar_name(size), rows, len(s), dt))
    portfolio = None
    if args.portfolio:
        from engine.forecast.portfolio import run_portfolio

        size = max(sizes)
        aligned = [aggregate(s, size) if size != sz else s for s, sz in zip(series, sizes)]
        portfolio = run_portfolio(aligned, replace(base, bar_seconds=size), weights, args.seed)
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
        if portfolio is not None:
            obj["portfolio"] = portfolio.as_dict()
        sys.stdout.write(json.dumps(obj) + "\n")
    else:
        _print_tables(runs, agg, speed, sys.stdout, wide=args.wide)
        if portfolio is not None:
            from engine.forecast.portfolio import format_portfolio

            sys.stdout.write(format_portfolio(portfolio))
    return 0
