"""What the local engine holds per coin: its window of bars and the latest model outputs."""

from __future__ import annotations

import threading
from collections import deque

from engine.events import Bar, ForecastEvent, MetricsEvent, TrainEvent
from engine.runtime.window import RollingWindow

FORECAST_HISTORY = 1500  # forecasts kept per coin for drawing past predictions (24 h + margin)


class CoinState:
    """Per-coin view state; the model thread writes forecasts/metrics/train, any thread reads."""

    def __init__(self, coin: str, bars: list[Bar], forecasts: list[ForecastEvent]) -> None:
        self.window = RollingWindow(coin, bars=bars)
        self.lock = threading.Lock()
        self.forecasts: deque[ForecastEvent] = deque(forecasts, maxlen=FORECAST_HISTORY)
        self.metrics: MetricsEvent | None = None
        self.train: TrainEvent | None = None


__all__ = ["FORECAST_HISTORY", "CoinState"]
