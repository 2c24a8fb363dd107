"""The help screen: every key and what it does, from the same list that builds the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.commands import COMMANDS

ABOUT = (
    "The chart shows the price, the model's past predictions at the selected horizon drawn at "
    "the time they were about (a lagged copy would show as a shifted line), and the forecast "
    'from now with its 80 % band. The score panel compares the model with "no change": '
    "rel MAE below 1.00 means the model is better, 1.00 that it is no better. The Model panel "
    "says which band and mean are served at each horizon, and why."
)


def help_table() -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("what it does")
    seen: set[str] = set()
    for cmd in COMMANDS:
        if cmd.key_display in seen:
            continue
        seen.add(cmd.key_display)
        table.add_row(cmd.key_display, cmd.description)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen #help-about { color: $text-muted; margin-top: 1; }
    """
    # q closes Help (as esc does): the footer says so, and q quits only from the main screen.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", key_display="esc/q")
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc or q to close"
            yield Static(help_table(), id="help-keys")
            yield Static(Text(ABOUT), id="help-about")

    def action_close(self) -> None:
        self.dismiss(None)
