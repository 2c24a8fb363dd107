"""The status line: data source, its message as the engine wrote it, update times and request budget."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.events import StatusEvent
from tui.format import format_clock
from tui.safe_text import clean
from tui.widgets.columns import update_static
from tui.widgets.palette import Palette

_BAD = {"offline", "error", "rate limited"}


def budget_text(s: StatusEvent) -> str:
    """Request counters, e.g. "calls 3/30 min · 1,204/10,000 month" (only what the source reports)."""
    parts = []
    if s.calls_minute is not None:
        lim = f"/{s.limit_minute}" if s.limit_minute else ""
        parts.append(f"{s.calls_minute}{lim}/min")
    if s.calls_month is not None:
        lim = f"/{s.limit_month:,}" if s.limit_month else ""
        parts.append(f"{s.calls_month:,}{lim}/month")
    return ("calls " + " · ".join(parts)) if parts else ""


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, status: StatusEvent | None, extra: str = "") -> None:
        pal = Palette.of(self)
        if status is None:
            update_static(self, Text("connecting to the engine…", style="dim"), layout=False)
            return
        colour = (
            pal.down if status.state in _BAD else pal.warning if status.state != "ok" else pal.up
        )
        # Source, state and message are the engine's words, or a remote engine's: foreign text.
        parts: list[tuple[str, str] | str] = [
            (f"● {clean(status.source, 24)} ", colour),
            (f"{clean(status.state, 24)} ", f"bold {colour}"),
        ]
        message = clean(status.message)
        # Sources often start the message with the state ("offline: prices: ..."): say it once.
        if message.lower().startswith(status.state + ":"):
            message = message[len(status.state) + 1 :].strip()
        if message:
            parts.append(message + "  ")
        if status.last_update is not None:
            parts.append((f"last {format_clock(status.last_update, seconds=True)}  ", "dim"))
        if status.next_update is not None:
            parts.append((f"next {format_clock(status.next_update, seconds=True)}  ", "dim"))
        budget = budget_text(status)
        if budget:
            parts.append((budget + "  ", "dim"))
        if extra:
            parts.append((extra, "dim"))
        update_static(
            self, Text.assemble(*parts, no_wrap=True, overflow="ellipsis"), layout=False
        )  # height 1
