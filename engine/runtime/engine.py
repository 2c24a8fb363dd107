"""The engine: wires a source to the store, the rolling windows and the forecasters, and emits events.

Threads (each owns what it mutates; only immutable records cross between them):

    source thread   ── Bar/StatusEvent/... ──▶ inbox
    dispatch thread   owns the watchlist, windows and bar writes; emits bar/status/coins events
                      ── bars ──▶ model queue
    model thread      owns every Forecaster (the only thread that touches torch); emits forecast,
                      metrics and train events; writes predictions and checkpoints

Listeners are called on the dispatch or model thread and must only hand events over.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.api import CoinMatch, Listener
from engine.settings.locations import DEMO, LIVE, Locations
from engine.settings.config import DEMO_COINS, MAX_COINS, Settings
from engine.settings.state import load_watchlist, update_state
from engine.errors import ConfigError, CryptotuiError, ModelConfigChanged, ModelError, StoreError
from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    ForecastEvent,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.ids import is_coin_id, require_coin_id
from engine.sources.base import (
    MAX_CLOCK_SKEW,
    MAX_PRICE,
    MIN_PRICE,
    Source,
    SourceOutput,
    ahead_of_clock,
)
from engine.sources.coins import symbol_of
from engine.store import Store
from engine.runtime.export import export_csv, export_path
from engine.runtime.lock import acquire_instance_lock
from engine.runtime.window import DEFAULT_MAXLEN, RollingWindow

if TYPE_CHECKING:
    from engine.forecast.forecaster import Forecaster

log = logging.getLogger(__name__)

FORECAST_HISTORY = 1500  # forecasts kept per coin for drawing past predictions (24 h + margin)
CHECKPOINT_EVERY = 120  # seconds of wall clock between checkpoint saves (a kill -9 loses at most this)
TRAIN_EVENT_EVERY = 0.5  # seconds between training-status events of one coin
METRICS_EVERY = 0.5  # seconds between metrics events of one coin
STEP_EVERY_BARS = 8  # under a backlog of bars, one training step per this many bars
MAX_PENDING_FACTOR = 4  # at most this many minutes' worth of training steps may queue up
MIN_PRETRAIN_BARS = 120
MAX_PRETRAIN_BARS = 1440  # pre-train on at most the last day, so a cold start takes seconds
MAX_JUMP_LOG = math.log(1.5)  # a minute-to-minute move beyond +50 %/-33 % is a bad print
SPIKE_WINDOW = 3600  # ...when the previous bar is less than an hour old
# Bars with these sources are recordings: they belong to a demo or replay world, never to live.
REPLAYED_SOURCES = ("replay", "demo")


def _bad_price(price: object) -> str | None:
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        return f"price is not a number ({type(price).__name__})"
    if not math.isfinite(price):
        return "price is not finite"
    if price <= 0:
        return "price is zero or negative"
    if not MIN_PRICE <= price <= MAX_PRICE:
        return f"price {price:g} outside {MIN_PRICE:g}..{MAX_PRICE:g}"
    return None


def build_source(settings: Settings, store: Store, loc: Locations | None = None) -> Source:
    """The source the settings ask for."""
    if settings.demo or settings.source == "replay":
        from engine.sources.replay import DEMO_NAMES, ReplaySource, demo_files

        files = demo_files() if settings.demo else dict(zip(settings.replay_coins, settings.replay_files))
        return ReplaySource(
            files,
            settings.speed,
            name="demo" if settings.demo else "replay",
            start_after=store.last_ts,
            names=DEMO_NAMES if settings.demo else None,
        )
    if settings.source == "kraken":
        from engine.sources.kraken import KrakenSource

        return KrakenSource(settings, last_bar_ts=store.last_ts)  # type: ignore[no-any-return]
    from engine.sources.coingecko import CoinGeckoSource

    # The monthly call count must survive restarts, or a Demo key's cap could not be kept.
    budget_file = loc.data_dir / "budget.json" if loc is not None else None
    return CoinGeckoSource(settings, last_bar_ts=store.last_ts, budget_file=budget_file)  # type: ignore[no-any-return]


class _CoinState:
    """Per-coin view state; the model thread writes forecasts/metrics/train, any thread reads."""

    def __init__(self, coin: str, bars: list[Bar], forecasts: list[ForecastEvent]) -> None:
        self.window = RollingWindow(coin, bars=bars)
        self.lock = threading.Lock()
        self.forecasts: deque[ForecastEvent] = deque(forecasts, maxlen=FORECAST_HISTORY)
        self.metrics: MetricsEvent | None = None
        self.train: TrainEvent | None = None


class Engine:
    """The local engine (an ``engine.api.EngineAPI``)."""

    def __init__(
        self,
        settings: Settings,
        loc: Locations,
        *,
        source: Source | None = None,
        forecaster_factory: Callable[[str], Forecaster] | None = None,
        train: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.loc = loc
        self.mode = settings.mode
        self.horizons = settings.horizons
        self.vs_currency = settings.vs
        self.demo = settings.demo
        self.world = settings.world
        loc.ensure()
        self._lock_file = acquire_instance_lock(loc.database(self.world).with_suffix(".lock"))
        try:
            self.store = Store(loc.database(self.world))
        except StoreError:
            self.close()
            raise
        self.models_dir = loc.models_dir(self.world)
        self._source = source
        self._source_lock = threading.Lock()
        self._factory = forecaster_factory
        self._train_enabled = train
        # Each world remembers its own watchlist ("coins" for live, as before worlds existed).
        self._state_key = {LIVE: "coins", DEMO: "demo_coins"}.get(self.world, f"{self.world}_coins")
        self._notices: list[ErrorEvent] = []
        self._coins: tuple[str, ...] = ()
        # Live data is checked against the local clock; demo and replay data have their own time.
        self._trust_clock = self.world == LIVE
        self._store_error: str | None = None  # why the last bar write failed, until one succeeds
        self._unknown: tuple[str, ...] = ()
        self._labels: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._states: dict[str, _CoinState] = {}
        self._states_lock = threading.Lock()
        self._status: StatusEvent | None = None  # as shown: the source's, or a store failure
        self._source_status: StatusEvent | None = None
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._model_q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._paused = False
        self._started = False
        self.rejected = 0  # bars refused as bad data
        self._last_reject: dict[str, float] = {}
        self._last_store_error = 0.0
        try:
            if self._trust_clock:
                self._drop_future_rows()
            if self.demo:
                self._restart_finished_demo()
            self._coins = self._initial_coins()
            self._labels = {c: symbol_of(c) for c in self._coins}
            for coin in self._coins:
                self._ensure_state(coin)
        except StoreError:
            # A damaged page shows only when the first query reaches it: report it in one line
            # and release the data dir.
            self.stop()
            raise
        load = getattr(self.source, "load", None) if settings.source == "replay" and not self.demo else None
        if callable(load):
            try:
                load()  # an unusable replay file is reported now, before anything starts
            except CryptotuiError:
                self.stop()
                raise

    @property
    def source(self) -> Source:
        """The data source, built on first use (after the first frame: its imports are not free)."""
        with self._source_lock:
            if self._source is None:
                self._source = build_source(self.settings, self.store, self.loc)
            return self._source

    # Setup ---------------------------------------------------------------------------------------
    def _initial_coins(self) -> tuple[str, ...]:
        """``--coins`` if given, else the watchlist remembered from last time, else the defaults."""
        given = self.settings.coins != Settings().coins
        if given:
            return tuple(self.settings.coins)
        saved = load_watchlist(self.loc, self._state_key)
        if saved:
            return saved
        return DEMO_COINS if self.demo else tuple(self.settings.coins)

    def _drop_future_rows(self) -> None:
        """Repair a store poisoned by a clock that lied: rows after "now" would sort after every
        real minute and make each new bar look out of order, for ever."""
        limit = int(self._clock() + MAX_CLOCK_SKEW)
        try:
            bars, preds = self.store.drop_after(limit)
        except StoreError as exc:
            log.error("%s", exc.msg)
            return
        if bars or preds:
            msg = (f"dropped {bars} stored minute{'s' if bars != 1 else ''} dated after this "
                   "computer's clock (a source sent times from the future); check the system "
                   "clock if this repeats")
            log.warning("%s", msg)
            self._notices.append(ErrorEvent("Database", msg))

    def _restart_finished_demo(self) -> None:
        if self.store.count_bars() == 0:
            return
        from engine.sources.replay import ReplaySource, demo_files

        probe = self._source if self._source is not None else ReplaySource(
            demo_files(), 1.0, start_after=self.store.last_ts)
        finished = getattr(probe, "finished", None)
        if finished is None or not finished():
            return
        # The bundled replay was played to the end last time: play it again from the start.
        for coin in self.store.coins():
            self.store.delete_coin(coin)
        if self.models_dir.is_dir():
            for f in self.models_dir.glob("*.pt"):
                f.unlink(missing_ok=True)
        self._notices.append(ErrorEvent("Demo", "the demo had played to the end: replaying it from the start"))

    def _ensure_state(self, coin: str) -> _CoinState:
        with self._states_lock:
            st = self._states.get(coin)
            if st is None:
                bars = self.store.bars(coin, limit=DEFAULT_MAXLEN)
                if self.world == LIVE:
                    bars = self._live_only(coin, bars)
                # Stored forecasts are loaded by the model thread, after the first frame.
                st = _CoinState(coin, bars, [])
                self._states[coin] = st
            return st

    def _live_only(self, coin: str, bars: list[Bar]) -> list[Bar]:
        """Bars an older version replayed into the live database are neither shown nor learned
        from (they stay on disk: the live database is never rewritten behind the user's back)."""
        live = [b for b in bars if b.source not in REPLAYED_SOURCES]
        if len(live) < len(bars):
            log.warning("%s: %d bars of %s were replayed into the live database by an older "
                        "version; they are not shown or learned from", self.store.path,
                        len(bars) - len(live), coin)
        return live

    # EngineAPI -----------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def coins(self) -> tuple[str, ...]:
        return self._coins

    def snapshot(self, coin: str) -> CoinSnapshot:
        st = self._states.get(coin)
        if st is None:
            return CoinSnapshot(coin)
        with st.lock:
            return CoinSnapshot(coin, st.window.snapshot(), tuple(st.forecasts), st.metrics, st.train)

    def snapshot_all(self) -> SnapshotEvent:
        return SnapshotEvent(tuple(self.snapshot(c) for c in self._coins), self._status)

    def status(self) -> StatusEvent | None:
        return self._status

    def add_coin(self, coin: str) -> None:
        # The id may come from a search result or a feed client: it is checked here, once, before
        # it reaches state.json or names a checkpoint.
        try:
            checked = require_coin_id(coin)
        except ConfigError as exc:
            # Emitted from the dispatch thread, like every event: listeners never run on a caller's.
            self._inbox.put(("src", ErrorEvent("Unknown coin", exc.msg)))
            return
        self._inbox.put(("add", checked))

    def remove_coin(self, coin: str) -> None:
        if is_coin_id(coin):
            self._inbox.put(("remove", coin))

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._model_q.put(("pause", paused))

    def reset_model(self, coin: str) -> None:
        if is_coin_id(coin):
            self._model_q.put(("reset", coin))

    def search(self, query: str) -> list[CoinMatch]:
        return self.source.search(query)

    @property
    def source_info(self) -> str:
        """What the data is, in a few words (a replay: its file and dates); "" for live sources."""
        describe = getattr(self.source, "describe", None)
        return describe() if callable(describe) else ""

    def export(self, coin: str, path: Path | None = None) -> Path:
        if path is None:
            self.loc.exports_dir.mkdir(parents=True, exist_ok=True)
            path = export_path(self.loc.exports_dir, require_coin_id(coin), "demo" if self.demo else "")
        return export_csv(self.store, coin, path, self.horizons)

    def add_notice(self, notice: ErrorEvent) -> None:
        """A message for the user, shown when the engine starts (e.g. a config warning)."""
        self._notices.append(notice)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for notice in self._notices:
            self._emit(notice)
        self._emit(self._coins_event())
        specs: list[tuple[str, Callable[[], None]]] = [
            ("cryptotui-dispatch", self._dispatch_loop),
            ("cryptotui-model", self._model_loop),
            ("cryptotui-source", self._source_loop),
        ]
        for name, target in specs:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        if self._stop.is_set():
            return
        if not self._started:
            self._stop.set()
            self.store.close()
            self.close()
            return
        self._stop.set()
        self._inbox.put(("stop", None))
        self._model_q.put(("stop", None))
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.store.close()
        self.close()

    def close(self) -> None:
        """Release the data dir for another instance (stop() does this too)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until both queues are drained (for tests and the headless server's shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._inbox.unfinished_tasks == 0 and self._model_q.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    # Emission ------------------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken view must not stop the engine
                log.exception("listener failed on %s", event.type)

    # Source thread -------------------------------------------------------------------------------
    def _source_loop(self) -> None:
        def emit(item: SourceOutput) -> None:
            self._inbox.put(("src", item))

        try:
            self.source.run(self.coins, emit, self._stop)
        except CryptotuiError as exc:
            self._inbox.put(("src", ErrorEvent(exc.title, exc.msg)))
            self._inbox.put(("src", StatusEvent(self.source.name, "error", exc.msg)))
        except Exception as exc:
            log.exception("source %s crashed", self.source.name)
            self._inbox.put(("src", StatusEvent(self.source.name, "error", f"source stopped: {exc}")))

    # Dispatch thread -----------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            kind, item = self._inbox.get()
            try:
                if kind == "stop" or self._stop.is_set():
                    return
                if kind == "src":
                    self._on_source(item)
                elif kind == "add":
                    self._on_add(item)
                elif kind == "remove":
                    self._on_remove(item)
            except Exception:
                log.exception("dispatch failed on %s", kind)
            finally:
                self._inbox.task_done()

    def _on_source(self, item: SourceOutput) -> None:
        if isinstance(item, Bar):
            self._on_bar(item)
        elif isinstance(item, StatusEvent):
            self._source_status = item
            self._publish_status()
        elif isinstance(item, CoinsEvent):
            self._unknown = tuple(c for c in item.unknown if c in self._coins)
            self._labels.update(dict(item.labels))
            self._emit(self._coins_event())
        else:
            self._emit(item)

    def _publish_status(self) -> None:
        """The source's status, unless bars cannot be saved: then "ok" would be a lie."""
        item = self._source_status
        if item is None:
            return
        if self._store_error is not None and item.state in ("ok", "stale"):
            item = replace(item, state="error",
                           message=f"{item.message}; new data is not being saved: {self._store_error}")
        if item != self._status:
            self._status = item
            self._emit(item)

    def _on_bar(self, bar: Bar) -> None:
        reason = _bad_price(bar.price)
        if reason:
            self._reject(bar, reason)
            return
        ahead = ahead_of_clock(bar.ts, self._clock()) if self._trust_clock else None
        if ahead is not None:
            # Every live source checks this too; this is the one place nothing gets past.
            self._reject(bar, f"time {ahead}")
            return
        if bar.ts % 60:
            bar = Bar(bar.coin, bar.ts - bar.ts % 60, bar.price, bar.open, bar.high, bar.low,
                      bar.volume, bar.source, bar.filled)
        if bar.coin not in self._coins:
            return
        st = self._ensure_state(bar.coin)
        last = st.window.last()
        if last is not None:
            if bar.ts <= last.ts:
                if not (last.filled and not bar.filled):
                    self._reject(bar, f"out of order (newest is {last.ts})")
                    return
            # A difference of logs: the ratio of two extreme (finite) prices can underflow to 0.
            elif (bar.ts - last.ts < SPIKE_WINDOW
                  and abs(math.log(bar.price) - math.log(last.price)) > MAX_JUMP_LOG):
                self._reject(bar, f"price spike {last.price:g} -> {bar.price:g}")
                return
        try:
            self.store.add_bars([bar])
        except StoreError as exc:
            self._store_failed(exc)
            return
        if self._store_error is not None:
            self._store_error = None
            self._publish_status()
        if not st.window.append(bar):
            return
        if bar.coin in self._unknown:
            self._unknown = tuple(c for c in self._unknown if c != bar.coin)
            self._emit(self._coins_event())
        try:
            self.store.record_outcome(bar)
        except StoreError as exc:
            self._store_failed(exc)
        self._emit(BarEvent(bar))
        self._model_q.put(("bar", bar))

    def _reject(self, bar: Bar, reason: str) -> None:
        """A bad bar is never stored or learned from; the log says why (warned once per coin a minute)."""
        self.rejected += 1
        now = time.monotonic()
        level = logging.WARNING if now - self._last_reject.get(bar.coin, 0.0) > 60 else logging.DEBUG
        self._last_reject[bar.coin] = now
        log.log(level, "rejected bar %s@%s (%s): %s", bar.coin, bar.ts, bar.source, reason)

    def _store_failed(self, exc: StoreError) -> None:
        if self._store_error is None:
            self._store_error = exc.msg
            self._publish_status()
        now = time.monotonic()
        if now - self._last_store_error > 30:
            self._last_store_error = now
            log.error("%s", exc.msg)
            self._emit(ErrorEvent("Database", f"new data is not being saved: {exc.msg}"))

    def _on_add(self, coin: str) -> None:
        if not coin or coin in self._coins:
            return
        if len(self._coins) >= MAX_COINS:
            # Each coin costs a model, a checkpoint and a share of the request budget.
            self._emit(ErrorEvent("Too many coins", f"cannot add {coin}: the watchlist is full "
                                  f"({MAX_COINS} coins); remove one first", coin))
            return
        self._coins = self._coins + (coin,)
        self._ensure_state(coin)
        self._save_watchlist()
        files = getattr(self.source, "files", None)
        if isinstance(files, dict) and coin not in files:
            self._unknown = self._unknown + (coin,)
            self._emit(ErrorEvent("Unknown coin", f"no recorded data for {coin!r} in this replay", coin))
        self._emit(self._coins_event())
        self._model_q.put(("add", coin))

    def _on_remove(self, coin: str) -> None:
        if coin not in self._coins:
            return
        self._coins = tuple(c for c in self._coins if c != coin)
        self._unknown = tuple(c for c in self._unknown if c != coin)
        self._save_watchlist()
        self._emit(self._coins_event())
        self._model_q.put(("remove", coin))

    def _coins_event(self) -> CoinsEvent:
        labels = tuple((c, self._labels.get(c) or symbol_of(c)) for c in self._coins)
        return CoinsEvent(self._coins, self._unknown, labels)

    def _save_watchlist(self) -> None:
        try:
            update_state(self.loc, self._state_key, list(self._coins))
        except OSError as exc:
            self._emit(ErrorEvent("Settings", f"cannot save the watchlist: {exc.strerror or exc}"))

    # Model thread --------------------------------------------------------------------------------
    def _model_loop(self) -> None:
        worker = _ModelWorker(self)
        try:
            worker.run()
        except Exception as exc:
            log.exception("model worker crashed")
            self._emit(ErrorEvent("Model", f"training stopped: {exc}"))


class _Stopping(BaseException):
    """Raised inside a long model operation when the engine is stopping."""


class _ModelWorker:
    """Runs on the model thread: owns the forecasters, paces training, saves checkpoints."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.fcs: dict[str, Forecaster] = {}
        self.pending: dict[str, int] = {}
        self.last_train_emit: dict[str, float] = {}
        self.last_metrics_emit: dict[str, float] = {}
        self.last_save = time.monotonic()
        self.paused = engine._paused
        self.metrics_dirty: set[str] = set()
        self._rr = 0
        self._since_step = 0

    def _factory(self) -> Callable[[str], Forecaster]:
        if self.e._factory is not None:
            return self.e._factory
        import torch

        from engine.forecast.forecaster import ForecastConfig, make_forecaster_factory

        torch.set_num_threads(1)
        cfg = ForecastConfig(horizons=self.e.horizons)
        make = make_forecaster_factory(cfg, shared=self.e.settings.shared_model, seed=0)
        self.e._factory = make
        return make

    def _path(self, coin: str) -> Path:
        # Ids are checked where they enter; checking again here costs nothing and keeps a bug
        # elsewhere from ever writing a checkpoint outside the models dir.
        return self.e.models_dir / f"{require_coin_id(coin)}.pt"

    def _get(self, coin: str) -> Forecaster:
        fc = self.fcs.get(coin)
        if fc is not None:
            return fc
        make = self._factory()
        fc = make(coin)
        path = self._path(coin)
        loaded = False
        if path.exists():
            try:
                fc = type(fc).load(path, coin, fc.config)
                loaded = True
                self._refuse_future_checkpoint(fc, path)
            except ModelConfigChanged as exc:
                # Expected after an upgrade that changed the model: keep the old file, retrain from
                # the stored history (the panel shows the pre-training), no alarm.
                aside = path.with_name(f"{path.name}.old-{int(time.time())}")
                os.replace(path, aside)
                log.info("%s; kept as %s, retraining from the stored history", exc.msg, aside.name)
            except ModelError as exc:
                aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
                os.replace(path, aside)
                self.e._emit(ErrorEvent("Model", f"{exc.msg}; set aside as {aside.name}, starting fresh", coin))
                fc, loaded = make(coin), False
        self.fcs[coin] = fc
        self._warm(coin, fc, loaded)
        return fc

    def _refuse_future_checkpoint(self, fc: Forecaster, path: Path) -> None:
        """A model that believes it is later than now ignores every bar until then: refuse it."""
        last = getattr(fc, "last_ts", None)
        if not self.e._trust_clock or not isinstance(last, (int, float)):
            return
        ahead = ahead_of_clock(float(last), self.e._clock())
        if ahead is not None:
            raise ModelError(f"checkpoint {path.name} ends at a time {ahead}")

    def _warm(self, coin: str, fc: Forecaster, loaded: bool) -> None:
        """Give a new or reloaded model the history the store has."""
        bars = list(self.e.snapshot(coin).bars)
        if not bars:
            return
        warm = getattr(fc, "warm", None)
        if loaded and callable(warm):
            warm(bars)
            return
        if not loaded and len(bars) >= MIN_PRETRAIN_BARS and self.e._train_enabled:
            bars = bars[-MAX_PRETRAIN_BARS:]

            def progress(p: float) -> None:
                if self.e._stop.is_set():
                    raise _Stopping  # leave a long pre-training at once when the app quits
                self._publish_train(coin, TrainEvent(coin, "pretraining", progress=p,
                                                      message=f"pre-training on {len(bars)} minutes of history"))

            status = fc.pretrain(bars, progress)
            self._publish_train(coin, status, force=True)
        elif callable(warm):
            warm(bars)

    def run(self) -> None:
        try:
            self._run()
        except _Stopping:
            return

    def _load_stored_forecasts(self) -> None:
        for coin in self.e.coins():
            st = self.e._ensure_state(coin)
            last = st.window.last()
            if last is None:
                continue
            stored = self.e.store.forecasts(coin, since=last.ts - FORECAST_HISTORY * 60)
            with st.lock:
                newer = [f for f in st.forecasts if not stored or f.ts > stored[-1].ts]
                st.forecasts.clear()
                st.forecasts.extend(stored + newer)
        self.e._emit(self.e.snapshot_all())

    def _run(self) -> None:
        self._load_stored_forecasts()
        for coin in self.e.coins():
            self._get(coin)
            self._publish_train(coin, self.fcs[coin].status(), force=True)
        q = self.e._model_q
        while True:
            try:
                if self._has_work():
                    kind, item = q.get_nowait()
                else:
                    kind, item = q.get(timeout=0.2 if self.metrics_dirty else 0.5)
            except queue.Empty:
                kind, item = "", None
            if kind:
                try:
                    if kind == "stop" or self.e._stop.is_set():
                        # Bars still queued are in the store; the model catches up from it next time.
                        self._save_all()
                        return
                    self._handle(kind, item)
                except Exception as exc:
                    log.exception("model worker failed on %s", kind)
                    self.e._emit(ErrorEvent("Model", f"{kind}: {exc}"))
                finally:
                    q.task_done()
                # Keep learning while bars stream in fast (a replay): one step per batch of bars.
                self._since_step += 1
                if not q.empty() and not (self._has_work() and self._since_step >= STEP_EVERY_BARS):
                    continue
            if self.e._stop.is_set():
                self._save_all()
                return
            self._flush_metrics()
            if self._has_work():
                self._since_step = 0
                self._train_one()
            if time.monotonic() - self.last_save > CHECKPOINT_EVERY:
                self._save_all()

    def _has_work(self) -> bool:
        return not self.paused and self.e._train_enabled and any(v > 0 for v in self.pending.values())

    def _handle(self, kind: str, item: Any) -> None:
        if kind == "bar":
            self._on_bar(item)
        elif kind == "pause":
            self.paused = bool(item)
            for coin, fc in self.fcs.items():
                ev = fc.status()
                if self.paused:
                    ev = TrainEvent(coin, "paused", ev.step, ev.loss, ev.lr, ev.step_ms, ev.samples,
                                    None, ev.device, "training paused (p resumes)", ev.losses)
                self._publish_train(coin, ev, force=True)
        elif kind == "reset":
            self._reset(item)
        elif kind == "add":
            self._get(item)
        elif kind == "remove":
            fc = self.fcs.pop(item, None)
            if fc is not None:
                self._save(item, fc)
            self.pending.pop(item, None)

    def _on_bar(self, bar: Bar) -> None:
        if bar.coin not in self.e.coins():
            return
        fc = self._get(bar.coin)
        forecast = fc.observe(bar)
        st = self.e._ensure_state(bar.coin)
        if forecast is not None:
            self.e.store.add_forecast(forecast)
            with st.lock:
                st.forecasts.append(forecast)
            self.e._emit(forecast)
        if not bar.filled:
            cap = MAX_PENDING_FACTOR * fc.config.steps_per_minute
            self.pending[bar.coin] = min(cap, self.pending.get(bar.coin, 0) + fc.config.steps_per_minute)
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
            st = self.e._ensure_state(coin)
            with st.lock:
                st.metrics = m
            self.e._emit(m)
            ev = fc.status()
            if self.paused:
                ev = TrainEvent(coin, "paused", ev.step, ev.loss, ev.lr, ev.step_ms, ev.samples,
                                None, ev.device, "training paused (p resumes)", ev.losses)
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
                self.e._emit(ErrorEvent("Model", ev.message, coin))

    def _publish_train(self, coin: str, ev: TrainEvent, force: bool = False) -> None:
        st = self.e._ensure_state(coin)
        with st.lock:
            st.train = ev
        now = time.monotonic()
        if force or now - self.last_train_emit.get(coin, 0.0) >= TRAIN_EVENT_EVERY:
            self.last_train_emit[coin] = now
            self.e._emit(ev)

    def _reset(self, coin: str) -> None:
        self.fcs.pop(coin, None)
        self.pending.pop(coin, None)
        self._path(coin).unlink(missing_ok=True)
        self.e.store.delete_coin(coin, predictions_only=True)
        st = self.e._ensure_state(coin)
        with st.lock:
            st.forecasts.clear()
            st.metrics = None
        fc = self._get(coin)
        self._publish_train(coin, fc.status(), force=True)
        self.e._emit(ErrorEvent("Model", f"{coin}: model reset, learning from scratch", coin))

    def _save(self, coin: str, fc: Forecaster) -> None:
        try:
            self.e.models_dir.mkdir(parents=True, exist_ok=True)
            fc.save(self._path(coin))
        except (OSError, CryptotuiError) as exc:
            self.e._emit(ErrorEvent("Model", f"cannot save the {coin} model: {exc}", coin))

    def _save_all(self) -> None:
        self.last_save = time.monotonic()
        for coin, fc in list(self.fcs.items()):
            self._save(coin, fc)
