"""The one-line header: app name, the mode badge (LIVE / DEMO / REMOTE), coin, window and horizon."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.widgets.columns import update_static
from tui.widgets.palette import Palette

_MODE_HINT = {
    "LIVE": "live market data",
    "DEMO": "replay of recorded 2018 data, not the market",
    "REMOTE": "remote engine",
}


class HeaderBar(Static):
    """Says at a glance which mode this is, so nobody mistakes a replay for the market."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, mode: str, coin: str, window: str, horizon: int, paused: bool) -> None:
        pal = Palette.of(self)
        badge = {"LIVE": pal.up, "DEMO": pal.warning, "REMOTE": pal.primary}.get(mode, pal.accent)
        width = self.size.width or 80
        parts: list[tuple[str, str] | str] = [
            ("cryptotui ", "bold"),
            (f" {mode} ", f"bold reverse {badge}"),
            " ",
        ]
        if width >= 110:
            parts.append((_MODE_HINT.get(mode, "") + "  ", "dim"))
        parts.append((coin, "bold"))
        if width >= 90:
            parts.append(f"  window {window}  horizon {horizon} min")
        else:
            parts.append(f"  {window} · {horizon}m ahead")
        if paused:
            parts.append(("  paused", f"bold {pal.warning}"))
        update_static(self, Text.assemble(*parts, no_wrap=True, overflow="ellipsis"), layout=False)  # height 1
