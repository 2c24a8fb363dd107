"""Immutable records that cross threads and the wire: bars, forecasts, metrics, status, errors.

Every event is a frozen dataclass with a ``type`` tag; ``engine.feed.codec`` turns them into the
JSON objects of the WebSocket feed (protocol ``"v": 1``) and back.

Times are Unix seconds (UTC). A bar's ``ts`` is the open time of its minute (a multiple of 60).
Forecast values are cumulative *log returns* from the forecast's base price, one per horizon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of one coin."""

    coin: str  # CoinGecko id, e.g. "bitcoin"
    ts: int  # minute open time, Unix seconds, multiple of 60
    price: float  # last/close price in the quote currency
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None
    source: str = ""  # "coingecko" | "kraken" | "replay" | "demo"
    filled: bool = False  # resampled/backfilled context: never a training target or scored label


_BAR_FIELDS = ("coin", "ts", "price", "open", "high", "low", "volume", "source", "filled")


def bars_from_rows(rows: Iterable[Sequence[Any]]) -> list[Bar]:
    """``[Bar(*row) for row in rows]`` with ``filled`` as a bool, for rows in ``Bar``'s field order.

    The same objects, made by setting the slots directly rather than through the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` call per field): half the time, and the store loads
    up to 2,880 bars per coin while the app starts (tests compare the two).
    """
    new = object.__new__
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = (getattr(Bar, name).__set__ for name in _BAR_FIELDS)
    out: list[Bar] = []
    add = out.append
    for coin, ts, price, open_, high, low, volume, source, filled in rows:
        b = new(Bar)
        s0(b, coin)
        s1(b, ts)
        s2(b, price)
        s3(b, open_)
        s4(b, high)
        s5(b, low)
        s6(b, volume)
        s7(b, source)
        s8(b, bool(filled))
        add(b)
    return out


@dataclass(frozen=True, slots=True)
class BarEvent:
    """A new minute of a coin."""

    type: ClassVar[str] = "bar"
    bar: Bar


@dataclass(frozen=True, slots=True)
class ForecastEvent:
    """A forecast made at minute ``ts`` from base price ``price``, for each horizon in minutes."""

    type: ClassVar[str] = "forecast"
    coin: str
    ts: int
    price: float
    horizons: tuple[int, ...]
    mean: tuple[float, ...]  # predicted cumulative log return per horizon
    lo80: tuple[float, ...] = ()
    hi80: tuple[float, ...] = ()
    lo95: tuple[float, ...] = ()
    hi95: tuple[float, ...] = ()
    raw: tuple[float, ...] = ()  # the network's own mean per horizon (``mean`` is what is served)

    def price_at(self, horizon: int, values: tuple[float, ...] | None = None) -> float | None:
        """Price implied by ``values`` (default: the mean) at ``horizon`` minutes after ``ts``."""
        vals = self.mean if values is None else values
        if horizon not in self.horizons or not vals:
            return None
        return self.price * math.exp(vals[self.horizons.index(horizon)])


@dataclass(frozen=True, slots=True)
class HorizonMetrics:
    """How a coin's model scores at one horizon, beside "no change" (persistence)."""

    horizon: int  # minutes
    n: int  # scored predictions
    mae: float  # of the model, on log returns
    rmse: float
    mae_persistence: float
    rmse_persistence: float
    rel_mae: float  # model / persistence; < 1 means better than "no change"
    rel_rmse: float
    dir_acc: float  # share of non-zero moves whose sign the model got right
    coverage80: float
    coverage95: float
    width80: float  # median width of the 80 % interval, log-return units
    best_lag: int  # lag (minutes) at which predictions best match the actual series
    mae_drift: float = float("nan")  # the EWMA drift baseline
    # Proper scores of the bands, log-return units. Interval (Winkler) score: width plus 2/alpha
    # times the miss distance; lower is better. Three bands: the one served, the network's own
    # and ``ewma-band`` (no change, EWMA volatility x sqrt(h), a tracked quantile).
    width95: float = float("nan")  # median width of the served 95 % band
    mean_width80: float = float("nan")  # mean widths of the served bands
    mean_width95: float = float("nan")
    interval_score80: float = float("nan")  # served band, mean interval score
    interval_score95: float = float("nan")
    pinball: float = float("nan")  # served forecast: mean pinball loss at 2.5/10/50/90/97.5 %
    network_coverage80: float = float("nan")
    network_coverage95: float = float("nan")
    network_width80: float = float("nan")  # mean widths
    network_width95: float = float("nan")
    network_interval_score80: float = float("nan")
    network_interval_score95: float = float("nan")
    ewma_band_coverage80: float = float("nan")
    ewma_band_coverage95: float = float("nan")
    ewma_band_width80: float = float("nan")
    ewma_band_width95: float = float("nan")
    ewma_band_interval_score80: float = float("nan")
    ewma_band_interval_score95: float = float("nan")
    # Which band is served now ("network" | "simple" | "blend") and why: the network's interval
    # score over the recent matured labels divided by the simple band's (< 1: the network wins).
    served80: str = ""
    served95: str = ""
    recent_ratio80: float = float("nan")
    recent_ratio95: float = float("nan")
    recent_n: int = 0  # matured labels behind the recent ratios


