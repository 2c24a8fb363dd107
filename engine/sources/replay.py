"""Replay source: minute bars from CSV files (``timestamp_ms,open,high,low,close,volume``) at a set speed.

``--demo`` is this source over the real Coinbase minutes bundled in ``engine/data/demo``. Bad rows
(unparsable, zero, negative or non-finite prices, duplicated or out-of-order minutes) are skipped
with a reason; missing minutes stay missing. Long gaps in the recording are crossed at once (the
status says so) instead of making the user stare at a still screen.
"""

from __future__ import annotations

import csv
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.api import CoinMatch
from engine.errors import ConfigError
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.sources.base import Emit

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
DEMO_FILES = {
    "bitcoin": "BTCUSD_coinbase_1m_20180404-20180406.csv",
    "ethereum": "ETHUSD_coinbase_1m_20180404-20180405.csv",
    "litecoin": "LTCUSD_coinbase_1m_20180404-20180406.csv",
}
DEMO_NAMES = {
    "bitcoin": ("Bitcoin", "BTC"),
    "ethereum": ("Ethereum", "ETH"),
    "litecoin": ("Litecoin", "LTC"),
}
HEADER = ["timestamp_ms", "open", "high", "low", "close", "volume"]
MAX_JUMP = 0.5  # a close more than 50 % away from the previous one is taken as a bad print
GAP_SKIP_SECONDS = 15 * 60  # gaps longer than this (market time) are crossed without waiting


def demo_files() -> dict[str, Path]:
    return {coin: DEMO_DIR / name for coin, name in DEMO_FILES.items()}


@dataclass(frozen=True)
class CsvReport:
    bars: tuple[Bar, ...]
    rejected: tuple[tuple[int, str], ...]  # (line number, reason)


