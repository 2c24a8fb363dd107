"""Alerts for the app: the rules run on each new bar and forecast, and what they raise is delivered
as a toast, with the bell or a desktop notification when the coin asks for one.

Runs on the UI thread. The rules (``tui.alerts.rules``) are pure; this adds the user's settings
(from ``Prefs``) and the delivery. A desktop notification is sent by a task on the app's event loop
(the library is asynchronous); a failure there falls back to the bell, said once in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.events import Bar, ForecastEvent
from tui import desktop
from tui.alerts.rules import Alert, AlertChecker
from tui.prefs import Prefs
from tui.state import UIState

log = logging.getLogger(__name__)

# A fast replay can leave the band many times a second: one surprise toast a minute is news.
SURPRISE_TOAST_SECONDS = 60.0


@dataclass(frozen=True)
class AlertSettings:
    """One coin's alert settings as the dialog edits them (``surprise`` and ``bell`` are global)."""

    levels: tuple[float, ...]
    surprise: bool
    bell: bool
    threshold: float | None = None  # tell when a level's chance reaches this fraction; None: off
    desktop: bool = False  # this coin's alerts also as desktop notifications


Toast = Callable[[str, str, str], None]  # (title, message, severity)
Spawn = Callable[[Awaitable[None]], None]  # runs a coroutine on the UI's event loop


class AlertsController:
    """Checks the alert rules for the watched coins and delivers what they raise."""

    def __init__(
        self,
        state: UIState,
        toast: Toast,
        bell: Callable[[], None],
        spawn: Spawn,
        sender: desktop.Sender | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.checker = AlertChecker()
        self._toast = toast
        self.ring = bell  # the terminal bell (a seam, as sender is)
        self._spawn = spawn
        # The seam tests replace: a plain callable (None: no desktop notifications here).
        self.sender = sender
        self.clock = clock  # wall clock (tests drive it)
        self._last_surprise = -float("inf")
        self.delivered: list[Alert] = []  # the last few, newest last (tests, and nothing else)

    @property
    def prefs(self) -> Prefs:
        return self.state.prefs

    # Settings ----------------------------------------------------------------------------------
    def settings(self, coin: str) -> AlertSettings:
        p = self.prefs
        return AlertSettings(
            tuple(p.levels.get(coin, ())),
            p.surprise,
            p.bell,
            p.thresholds.get(coin),
            p.desktop.get(coin, False),
        )

    def apply_settings(self, coin: str, s: AlertSettings) -> None:
        """Keep ``s`` for ``coin`` in the prefs (the caller saves them)."""
        p = self.prefs
        if s.levels:
            p.levels[coin] = sorted(set(s.levels))
        else:
            p.levels.pop(coin, None)
        p.surprise, p.bell = s.surprise, s.bell
        if s.threshold is None:
            p.thresholds.pop(coin, None)
        else:
            p.thresholds[coin] = s.threshold
        if s.desktop:
            p.desktop[coin] = True
        else:
            p.desktop.pop(coin, None)

    # Events ----------------------------------------------------------------------------------------
    def seed(self, forecasts: tuple[ForecastEvent, ...]) -> None:
        for f in forecasts[-61:]:
            self.checker.add_forecast(f)

    def forget(self, coin: str) -> None:
        self.checker.forget(coin)

    def on_bar(self, bar: Bar) -> None:
        levels = self.prefs.levels.get(bar.coin, [])
        # Surprises only for the coin on screen: toasts about coins nobody is looking at are noise.
        surprise = self.prefs.surprise and bar.coin == self.state.selected
        if not levels and not surprise:
            return
        now = self.clock()
        name = self.state.coin_title(bar.coin)
        for alert in self.checker.check(bar, levels, self.state.horizon, surprise, name, now):
            if alert.kind == "surprise":
                if now - self._last_surprise < SURPRISE_TOAST_SECONDS:
                    continue
                self._last_surprise = now
            self.deliver(alert)

    def on_forecast(self, f: ForecastEvent) -> None:
        self.checker.add_forecast(f)
        levels = self.prefs.levels.get(f.coin, [])
        threshold = self.prefs.thresholds.get(f.coin)
        if not levels or threshold is None:
            return
        name = self.state.coin_title(f.coin)
        horizon = self.state.horizon
        for alert in self.checker.check_chances(f, levels, horizon, threshold, name, self.clock()):
            self.deliver(alert)

    # Delivery ----------------------------------------------------------------------------------
    def deliver(self, alert: Alert) -> None:
        """Show ``alert`` as a toast; ring once, or send it to the desktop, as its coin asks."""
        self.delivered = [*self.delivered[-19:], alert]
        severity = "warning" if alert.kind == "surprise" else "information"
        self._toast(alert.title, alert.message, severity)
        if self.prefs.desktop.get(alert.coin):
            if self.sender is not None:
                self._spawn(self._send_desktop(self.sender, alert))
                return
            self.ring()  # asked for a desktop notification, none available: the bell says it
        elif self.prefs.bell:
            self.ring()

    async def _send_desktop(self, sender: desktop.Sender, alert: Alert) -> None:
        try:
            await sender(alert.title, alert.message)
        # The notifier's failures are platform-specific (D-Bus, macOS, Windows): catch them all
        # here, at the boundary, so a failed notification is never a traceback on screen.
        except Exception as exc:  # noqa: BLE001
            log.warning("desktop notification failed: %s", exc)
            self.ring()


__all__ = ["AlertSettings", "AlertsController"]
