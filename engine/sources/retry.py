"""Retrying an upstream: backoff with jitter, the wait a server asks for (Retry-After and
CoinGecko's x-ratelimit-reset), every delay clamped to a sane range, and the short duration the
status bar shows. Shared by every source.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

# Every delay parsed from a server or computed by backoff lands in this range: a Retry-After of
# ``inf`` or ``1e300`` must not park the poller for ever (or overflow a timer), and one of ``0`` or
# a date in the past must not make it hammer the server.
MIN_DELAY = 1.0
MAX_DELAY = 3600.0


def clamp_delay(seconds: float, low: float = MIN_DELAY, high: float = MAX_DELAY) -> float:
    """``seconds`` brought into ``[low, high]``; NaN counts as ``high`` (the cautious end)."""
    if math.isnan(seconds):
        return high
    return min(high, max(low, seconds))


def fmt_seconds(seconds: float) -> str:
    """A short human duration: ``"40 s"``, ``"3 min"``, ``"2 h"``, ``"12 d"``."""
    if not abs(seconds) < 100 * 365 * 86400:  # also inf and NaN, which int() cannot take
        return "over 100 years" if seconds > 0 else "0 s" if seconds < 0 else "?"
    s = max(0, math.ceil(seconds))
    if s < 100:
        return f"{s} s"
    if s < 100 * 60:
        return f"{round(s / 60)} min"
    if s < 48 * 3600:
        return f"{round(s / 3600)} h"
    return f"{round(s / 86400)} d"


def backoff_delay(
    attempt: int,
    *,
    base: float = 2.0,
    cap: float = 300.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter: half the step fixed, half random, so clients spread out."""
    # The exponent is capped: a week-long outage counts thousands of attempts, and 2.0 ** 1100
    # overflows a float.
    step = min(cap, base * (2.0 ** min(max(0, attempt), 60)))
    return step / 2 + rng() * step / 2


def _parse_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        # CoinGecko's x-ratelimit-reset looks like "2025-07-25 14:54:00 +0000".
        for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z"):
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _seconds_from(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        when = _parse_date(value)
        return None if when is None else max(0.0, when - now)
    if math.isnan(number) or number < 0:  # NaN or negative: ignore
        return None
    # A large number is an absolute Unix time, a small one a delay.
    return max(0.0, number - now) if number > 1e9 else number


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``retry-after`` (delay or HTTP date) or ``x-ratelimit-reset``,
    clamped to ``[MIN_DELAY, MAX_DELAY]``; None when neither header holds a usable value."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after", "x-ratelimit-reset"):
        seconds = _seconds_from(lowered.get(name), now)
        if seconds is not None:
            return clamp_delay(seconds)
    return None


__all__ = [
    "MAX_DELAY",
    "MIN_DELAY",
    "backoff_delay",
    "clamp_delay",
    "fmt_seconds",
    "retry_after_seconds",
]
