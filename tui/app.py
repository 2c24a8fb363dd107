"""The Textual app: the engine in and out, its events folded into the UI state, notifications and
the theme. The main screen (``tui.main_screen``) owns the layout, the keys and the actions."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen

from engine.api import EngineAPI
from engine.events import (
    BarEvent,
    CoinsEvent,
    ErrorEvent,
    Event,
    ForecastEvent,
    SnapshotEvent,
)
from engine.settings.holdings import holdings_path
from tui import desktop
from tui import state as parts
from tui.alerts.controller import AlertsController
from tui.commands import COMMANDS, palette_binding
from tui.holdings.controller import HoldingsController
from tui.main_screen import MainScreen
from tui.prefs import Prefs, load_prefs, save_prefs
from tui.safe_text import clean
from tui.state import UIState
from tui.widgets.price_chart import PriceChart

log = logging.getLogger(__name__)

# Bounds on a toast's title and message (paths fit).
TOAST_TITLE_LIMIT = 80
TOAST_LIMIT = 400
TOAST_SECONDS = 6.0
# Engine notices that are news, not failures: shown as information, in these words when given.
INFO_TITLES = {
    "Demo": "The demo had played to the end: it starts again from the beginning.",
    "Coins": "",  # "BTC -> bitcoin": which coin a symbol on the command line means
}
ERROR_REPEAT_SECONDS = 30  # the same failure again within this is not toasted again


class EngineEvents(Message):
    """Engine events are waiting in the app's inbox: one message however many came meanwhile."""


