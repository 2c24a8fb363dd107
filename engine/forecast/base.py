"""What the engine needs from a forecaster and from the factory that makes and reloads them.

The engine's runtime depends on these protocols only, never on the LSTM forecaster itself, so it
imports without torch; the tests drive it with a torch-free stand-in (``tests/stub_forecaster.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from engine.events import Bar, ForecastEvent, MetricsEvent, TrainEvent


class Forecaster(Protocol):
    """One coin's online forecaster: predict from each bar, learn when asked, score itself."""

    coin: str
    last_ts: int | None  # the newest bar it has seen (a checkpoint from the future is refused)

    @property
    def steps_per_minute(self) -> int:
        """Training steps owed for each new live minute."""
        ...

    def observe(self, bar: Bar) -> ForecastEvent | None:
        """Score what matured, then forecast from this bar (None while warming up)."""
        ...

    def warm(self, bars: Sequence[Bar]) -> object:
        """Catch up on history without training on it (a reloaded model's missed minutes)."""
        ...

    def pretrain(
        self, bars: Sequence[Bar], progress: Callable[[float], None] | None = None
    ) -> TrainEvent:
        """Learn from stored history before going live; ``progress`` gets 0..1."""
        ...

    def train(self, steps: int | None = None) -> TrainEvent | None: ...

    def status(self) -> TrainEvent: ...

    def metrics(self) -> MetricsEvent: ...

    def save(self, path: Path) -> None:
        """Write a checkpoint atomically."""
        ...


class ForecasterFactory(Protocol):
    """Makes a coin's forecaster, fresh or from its checkpoint (in shared mode, on the one shared
    model)."""

    def make(self, coin: str) -> Forecaster: ...

    def load(self, path: Path, coin: str) -> Forecaster:
        """Raises ModelConfigChanged (an older model: retrain) or ModelError (a damaged file)."""
        ...


__all__ = ["Forecaster", "ForecasterFactory"]
