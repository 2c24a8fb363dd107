"""The Textual app: wires an engine's events to the watchlist, chart, panels and status bar."""

from __future__ import annotations

import bisect
import gc
import logging
import math
import threading
import time
from collections.abc import Iterable
from functools import partial
from itertools import islice
from pathlib import Path
from typing import ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget

from engine.api import EngineAPI
from engine.errors import CryptotuiError
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
from engine.sources.coins import BY_ID as KNOWN_COINS
from engine.view import CoinView
from tui.alerts import AlertChecker
from tui.alerts_ui import AlertsMixin
from tui.chart_data import WINDOWS, ChartView, build_chart
from tui.commands import COMMANDS, all_bindings
from tui.format import format_clock, format_duration, last_per_cell
from tui.holdings_ui import HoldingsMixin
from tui.notices import notice_for, unknown_words
from tui.prefs import Prefs, load_prefs, save_prefs
from tui.safe_text import clean
from tui.widgets.header_bar import HeaderBar
from tui.widgets.holdings_panel import HoldingsPanel
from tui.widgets.key_bar import KeyBar
from tui.widgets.metrics_panel import MetricsPanel
from tui.widgets.model_panel import ModelPanel, ModelView
from tui.widgets.price_chart import PlotResized, PriceChart
from tui.widgets.status_bar import StatusBar
from tui.widgets.watchlist import SPARK_CELLS, CoinRow, Watchlist

log = logging.getLogger(__name__)

# Redraws are coalesced: events only mark parts dirty, a timer repaints at most this often.
REDRAW_INTERVAL = 0.1
CHART_DATA_INTERVAL = 0.5
HISTORY_MINUTES = 1440
WINDOW_ORDER = ("1h", "6h", "24h")
SURPRISE_TOAST_SECONDS = 60.0
# Bounds on foreign text: a coin's name and symbol, a toast's title and message (paths fit).
NAME_LIMIT = 48
LABEL_LIMIT = 12
TOAST_TITLE_LIMIT = 80
TOAST_LIMIT = 400
# A coin whose newest minute is this far behind the newest of any coin has stopped (market time,
# so a fast replay and the live market are judged alike).
STALE_AFTER = 15 * 60
SIDE_MIN = 38  # cells: the score table's narrow form
SIDE_MAX_SHARE = 0.4  # of the terminal's width
# Engine notices that are news, not failures: shown as information, in these words when given.
INFO_TITLES = {"Demo": "The demo had played to the end: it starts again from the beginning."}


