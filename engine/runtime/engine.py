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
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.api import CoinMatch, Listener
from engine.errors import ConfigError, CryptotuiError, StoreError
from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    Event,
    SnapshotEvent,
    StatusEvent,
)
from engine.ids import is_coin_id, require_coin_id
from engine.runtime.coin_state import CoinState
from engine.runtime.export import csv_parts, export_csv, export_path
from engine.runtime.lock import acquire_instance_lock
from engine.runtime.messages import (
    AddCoin,
    DispatchMessage,
    FromSource,
    ModelMessage,
    NewBar,
    RemoveCoin,
    ResetModel,
    SetPaused,
    Stop,
)
from engine.runtime.model_worker import ModelHost, ModelWorker
from engine.runtime.window import DEFAULT_MAXLEN
from engine.settings.config import DEMO_COINS, MAX_COINS, Settings
from engine.settings.locations import DEMO, LIVE, Locations
from engine.settings.state import load_watchlist, update_state
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

if TYPE_CHECKING:
    from engine.forecast.base import ForecasterFactory

log = logging.getLogger(__name__)

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

        files = (
            demo_files()
            if settings.demo
            else dict(zip(settings.replay_coins, settings.replay_files))
        )
        return ReplaySource(
            files,
            settings.speed,
            name="demo" if settings.demo else "replay",
            start_after=store.last_ts,
            names=DEMO_NAMES if settings.demo else None,
        )
    if settings.source == "kraken":
        from engine.sources.kraken import KrakenSource

        return KrakenSource(settings, last_bar_ts=store.last_ts)
    from engine.sources.coingecko import CoinGeckoSource

    # The monthly call count must survive restarts, or a Demo key's cap could not be kept.
    budget_file = loc.data_dir / "budget.json" if loc is not None else None
    return CoinGeckoSource(settings, last_bar_ts=store.last_ts, budget_file=budget_file)


