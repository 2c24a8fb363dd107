"""The model thread: owns every forecaster (the only thread that touches torch), paces training,
saves checkpoints, and publishes forecasts, metrics and training status.

It sees the engine only through ``ModelHost``: the queue it reads, the store, the per-coin state
it writes, and ``emit``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import CryptotuiError, ModelConfigChanged, ModelError
from engine.events import Bar, CoinSnapshot, ErrorEvent, Event, SnapshotEvent, TrainEvent
from engine.forecast.base import Forecaster, ForecasterFactory
from engine.ids import require_coin_id
from engine.runtime.coin_state import FORECAST_HISTORY, CoinState
from engine.runtime.messages import (
    AddCoin,
    ModelMessage,
    NewBar,
    RemoveCoin,
    ResetModel,
    SetPaused,
    Stop,
)
from engine.sources.base import ahead_of_clock
from engine.store import Store

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 120  # seconds of wall clock between saves (a kill -9 loses at most this)
TRAIN_EVENT_EVERY = 0.5  # seconds between training-status events of one coin
METRICS_EVERY = 0.5  # seconds between metrics events of one coin
STEP_EVERY_BARS = 8  # under a backlog of bars, one training step per this many bars
MAX_PENDING_FACTOR = 4  # at most this many minutes' worth of training steps may queue up
MIN_PRETRAIN_BARS = 120
MAX_PRETRAIN_BARS = 1440  # pre-train on at most the last day, so a cold start takes seconds


@dataclass(frozen=True)
class ModelHost:
    """All the model worker may use of the engine; the engine builds one when it starts."""

    inbox: queue.Queue[ModelMessage]
    stopping: threading.Event  # set when the engine stops: leave long work at once
    store: Store
    models_dir: Path
    horizons: tuple[int, ...]
    shared_model: bool  # one model for all coins (``--shared-model``)
    train_enabled: bool
    paused: bool  # at start; later changes arrive as SetPaused
    factory: ForecasterFactory | None  # None: the LSTM, built on the model thread
    coins: Callable[[], tuple[str, ...]]
    coin_state: Callable[[str], CoinState]  # made on first use
    snapshot: Callable[[str], CoinSnapshot]
    snapshot_all: Callable[[], SnapshotEvent]
    emit: Callable[[Event], None]
    trust_clock: bool  # live data: a checkpoint from the future is refused
    clock: Callable[[], float]


class _Stopping(BaseException):
    """Raised inside a long model operation when the engine is stopping."""


class ModelWorker:
    """Runs on the model thread: owns the forecasters, paces training, saves checkpoints."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.factory = host.factory
        self.fcs: dict[str, Forecaster] = {}
        self.pending: dict[str, int] = {}
        self.last_train_emit: dict[str, float] = {}
        self.last_metrics_emit: dict[str, float] = {}
        self.last_save = time.monotonic()
        self.paused = host.paused
        self.metrics_dirty: set[str] = set()
        self._rr = 0
        self._since_step = 0

    def _factory(self) -> ForecasterFactory:
        if self.factory is not None:
            return self.factory
        import torch  # only now, on the model thread: the first frame never waits for it

        from engine.forecast.forecaster import ForecastConfig, LstmFactory

        torch.set_num_threads(1)
        cfg = ForecastConfig(horizons=self.host.horizons)
        self.factory = LstmFactory(cfg, shared=self.host.shared_model, seed=0)
        return self.factory

    def _path(self, coin: str) -> Path:
        # Ids are checked where they enter; checking again here costs nothing and keeps a bug
        # elsewhere from ever writing a checkpoint outside the models dir.
        return self.host.models_dir / f"{require_coin_id(coin)}.pt"

    def _get(self, coin: str) -> Forecaster:
        fc = self.fcs.get(coin)
        if fc is not None:
            return fc
        factory = self._factory()
        path = self._path(coin)
        loaded: Forecaster | None = None
        if path.exists():
            try:
                loaded = factory.load(path, coin)
                self._refuse_future_checkpoint(loaded, path)
            except ModelConfigChanged as exc:
                # Expected after an upgrade that changed the model: keep the old file, retrain from
                # the stored history (the panel shows the pre-training), no alarm.
                aside = path.with_name(f"{path.name}.old-{int(time.time())}")
                os.replace(path, aside)
                log.info("%s; kept as %s, retraining from the stored history", exc.msg, aside.name)
            except ModelError as exc:
                loaded = None  # damaged, or refused after loading: start afresh
                aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
                os.replace(path, aside)
                self.host.emit(
                    ErrorEvent(
                        "Model", f"{exc.msg}; set aside as {aside.name}, starting fresh", coin
                    )
                )
        fc = loaded if loaded is not None else factory.make(coin)
        self.fcs[coin] = fc
        self._warm(coin, fc, loaded is not None)
        return fc

    def _refuse_future_checkpoint(self, fc: Forecaster, path: Path) -> None:
        """A model that believes it is later than now ignores every bar until then: refuse it."""
        last = fc.last_ts
        if not self.host.trust_clock or last is None:
            return
        ahead = ahead_of_clock(float(last), self.host.clock())
        if ahead is not None:
            raise ModelError(f"checkpoint {path.name} ends at a time {ahead}")

    def _warm(self, coin: str, fc: Forecaster, loaded: bool) -> None:
        """Give a new or reloaded model the history the store has."""
        bars = list(self.host.snapshot(coin).bars)
        if not bars:
            return
        if loaded:
            fc.warm(bars)
            return
        if not loaded and len(bars) >= MIN_PRETRAIN_BARS and self.host.train_enabled:
            bars = bars[-MAX_PRETRAIN_BARS:]

            def progress(p: float) -> None:
                if self.host.stopping.is_set():
                    raise _Stopping  # leave a long pre-training at once when the app quits
                message = f"pre-training on {len(bars)} minutes of history"
                self._publish_train(
                    coin, TrainEvent(coin, "pretraining", progress=p, message=message)
                )

            status = fc.pretrain(bars, progress)
            self._publish_train(coin, status, force=True)
        else:
            fc.warm(bars)

    def run(self) -> None:
        try:
            self._run()
        except _Stopping:
            return

    def _load_stored_forecasts(self) -> None:
        for coin in self.host.coins():
            st = self.host.coin_state(coin)
            last = st.window.last()
            if last is None:
                continue
            stored = self.host.store.forecasts(coin, since=last.ts - FORECAST_HISTORY * 60)
            with st.lock:
                newer = [f for f in st.forecasts if not stored or f.ts > stored[-1].ts]
                st.forecasts.clear()
                st.forecasts.extend(stored + newer)
        self.host.emit(self.host.snapshot_all())

    def _run(self) -> None:
        self._load_stored_forecasts()
        for coin in self.host.coins():
            self._get(coin)
            self._publish_train(coin, self.fcs[coin].status(), force=True)
        q = self.host.inbox
        while True:
            msg: ModelMessage | None
            try:
                if self._has_work():
                    msg = q.get_nowait()
                else:
                    msg = q.get(timeout=0.2 if self.metrics_dirty else 0.5)
            except queue.Empty:
                msg = None
            if msg is not None:
                try:
                    if isinstance(msg, Stop) or self.host.stopping.is_set():
                        # Bars still queued are in the store; the model catches up from them
                        # next time.
                        self._save_all()
                        return
                    self._handle(msg)
                except Exception as exc:
                    log.exception("model worker failed on %s", msg.kind)
                    self.host.emit(ErrorEvent("Model", f"{msg.kind}: {exc}"))
                finally:
                    q.task_done()
                # Keep learning while bars stream in fast (a replay): one step per batch of bars.
                self._since_step += 1
                if not q.empty() and not (self._has_work() and self._since_step >= STEP_EVERY_BARS):
                    continue
            if self.host.stopping.is_set():
                self._save_all()
                return
            self._flush_metrics()
            if self._has_work():
                self._since_step = 0
                self._train_one()
            if time.monotonic() - self.last_save > CHECKPOINT_EVERY:
                self._save_all()

    def _has_work(self) -> bool:
        return (
            not self.paused
            and self.host.train_enabled
            and any(v > 0 for v in self.pending.values())
        )

    def _handle(self, msg: ModelMessage) -> None:
        if isinstance(msg, NewBar):
            self._on_bar(msg.bar)
        elif isinstance(msg, SetPaused):
            self.paused = msg.paused
            for coin, fc in self.fcs.items():
                ev = fc.status()
                if self.paused:
                    ev = _paused(ev)
                self._publish_train(coin, ev, force=True)
        elif isinstance(msg, ResetModel):
            self._reset(msg.coin)
        elif isinstance(msg, AddCoin):
            self._get(msg.coin)
        elif isinstance(msg, RemoveCoin):
            gone = self.fcs.pop(msg.coin, None)
            if gone is not None:
                self._save(msg.coin, gone)
            self.pending.pop(msg.coin, None)

    def _on_bar(self, bar: Bar) -> None:
        if bar.coin not in self.host.coins():
            return
        fc = self._get(bar.coin)
        forecast = fc.observe(bar)
        st = self.host.coin_state(bar.coin)
        if forecast is not None:
            self.host.store.add_forecast(forecast)
            with st.lock:
                st.forecasts.append(forecast)
            self.host.emit(forecast)
        if not bar.filled:
            cap = MAX_PENDING_FACTOR * fc.steps_per_minute
            self.pending[bar.coin] = min(cap, self.pending.get(bar.coin, 0) + fc.steps_per_minute)
            self.metrics_dirty.add(bar.coin)

    def _flush_metrics(self) -> None:
        now = time.monotonic()
        for coin in list(self.metrics_dirty):
            fc = self.fcs.get(coin)
            if fc is None:
                self.metrics_dirty.discard(coin)
                continue
            if now - self.last_metrics_emit.get(coin, 0.0) < METRICS_EVERY:
                continue
            self.last_metrics_emit[coin] = now
            self.metrics_dirty.discard(coin)
            m = fc.metrics()
            st = self.host.coin_state(coin)
            with st.lock:
                st.metrics = m
            self.host.emit(m)
            ev = fc.status()
            if self.paused:
                ev = _paused(ev)
            self._publish_train(coin, ev)

    def _train_one(self) -> None:
        coins = [c for c, n in self.pending.items() if n > 0 and c in self.fcs]
        if not coins:
            return
        self._rr = (self._rr + 1) % len(coins)
        coin = coins[self._rr]
        self.pending[coin] -= 1
        ev = self.fcs[coin].train(1)
        if ev is not None:
            self._publish_train(coin, ev, force=ev.state == "rolled back")
            if ev.state == "rolled back" and ev.message:
                self.host.emit(ErrorEvent("Model", ev.message, coin))

    def _publish_train(self, coin: str, ev: TrainEvent, force: bool = False) -> None:
        st = self.host.coin_state(coin)
        with st.lock:
            st.train = ev
        now = time.monotonic()
        if force or now - self.last_train_emit.get(coin, 0.0) >= TRAIN_EVENT_EVERY:
            self.last_train_emit[coin] = now
            self.host.emit(ev)

    def _reset(self, coin: str) -> None:
        """Start the coin's model again: weights, optimizer, calibration, trackers and scores.

        The price and prediction history stay (in the store and on the chart: every prediction
        the old model made is still exported); other coins are not touched (with
        ``--shared-model`` the shared weights stay too: only this coin's own state restarts).
        """
        self.fcs.pop(coin, None)
        self.pending.pop(coin, None)
        self._path(coin).unlink(missing_ok=True)
        st = self.host.coin_state(coin)
        with st.lock:
            st.metrics = None  # the old model's scoreboard; the new one scores itself
        fc = self._get(coin)
        self._publish_train(coin, fc.status(), force=True)
        self.host.emit(
            ErrorEvent(
                "Model",
                f"{coin}: model reset, learning again from the stored history "
                "(its price and prediction history are kept)",
                coin,
            )
        )

    def _save(self, coin: str, fc: Forecaster) -> None:
        try:
            self.host.models_dir.mkdir(parents=True, exist_ok=True)
            fc.save(self._path(coin))
        except (OSError, CryptotuiError) as exc:
            self.host.emit(ErrorEvent("Model", f"cannot save the {coin} model: {exc}", coin))

    def _save_all(self) -> None:
        self.last_save = time.monotonic()
        for coin, fc in list(self.fcs.items()):
            self._save(coin, fc)


__all__ = ["ModelHost", "ModelWorker"]


def _paused(ev: TrainEvent) -> TrainEvent:
    """The model's status while the user has paused training: its figures, said as paused."""
    return replace(ev, state="paused", progress=None, message="training paused (p resumes)")
