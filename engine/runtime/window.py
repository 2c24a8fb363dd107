"""A bounded, time-ordered history of one coin's bars; ``snapshot`` hands out an immutable copy."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from engine.events import Bar

DEFAULT_MAXLEN = 2 * 1440  # two days of minutes: the 24 h chart plus model context


class RollingWindow:
    """Bars of one coin in increasing ``ts``. The engine thread appends; any thread may snapshot."""

    def __init__(self, coin: str, maxlen: int = DEFAULT_MAXLEN, bars: Iterable[Bar] = ()) -> None:
        self.coin = coin
        self._bars: deque[Bar] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._cache: tuple[Bar, ...] | None = None
        # The same rules as append(), without taking the lock per bar (nobody else sees us yet).
        q = self._bars
        for bar in bars:
            if bar.coin != coin:
                raise ValueError(f"bar of {bar.coin!r} in the window of {coin!r}")
            if not q or bar.ts > q[-1].ts:
                q.append(bar)

    def append(self, bar: Bar) -> bool:
        """Add a bar newer than the last one; older or repeated minutes are refused (False)."""
        if bar.coin != self.coin:
            raise ValueError(f"bar of {bar.coin!r} in the window of {self.coin!r}")
        with self._lock:
            if self._bars and bar.ts <= self._bars[-1].ts:
                return False
            self._bars.append(bar)
            self._cache = None
            return True

    def snapshot(self) -> tuple[Bar, ...]:
        with self._lock:
            if self._cache is None:
                self._cache = tuple(self._bars)
            return self._cache

    def last(self) -> Bar | None:
        with self._lock:
            return self._bars[-1] if self._bars else None

    def __len__(self) -> int:
        return len(self._bars)
