"""CSV export of a coin's stored bars and predictions (the ``e`` key and ``cryptotui export``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from engine.atomic import atomic_text
from engine.events import Bar
from engine.settings.holdings import Holding
from engine.store import Store


def export_path(folder: Path, coin: str, tag: str = "", now: datetime | None = None) -> Path:
    """A new, empty file in ``folder`` named by coin, tag ("demo" keeps demo exports apart from
    live ones) and time, with a counter when that name is taken (two exports in the same second).

    The file is created here (exclusively), so two exports racing for a name cannot both get it.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    stem = f"{coin}-{tag}-{stamp}" if tag else f"{coin}-{stamp}"
    n = 1
    while True:
        path = folder / (f"{stem}.csv" if n == 1 else f"{stem}-{n}.csv")
        try:
            with open(path, "x", encoding="utf-8"):
                return path
        except FileExistsError:
            n += 1


def export_csv(
    store: Store, coin: str, path: Path, horizons: tuple[int, ...], holding: Holding | None = None
) -> Path:
    """Write a coin's bars and, per horizon, the prediction made for each minute, as CSV.

    Per horizon: the forecast served (``pred``), the network's own forecast (``net``, empty for
    forecasts stored before it was kept) and the served 80 % band, all as prices. Only when a
    ``holding`` is given (``--with-holdings``), three more columns: the amount held now, its value
    and P&L at each minute's price. The caller makes the default exports folder; a path the user
    typed must already lead somewhere (a typo in a directory name is an error, not a new tree).

    A regular file (or a new name) is written atomically: a full disk leaves no half file. Anything
    else (``/dev/stdout``, a pipe, ``/dev/full``) is written as it is: a device is never replaced.
    Raises OSError when writing fails.
    """
    if path.exists() and not path.is_file():
        with open(path, "w", encoding="utf-8", newline="") as fh:
            write_csv(store, coin, fh, horizons, holding)
        return path
    with atomic_text(path) as fh:  # a full disk must not leave half a file behind
        write_csv(store, coin, fh, horizons, holding)
    return path


def write_csv(
    store: Store, coin: str, fh: IO[str], horizons: tuple[int, ...], holding: Holding | None = None
) -> None:
    """The CSV of ``export_csv`` written to an open text stream (stdout needs no temp file)."""
    import csv

    w = csv.writer(fh)
    for rows in csv_rows(store, coin, horizons, holding):
        w.writerows(rows)


def csv_parts(
    store: Store,
    coin: str,
    horizons: tuple[int, ...],
    part_chars: int,
    holding: Holding | None = None,
) -> Iterator[str]:
    """The CSV of ``export_csv`` in parts of about ``part_chars`` characters (the feed's export)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    for rows in csv_rows(store, coin, horizons, holding):
        for row in rows:
            w.writerow(row)
            if buf.tell() >= part_chars:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
    rest = buf.getvalue()
    if rest:
        yield rest


def csv_rows(
    store: Store, coin: str, horizons: tuple[int, ...], holding: Holding | None = None
) -> Iterator[list[list[object]]]:
    """The export's rows, a chunk at a time: the header, then the bars in time order with their
    predictions, read from the store ``CHUNK`` bars at a time (flat memory at any size: a coin of
    10 million minutes once took 5.4 GB)."""
    header: list[object] = [
        "time_utc",
        "timestamp",
        "price",
        "open",
        "high",
        "low",
        "volume",
        "source",
        "filled",
    ]
    for h in horizons:
        header += [f"pred_{h}m", f"net_{h}m", f"lo80_{h}m", f"hi80_{h}m"]
    if holding is not None:
        header += ["holding_amount", "holding_value", "holding_pnl"]
    yield [header]
    after: int | None = None
    while True:
        bars = store.bars_page(coin, after, CHUNK)
        if not bars:
            return
        preds: dict[tuple[int, int], tuple[object, ...]] = {}
        for row in store.predictions_about(coin, bars[0].ts, bars[-1].ts):
            _made, h, target, base, mean, lo80, hi80, _lo95, _hi95, _out, raw = row
            preds[(int(target), int(h))] = (base, mean, raw, lo80, hi80)
        yield [_row(b, preds, horizons, holding) for b in bars]
        after = bars[-1].ts


CHUNK = 5000  # bars per store read of an export


def _row(
    b: Bar,
    preds: dict[tuple[int, int], tuple[object, ...]],
    horizons: tuple[int, ...],
    holding: Holding | None,
) -> list[object]:
    iso = datetime.fromtimestamp(b.ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: list[object] = [
        iso,
        b.ts,
        b.price,
        b.open,
        b.high,
        b.low,
        b.volume,
        b.source,
        int(b.filled),
    ]
    for h in horizons:
        p = preds.get((b.ts, h))
        if p is None:
            out += ["", "", "", ""]
            continue
        base, mean, raw, lo, hi = (float(x) if x is not None else math.nan for x in p)  # type: ignore[arg-type]
        net = f"{base * math.exp(raw):.10g}" if math.isfinite(raw) else ""
        out += [
            f"{base * math.exp(mean):.10g}",
            net,
            f"{base * math.exp(lo):.10g}",
            f"{base * math.exp(hi):.10g}",
        ]
    if holding is not None:
        pnl = holding.pnl(b.price)
        out += [
            repr(holding.amount),
            f"{holding.value(b.price):.10g}",
            "" if pnl is None else f"{pnl:.10g}",
        ]
    return out


__all__ = ["CHUNK", "csv_parts", "csv_rows", "export_csv", "export_path", "write_csv"]
