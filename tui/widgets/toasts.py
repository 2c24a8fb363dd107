"""Toasts: the app's notifications, a few at a time over the bottom of the left column.

At most ``MAX_TOASTS`` are on screen (fewer on a short terminal); a newer one replaces the oldest,
and one that repeats the title and message of one on screen refreshes it (with a count) instead of
stacking. They sit over the left column, above the status bar: never over the chart, its axis or
its legend; a dialog (a modal screen) is drawn over them, so its buttons are never covered. A click
dismisses one. Every text is plain (it may quote a coin name, a path or a server's message).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Static

MAX_TOASTS = 3
SHORT_MAX_TOASTS = 2  # on terminals under 36 rows


class Toast(Static):
    """One notification; it removes itself after its timeout or on a click."""

    DEFAULT_CSS = """
    Toast { width: 100%; height: auto; max-height: 4; padding: 0 1; margin-top: 1;
            background: $panel-lighten-1; border-left: outer $success; }
    Toast.-warning { border-left: outer $warning; }
    Toast.-error { border-left: outer $error; }
    """

    def __init__(self, title: str, message: str, severity: str, timeout: float) -> None:
        super().__init__(classes=f"-{severity}")
        self.key = (title, message, severity)
        self.count = 1
        self.timeout = timeout
        self.gone = False  # removal asked for (it completes after this frame)
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self._draw()
        self._timer = self.set_timer(self.timeout, self.dismiss)

    def dismiss(self) -> None:
        if not self.gone:
            self.gone = True
            self.remove()

    def again(self) -> None:
        """The same notification once more: count it and start its time again."""
        self.count += 1
        self._draw()
        if self._timer is not None:
            self._timer.reset()

    def _draw(self) -> None:
        title, message, _severity = self.key
        text = Text(no_wrap=False, overflow="ellipsis")
        if title:
            times = f" ×{self.count}" if self.count > 1 else ""
            text.append(title + times + "\n", style="bold")
        text.append(message)
        self.update(text)

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.dismiss()


class Toasts(Vertical, can_focus=False):
    """The rack the app's ``notify`` puts its toasts in (one per main screen)."""

    DEFAULT_CSS = """
    Toasts { layer: toasts; dock: bottom; width: 38; height: auto; margin-bottom: 2;
             background: transparent; }
    """

    def add(self, title: str, message: str, severity: str, timeout: float) -> None:
        key = (title, message, severity)
        live = [t for t in self.query(Toast) if not t.gone]
        for toast in live:
            if toast.key == key:
                toast.again()
                return
        limit = MAX_TOASTS if self.screen.size.height >= 36 else SHORT_MAX_TOASTS
        for old in live[: max(0, len(live) - limit + 1)]:
            old.dismiss()
        self.mount(Toast(title, message, severity, timeout))

    def clear(self) -> None:
        for toast in self.query(Toast):
            toast.dismiss()

    @property
    def messages(self) -> list[tuple[str, str, str]]:
        """(title, message, severity) of the toasts on screen, oldest first (tests read it)."""
        return [t.key for t in self.query(Toast) if not t.gone]
