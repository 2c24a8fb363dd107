"""One request budget for every CoinGecko call: per-minute and per-month counters, 429 waits.

The budget counts calls *sent* (a 429 or a 5xx still cost a call upstream), keeps a sliding
one-minute window and a calendar-month counter (UTC, as CoinGecko bills), and remembers a
"blocked until" time set by a 429. It never sleeps itself: ``reserve()`` either grants a call (and
counts it) or says how long to wait, so the caller can wait on its stop event and stay responsive.
Thread-safe: the poller and the search worker share one budget.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.settings.jsonfile import Unreadable, parse_json
from engine.settings.numbers import file_number
from engine.sources.retry import clamp_delay

# Plan defaults (calls per minute, calls per month; None: no monthly cap). Keyless is per IP and
# shared with everyone behind it (roughly 5-15/min and it varies), so stay at the low end.
PLAN_LIMITS: dict[str, tuple[int, int | None]] = {
    "keyless": (10, None),
    "demo": (30, 10_000),
    "pro": (500, 500_000),  # the smallest paid plan (Analyst); set calls_per_* for others
}

MINUTE = 60.0


def plan_name(settings: Any) -> str:
    """``"keyless"``, ``"demo"`` or ``"pro"`` (on the demo plan, a key makes it demo)."""
    if getattr(settings, "api_plan", "demo") == "pro":
        return "pro"
    return "demo" if getattr(settings, "api_key", None) else "keyless"


def limits_for(settings: Any) -> tuple[int, int | None]:
    """(calls per minute, calls per month) from the settings, falling back to the plan defaults."""
    per_minute, per_month = PLAN_LIMITS[plan_name(settings)]
    if getattr(settings, "calls_per_minute", None):
        per_minute = int(settings.calls_per_minute)
    if getattr(settings, "calls_per_month", None):
        per_month = int(settings.calls_per_month)
    return per_minute, per_month


def month_key(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m")


def next_month_start(ts: float) -> float:
    d = datetime.fromtimestamp(ts, tz=UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer of ``Budget.reserve``: ``wait == 0`` means the call was granted and counted."""

    wait: float
    reason: str = ""  # "" | "minute" | "month" | "blocked"

    @property
    def granted(self) -> bool:
        return self.wait <= 0


class Budget:
    """Per-minute (sliding window) and per-month counters plus a 429 block, all on one clock."""

    def __init__(
        self,
        limit_minute: int,
        limit_month: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        month_used: int = 0,
        month: str | None = None,
    ) -> None:
        if limit_minute < 1:
            raise ValueError("limit_minute must be >= 1")
        self.limit_minute = limit_minute
        self.limit_month = limit_month
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()  # send times within the last minute
        now = clock()
        self._month = month or month_key(now)
        # A persisted count from another month is stale: the month has reset since.
        self._month_used = month_used if self._month == month_key(now) else 0
        self._month = month_key(now)
        self._blocked_until = 0.0

    @classmethod
    def for_settings(
        cls,
        settings: Any,
        *,
        clock: Callable[[], float] = time.time,
        month_used: int = 0,
        month: str | None = None,
    ) -> Budget:
        per_minute, per_month = limits_for(settings)
        return cls(per_minute, per_month, clock=clock, month_used=month_used, month=month)

    def _roll(self, now: float) -> None:
        while self._recent and now - self._recent[0] >= MINUTE:
            self._recent.popleft()
        key = month_key(now)
        if key != self._month:
            self._month, self._month_used = key, 0

    def reserve(self) -> Reservation:
        """Grant and count one call now, or say how many seconds to wait and why."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            if now < self._blocked_until:
                return Reservation(self._blocked_until - now, "blocked")
            if self.limit_month is not None and self._month_used >= self.limit_month:
                return Reservation(max(1.0, next_month_start(now) - now), "month")
            if len(self._recent) >= self.limit_minute:
                return Reservation(max(0.05, self._recent[0] + MINUTE - now), "minute")
            self._recent.append(now)
            self._month_used += 1
            return Reservation(0.0)

    def block_for(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429 said so); never shortens an existing block."""
        seconds = clamp_delay(seconds, 0.0)
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def blocked_for(self) -> float:
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def counts(self) -> tuple[int, int]:
        """(calls in the last minute, calls this month)."""
        with self._lock:
            self._roll(self._clock())
            return len(self._recent), self._month_used

    def state(self) -> dict[str, Any]:
        """What to persist so the monthly count survives a restart: ``Budget(..., **state)``."""
        with self._lock:
            return {"month": self._month, "month_used": self._month_used}


def load_counts(path: Path | None) -> dict[str, Any]:
    """The persisted monthly count (``Budget.state()``); a missing or damaged file gives none."""
    if path is None:
        return {}
    try:
        data = parse_json(Path(path).read_bytes())  # depth checked: never a RecursionError
    except (OSError, Unreadable):
        return {}
    if not isinstance(data, dict):
        return {}
    month, used = data.get("month"), data.get("month_used")
    if not isinstance(month, str) or len(month) > 7:
        return {}
    used = file_number(used, low=0, integer=True)
    if used is None:
        return {}
    return {"month": month, "month_used": used}


def save_counts(path: Path, state: dict[str, Any]) -> None:
    """Write the monthly count atomically: a crash never leaves half a file."""
    write_atomic(Path(path), json.dumps(state))


__all__ = [
    "PLAN_LIMITS",
    "Budget",
    "Reservation",
    "limits_for",
    "load_counts",
    "month_key",
    "next_month_start",
    "plan_name",
    "save_counts",
]