@dataclass(frozen=True, slots=True)
class MetricsEvent:
    """A coin's scoreboard, one row per horizon."""

    type: ClassVar[str] = "metrics"
    coin: str
    rows: tuple[HorizonMetrics, ...]


@dataclass(frozen=True, slots=True)
class TrainEvent:
    """Training status of one coin's model."""

    type: ClassVar[str] = "train"
    coin: str
    state: str  # "warming up" | "pretraining" | "training" | "paused" | "rolled back" | "idle"
    step: int = 0
    loss: float | None = None
    lr: float | None = None
    step_ms: float | None = None
    samples: int = 0
    progress: float | None = None  # 0..1 while pretraining/warming up
    device: str = "cpu"
    message: str = ""
    losses: tuple[float, ...] = ()  # recent loss history, oldest first (for a sparkline)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """State of the data source, in words the status bar can show as they are."""

    type: ClassVar[str] = "status"
    source: str
    state: str  # "ok" | "connecting" | "rate limited" | "offline" | "error" | "stale" | "done"
    message: str = ""
    last_update: float | None = None  # wall clock of the last good data
    next_update: float | None = None  # wall clock of the next poll/retry
    calls_minute: int | None = None
    calls_month: int | None = None
    limit_minute: int | None = None
    limit_month: int | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A failure shown to the user: a short title and a one-line message (no traceback)."""

    type: ClassVar[str] = "error"
    title: str
    msg: str
    coin: str | None = None


@dataclass(frozen=True, slots=True)
class CoinsEvent:
    """The watchlist changed, or a coin's state changed (``unknown`` ids CoinGecko does not know)."""

    type: ClassVar[str] = "coins"
    coins: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # (id, display symbol) pairs


@dataclass(frozen=True, slots=True)
class CoinSnapshot:
    """Everything a view needs to draw one coin from scratch."""

    coin: str
    bars: tuple[Bar, ...] = ()
    forecasts: tuple[ForecastEvent, ...] = ()  # recent forecasts, oldest first
    metrics: MetricsEvent | None = None
    train: TrainEvent | None = None


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """Everything a new client needs: every coin's snapshot and the source's status."""

    type: ClassVar[str] = "snapshot"
    coins: tuple[CoinSnapshot, ...]
    status: StatusEvent | None = None


Event = (
    BarEvent
    | ForecastEvent
    | MetricsEvent
    | TrainEvent
    | StatusEvent
    | ErrorEvent
    | CoinsEvent
    | SnapshotEvent
)

EVENT_TYPES: dict[str, type] = {
    cls.type: cls
    for cls in (
        BarEvent,
        ForecastEvent,
        MetricsEvent,
        TrainEvent,
        StatusEvent,
        ErrorEvent,
        CoinsEvent,
        SnapshotEvent,
    )
}


__all__ = [
    "PROTOCOL_VERSION",
    "Bar",
    "BarEvent",
    "CoinSnapshot",
    "CoinsEvent",
    "ErrorEvent",
    "Event",
    "ForecastEvent",
    "HorizonMetrics",
    "MetricsEvent",
    "SnapshotEvent",
    "StatusEvent",
    "TrainEvent",
]
