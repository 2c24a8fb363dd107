"""A deterministic in-process engine for UI and server tests: real demo prices, no threads, no torch.

It implements ``engine.api.EngineAPI``. Nothing happens on its own: tests call ``advance(n)`` to
replay ``n`` minutes; each minute emits a bar, a forecast (a fixed, simple rule), metrics and a
training status to every listener, synchronously, on the caller's thread.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from engine.api import CoinMatch, Listener
from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    ForecastEvent,
    HorizonMetrics,
    MetricsEvent,
    StatusEvent,
    TrainEvent,
)

DEMO_DIR = Path(__file__).resolve().parents[2] / "engine" / "data" / "demo"
FILES = {
    "bitcoin": "BTCUSD_coinbase_1m_20180404-20180406.csv",
    "ethereum": "ETHUSD_coinbase_1m_20180404-20180405.csv",
    "litecoin": "LTCUSD_coinbase_1m_20180404-20180406.csv",
}
CATALOG = [
    CoinMatch("bitcoin", "Bitcoin", "BTC", 1),
    CoinMatch("ethereum", "Ethereum", "ETH", 2),
    CoinMatch("litecoin", "Litecoin", "LTC", 20),
    CoinMatch("solana", "Solana", "SOL", 5),
    CoinMatch("dogecoin", "Dogecoin", "DOGE", 8),
]


def load_demo_bars(coin: str) -> list[Bar]:
    with open(DEMO_DIR / FILES[coin], newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [
        Bar(
            coin,
            int(r[0]) // 1000,
            float(r[4]),
            float(r[1]),
            float(r[2]),
            float(r[3]),
            float(r[5]),
            "demo",
        )
        for r in rows
    ]


def fake_metrics(h: int, n: int, rel: float = 1.0) -> HorizonMetrics:
    """Scores like the real model's on this data: no better than "no change", honest bands; the
    network's band wins at short horizons and loses at long ones, so every served-band story shows."""
    served = "network" if h <= 1 else "blend" if h <= 5 else "simple"
    ratio = {1: 0.97, 5: 0.995}.get(h, 1.0 + 0.01 * h**0.5 * 2)  # 60 min: 1.155
    w80, w95 = 0.002 * h**0.5, 0.0035 * h**0.5
    return HorizonMetrics(
        h,
        n,
        0.001 * h * rel,
        0.0013 * h,
        0.001 * h,
        0.0013 * h,
        rel,
        1.0,
        0.51,
        0.79,
        0.95,
        0.002 * h,
        0,
        width95=w95,
        interval_score80=w80 * 1.3,
        interval_score95=w95 * 1.2,
        pinball=0.0004 * h,
        network_coverage80=0.80,
        network_coverage95=0.95,
        network_width80=w80 * ratio,
        network_width95=w95 * ratio,
        network_interval_score80=w80 * 1.3 * ratio,
        network_interval_score95=w95 * 1.2 * ratio,
        ewma_band_coverage80=0.79,
        ewma_band_coverage95=0.94,
        ewma_band_width80=w80,
        ewma_band_width95=w95,
        ewma_band_interval_score80=w80 * 1.3,
        ewma_band_interval_score95=w95 * 1.2,
        served80=served,
        served95=served,
        recent_ratio80=ratio,
        recent_ratio95=ratio,
        recent_n=min(n, 3000),
    )


