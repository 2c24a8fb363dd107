"""A torch-free Forecaster stand-in with the real interface, for fast engine tests."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Self, TypeVar

from engine.errors import ModelError
from engine.events import Bar, ForecastEvent, HorizonMetrics, MetricsEvent, TrainEvent


@dataclass(frozen=True)
class StubConfig:
    horizons: tuple[int, ...] = (1, 5, 15, 60)
    steps_per_minute: int = 2
    warmup: int = 5


class StubForecaster:
    """Predicts zero return with a fixed band; counts steps; saves a JSON checkpoint."""

    last_ts: int | None = None  # the stub keeps no time of its own

    def __init__(self, coin: str, config: StubConfig | None = None, *, seed: int = 0) -> None:
        self.coin = coin
        self.config = config or StubConfig()
        self.seen = 0
        self.steps = 0
        self.pretrained = 0
        self.warmed = 0

    @property
    def steps_per_minute(self) -> int:
        return self.config.steps_per_minute

    def observe(self, bar: Bar) -> ForecastEvent | None:
        self.seen += 1
        if self.seen < self.config.warmup:
            return None
        hs = self.config.horizons
        w = tuple(0.001 * math.sqrt(h) for h in hs)
        zero = tuple(0.0 for _ in hs)
        return ForecastEvent(
            self.coin,
            bar.ts,
            bar.price,
            hs,
            zero,
            tuple(-x for x in w),
            w,
            tuple(-2 * x for x in w),
            tuple(2 * x for x in w),
        )

    def train(self, steps: int | None = None) -> TrainEvent | None:
        self.steps += steps or self.config.steps_per_minute
        return self.status()

    def pretrain(
        self, bars: Sequence[Bar], progress: Callable[[float], None] | None = None
    ) -> TrainEvent:
        self.pretrained = len(bars)
        if progress:
            progress(1.0)
        return self.status()

    def warm(self, bars: Sequence[Bar]) -> None:
        self.warmed = len(bars)

    def status(self) -> TrainEvent:
        state = "training" if self.seen >= self.config.warmup else "warming up"
        return TrainEvent(self.coin, state, self.steps, 0.5, 1e-3, 1.0, self.seen)

    def metrics(self) -> MetricsEvent:
        rows = tuple(
            HorizonMetrics(h, self.seen, 1, 1, 1, 1, 1, 1, 0.5, 0.8, 0.95, 0.01, 0)
            for h in self.config.horizons
        )
        return MetricsEvent(self.coin, rows)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"coin": self.coin, "seen": self.seen, "steps": self.steps}))

    @classmethod
    def load(cls, path: Path, coin: str, config: StubConfig | None = None) -> Self:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"checkpoint {path.name} is unreadable ({exc.__class__.__name__})"
            ) from None
        fc = cls(coin, config)
        fc.seen, fc.steps = data["seen"], data["steps"]
        return fc


S = TypeVar("S", bound=StubForecaster)


class StubFactory(Generic[S]):
    """The engine's ``ForecasterFactory`` for stubs; ``made`` holds the latest forecaster per coin."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls
        self.made: dict[str, S] = {}

    def make(self, coin: str) -> S:
        self.made[coin] = self.cls(coin)
        return self.made[coin]

    def load(self, path: Path, coin: str) -> S:
        self.made[coin] = self.cls.load(path, coin)
        return self.made[coin]
