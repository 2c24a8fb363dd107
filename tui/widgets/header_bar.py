"""The one-line header: app name, the mode badge (LIVE / DEMO / REMOTE), what the data is, coin, window and horizon."""

from __future__ import annotations

from rich.text import Text
from textual.color import Color, ColorParseError
from textual.widgets import Static

from tui.widgets.columns import update_static
from tui.widgets.palette import Palette

_MODE_HINT = {
    "LIVE": "live market data",
    "DEMO": "replay of recorded data, not the market",
    "REMOTE": "remote engine",
}


def badge_style(colour: str) -> str:
    """Bold text on ``colour`` in whichever of black or white reads better on it: a reversed
    theme colour was near-invisible in light themes (yellow on white)."""
    try:
        bg = Color.parse(colour)
    except ColorParseError:  # a colour Textual does not know: Rich's reverse still shows it
        return f"bold reverse {colour}"
    fg = bg.get_contrast_text(1.0)
    return f"bold {fg.hex6} on {bg.hex6}"


class HeaderBar(Static):
    """Says at a glance which mode this is, so nobody mistakes a replay for the market."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(
        self, mode: str, coin: str, window: str, horizon: int, info: str = "", remote: bool = False
    ) -> None:
        """``mode``: the data's (LIVE, DEMO; REMOTE when a remote engine does not say its own);
        ``remote``: the engine runs elsewhere (``--connect``), said beside the mode."""
        pal = Palette.of(self)
        badge = {"LIVE": pal.up, "DEMO": pal.warning, "REMOTE": pal.primary}.get(mode, pal.accent)
        width = self.size.width or 80
        parts: list[tuple[str, str] | str] = [
            ("cryptotui ", "bold"),
            (f" {mode} ", badge_style(badge)),
            " ",
        ]
        if remote and mode != "REMOTE":
            parts += [(" remote ", badge_style(pal.primary)), " "]
        parts.append((coin, "bold"))
        if width >= 90:
            parts.append(f"  window {window}  horizon {horizon} min")
        else:
            parts.append(f"  {window} · {horizon}m ahead")
        # What the data is comes last: where it does not fit, it is what gets cut.
        hint = info or _MODE_HINT.get("REMOTE" if remote else mode, "")
        if width >= 110 and hint:
            parts.append(("  " + hint, "dim"))
        update_static(
            self, Text.assemble(*parts, no_wrap=True, overflow="ellipsis"), layout=False
        )  # height 1