class FakeEngine:
    """Deterministic engine: ``advance`` replays demo minutes and emits the events a real one would."""

    def __init__(
        self,
        coins: tuple[str, ...] = ("bitcoin", "ethereum", "litecoin"),
        *,
        mode: str = "DEMO",
        horizons: tuple[int, ...] = (1, 5, 15, 60),
        history: int = 0,
        ohlc: bool = True,
        rel_mae: dict[int, float] | None = None,
    ) -> None:
        self.mode = mode
        # False: bars carry a price only, as CoinGecko's do (the chart draws a line, not candles).
        self.ohlc = ohlc
        # The network's relative MAE per horizon (default 1.0: no better than "no change").
        self.rel_mae = rel_mae or {}
        self.horizons = horizons
        self.vs_currency = "usd"
        self._coins = list(coins)
        self._listeners: list[Listener] = []
        self._data = {c: load_demo_bars(c) if c in FILES else [] for c in FILES}
        self._pos = {c: 0 for c in self._data}
        self._bars: dict[str, list[Bar]] = {c: [] for c in coins}
        self._forecasts: dict[str, list[ForecastEvent]] = {c: [] for c in coins}
        self._metrics: dict[str, MetricsEvent] = {}
        self._train: dict[str, TrainEvent] = {}
        self.paused = False
        self.resets: list[str] = []
        self.exports: list[tuple[str, Path]] = []
        self.started = False
        self.status = StatusEvent(source="demo", state="ok", message="replaying bundled data")
        if history:
            self.advance(history, emit=False)

    # EngineAPI -----------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def start(self) -> None:
        self.started = True
        self._emit(self.status)
        missing = tuple(c for c in self._coins if c not in FILES)
        if missing and self.mode == "DEMO":
            # As the replay source does: coins it has no file for are unknown, and said so.
            self._emit(CoinsEvent(coins=tuple(self._coins), unknown=missing))
            for coin in missing:
                self._emit(
                    ErrorEvent(
                        "Unknown coin", f"no recorded data for {coin!r} in this replay", coin
                    )
                )

    def stop(self) -> None:
        self.started = False

    def coins(self) -> tuple[str, ...]:
        return tuple(self._coins)

    def snapshot(self, coin: str) -> CoinSnapshot:
        return CoinSnapshot(
            coin=coin,
            bars=tuple(self._bars.get(coin, ())),
            forecasts=tuple(self._forecasts.get(coin, ())),
            metrics=self._metrics.get(coin),
            train=self._train.get(coin),
        )

    def add_coin(self, coin: str) -> None:
        if coin in self._coins:
            return
        self._coins.append(coin)
        self._bars.setdefault(coin, [])
        self._forecasts.setdefault(coin, [])
        unknown = () if coin in FILES else (coin,)
        self._emit(CoinsEvent(coins=tuple(self._coins), unknown=unknown))
        if unknown:
            self._emit(ErrorEvent("Unknown coin", f"no data for {coin!r} in this engine", coin))

    def remove_coin(self, coin: str) -> None:
        if coin in self._coins:
            self._coins.remove(coin)
            self._emit(CoinsEvent(coins=tuple(self._coins)))

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        for coin in self._coins:
            prev = self._train.get(coin) or TrainEvent(coin, "warming up")
            state = "paused" if paused else "training"
            self._train[coin] = TrainEvent(
                coin,
                state,
                prev.step,
                prev.loss,
                prev.lr,
                prev.step_ms,
                prev.samples,
                None,
                "cpu",
                "",
                prev.losses,
            )
            self._emit(self._train[coin])

    def reset_model(self, coin: str) -> None:
        self.resets.append(coin)
        self._forecasts[coin] = []
        self._train[coin] = TrainEvent(coin, "warming up", progress=0.0, message="model reset")
        self._emit(self._train[coin])

    def search(self, query: str) -> list[CoinMatch]:
        q = query.strip().lower()
        if not q:
            return []
        # A demo finds only the coins it has data for, as the replay source does.
        catalog = [m for m in CATALOG if m.id in FILES] if self.mode == "DEMO" else CATALOG
        return [m for m in catalog if q in m.id or q in m.name.lower() or q == m.symbol.lower()]

    def export(self, coin: str, path: Path | None = None) -> Path:
        path = path or Path(f"/tmp/cryptotui-fake-{coin}.csv")
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "price"])
            for b in self._bars.get(coin, ()):
                w.writerow([b.ts, b.price])
        self.exports.append((coin, path))
        return path

    # Test controls -------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Push any event to the listeners (for error/offline/rate-limit states)."""
        self._emit(event)

    def advance(self, minutes: int = 1, *, emit: bool = True) -> None:
        """Replay ``minutes`` demo minutes for every watched coin that has data."""
        for _ in range(minutes):
            for coin in list(self._coins):
                data = self._data.get(coin)
                if not data or self._pos[coin] >= len(data):
                    continue
                bar = data[self._pos[coin]]
                self._pos[coin] += 1
                if not self.ohlc:
                    bar = Bar(bar.coin, bar.ts, bar.price, source="coingecko")
                self._step(coin, bar, emit)

    def _step(self, coin: str, bar: Bar, emit: bool) -> None:
        bars = self._bars[coin]
        bars.append(bar)
        if len(bars) > 1440:
            del bars[0]
        events: list[Event] = [BarEvent(bar)]
        n = len(bars)
        if n >= 30:
            # A fixed rule: a damped mean reversion towards the 30-minute average.
            mean_price = sum(b.price for b in bars[-30:]) / 30
            pull = math.log(mean_price / bar.price) * 0.1
            means = tuple(pull * min(h, 15) / 15 for h in self.horizons)
            width = tuple(0.0008 * math.sqrt(h) for h in self.horizons)
            fc = ForecastEvent(
                coin,
                bar.ts,
                bar.price,
                self.horizons,
                means,
                tuple(m - w for m, w in zip(means, width)),
                tuple(m + w for m, w in zip(means, width)),
                tuple(m - 1.6 * w for m, w in zip(means, width)),
                tuple(m + 1.6 * w for m, w in zip(means, width)),
                raw=tuple(1.5 * m for m in means),  # the network's own mean, before shrinking
            )
            fcs = self._forecasts[coin]
            fcs.append(fc)
            if len(fcs) > 1500:
                del fcs[0]
            events.append(fc)
            rows = tuple(fake_metrics(h, n - 30, self.rel_mae.get(h, 1.0)) for h in self.horizons)
            self._metrics[coin] = MetricsEvent(coin, rows)
            events.append(self._metrics[coin])
            step = (n - 30) * 4
            prev = self._train.get(coin)
            losses = ((prev.losses if prev else ()) + (1.0 / (1 + 0.01 * step),))[-60:]
            state = "paused" if self.paused else "training"
            self._train[coin] = TrainEvent(
                coin, state, step, losses[-1], 1e-3, 2.5, n - 30, None, "cpu", "", losses
            )
        else:
            self._train[coin] = TrainEvent(
                coin, "warming up", progress=n / 30, message=f"collecting history: {n}/30 minutes"
            )
        events.append(self._train[coin])
        if emit:
            for ev in events:
                self._emit(ev)

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