class CryptoApp(App[None]):
    """Watchlist, chart of price vs prediction, model and metrics panels, status bar."""

    # Absolute, so subclasses defined elsewhere (tests, runners) still find it.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "cryptotui"
    # Every other key is the main screen's (a dialog in front has its own); ctrl+q and ctrl+c
    # (Textual's) quit from anywhere.
    BINDINGS: ClassVar[list[BindingType]] = [palette_binding()]

    def __init__(self, engine: EngineAPI, *, state_path: Path | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.state_path = state_path
        # What could not be read from the user's files (each moved aside, said once on screen).
        self.file_problems: list[str] = []
        self.prefs: Prefs = load_prefs(state_path, self.file_problems)
        # The theme the user chose last time (ctrl+p > Theme), if this Textual still has it.
        if self.prefs.theme and self.prefs.theme in self.available_themes:
            self.theme = self.prefs.theme
        self.state = UIState(engine.mode, engine.horizons, self.prefs)
        self.holdings = HoldingsController(
            self.state,
            engine,
            holdings_path(state_path) if state_path is not None else None,
            problems=self.file_problems,
        )
        self.alerts = AlertsController(
            self.state,
            toast=self._toast_alert,
            bell=self.bell,
            spawn=self._spawn,
            sender=desktop.send if desktop.available() else None,
        )
        # What the app said, newest last (the toasts on screen are a few of these).
        self.said: deque[tuple[str, str, str]] = deque(maxlen=50)
        self.stop_thread: threading.Thread | None = None
        self.stopped = False
        self._engine_started = False
        self._last_error: tuple[str, str, float] | None = None
        self._main: MainScreen | None = None
        # Events from the engine's threads wait here for the UI thread, which takes them all at
        # once: a flood costs one message per frame, not one per event.
        self._inbox: deque[Event] = deque()
        self._inbox_lock = threading.Lock()
        self._wake_posted = False

    @property
    def main(self) -> MainScreen:
        """The main screen (the app's default screen)."""
        assert self._main is not None, "the app has not started"
        return self._main

    def get_default_screen(self) -> Screen[None]:
        # Textual sets the breakpoint classes on the screen's first Resize, after the widgets were
        # styled and laid out once; giving them to the screen up front styles every widget once,
        # at its final widths (setting them in on_mount restyled the whole tree a second time).
        width, height = self.size
        classes = []
        for breakpoints, size in (
            (MainScreen.HORIZONTAL_BREAKPOINTS, width),
            (MainScreen.VERTICAL_BREAKPOINTS, height),
        ):
            hit = max((bp for bp in breakpoints or () if size >= bp[0]), default=None)
            if hit is not None:
                classes.append(hit[1])
        self._main = MainScreen(self, classes=" ".join(classes))
        return self._main

    # The engine -----------------------------------------------------------------------------------
    def start_ui(self) -> None:
        """The main screen is composed: fold the engine's state in, and start after a frame."""
        self.engine.subscribe(self._listener)
        st = self.state
        st.set_coins(self.engine.coins(), self.engine.snapshot)
        for coin in st.coins:
            self.alerts.seed(st.snapshot(coin).forecasts)
        if self.prefs.coin in st.coins:
            st.selected = self.prefs.coin
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for problem in self.file_problems:
            self.notify(problem, title="Your files", severity="warning", timeout=15)
        # The engine starts after the first frame is on screen: its model thread imports torch,
        # which would otherwise hold the GIL while the first frame is being painted.
        self.call_after_refresh(self._after_first_paint)
        self.main.redraw(parts.ALL)

    def _after_first_paint(self) -> None:
        # The plot joins in the next frame, drawing what is already shown; the engine starts after
        # that frame (plot_ready), or after half a second when there is no plot to draw.
        self.main.query_one(PriceChart).mount_plot()
        self.set_timer(0.5, self._start_engine)

    def plot_ready(self) -> None:
        """The chart has been laid out and drawn: the engine may start after that frame."""
        if not self._engine_started:
            self.call_after_refresh(self._start_engine)

    def _start_engine(self) -> None:
        if self._engine_started or self.stopped:
            return
        self._engine_started = True
        # Start-up objects (Textual, Rich, the store's history) live as long as the app: moving
        # them out of the collector's sight keeps full collections off the key-to-frame path.
        gc.freeze()
        self.engine.start()

    def on_unmount(self) -> None:
        self._stop_engine()
        self.prefs.coin = self.state.selected
        self.save_prefs()

    def _stop_engine(self) -> None:
        """Unsubscribe and stop the engine in a thread: the terminal is restored without waiting.

        The thread is not a daemon, so the process still lets the engine finish its last writes.
        """
        if self.stopped:
            return
        self.stopped = True
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

    def quit(self) -> None:
        """Stop the engine (in the background) and leave."""
        self._stop_engine()
        self.exit()

    async def action_quit(self) -> None:
        self.quit()

    def action_help_quit(self) -> None:
        # ctrl+c (when there is no text to copy) quits, as q and ctrl+q do: Textual's default only
        # tells the user to press another key, which reads as the app refusing to stop.
        self.quit()

    # Engine events --------------------------------------------------------------------------------
    def _listener(self, event: Event) -> None:
        # Runs on an engine thread (or, with the fake engine, on ours): hand over, nothing else.
        with self._inbox_lock:
            self._inbox.append(event)
            if self._wake_posted:
                return
            self._wake_posted = True
        self.post_message(EngineEvents())

    def on_engine_events(self, _message: EngineEvents) -> None:
        with self._inbox_lock:
            events = list(self._inbox)
            self._inbox.clear()
            self._wake_posted = False
        for ev in events:
            self._fold(ev)

    def _fold(self, ev: Event) -> None:
        if isinstance(ev, ErrorEvent):
            self._on_error(ev)
            return
        st = self.state
        before = set(st.coins)
        changed = st.apply(ev, self.engine.snapshot)
        if isinstance(ev, BarEvent) and changed:
            self.alerts.on_bar(ev.bar)
            if ev.bar.coin == st.selected:
                self._update_alerts_price(ev.bar.price)
        elif isinstance(ev, ForecastEvent) and changed:
            self.alerts.on_forecast(ev)
        elif isinstance(ev, CoinsEvent):
            for coin in before - set(st.coins):
                self.alerts.forget(coin)
        elif isinstance(ev, SnapshotEvent):
            for snap in ev.coins:
                self.alerts.seed(snap.forecasts)
        if changed and self._main is not None:
            self._main.mark(*changed)

    def _update_alerts_price(self, price: float) -> None:
        from tui.alerts.dialog import AlertsScreen

        for screen in self.screen_stack:
            if isinstance(screen, AlertsScreen):
                screen.set_price(price)

    def _on_error(self, ev: ErrorEvent) -> None:
        # One place per message: what the status bar or the watchlist already says is not toasted.
        if ev.title == "Unknown coin" and ev.coin:
            return  # the watchlist row and the chart say it, in the demo's or the source's words
        status = self.state.status
        if status is not None and status.state != "ok" and ev.msg and ev.msg in status.message:
            return
        if ev.title in INFO_TITLES:
            self.notify(INFO_TITLES[ev.title] or ev.msg, title=ev.title, timeout=8)
            return
        self.show_error(ev.title, ev.msg)

    def show_error(self, title: str, msg: str) -> None:
        """A failure as a red toast; the same one repeated (every poll) is said once a while."""
        now = time.monotonic()
        last = self._last_error
        if last and last[:2] == (title, msg) and now - last[2] < ERROR_REPEAT_SECONDS:
            return
        self._last_error = (title, msg, now)
        self.notify(msg, title=title, severity="error", timeout=10)

    # Notifications --------------------------------------------------------------------------------
    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast on the main screen, always as plain text: toasts carry coin names, paths and the
        engine's error messages. ``markup`` is accepted and ignored: ``Widget.notify`` passes True
        by default, so it cannot mean that the caller vouches for the text. Call it on the UI
        thread (from another, through ``call_from_thread``)."""
        text = clean(message, TOAST_LIMIT, newlines=True)
        head = clean(title, TOAST_TITLE_LIMIT)
        self.said.append((head, text, severity))
        if self._main is not None and self._main.is_mounted:
            self._main.toasts.add(head, text, severity, timeout or TOAST_SECONDS)

    def clear_notifications(self) -> None:
        if self._main is not None and self._main.is_mounted:
            self._main.toasts.clear()

    def _toast_alert(self, title: str, message: str, severity: str) -> None:
        level: SeverityLevel = "warning" if severity == "warning" else "information"
        self.notify(message, title=title, severity=level, timeout=8)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        self.run_worker(run(), group="desktop", exit_on_error=False)

    # Preferences and the theme -----------------------------------------------------------------
    def save_prefs(self) -> None:
        save_prefs(self.state_path, self.prefs)

    def _theme_changed(self, theme: object) -> None:
        name = getattr(theme, "name", None)
        if isinstance(name, str) and name != self.prefs.theme:
            self.prefs.theme = name
            self.save_prefs()
        if self._main is not None:
            self._main.mark(parts.ALL)

    # What the header says ------------------------------------------------------------------------
    def mode_badge(self) -> tuple[str, bool]:
        """The data's mode (LIVE, DEMO: a remote engine's own when it says it) and whether the
        engine is remote."""
        mode = self.engine.mode
        served = getattr(self.engine, "served_mode", "")
        if mode == "REMOTE":
            return (clean(served, 12) if isinstance(served, str) and served else mode), True
        return mode, False

    def source_info(self) -> str:
        """What the data is, for the header: a replay names its files and dates (engine's words)."""
        info = getattr(self.engine, "source_info", "")
        return clean(info, 200) if isinstance(info, str) else ""

    # The command palette -------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
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
                partial(self.run_action, cmd.action, self.main),
            )
