"""Colours taken from the current Textual theme, for widgets that draw with Rich or plotext."""

from __future__ import annotations

from dataclasses import dataclass

from textual.color import Color
from textual.types import NoActiveAppError
from textual.widget import Widget


@dataclass(frozen=True)
class Palette:
    """The theme's colours the widgets draw with, as hex strings."""

    up: str
    down: str
    warning: str
    accent: str
    primary: str
    foreground: str
    muted: str
    predicted: str = "magenta"  # the model's line: never the price's colour
    faint: str = "grey30"  # background detail (the chart's volume): muted text as painted

    @classmethod
    def of(cls, widget: Widget) -> Palette:
        """The palette of the app's current theme (falls back to plain names outside an app)."""
        try:
            v = widget.app.theme_variables
        except NoActiveAppError:  # not mounted yet: any readable default will do
            return cls(
                "green", "red", "yellow", "cyan", "blue", "white", "grey50", "magenta", "grey30"
            )

        def pick(name: str, default: str) -> str:
            value = v.get(name)
            return Color.parse(value).hex6 if value else default

        accent, warning = pick("accent", "cyan"), pick("warning", "yellow")
        # Several themes (textual-dark among them) give accent and warning the same colour.
        predicted = warning if warning != accent else "#c678dd"
        # The muted foreground is translucent; a plotext colour is opaque: blend it as painted.
        faint = "grey30"
        if v.get("background") and v.get("foreground-muted"):
            faint = (Color.parse(v["background"]) + Color.parse(v["foreground-muted"])).hex6
        return cls(
            faint=faint,
            predicted=predicted,
            up=pick("success", "green"),
            down=pick("error", "red"),
            warning=warning,
            accent=accent,
            primary=pick("primary", "blue"),
            foreground=pick("foreground", "white"),
            muted=pick("foreground-muted", "grey50"),
        )

    def rgb(self, name: str) -> tuple[int, int, int]:
        """A palette colour as an (r, g, b) tuple, the form plotext accepts."""
        return Color.parse(getattr(self, name)).rgb
