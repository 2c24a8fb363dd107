"""One coin as its events tell it: the fold that the remote engine and the TUI both keep.

A ``CoinView`` is seeded from a ``CoinSnapshot`` and then folds the coin's ``BarEvent``,
``ForecastEvent``, ``MetricsEvent`` and ``TrainEvent``s. It is not thread-safe: the thread that
folds into a view (the remote engine under its lock, the TUI on the UI thread) owns it.
"""

from __future__ import annotations

from collections import deque

from engine.events import Bar, BarEvent, CoinSnapshot, ForecastEvent, MetricsEvent, TrainEvent

CoinEvent = BarEvent | ForecastEvent | MetricsEvent | TrainEvent


class CoinView:
    """The latest bars and forecasts of a coin (bounded), its metrics and its training status."""

    __slots__ = ("bars", "coin", "forecasts", "metrics", "train")

    def __init__(self, coin: str, max_bars: int, max_forecasts: int) -> None:
        self.coin = coin
        self.bars: deque[Bar] = deque(maxlen=max_bars)  # in time order, one per minute
        self.forecasts: deque[ForecastEvent] = deque(maxlen=max_forecasts)
        self.metrics: MetricsEvent | None = None
        self.train: TrainEvent | None = None

    @property
    def forecast(self) -> ForecastEvent | None:
        """The newest forecast."""
        return self.forecasts[-1] if self.forecasts else None

    def seed(self, snap: CoinSnapshot) -> None:
        """Start again from a snapshot (its bars and forecasts are in time order)."""
        self.bars.clear()
        self.bars.extend(snap.bars)  # the deque keeps the newest max_bars
        self.forecasts.clear()
        self.forecasts.extend(snap.forecasts)
        self.metrics, self.train = snap.metrics, snap.train

    def snapshot(self) -> CoinSnapshot:
        return CoinSnapshot(
            self.coin, tuple(self.bars), tuple(self.forecasts), self.metrics, self.train
        )

    def apply(self, event: CoinEvent) -> bool:
        """Fold one event in; False when it told nothing new (a duplicate, or older than what a
        snapshot that overtook it already holds), so a relay can drop it."""
        if isinstance(event, BarEvent):
            return _fold(self.bars, event.bar, event.bar.ts)
        if isinstance(event, ForecastEvent):
            return _fold(self.forecasts, event, event.ts)
        if isinstance(event, MetricsEvent):
            self.metrics = event
        else:
            self.train = event
        return True


def _fold(items: deque[Bar] | deque[ForecastEvent], item: Bar | ForecastEvent, ts: int) -> bool:
    # A revised minute replaces the last one; an older one is already in (or past) the view.
    if items:
        last = items[-1]
        if last.ts > ts or last == item:
            return False
        if last.ts == ts:
            items[-1] = item  # type: ignore[assignment]
            return True
    items.append(item)  # type: ignore[arg-type]
    return True


__all__ = ["CoinEvent", "CoinView"]
