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
from datetime import UTC, datetime
from pathlib import Path

from engine.api import CoinMatch
from engine.errors import ConfigError
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent
from engine.sources.base import Emit, Source, price_problem

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
# timestamp_ms in [1e8, 1e11) is 1970-01-02..1973-03-03: no crypto market existed, but that is
# exactly where Unix *seconds* of 1973..5138 fall. Smaller values stay allowed (synthetic files).
SECONDS_RANGE = (10**8, 10**11)
MAX_TIMESTAMP_MS = 10**14  # year 5138: beyond it the column holds micro- or nanoseconds


class TimestampUnitError(ValueError):
    """A timestamp in the wrong unit: the whole file is unusable, not one row."""


def timestamp_ms(text: str) -> int:
    """Parse a ``timestamp_ms`` cell; ValueError (TimestampUnitError for a unit mix-up) says why."""
    text = text.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"timestamp {text[:24]!r} is not a finite number") from None
        value = int(number)
    if value <= 0:
        raise ValueError("timestamp not positive")
    if SECONDS_RANGE[0] <= value < SECONDS_RANGE[1]:
        raise TimestampUnitError(
            f"timestamp {value} looks like Unix seconds; the column is timestamp_ms "
            "(milliseconds): multiply it by 1000"
        )
    if value >= MAX_TIMESTAMP_MS:
        raise TimestampUnitError(
            f"timestamp {value} is past the year 5000 in milliseconds; the column is timestamp_ms "
            "(micro- or nanoseconds?)"
        )
    return value


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
        # utf-8-sig: spreadsheet tools often start a CSV with a byte-order mark.
        # Opened alone so that only open()'s OSError is translated here; the with below closes it.
        fh = open(path, newline="", encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})"
        ) from None
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
            try:
                reason = _check_row(row)
            except TimestampUnitError as exc:
                raise ConfigError(f"{path}, line {line}: {exc}") from None
            if reason:
                rejected.append((line, reason))
                continue
            ts = timestamp_ms(row[0]) // 1000 // 60 * 60
            o, h, lo, c, v = (float(x) for x in row[1:6])
            if last_ts is not None and ts <= last_ts:
                rejected.append((line, "duplicated or out-of-order minute"))
                continue
            # A difference of logs, not the log of a ratio: the ratio of two extreme prices can
            # underflow to 0 or overflow to inf.
            if last_price is not None and abs(math.log(c) - math.log(last_price)) > math.log1p(
                MAX_JUMP
            ):
                rejected.append((line, f"price spike {last_price:g} -> {c:g}"))
                continue
            bars.append(Bar(coin, ts, c, o, h, lo, v, source))
            last_ts, last_price = ts, c
    if rejected:
        log.warning(
            "%s: skipped %d bad rows (first: line %d, %s)", path, len(rejected), *rejected[0]
        )
    return CsvReport(tuple(bars), tuple(rejected))


def _check_row(row: list[str]) -> str | None:
    if len(row) < 6:
        return f"expected 6 columns, got {len(row)}"
    try:
        values = tuple(float(x) for x in row[1:6])
    except ValueError:
        return "not a number"
    try:
        timestamp_ms(row[0])
    except TimestampUnitError:
        raise
    except ValueError as exc:
        return str(exc)
    problem = price_problem(values[:4])
    if problem:
        return problem
    if not math.isfinite(values[4]):
        return "non-finite value"
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
        return timestamp_ms(lines[-1].split(",")[0]) // 1000 // 60 * 60 if lines else None
    except (OSError, ValueError, IndexError):
        return None


def _first_timestamp(path: Path) -> int | None:
    """The minute of a bar CSV's first data row (the header may be there or not)."""
    try:
        with open(path, "rb") as fh:
            for raw in (fh.readline(), fh.readline()):
                head = raw.decode("utf-8", "replace").split(",")[0].strip()
                if head.isdigit():
                    return int(head) // 1000 // 60 * 60
    except OSError:
        return None
    return None


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _fmt(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


class ReplaySource(Source):
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
        self._description: str | None = None

    def load(self) -> dict[str, tuple[Bar, ...]]:
        """Read every file once (raises ConfigError for an unusable file)."""
        if not self._data:
            for coin, path in self.files.items():
                self._data[coin] = read_csv(path, coin, self.name).bars
        return self._data

    def check(self) -> None:
        self.load()

    def recorded_coins(self) -> frozenset[str] | None:
        return frozenset(self.files)

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

    def describe(self) -> str:
        """What is being replayed, for the header: the file (or how many) and the dates it spans."""
        if self._description is None:
            self._description = self._describe()
        return self._description

    def _describe(self) -> str:
        firsts = [t for t in (_first_timestamp(p) for p in self.files.values()) if t is not None]
        lasts = [t for t in (_last_timestamp(p) for p in self.files.values()) if t is not None]
        what = (
            next(iter(self.files.values())).name
            if len(self.files) == 1
            else f"{len(self.files)} files"
        )
        if self.name == "demo":
            what = "recorded Coinbase minutes"
        kind = "demo" if self.name == "demo" else "replay"
        if not firsts or not lasts:
            return f"{kind}: {what}, not the market"
        first, last = _day(min(firsts)), _day(max(lasts))
        span = first if first == last else f"{first} to {last}"
        return f"{kind}: {what}, {span}, not the market"

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
                emit(
                    ErrorEvent(
                        "Unknown coin", f"no recorded data for {coin!r} in this replay", coin
                    )
                )
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
                emit(
                    StatusEvent(
                        self.name, "ok", f"recording has a {hours:.1f} h gap: skipped ahead"
                    )
                )
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
