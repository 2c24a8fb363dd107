"""The main screen: the layout, the keys and their actions, and the coalesced redraw.

It owns every key of the main view (``tui.commands`` builds its bindings), so a dialog pushed over
it gets its own keys (Tab, shift+Tab, Enter, Esc) and the main view's keys simply do not reach
it. The widgets read the app's one ``UIState``; events only mark parts of the screen dirty and a
timer repaints them at most every ``REDRAW_INTERVAL`` (the chart's new data at most every
``CHART_DATA_INTERVAL``; keys, switches and resizes redraw it at once).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget

from engine.errors import CryptotuiError
from engine.events import CoinSnapshot
from tui import state as parts
from tui.chart_data import WINDOWS, ChartView, build_chart
from tui.commands import all_bindings
from tui.format import format_clock, format_duration
from tui.holdings.panel import HoldingsPanel
from tui.notices import notice_for
from tui.widgets.header_bar import HeaderBar
from tui.widgets.key_bar import KeyBar
from tui.widgets.metrics_panel import MetricsPanel
from tui.widgets.model_panel import ModelPanel
from tui.widgets.price_chart import PlotResized, PriceChart
from tui.widgets.status_bar import StatusBar
from tui.widgets.toasts import Toasts
from tui.widgets.watchlist import Watchlist

if TYPE_CHECKING:
    from tui.app import CryptoApp

REDRAW_INTERVAL = 0.1
CHART_DATA_INTERVAL = 0.5
WINDOW_ORDER = ("1h", "6h", "24h")
SIDE_MIN = 38  # cells: the score table's narrow form
SIDE_MAX_SHARE = 0.4  # of the terminal's width


class MainScreen(Screen[None]):
    """Watchlist, holdings, score and model panels on the left, the chart on the right."""

    BINDINGS: ClassVar[list[BindingType]] = list(all_bindings())
    # Not ClassVar (RUF012): Textual types these "ClassVar[...] | None", which mypy reads as
    # instance attributes, and it refuses a ClassVar that overrides one.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012
    DEFAULT_CSS = """
    MainScreen { layers: base toasts; }
    """

    def __init__(self, crypto: CryptoApp, *, classes: str | None = None) -> None:
        super().__init__(id="main", classes=classes)
        self.crypto = crypto  # the app, typed (Screen.app is any App)
        self.state = crypto.state
        self.engine = crypto.engine
        # The chart's time axis: the window's span until zoomed; following "now" until panned.
        self.view = ChartView(WINDOWS[self.state.window])
        self._dirty: set[str] = set()
        self._timer: Timer | None = None
        self._last_flush = 0.0
        self._last_chart = 0.0

    # Layout -------------------------------------------------------------------------------------
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
        yield Toasts(id="toasts")

    def on_mount(self) -> None:
        self.query_one("#watchlist").border_title = "Watchlist"
        self.query_one("#model").border_title = "Model"
        self.query_one("#holdings").border_title = "Holdings"
        self.query_one("#metrics").border_title = 'Score vs "no change"'
        self.crypto.start_ui()

    @property
    def toasts(self) -> Toasts:
        return self.query_one(Toasts)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once quitting, keys typed meanwhile do nothing ("q" then "a" opened a screen on the way
        # out, whose widgets were never mounted: a traceback instead of a clean exit).
        return not self.crypto.stopped

    # Redraw -------------------------------------------------------------------------------------
    def mark(self, *what: str) -> None:
        """Mark parts of the screen (``tui.state``'s names) to be redrawn by the next flush."""
        self._dirty.update(p for p in what if p)
        if self._timer is None and self._dirty:
            # A zero delay would divide by zero inside Textual's Timer.
            delay = max(0.01, self._last_flush + REDRAW_INTERVAL - time.monotonic())
            self._timer = self.set_timer(delay, self._timed_flush, name="redraw")

    def _timed_flush(self) -> None:
        self.flush(force=False)

    def redraw(self, *what: str) -> None:
        """Mark ``what`` and repaint it now (keys and switches answer at once)."""
        self.mark(*what)
        self.flush()

    def flush(self, force: bool = True) -> None:
        """Repaint what changed since the last flush (tests call this to skip the timer)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        now = self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        if parts.CHART_DATA in dirty and not (parts.ALL in dirty or parts.CHART in dirty or force):
            # New data alone redraws the chart at most every CHART_DATA_INTERVAL (a figure costs
            # milliseconds at full size); keys, switches and resizes redraw it at once.
            wait = self._last_chart + CHART_DATA_INTERVAL - now
            if wait > 0:
                dirty.discard(parts.CHART_DATA)
                self._dirty.add(parts.CHART_DATA)
                self._timer = self.set_timer(max(0.01, wait), self._timed_flush, name="redraw")
        if parts.CHART_DATA in dirty:
            dirty.add(parts.CHART)
        if not dirty or self.crypto.stopped or not self.is_attached:
            return
        everything = parts.ALL in dirty
        st = self.state
        if everything or parts.HEADER in dirty:
            self._draw_header()
        if everything or parts.WATCHLIST in dirty:
            wl = self.query_one(Watchlist)
            wl.set_rows(st.rows(), st.horizon, st.window)
            wl.selected = st.selected
            self._size_side(wl)
            self._draw_holdings()
        if everything or parts.CHART in dirty:
            self._last_chart = now
            self._draw_chart()
        if everything or parts.MODEL in dirty:
            self.query_one(ModelPanel).show(st.model_view())
        if everything or parts.METRICS in dirty:
            view = st.view(st.selected)
            self.query_one(MetricsPanel).show(
                view.metrics if view else None, st.horizon, st.model_view().no_data
            )
        if everything or parts.STATUS in dirty:
            self.query_one(StatusBar).show(st.status)

    def _draw_header(self) -> None:
        st = self.state
        coin = st.selected
        mode, remote = self.crypto.mode_badge()
        self.query_one(HeaderBar).show(
            mode,
            st.coin_title(coin) if coin else "no coin",
            st.window,
            st.horizon,
            self.crypto.source_info(),
            remote,
        )

    def _draw_holdings(self) -> None:
        holdings = self.crypto.holdings
        self.set_class(bool(holdings.holdings), "-holdings")
        if holdings.holdings:
            self.query_one(HoldingsPanel).show(
                holdings.view(), self.state.prefs.privacy, holdings.score(), holdings.read_only
            )

    def _draw_chart(self) -> None:
        chart = self.query_one(PriceChart)
        st = self.state
        coin = st.selected
        cols, rows = chart.plot_size
        snap = st.snapshot(coin) if coin else CoinSnapshot(coin="")
        levels = st.prefs.levels.get(coin, ()) if coin else ()
        data = build_chart(
            snap, st.horizon, self.view.span, cols, rows, end=self.view.end, levels=levels
        )
        view = st.view(coin)
        notice = notice_for(
            mode=st.mode,
            coin=coin,
            name=st.coin_title(coin) if coin else "",
            status=st.status,
            has_data=not data.empty,
            unknown=coin in st.unknown,
            train=view.train if view else None,
            stale_since=st.stale_since(coin),
            demo_coins=st.demo_coins(),
        )
        title = st.coin_title(coin) if coin else "no coin"
        if coin in st.labels:
            title += f" ({st.label(coin)})"
        if self.view.end is not None:
            span, end = format_duration(self.view.span), format_clock(self.view.end)
            title += f" · {span} to {end} · 0: now"
        elif self.view.span != WINDOWS.get(st.window):
            title += f" · {format_duration(self.view.span)} zoom"
        chart.show(data, title, st.horizon, notice)

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
            self.query_one(Toasts).styles.width = width

    def on_resize(self, _event: events.Resize) -> None:
        # The side column's bound and the header's form depend on the terminal's width; without a
        # chart on screen no PlotResized comes to redraw them. After the refresh: the widgets get
        # their new sizes after the screen's Resize.
        self.call_after_refresh(self.mark, parts.WATCHLIST, parts.HEADER)

    @on(PlotResized)
    def _chart_resized(self) -> None:
        # At once: the plot has just been mounted (start-up) or the terminal resized.
        self.redraw(parts.CHART, parts.WATCHLIST, parts.METRICS, parts.HEADER)
        self.crypto.plot_ready()

    @on(Watchlist.Clicked)
    def _clicked(self, message: Watchlist.Clicked) -> None:
        self.select(message.coin)

    # Actions (the keys; see tui/commands.py) ------------------------------------------------
    def select(self, coin: str | None) -> None:
        if self.state.select(coin):
            self.view = ChartView(self.view.span)  # another coin's history: back to "now"
            self.redraw(parts.ALL)

    def action_next_coin(self) -> None:
        self.select(self.state.step(1))

    def action_prev_coin(self) -> None:
        self.select(self.state.step(-1))

    def action_jump(self, n: int) -> None:
        if 1 <= n <= len(self.state.coins):
            self.select(self.state.coins[n - 1])

    def action_cycle_window(self) -> None:
        st = self.state
        i = WINDOW_ORDER.index(st.window) if st.window in WINDOW_ORDER else 0
        st.prefs.window = WINDOW_ORDER[(i + 1) % len(WINDOW_ORDER)]
        self.crypto.save_prefs()
        self.view = ChartView(WINDOWS[st.prefs.window])
        self.redraw(parts.ALL)

    def action_cycle_horizon(self) -> None:
        st = self.state
        i = st.horizons.index(st.horizon) if st.horizon in st.horizons else 0
        st.prefs.horizon = st.horizons[(i + 1) % len(st.horizons)]
        self.crypto.save_prefs()
        self.redraw(parts.ALL)

    def _history_span(self) -> tuple[float, float]:
        view = self.state.view(self.state.selected)
        if view is None or not view.bars:
            return 0.0, 0.0
        return float(view.bars[0].ts), float(view.bars[-1].ts)

    def _set_view(self, view: ChartView) -> None:
        if view != self.view:
            self.view = view
            self.redraw(parts.CHART)

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
        st = self.state
        st.paused = not st.paused
        self.engine.set_paused(st.paused)
        # Said in one place, the model panel's state line (no toast, no header badge).
        self.redraw(parts.MODEL)

    def action_quit(self) -> None:
        self.crypto.quit()

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_command_palette(self) -> None:
        self.app.action_command_palette()

    def action_add_coin(self) -> None:
        from tui.screens.add_coin import AddCoinScreen, Picked

        def added(picked: Picked | None) -> None:
            if picked is None:
                return
            if picked.name:
                self.state.names[picked.coin] = picked.name
            if picked.symbol:
                self.state.labels[picked.coin] = picked.symbol
            self.engine.add_coin(picked.coin)
            self.notify(f"Added {self.state.coin_title(picked.coin)}.", timeout=4)

        self.app.push_screen(AddCoinScreen(self.engine, exclude=self.state.coins), added)

    def action_remove_coin(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        coin = self.state.selected
        if coin is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.engine.remove_coin(coin)

        self.app.push_screen(
            ConfirmScreen(
                f"Remove {self.state.coin_title(coin)} from the watchlist?",
                "Its stored history and model stay on disk.",
                yes="Remove",
            ),
            confirmed,
        )

    def action_reset_model(self) -> None:
        from tui.screens.confirm import ConfirmScreen

        coin = self.state.selected
        if coin is None:
            return
        name = self.state.coin_title(coin)

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.engine.reset_model(coin)
                self.notify(
                    f"{name}: model reset; it learns again from the stored history.", timeout=5
                )

        self.app.push_screen(
            ConfirmScreen(
                f"Reset the model for {name}?",
                "Its learned weights, optimizer state and band calibration are discarded, and it "
                "learns again from the stored prices. The price history and every prediction made "
                "so far are kept (the chart and exports still show them).",
                yes="Reset",
            ),
            confirmed,
        )

    def action_export(self) -> None:
        coin = self.state.selected
        if coin is None:
            return
        if self.state.last_bar(coin) is None:
            # As the command line says it: nothing is written for a coin without data.
            self.crypto.show_error(
                "Nothing to export", f"No data for {self.state.coin_title(coin)} yet."
            )
            return
        self._export(coin)

    @work(thread=True, group="export")  # not exclusive: each press is one file
    def _export(self, coin: str) -> None:
        name = self.state.coin_title(coin)
        try:
            path = self.engine.export(coin)
        except (CryptotuiError, OSError) as exc:
            title = getattr(exc, "title", "") or "Export failed"
            msg = exc.msg if isinstance(exc, CryptotuiError) else str(exc)
            self.app.call_from_thread(self.crypto.show_error, title, msg)
            return
        self.app.call_from_thread(self.notify, f"{path}", title=f"Exported {name}", timeout=10)

    def action_alerts(self) -> None:
        from tui.alerts.controller import AlertSettings
        from tui.alerts.dialog import AlertsScreen

        coin = self.state.selected
        if coin is None:
            return
        alerts = self.crypto.alerts
        name = self.state.coin_title(coin)

        def done(result: AlertSettings | None) -> None:
            if result is None:
                return
            alerts.apply_settings(coin, result)
            self.crypto.save_prefs()
            self.redraw(parts.CHART)  # the levels are drawn on it
            self.notify(f"Alerts for {name} saved.", timeout=3)

        self.app.push_screen(
            AlertsScreen(
                name,
                self.state.last_price(coin),
                alerts.settings(coin),
                self.state.current_forecast(coin),
                self.state.horizon,
                alerts.sender is not None,
            ),
            done,
        )

    def action_holding(self) -> None:
        from tui.holdings.dialog import HoldingResult, HoldingScreen

        coin = self.state.selected
        if coin is None:
            return
        holdings = self.crypto.holdings
        name = self.state.coin_title(coin)
        if holdings.read_only:
            if holdings.shared:
                words = (
                    "These are the remote engine's holdings: edit them where it runs (cryptotui "
                    "there, key H); its serve --with-holdings sends them again when restarted."
                )
            else:
                words = (
                    "Holdings are kept where the engine runs; this one does not share them "
                    "(serve --with-holdings would show them here, read-only)."
                )
            self.notify(words, title="Holdings are read-only here", timeout=8)
            return

        def done(result: HoldingResult | None) -> None:
            if result is None:
                return
            try:
                holdings.set(coin, None if result.remove else result.holding)
            except OSError as exc:
                self.crypto.show_error(
                    "Holdings not saved", f"cannot write {holdings.path}: {exc.strerror or exc}"
                )
                return
            self.notify(
                f"Holding of {name} removed." if result.remove else f"Holding of {name} saved.",
                timeout=3,
            )
            self.redraw(parts.ALL)

        self.app.push_screen(
            HoldingScreen(
                coin,
                name,
                self.state.last_price(coin),
                self.crypto.engine.vs_currency,
                holdings.holdings.get(coin),
                privacy=self.state.prefs.privacy,
            ),
            done,
        )

    def action_privacy(self) -> None:
        prefs = self.state.prefs
        prefs.privacy = not prefs.privacy
        self.crypto.save_prefs()
        self.notify("Amounts hidden." if prefs.privacy else "Amounts shown.", timeout=3)
        self.redraw(parts.ALL)


__all__ = ["CHART_DATA_INTERVAL", "REDRAW_INTERVAL", "MainScreen"]
