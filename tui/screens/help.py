"""The help screen: every key and what it does, from the same list that builds the bindings."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.commands import COMMANDS
from tui.widgets.dialog_parts import Dialog

ABOUT = (
    "The chart shows the price, the model's past predictions at the selected horizon drawn at "
    "the time they were about (a lagged copy would show as a shifted line), and the forecast "
    'from now with its 80 % band. The score panel compares the model with "no change": '
    "rel MAE below 1.00 means the model is better, 1.00 that it is no better. The Model panel "
    "says which band and mean are served at each horizon, and why."
)


# What the words and columns of the side panels mean (the panels are short; help says it whole).
PANEL_WORDS: tuple[tuple[str, str], ...] = (
    ("MAE", "mean absolute error of the model's forecast of the return over the horizon"),
    ("no chg", 'the same error for "no change" (the price stays where it is)'),
    ("rel / rel MAE", 'MAE / no chg: below 1.00 the model beats "no change", 1.00 is no better'),
    ("dir", "share of moves whose direction the model called right"),
    ("cov80 / cov95", "share of outcomes inside the 80 % / 95 % band (aim: 80 % / 95 %)"),
    ("n", "forecasts scored at that horizon (each is scored when its horizon has passed)"),
    ("band", "which band is served: the network's, the simple one, or a blend of the two"),
    ("vs simple", "the network band's interval score / the simple band's (below 1: better)"),
    ("samples", "matured forecasts the network has learned from"),
    ("steps", "gradient steps taken by the network so far"),
    ("lr", "the network's learning rate (lowered after a roll-back)"),
    ("ms/step", "time of one training step on this machine"),
    ("loss", "the training loss, lower is better; falling, flat or rising over the last updates"),
    (
        "loss rising",
        (
            "recent losses above the earlier ones: the market changed, or the model is "
            "unlearning; the divergence guard rolls it back if it blows up"
        ),
    ),
    (
        "rolled back",
        (
            "a training step went wrong (non-finite or a loss spike): the last good "
            "weights were restored and the learning rate lowered"
        ),
    ),
)


def panel_table() -> Table:
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column("word", style="bold", no_wrap=True)
    table.add_column("what it means")
    for word, meaning in PANEL_WORDS:
        table.add_row(word, meaning)
    return table


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


class HelpScreen(Dialog[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen #help-about { color: $text-muted; margin-top: 1; }
    HelpScreen .help-heading { margin-top: 1; }
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
            yield Static(Text("The panels' words", style="bold"), classes="help-heading")
            yield Static(panel_table(), id="help-panels")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()  # up/down and page keys scroll it

    def action_close(self) -> None:
        self.dismiss(None)