class EngineEvent(Message):
    """An engine event handed to the UI thread (``post_message`` is safe from any thread)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


def coin_view(coin: str) -> CoinView:
    """What the UI keeps per coin (the last day of bars, the newest forecast); owned and mutated
    by the UI thread only."""
    return CoinView(coin, HISTORY_MINUTES, 1)


def _ts(bar: Bar) -> int:
    return bar.ts


def coin_name(coin: str) -> str:
    """A readable name from a CoinGecko id: "wrapped-bitcoin" -> "Wrapped Bitcoin"."""
    return " ".join(part.capitalize() for part in coin.replace("_", "-").split("-"))


class CryptoApp(HoldingsMixin, AlertsMixin, App[None]):
    """Watchlist, chart of price vs prediction, model and metrics panels, status bar."""

    # Absolute, so subclasses defined elsewhere (tests, runners) still find it.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "cryptotui"
    BINDINGS: ClassVar[list[BindingType]] = list(all_bindings())
    # Not ClassVar (RUF012): Textual types these "ClassVar[...] | None", which mypy reads as
    # instance attributes, and it refuses a ClassVar that overrides one.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012

    def __init__(self, engine: EngineAPI, *, state_path: Path | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.state_path = state_path
        self.prefs: Prefs = load_prefs(state_path)
        # The theme the user chose last time (ctrl+p > Theme), if this Textual still has it.
        if self.prefs.theme and self.prefs.theme in self.available_themes:
            self.theme = self.prefs.theme
        self.horizons: tuple[int, ...] = tuple(engine.horizons) or (1,)
        if self.prefs.horizon not in self.horizons:
            self.prefs.horizon = 5 if 5 in self.horizons else self.horizons[0]
        self.coins: tuple[str, ...] = ()
        self.selected: str | None = None
        self.paused = False
        self.states: dict[str, CoinView] = {}
        self.unknown: set[str] = set()
        self.labels: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.status: StatusEvent | None = None
        self.alerts = AlertChecker()
        self.stop_thread: threading.Thread | None = None
        self._dirty: set[str] = set()
        self._last_chart = 0.0
        self._flush_timer: object | None = None
        self._last_flush = 0.0
        self._last_error: tuple[str, str, float] | None = None
        self._stopped = False
        self._engine_started = False
        self._main: Screen[object] | None = None  # the main screen, set on mount
        self._last_surprise = -math.inf
        # The chart's time axis: the window's span until zoomed; following "now" until panned.
        self.view = ChartView(WINDOWS.get(self.window, WINDOWS["6h"]))
        self._init_holdings(state_path)

    # Properties the tests and the widgets read -----------------------------------------------
    @property
    def horizon(self) -> int:
        return self.prefs.horizon or self.horizons[0]

    @property
    def window(self) -> str:
        return self.prefs.window

    # Ids, names and symbols come from CoinGecko, a remote engine or state files: every view of
    # them goes through these two, cleaned of control characters and bounded.
    def label(self, coin: str) -> str:
        return clean(self.labels.get(coin) or coin[:10], LABEL_LIMIT)

    def coin_title(self, coin: str) -> str:
        return clean(self.names.get(coin) or coin_name(coin), NAME_LIMIT)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """``App.notify``, always as plain text: toasts carry coin names, paths and the engine's
        error messages. ``markup`` is accepted and ignored: ``Widget.notify`` (screens) passes
        True by default, so it cannot mean that the caller vouches for the text."""
        super().notify(
            clean(message, TOAST_LIMIT, newlines=True),
            title=clean(title, TOAST_TITLE_LIMIT),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # Layout -------------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[None]:
        # Textual sets the breakpoint classes on the screen's first Resize, after the widgets were
        # styled and laid out once; giving them to the screen up front styles every widget once,
        # at its final widths (setting them in on_mount restyled the whole tree a second time).
        width, height = self.size
        classes = []
        for breakpoints, size in (
            (self.HORIZONTAL_BREAKPOINTS, width),
            (self.VERTICAL_BREAKPOINTS, height),
        ):
            hit = max((bp for bp in breakpoints or () if size >= bp[0]), default=None)
            if hit is not None:
                classes.append(hit[1])
        return Screen(id="_default", classes=" ".join(classes))

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            with Vertical(id="side"):
                yield Watchlist(id="watchlist")
                yield HoldingsPanel(id="holdings")
                yield MetricsPanel(id="metrics")
                yield ModelPanel(id="model")
            yield PriceChart(id="chart")
        yield StatusBar(id="status")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        # Widgets are looked up on the main screen: App.query_one searches the active screen,
        # which is a modal whenever one is open, and events keep arriving meanwhile.
        self._main = main = self.screen
        main.query_one("#watchlist").border_title = "Watchlist"
        main.query_one("#model").border_title = "Model"
        main.query_one("#holdings").border_title = "Holdings"
        main.query_one("#metrics").border_title = 'Score vs "no change"'
        self.engine.subscribe(self._listener)
        self._set_coins(self.engine.coins())
        pick = self.prefs.coin if self.prefs.coin in self.coins else None
        self.selected = pick or (self.coins[0] if self.coins else None)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        # Start the engine after the first frame is on screen: its model thread imports torch,
        # which would otherwise hold the GIL while the first frame is being painted.
        self.call_after_refresh(self._after_first_paint)
        self._mark("all")
        self.flush()

    def _theme_changed(self, theme: object) -> None:
        name = getattr(theme, "name", None)
        if isinstance(name, str) and name != self.prefs.theme:
            self.prefs.theme = name
            save_prefs(self.state_path, self.prefs)
        self._mark("all")

    def _after_first_paint(self) -> None:
        # The plot (plotext) joins in the next frame, drawing what is already shown; the engine
        # starts after that frame, as its model thread's torch import holds the GIL for a while.
        if self._main is not None:
            self._main.query_one(
                PriceChart
            ).mount_plot()  # laid out, it posts PlotResized: drawn then
        # Normally the engine starts once the plot has been laid out and drawn (_chart_resized);
        # this is the fallback when there is no plot to draw (an empty store hides it).
        self.set_timer(0.5, self._start_engine)

    def _start_engine(self) -> None:
        if self._engine_started or self._stopped:
            return
        self._engine_started = True
        # Start-up objects (Textual, Rich, the store's history) live as long as the app: moving
        # them out of the collector's sight keeps full collections off the key-to-frame path.
        gc.freeze()
        self.engine.start()

    def on_unmount(self) -> None:
        self._stop_engine()
        self.prefs.coin = self.selected
        save_prefs(self.state_path, self.prefs)

    def _stop_engine(self) -> None:
        """Unsubscribe and stop the engine in a thread: the terminal is restored without waiting.

        The thread is not a daemon, so the process still lets the engine finish its last writes.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            self.engine.unsubscribe(self._listener)
        except Exception:  # a dead remote engine must not block quitting
            log.exception("unsubscribe failed")

        def stop() -> None:
            try:
                self.engine.stop()
            except Exception:
                log.exception("engine stop failed")

        self.stop_thread = threading.Thread(target=stop, name="engine-stop")
        self.stop_thread.start()

    # Engine events --------------------------------------------------------------------------------
    def _listener(self, event: Event) -> None:
        # Runs on an engine thread (or, with the fake engine, on ours): hand over, nothing else.
        self.post_message(EngineEvent(event))

    def on_engine_event(self, message: EngineEvent) -> None:
        ev = message.event
        if isinstance(ev, BarEvent):
            bar = ev.bar
            st = self.states.get(bar.coin)
            if st is None:
                return
            st.apply(ev)
            self._check_alerts(bar)
            if bar.coin == self.selected:
                self._update_alerts_price(bar.price)
            self._mark("watchlist", "chart-data" if bar.coin == self.selected else "")
        elif isinstance(ev, ForecastEvent):
            st = self.states.get(ev.coin)
            if st is None:
                return
            st.apply(ev)
            self.alerts.add_forecast(ev)
            self._check_chances(ev)
            self._mark("watchlist", "chart-data" if ev.coin == self.selected else "")
        elif isinstance(ev, MetricsEvent):
            if ev.coin in self.states:
                self.states[ev.coin].apply(ev)
                self._mark("watchlist", "metrics" if ev.coin == self.selected else "")
        elif isinstance(ev, TrainEvent):
            if ev.coin in self.states:
                self.states[ev.coin].apply(ev)
                self._mark("watchlist", "model" if ev.coin == self.selected else "")
                if ev.coin == self.selected and ev.state in ("warming up", "pretraining"):
                    self._mark("chart-data")
        elif isinstance(ev, StatusEvent):
            self.status = ev
            self._mark("status", "chart-data")
        elif isinstance(ev, ErrorEvent):
            self._on_error(ev)
        elif isinstance(ev, CoinsEvent):
            self.unknown |= set(ev.unknown)
            self.labels.update(dict(ev.labels))
            self._set_coins(ev.coins)
            self._mark("all")
        elif isinstance(ev, SnapshotEvent):
            for snap in ev.coins:
                if snap.coin in self.states:
                    self._seed(snap)
            if ev.status is not None:
                self.status = ev.status
            self._mark("all")

    def _set_coins(self, coins: Iterable[str]) -> None:
        coins = tuple(coins)
        old = self.coins
        self.coins = coins
        for coin in coins:
            # Symbols of well-known coins, for engines that send no labels (a remote one joining late).
            if coin not in self.labels and coin in KNOWN_COINS:
                self.labels[coin] = KNOWN_COINS[coin].symbol
            if coin not in self.states:
                self.states[coin] = coin_view(coin)
                self._seed(self.engine.snapshot(coin))
        for coin in set(self.states) - set(coins):
            del self.states[coin]
            self.alerts.forget(coin)
        self.unknown &= set(coins)
        if self.selected not in coins:
            if not coins:
                self.selected = None
            else:
                # Keep the position in the list: the coin that took the removed one's place.
                i = old.index(self.selected) if self.selected in old else 0
                self.selected = coins[min(i, len(coins) - 1)]

    def _seed(self, snap: CoinSnapshot) -> None:
        st = self.states.get(snap.coin)
        if st is None:
            st = self.states[snap.coin] = coin_view(snap.coin)
        st.seed(snap)
        for f in snap.forecasts[-61:]:
            self.alerts.add_forecast(f)

    def _check_alerts(self, bar: Bar) -> None:
        levels = self.prefs.levels.get(bar.coin, [])
        # Surprises only for the coin on screen: toasts about coins nobody is looking at are noise.
        surprise = self.prefs.surprise and bar.coin == self.selected
        for alert in self.alerts.check(
            bar, levels, self.horizon, surprise, self.coin_title(bar.coin)
        ):
            if alert.kind == "surprise":
                # A fast replay can cross the band many times a second; one toast a minute is news.
                now = time.monotonic()
                if now - self._last_surprise < SURPRISE_TOAST_SECONDS:
                    continue
                self._last_surprise = now
            self.deliver(alert)

    def _on_error(self, ev: ErrorEvent) -> None:
        # One place per message: what the status bar or the watchlist already says is not toasted.
        if ev.title == "Unknown coin" and ev.coin:
            return  # the watchlist row and the chart say it, in the demo's or the source's words
        st = self.status
        if st is not None and st.state != "ok" and ev.msg and ev.msg in st.message:
            return
        if ev.title in INFO_TITLES:
            self.notify(INFO_TITLES[ev.title] or ev.msg, title=ev.title, timeout=8)
            return
        self._show_error(ev.title, ev.msg)

    def _show_error(self, title: str, msg: str) -> None:
        # The same failure repeated every poll would bury the screen; say it again after a while.
        now = time.monotonic()
        if (
            self._last_error
            and self._last_error[:2] == (title, msg)
            and now - self._last_error[2] < 30
        ):
            return
        self._last_error = (title, msg, now)
        self.notify(msg, title=title, severity="error", timeout=10)

    # Redraw ---------------------------------------------------------------------------------------
    def _mark(self, *parts: str) -> None:
        self._dirty.update(p for p in parts if p)
        if self._flush_timer is None and self._dirty:
            # A zero delay would divide by zero inside Textual's Timer.
            delay = max(0.01, self._last_flush + REDRAW_INTERVAL - time.monotonic())
            self._flush_timer = self.set_timer(delay, self._timed_flush, name="redraw")

    def _timed_flush(self) -> None:
        self.flush(force=False)

    def flush(self, force: bool = True) -> None:
        """Repaint what changed since the last flush (tests call this to skip the timer)."""
        if self._flush_timer is not None:
            self._flush_timer.stop()  # type: ignore[attr-defined]
            self._flush_timer = None
        now = self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        if "chart-data" in dirty and not ("all" in dirty or "chart" in dirty or force):
            # New data alone redraws the chart at most every CHART_DATA_INTERVAL (a plotext
            # figure costs tens of ms at full size); keys, switches and resizes redraw at once.
            wait = self._last_chart + CHART_DATA_INTERVAL - now
            if wait > 0:
                dirty.discard("chart-data")
                self._dirty.add("chart-data")
                self._flush_timer = self.set_timer(
                    max(0.01, wait), self._timed_flush, name="redraw"
                )
        if "chart-data" in dirty:
            dirty.add("chart")
        main = self._main
        if not dirty or self._stopped or main is None or not main.is_attached:
            return
        everything = "all" in dirty
        coin = self.selected
        st = self.states.get(coin) if coin else None
        if everything or "header" in dirty:
            main.query_one(HeaderBar).show(
                self.engine.mode,
                self.coin_title(coin) if coin else "no coin",
                self.window,
                self.horizon,
                self.source_info(),
            )
        if everything or "watchlist" in dirty:
            wl = main.query_one(Watchlist)
            wl.set_rows(self._rows(), self.horizon, self.window)
            wl.selected = coin
            self._size_side(wl)
            self._draw_holdings(main)
        if everything or "chart" in dirty:
            self._last_chart = now
            self._draw_chart()
        if everything or "model" in dirty:
            main.query_one(ModelPanel).show(self._model_view(coin, st))
        if everything or "metrics" in dirty:
            main.query_one(MetricsPanel).show(
                st.metrics if st else None, self.horizon, self._model_view(coin, st).no_data
            )
        if everything or "status" in dirty:
            main.query_one(StatusBar).show(self.status)

    def _draw_chart(self) -> None:
        assert self._main is not None
        chart = self._main.query_one(PriceChart)
        coin = self.selected
        cols, rows = chart.plot_size
        if coin is None:
            snap = CoinSnapshot(coin="")
        else:
            snap = self.engine.snapshot(coin)
        levels = self.prefs.levels.get(coin, ()) if coin else ()
        data = build_chart(
            snap, self.horizon, self.view.span, cols, rows, end=self.view.end, levels=levels
        )
        st = self.states.get(coin) if coin else None
        notice = notice_for(
            mode=self.engine.mode,
            coin=coin,
            name=self.coin_title(coin) if coin else "",
            status=self.status,
            has_data=not data.empty,
            unknown=coin in self.unknown,
            train=st.train if st else None,
            stale_since=self._stale_since(coin),
            demo_coins=self._known_names(),
        )
        title = self.coin_title(coin) if coin else "no coin"
        if coin in self.labels:
            title += f" ({self.label(coin).upper()})"
        if self.view.end is not None:
            span, end = format_duration(self.view.span), format_clock(self.view.end)
            title += f" · {span} to {end} · 0: now"
        elif self.view.span != WINDOWS.get(self.window):
            title += f" · {format_duration(self.view.span)} zoom"
        chart.show(data, title, self.horizon, notice)

    def _rows(self) -> tuple[CoinRow, ...]:
        rows = []
        window = WINDOWS[self.window]
        note = unknown_words(self.engine.mode, self.status.source if self.status else "")
        for coin in self.coins:
            st = self.states.get(coin) or coin_view(coin)
            bars = st.bars
            price = bars[-1].price if bars else None
            change = None
            spark: tuple[float, ...] = ()
            if bars:
                now = bars[-1].ts
                i = bisect.bisect_left(bars, now - window, key=_ts)
                first = bars[i].price if i < len(bars) else None
                if first and price is not None and len(bars) - i > 1:
                    change = price / first - 1
                # Only the values the sparkline shows, not the whole window: rows are compared
                # on every redraw.
                spark = tuple(last_per_cell([b.price for b in islice(bars, i, None)], SPARK_CELLS))
            fc = None
            f = st.forecast
            stale = self._stale_since(coin) is not None
            if f is not None and bars and f.ts >= bars[-1].ts - 180 and not stale:
                p = f.price_at(self.horizon)
                if p is not None and f.price:
                    fc = p / f.price - 1
            rel = None
            if st.metrics:
                row = next((r for r in st.metrics.rows if r.horizon == self.horizon), None)
                if row is not None and row.n > 0:
                    rel = row.rel_mae
            rows.append(
                CoinRow(
                    coin,
                    self.label(coin).upper() if coin in self.labels else self.label(coin),
                    price,
                    change,
                    fc,
                    rel,
                    spark,
                    coin in self.unknown,
                    st.train.state if st.train else "",
                    note,
                    stale,
                )
            )
        return tuple(rows)

    def source_info(self) -> str:
        """What the data is, for the header: a replay names its files and dates (engine's words)."""
        info = getattr(self.engine, "source_info", "")
        return info if isinstance(info, str) else ""

    def _known_names(self) -> str:
        """The coins a demo has data for, in words ("Bitcoin, Ethereum and Litecoin")."""
        if self.engine.mode != "DEMO" or (self.status and self.status.source == "replay"):
            return ""
        from engine.sources.replay import DEMO_NAMES

        names = [name for name, _symbol in DEMO_NAMES.values()]
        return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)

    def _stale_since(self, coin: str | None) -> int | None:
        """The minute of ``coin``'s last price when its prices stopped while others' go on."""
        st = self.states.get(coin) if coin else None
        if st is None or not st.bars or coin in self.unknown:
            return None
        newest = max((s.bars[-1].ts for s in self.states.values() if s.bars), default=0)
        last = st.bars[-1].ts
        return last if newest - last > STALE_AFTER else None

    def _model_view(self, coin: str | None, st: CoinView | None) -> ModelView:
        no_data = ""
        if coin is not None and coin in self.unknown:
            words = unknown_words(self.engine.mode, self.status.source if self.status else "")
            no_data = f"{words} for {self.coin_title(coin)}" if words != "unknown coin" else words
        return ModelView(
            st.train if st else None,
            st.metrics if st else None,
            st.forecast if st else None,
            self.horizon,
            self.paused,
            no_data,
        )

    def _size_side(self, wl: Watchlist) -> None:
        # The left column is as wide as the watchlist's columns need, within bounds that leave the
        # chart most of the screen; narrow terminals keep the minimum.
        side = wl.parent
        if not isinstance(side, Widget):
            return
        limit = max(SIDE_MIN, int(self.size.width * SIDE_MAX_SHARE))
        width = max(SIDE_MIN, min(limit, wl.wanted_width() + 4))  # border and padding
        if side.styles.width is None or side.styles.width.value != width:
            side.styles.width = width

    def on_resize(self, _event: events.Resize) -> None:
        # The side column's bound and the header's form depend on the terminal's width; without a
        # chart on screen no PlotResized comes to redraw them. After the refresh: the widgets get
        # their new sizes after the app's Resize.
        self.call_after_refresh(self._mark, "watchlist", "header")

    @on(PlotResized)
    def _chart_resized(self) -> None:
        # At once: the plot has just been mounted (start-up) or the terminal resized.
        self._mark("chart", "watchlist", "metrics", "header")
        self.flush()
        if not self._engine_started:
            self.call_after_refresh(self._start_engine)  # after the frame with the chart

    @on(Watchlist.Clicked)
    def _clicked(self, message: Watchlist.Clicked) -> None:
        self.select(message.coin)

    # Actions (the keys; see tui/commands.py) --------------------------------------------------------
    def select(self, coin: str | None) -> None:
        if coin == self.selected or (coin is not None and coin not in self.coins):
            return
        self.selected = coin
        self.view = ChartView(self.view.span)  # another coin's history: back to "now"
        self._mark("all")
        self.flush()

    def _step(self, delta: int) -> None:
        if not self.coins:
            return
        i = self.coins.index(self.selected) if self.selected in self.coins else 0
        self.select(self.coins[(i + delta) % len(self.coins)])

    def action_next_coin(self) -> None:
        self._step(1)

    def action_prev_coin(self) -> None:
        self._step(-1)

    def action_jump(self, n: int) -> None:
        if 1 <= n <= len(self.coins):
            self.select(self.coins[n - 1])

    def action_cycle_window(self) -> None:
        i = WINDOW_ORDER.index(self.window) if self.window in WINDOW_ORDER else 0
        self.prefs.window = WINDOW_ORDER[(i + 1) % len(WINDOW_ORDER)]
        save_prefs(self.state_path, self.prefs)
        self.view = ChartView(WINDOWS[self.prefs.window])
        self._mark("all")
        self.flush()

    def action_cycle_horizon(self) -> None:
        i = self.horizons.index(self.horizon) if self.horizon in self.horizons else 0
        self.prefs.horizon = self.horizons[(i + 1) % len(self.horizons)]
        save_prefs(self.state_path, self.prefs)
        self._mark("all")
        self.flush()

    def _history_span(self) -> tuple[float, float]:
        st = self.states.get(self.selected) if self.selected else None
        if st is None or not st.bars:
            return 0.0, 0.0
        return float(st.bars[0].ts), float(st.bars[-1].ts)

    def _set_view(self, view: ChartView) -> None:
        if view != self.view:
            self.view = view
            self._mark("chart")
            self.flush()

    def action_zoom(self, steps: int) -> None:
        self._set_view(self.view.zoomed(steps, *self._history_span()))

    def action_pan(self, direction: int) -> None:
        # A quarter of the view per key: what was at the edge stays in sight.
        self._set_view(self.view.panned(direction / 4, *self._history_span()))

    def action_chart_now(self) -> None:
        self._set_view(ChartView(self.view.span))

    @on(PriceChart.Wheel)
    def _wheel(self, message: PriceChart.Wheel) -> None:
        if message.zoom:
            self.action_zoom(message.zoom)
        if message.pan:
            self.action_pan(message.pan)

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.engine.set_paused(self.paused)
        # Said in one place, the model panel's state line (no toast, no header badge).
        self._mark("model")

    def action_add_coin(self) -> None:
        from tui.screens.add_coin import AddCoinScreen

        def added(coin: str | None) -> None:
            if coin:
                self.engine.add_coin(coin)
                self.notify(f"Added {self.coin_title(coin)}.", timeout=4)

        self.push_screen(AddCoinScreen(self.engine, exclude=self.coins), added)

    def action_remove_coin(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        coin = self.selected
        if coin is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.engine.remove_coin(coin)

        self.push_screen(
            ConfirmScreen(
                f"Remove {self.coin_title(coin)} from the watchlist?",
                "Its stored history and model stay on disk.",
                yes="Remove",
            ),
            confirmed,
        )

    def action_reset_model(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        coin = self.selected
        if coin is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.engine.reset_model(coin)
                self.notify(f"{self.coin_title(coin)}: model reset; it warms up again.", timeout=5)

        self.push_screen(
            ConfirmScreen(
                f"Reset the model for {self.coin_title(coin)}?",
                "Its learned weights and calibration are discarded; it starts again "
                "from the stored history.",
                yes="Reset",
            ),
            confirmed,
        )

    def action_export(self) -> None:
        if self.selected is not None:
            # One toast, when the file is written (an export takes well under a second).
            self._export(self.selected)

    @work(thread=True, group="export")  # not exclusive: each press is one file
    def _export(self, coin: str) -> None:
        try:
            path = self.engine.export(coin)
        except (CryptotuiError, OSError) as exc:
            title = getattr(exc, "title", "Export failed")
            self.call_from_thread(self._show_error, title, str(exc))
            return
        self.call_from_thread(
            self.notify, f"{path}", title=f"Exported {self.coin_title(coin)}", timeout=10
        )

    def action_alerts(self) -> None:
        from tui.screens.alerts import AlertSettings, AlertsScreen

        coin = self.selected
        if coin is None:
            return
        st = self.states.get(coin)
        price = st.bars[-1].price if st and st.bars else None

        def done(result: AlertSettings | None) -> None:
            if result is None:
                return
            if result.levels:
                self.prefs.levels[coin] = list(result.levels)
            else:
                self.prefs.levels.pop(coin, None)
            self.prefs.surprise = result.surprise
            self.prefs.bell = result.bell
            if result.threshold is None:
                self.prefs.thresholds.pop(coin, None)
            else:
                self.prefs.thresholds[coin] = result.threshold
            if result.desktop:
                self.prefs.desktop[coin] = True
            else:
                self.prefs.desktop.pop(coin, None)
            save_prefs(self.state_path, self.prefs)
            self._mark("chart")  # the levels are drawn on it
            self.notify(f"Alerts for {self.coin_title(coin)} saved.", timeout=3)

        current = AlertSettings(
            tuple(self.prefs.levels.get(coin, ())),
            self.prefs.surprise,
            self.prefs.bell,
            self.prefs.thresholds.get(coin),
            self.prefs.desktop.get(coin, False),
        )
        self.push_screen(
            AlertsScreen(
                self.coin_title(coin),
                price,
                current,
                st.forecast if st else None,
                self.horizon,
                self.desktop_sender is not None,
            ),
            done,
        )

    def _update_alerts_price(self, price: float) -> None:
        from tui.screens.alerts import AlertsScreen

        for screen in self.screen_stack:
            if isinstance(screen, AlertsScreen):
                screen.set_price(price)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self._stop_engine()
        self.exit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once quitting, keys typed meanwhile do nothing ("q" then "a" opened a screen on the way
        # out, whose widgets were never mounted: a traceback instead of a clean exit).
        if self._stopped:
            return False
        # App keys act on the main screen only; a modal keeps its own keys (q still quits).
        return len(self.screen_stack) <= 1 or action in ("quit", "command_palette")

    def action_help_quit(self) -> None:
        # ctrl+c (when there is no text to copy) quits, as q and ctrl+q do: Textual's default only
        # tells the user to press another key, which reads as the app refusing to stop.
        self._stop_engine()
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's generic Quit and Keys would stand beside the app's own Quit (q) and Help (?).
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command
        seen: set[str] = set()
        for cmd in COMMANDS:
            if not cmd.palette or cmd.action in seen:
                continue
            seen.add(cmd.action)
            yield SystemCommand(
                f"{cmd.label} ({cmd.key_display})",
                cmd.description,
                partial(self.run_action, cmd.action),
            )
