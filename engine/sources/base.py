"""The contract every source keeps with the engine."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Protocol

from engine.api import CoinMatch
from engine.events import Bar, CoinsEvent, ErrorEvent, StatusEvent

# What a source hands the engine: bars (in time order per coin), its status, errors, and
# changes in which coins it can serve (``CoinsEvent.unknown`` for ids it does not know).
SourceOutput = Bar | StatusEvent | ErrorEvent | CoinsEvent
Emit = Callable[[SourceOutput], None]

# Prices outside this range are refused: no market quotes a coin beyond it, and inside it every
# log and ratio of two prices stays far from float limits (a close of 1e308 then 1e-300 gave
# log(0)).
MIN_PRICE = 1e-15
MAX_PRICE = 1e15


def price_problem(values: tuple[float, ...]) -> str | None:
    """Why open/high/low/close values are unusable, or None."""
    if not all(math.isfinite(v) for v in values):
        return "non-finite value"
    if any(v <= 0 for v in values):
        return "zero or negative price"
    if not all(MIN_PRICE <= v <= MAX_PRICE for v in values):
        return f"price outside {MIN_PRICE:g}..{MAX_PRICE:g}"
    return None


class Source(Protocol):
    """A source runs in its own thread: ``run`` blocks until ``stop`` is set.

    ``coins()`` is read at every poll/subscription so the watchlist can change while it runs.
    ``search`` may be slow (network) and is called from a worker thread, never the UI thread.

    Sources subclass this class to inherit the defaults of the capabilities below (those of a live
    source); a recording (replay) overrides them. The engine calls them, never probes for them.
    """

    name: str

    def run(
        self, coins: Callable[[], tuple[str, ...]], emit: Emit, stop: threading.Event
    ) -> None: ...

    def search(self, query: str) -> list[CoinMatch]: ...

    def check(self) -> None:
        """Raise a CryptotuiError now if the source cannot work (an unusable replay file)."""
        return

    def describe(self) -> str:
        """What the data is, in a few words (a replay: its file and dates); "" for live data."""
        return ""

    def recorded_coins(self) -> frozenset[str] | None:
        """The coins a recording has data for; None when any coin may be asked for (live)."""
        return None

    def finished(self) -> bool:
        """Whether a recording has been played to its end (a live source never is)."""
        return False


# How far ahead of the local clock a source's timestamp may be before it is refused: clocks drift
# a little, and a bar is stamped with its minute's start; two minutes ahead is no longer drift.
MAX_CLOCK_SKEW = 120.0


def ahead_of_clock(ts: float, now: float, skew: float = MAX_CLOCK_SKEW) -> str | None:
    """Why ``ts`` (Unix seconds) cannot be trusted against ``now``, or None when it can."""
    if not math.isfinite(ts):
        return "not a finite time"
    if ts - now <= skew:
        return None
    from engine.sources.retry import fmt_seconds  # the one place durations are worded

    return f"{fmt_seconds(ts - now)} ahead of this computer's clock"
