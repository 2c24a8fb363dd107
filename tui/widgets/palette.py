"""Colours taken from the current Textual theme, for widgets that draw with Rich or plotext."""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual.widget import Widget


@dataclass(frozen=True)
class Palette:
    up: str
    down: str
    warning: str
    accent: str
    primary: str
    foreground: str
    muted: str

    @classmethod
    def of(cls, widget: Widget) -> Palette:
        """The palette of the app's current theme (falls back to plain names outside an app)."""
        try:
            v = widget.app.theme_variables
        except Exception:  # not mounted yet: any readable default will do
            return cls("green", "red", "yellow", "cyan", "blue", "white", "grey50")

        def pick(name: str, default: str) -> str:
            value = v.get(name)
            return Color.parse(value).hex6 if value else default

        return cls(
            up=pick("success", "green"),
            down=pick("error", "red"),
            warning=pick("warning", "yellow"),
            accent=pick("accent", "cyan"),
            primary=pick("primary", "blue"),
            foreground=pick("foreground", "white"),
            muted=pick("foreground-muted", "grey50"),
        )

    def rgb(self, name: str) -> tuple[int, int, int]:
        """A palette colour as an (r, g, b) tuple, the form plotext accepts."""
        return Color.parse(getattr(self, name)).rgb