def read_csv(path: Path, coin: str, source: str = "replay") -> CsvReport:
    """Parse a bar CSV; raise ConfigError if the file cannot be used at all."""
    try:
        # Undecodable bytes become U+FFFD so only their row is rejected ("not a number"); strict
        # decoding fails a whole 8 KiB block at once, and with it the entire file.
        fh = open(path, newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    bars: list[Bar] = []
    rejected: list[tuple[int, str]] = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a CSV file ({exc})") from None
        if header is None:
            raise ConfigError(f"{path}: empty file")
        if [h.strip().lower() for h in header] != HEADER:
            raise ConfigError(f"{path}: expected header {','.join(HEADER)}")
        last_ts: int | None = None
        last_price: float | None = None
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                line += 1
                rejected.append((line, f"unreadable row ({exc})"))
                continue
            line = reader.line_num
            reason = _check_row(row)
            if reason:
                rejected.append((line, reason))
                continue
            ts = int(row[0]) // 1000 // 60 * 60
            o, h, lo, c, v = (float(x) for x in row[1:6])
            if last_ts is not None and ts <= last_ts:
                rejected.append((line, "duplicated or out-of-order minute"))
                continue
            if last_price is not None and abs(math.log(c / last_price)) > math.log1p(MAX_JUMP):
                rejected.append((line, f"price spike {last_price:g} -> {c:g}"))
                continue
            bars.append(Bar(coin, ts, c, o, h, lo, v, source))
            last_ts, last_price = ts, c
    if rejected:
        log.warning("%s: skipped %d bad rows (first: line %d, %s)", path, len(rejected), *rejected[0])
    return CsvReport(tuple(bars), tuple(rejected))


def _check_row(row: list[str]) -> str | None:
    if len(row) < 6:
        return f"expected 6 columns, got {len(row)}"
    try:
        ts = int(row[0])
        values = [float(x) for x in row[1:6]]
    except ValueError:
        return "not a number"
    if ts <= 0:
        return "timestamp not positive"
    if not all(math.isfinite(v) for v in values):
        return "non-finite value"
    if any(v <= 0 for v in values[:4]):
        return "zero or negative price"
    if values[4] < 0:
        return "negative volume"
    return None


def _last_timestamp(path: Path) -> int | None:
    """The minute of a bar CSV's last row, without reading the whole file."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            lines = fh.read().decode("utf-8", "replace").strip().splitlines()
        return int(lines[-1].split(",")[0]) // 1000 // 60 * 60 if lines else None
    except (OSError, ValueError, IndexError):
        return None


def _fmt(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class ReplaySource:
    """Replays bars from CSV files, ``speed`` recorded minutes per wall-clock second."""

    def __init__(
        self,
        files: dict[str, Path],
        speed: float,
        *,
        name: str = "replay",
        start_after: Callable[[str], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        names: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        if not speed > 0:
            raise ConfigError(f"invalid speed {speed!r}: must be > 0")
        self.name = name
        self.files = dict(files)
        self.speed = float(speed)
        self._start_after = start_after or (lambda coin: None)
        self._clock = clock
        self._names = names or {}
        self._data: dict[str, tuple[Bar, ...]] = {}

    def load(self) -> dict[str, tuple[Bar, ...]]:
        """Read every file once (raises ConfigError for an unusable file)."""
        if not self._data:
            for coin, path in self.files.items():
                self._data[coin] = read_csv(path, coin, self.name).bars
        return self._data

    def remaining(self) -> int:
        """Bars not yet stored, over all coins."""
        total = 0
        for coin, bars in self.load().items():
            after = self._start_after(coin)
            total += sum(1 for b in bars if after is None or b.ts > after)
        return total

    def finished(self) -> bool:
        """True when every file's last minute is already stored (reads only the files' tails)."""
        for coin, path in self.files.items():
            after = self._start_after(coin)
            last = _last_timestamp(path)
            if last is None or after is None or last > after:
                return False
        return True

    def search(self, query: str) -> list[CoinMatch]:
        q = query.strip().lower()
        out = []
        for coin in self.files:
            name, symbol = self._names.get(coin, (coin.title(), coin[:3].upper()))
            if q and (q in coin or q in name.lower() or q == symbol.lower()):
                out.append(CoinMatch(coin, name, symbol))
        return out

    def _merged(self, coins: tuple[str, ...]) -> Iterator[Bar]:
        streams = []
        for coin in coins:
            bars = self.load().get(coin)
            if not bars:
                continue
            after = self._start_after(coin)
            streams.append(iter([b for b in bars if after is None or b.ts > after]))
        return heapq.merge(*streams, key=lambda b: (b.ts, b.coin))

    def run(self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event) -> None:
        watched = coins()
        missing = [c for c in watched if c not in self.files]
        if missing:
            emit(CoinsEvent(coins=watched, unknown=tuple(missing)))
            for coin in missing:
                emit(ErrorEvent("Unknown coin", f"no recorded data for {coin!r} in this replay", coin))
        # Every file is merged, so a coin added while running joins at the current replay time.
        it = self._merged(tuple(self.files))
        first = next(it, None)
        if first is None:
            emit(StatusEvent(self.name, "done", "replay finished: nothing left to play"))
            return
        base_ts = first.ts
        base_wall = self._clock()
        last_status = 0.0
        played = 0
        bar: Bar | None = first
        prev_ts = first.ts
        while bar is not None and not stop.is_set():
            if bar.ts - prev_ts > GAP_SKIP_SECONDS:
                # Cross a long hole in the recording at once; the chart still shows it as a gap.
                hours = (bar.ts - prev_ts) / 3600
                emit(StatusEvent(self.name, "ok", f"recording has a {hours:.1f} h gap: skipped ahead"))
                base_wall -= (bar.ts - prev_ts - 60) / 60 / self.speed
            due = base_wall + (bar.ts - base_ts) / 60 / self.speed
            delay = due - self._clock()
            if delay > 0 and stop.wait(delay):
                break
            if bar.coin in coins():
                emit(bar)
                played += 1
            prev_ts = bar.ts
            now = self._clock()
            if now - last_status >= 1.0:
                last_status = now
                emit(
                    StatusEvent(
                        self.name,
                        "ok",
                        f"replaying {_fmt(bar.ts)} at {self.speed:g} min/s",
                        last_update=time.time(),
                    )
                )
            bar = next(it, None)
        if bar is None and not stop.is_set():
            emit(
                StatusEvent(
                    self.name,
                    "done",
                    f"replay finished at {_fmt(prev_ts)} ({played} bars played)",
                    last_update=time.time(),
                )
            )
