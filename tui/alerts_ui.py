"""The app's alert delivery: toasts, the bell, desktop notifications, and chance alerts.

A mixin of ``CryptoApp``; runs on the UI thread. Desktop notifications are sent by a worker on
the app's event loop (the library is asynchronous); any failure there falls back to the bell.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.events import ForecastEvent
from tui import desktop
from tui.alerts import Alert

log = logging.getLogger(__name__)


class AlertsMixin:
    """Delivers alerts; ``desktop_sender`` is the seam tests replace (None: no desktop support)."""

    desktop_sender: desktop.Sender | None = desktop.send if desktop.available() else None

    @property
    def _alerts_app(self) -> Any:
        return self

    def deliver(self, alert: Alert) -> None:
        """Show ``alert`` as a toast; ring or send it to the desktop as its coin asks."""
        app = self._alerts_app
        severity = "warning" if alert.kind == "surprise" else "information"
        # Coin names come from a server: plain text, never markup.
        app.notify(alert.message, title=alert.title, severity=severity, timeout=8, markup=False)
        if app.prefs.desktop.get(alert.coin):
            if self.desktop_sender is not None:
                app.run_worker(self._send_desktop(alert), group="desktop", exit_on_error=False)
                return
            app.bell()  # asked for a desktop notification, none available: the bell says it
        elif app.prefs.bell:
            app.bell()

    async def _send_desktop(self, alert: Alert) -> None:
        assert self.desktop_sender is not None
        try:
            await self.desktop_sender(alert.title, alert.message)
        # The notifier's failures are platform-specific (D-Bus, macOS, Windows): catch them all here,
        # at the boundary, so a failed notification is never a traceback on screen.
        except Exception as exc:  # noqa: BLE001
            log.warning("desktop notification failed: %s", exc)
            self._alerts_app.bell()

    def _check_chances(self, f: ForecastEvent) -> None:
        app = self._alerts_app
        levels = app.prefs.levels.get(f.coin, [])
        threshold = app.prefs.thresholds.get(f.coin)
        for alert in app.alerts.check_chances(
            f, levels, app.horizon, threshold, app.coin_title(f.coin)
        ):
            self.deliver(alert)