class Engine:
    """The local engine (an ``engine.api.EngineAPI``)."""

    def __init__(
        self,
        settings: Settings,
        loc: Locations,
        *,
        source: Source | None = None,
        forecaster_factory: ForecasterFactory | None = None,
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
        self._states: dict[str, CoinState] = {}
        self._states_lock = threading.Lock()
        self._status: StatusEvent | None = None  # as shown: the source's, or a store failure
        self._source_status: StatusEvent | None = None
        self._inbox: queue.Queue[DispatchMessage] = queue.Queue()
        self._model_q: queue.Queue[ModelMessage] = queue.Queue()
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
        if settings.source == "replay" and not self.demo:
            try:
                self.source.check()  # an unusable replay file is reported now, before the start
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
        problems: list[str] = []
        saved = load_watchlist(self.loc, self._state_key, problems)
        self._notices.extend(ErrorEvent("Settings", line) for line in problems)
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
            msg = (
                f"dropped {bars} stored minute{'s' if bars != 1 else ''} dated after this "
                "computer's clock (a source sent times from the future); check the system "
                "clock if this repeats"
            )
            log.warning("%s", msg)
            self._notices.append(ErrorEvent("Database", msg))

    def _restart_finished_demo(self) -> None:
        if self.store.count_bars() == 0:
            return
        from engine.sources.replay import ReplaySource, demo_files

        probe = (
            self._source
            if self._source is not None
            else ReplaySource(demo_files(), 1.0, start_after=self.store.last_ts)
        )
        if not probe.finished():
            return
        # The bundled replay was played to the end last time: play it again from the start.
        for coin in self.store.coins():
            self.store.delete_coin(coin)
        if self.models_dir.is_dir():
            for f in self.models_dir.glob("*.pt"):
                f.unlink(missing_ok=True)
        self._notices.append(
            ErrorEvent("Demo", "the demo had played to the end: replaying it from the start")
        )

    def _ensure_state(self, coin: str) -> CoinState:
        with self._states_lock:
            st = self._states.get(coin)
            if st is None:
                bars = self.store.bars(coin, limit=DEFAULT_MAXLEN)
                if self.world == LIVE:
                    bars = self._live_only(coin, bars)
                # Stored forecasts are loaded by the model thread, after the first frame.
                st = CoinState(coin, bars, [])
                self._states[coin] = st
            return st

    def _live_only(self, coin: str, bars: list[Bar]) -> list[Bar]:
        """Bars an older version replayed into the live database are neither shown nor learned
        from (they stay on disk: the live database is never rewritten behind the user's back)."""
        live = [b for b in bars if b.source not in REPLAYED_SOURCES]
        if len(live) < len(bars):
            log.warning(
                "%s: %d bars of %s were replayed into the live database by an older "
                "version; they are not shown or learned from",
                self.store.path,
                len(bars) - len(live),
                coin,
            )
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
            return CoinSnapshot(
                coin, st.window.snapshot(), tuple(st.forecasts), st.metrics, st.train
            )

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
            self._inbox.put(FromSource(ErrorEvent("Unknown coin", exc.msg)))
            return
        self._inbox.put(AddCoin(checked))

    def remove_coin(self, coin: str) -> None:
        if is_coin_id(coin):
            self._inbox.put(RemoveCoin(coin))

    def set_paused(self, paused: bool) -> None:
        self._paused = paused
        self._model_q.put(SetPaused(paused))

    def reset_model(self, coin: str) -> None:
        if is_coin_id(coin):
            self._model_q.put(ResetModel(coin))

    def search(self, query: str) -> list[CoinMatch]:
        return self.source.search(query)

    @property
    def source_info(self) -> str:
        """What the data is, in a few words (a replay: its file and dates); "" for live sources."""
        if self._source is None and self.settings.source != "replay" and not self.demo:
            # Live sources describe nothing; building one here would import its HTTP client
            # (requests, ~40 ms) on the UI thread before the first frame (bench/bench_start.py).
            return ""
        return self.source.describe()

    def export(self, coin: str, path: Path | None = None) -> Path:
        """Write ``coin``'s stored bars and predictions as CSV (default: a new file in the
        exports folder); the path. Streamed from the store, so memory stays flat at any size.

        Raises CryptotuiError with a title and a one-line message: no data for the coin yet
        (nothing is written), or the file cannot be written (a full disk: no half file is left).
        """
        coin = require_coin_id(coin)
        self._check_exportable(coin)
        made: Path | None = None
        try:
            if path is None:
                self.loc.exports_dir.mkdir(parents=True, exist_ok=True)
                made = path = export_path(self.loc.exports_dir, coin, "demo" if self.demo else "")
            return export_csv(self.store, coin, path, self.horizons)
        except OSError as exc:
            if made is not None:
                made.unlink(missing_ok=True)
            raise CryptotuiError(
                f"cannot write {path or self.loc.exports_dir}: "
                f"{exc.strerror or exc.__class__.__name__}",
                title="Export failed",
            ) from None

    def export_parts(self, coin: str, part_chars: int = 1 << 20) -> Iterator[str]:
        """The CSV of ``export`` in parts of about ``part_chars`` characters, read from the store
        as they are taken (the feed's export op: no file on the server)."""
        coin = require_coin_id(coin)
        self._check_exportable(coin)
        return csv_parts(self.store, coin, self.horizons, part_chars)

    def _check_exportable(self, coin: str) -> None:
        # In the CLI's words: an export of no data would be a header and nothing else.
        if not self.store.has_bars(coin):
            raise CryptotuiError(f"no data for {coin} yet: nothing to export", title="Export")

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
        self._inbox.put(Stop())
        self._model_q.put(Stop())
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
            self._inbox.put(FromSource(item))

        try:
            self.source.run(self.coins, emit, self._stop)
        except CryptotuiError as exc:
            self._inbox.put(FromSource(ErrorEvent(exc.title, exc.msg)))
            self._inbox.put(FromSource(StatusEvent(self.source.name, "error", exc.msg)))
        except Exception as exc:
            log.exception("source %s crashed", self.source.name)
            self._inbox.put(
                FromSource(StatusEvent(self.source.name, "error", f"source stopped: {exc}"))
            )

    # Dispatch thread -----------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            msg = self._inbox.get()
            try:
                if isinstance(msg, Stop) or self._stop.is_set():
                    return
                if isinstance(msg, FromSource):
                    self._on_source(msg.item)
                elif isinstance(msg, AddCoin):
                    self._on_add(msg.coin)
                elif isinstance(msg, RemoveCoin):
                    self._on_remove(msg.coin)
            except Exception:
                log.exception("dispatch failed on %s", msg.kind)
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
            item = replace(
                item,
                state="error",
                message=f"{item.message}; new data is not being saved: {self._store_error}",
            )
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
            bar = Bar(
                bar.coin,
                bar.ts - bar.ts % 60,
                bar.price,
                bar.open,
                bar.high,
                bar.low,
                bar.volume,
                bar.source,
                bar.filled,
            )
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
            elif (
                bar.ts - last.ts < SPIKE_WINDOW
                and abs(math.log(bar.price) - math.log(last.price)) > MAX_JUMP_LOG
            ):
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
        self._model_q.put(NewBar(bar))

    def _reject(self, bar: Bar, reason: str) -> None:
        """A bad bar is never stored or learned from; the log says why (warned once per coin a minute)."""
        self.rejected += 1
        now = time.monotonic()
        level = (
            logging.WARNING if now - self._last_reject.get(bar.coin, 0.0) > 60 else logging.DEBUG
        )
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
            self._emit(
                ErrorEvent(
                    "Too many coins",
                    f"cannot add {coin}: the watchlist is full "
                    f"({MAX_COINS} coins); remove one first",
                    coin,
                )
            )
            return
        self._coins = self._coins + (coin,)
        self._ensure_state(coin)
        self._save_watchlist()
        recorded = self.source.recorded_coins()
        if recorded is not None and coin not in recorded:
            self._unknown = self._unknown + (coin,)
            self._emit(
                ErrorEvent("Unknown coin", f"no recorded data for {coin!r} in this replay", coin)
            )
        self._emit(self._coins_event())
        self._model_q.put(AddCoin(coin))

    def _on_remove(self, coin: str) -> None:
        if coin not in self._coins:
            return
        self._coins = tuple(c for c in self._coins if c != coin)
        self._unknown = tuple(c for c in self._unknown if c != coin)
        self._save_watchlist()
        self._emit(self._coins_event())
        self._model_q.put(RemoveCoin(coin))

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
        worker = ModelWorker(
            ModelHost(
                inbox=self._model_q,
                stopping=self._stop,
                store=self.store,
                models_dir=self.models_dir,
                horizons=self.horizons,
                shared_model=self.settings.shared_model,
                train_enabled=self._train_enabled,
                paused=self._paused,
                factory=self._factory,
                coins=self.coins,
                coin_state=self._ensure_state,
                snapshot=self.snapshot,
                snapshot_all=self.snapshot_all,
                emit=self._emit,
                trust_clock=self._trust_clock,
                clock=self._clock,
            )
        )
        try:
            worker.run()
        except Exception as exc:
            log.exception("model worker crashed")
            self._emit(ErrorEvent("Model", f"training stopped: {exc}"))
