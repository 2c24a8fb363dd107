"""The holding modal: enter, edit or remove the selected coin's amount and cost basis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Switch

from engine.errors import ConfigError
from engine.settings.holdings import Holding, make_holding
from tui.format import format_price


@dataclass(frozen=True)
class HoldingResult:
    """What the dialog decided: a new holding, or ``remove`` (``holding`` is then None)."""

    holding: Holding | None
    remove: bool = False


def _plain(value: float) -> str:
    # repr keeps every digit the user typed (0.00012345 stays that); no exponent for normal sizes.
    text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text if float(text) == value else repr(value)


class HoldingScreen(ModalScreen[HoldingResult | None]):
    DEFAULT_CSS = """
    HoldingScreen { align: center middle; }
    HoldingScreen > Vertical { width: 64; max-width: 95%; height: auto; max-height: 95%;
                               border: thick $primary; background: $surface; padding: 0 1; }
    HoldingScreen Horizontal { height: auto; }
    HoldingScreen Switch { margin-right: 1; }
    HoldingScreen .row-label { padding-top: 1; }
    HoldingScreen #holding-error { color: $error; }
    HoldingScreen #holding-buttons { align-horizontal: right; }
    HoldingScreen Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self,
        coin: str,
        name: str,
        price: float | None,
        currency: str,
        current: Holding | None,
        *,
        privacy: bool = False,
    ) -> None:
        super().__init__()
        self.coin = coin
        self.coin_name = name
        self.price = price
        self.currency = currency
        self.current = current
        self.privacy = privacy

    def compose(self) -> ComposeResult:
        cur = self.currency.upper()
        with Vertical() as box:
            # The name is foreign text (from a server): a Text, never markup.
            box.border_title = Text(f"Holding: {self.coin_name}")
            box.border_subtitle = "enter/ctrl+s saves · esc cancels"
            now = "" if self.price is None else f" (now {format_price(self.price)} {cur})"
            yield Label(Text(f"Amount of {self.coin_name} you hold{now}:"))
            amount = "" if self.current is None else _plain(self.current.amount)
            # Privacy also covers the dialog: the fields show dots, not the stored numbers.
            yield Input(amount, placeholder="e.g. 0.25", id="holding-amount", password=self.privacy)
            yield Label(Text(f"Cost basis in {cur} (optional, for P&L):"))
            cost = ""
            if self.current is not None and self.current.cost is not None:
                cost = _plain(round(self.current.cost, 8))
            yield Input(
                cost, placeholder="total paid, e.g. 15000", id="holding-cost", password=self.privacy
            )
            with Horizontal():
                yield Switch(value=False, id="holding-per-unit")
                yield Label("The cost is per unit (else the total)", classes="row-label")
            yield Label("", id="holding-error")
            with Horizontal(id="holding-buttons"):
                if self.current is not None:
                    yield Button("Remove", id="remove", variant="error")
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#holding-amount", Input).focus()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "remove":
            self.dismiss(HoldingResult(None, remove=True))
        else:
            self.action_cancel()

    def action_save(self) -> None:
        try:
            holding = make_holding(
                self.coin,
                self.query_one("#holding-amount", Input).value,
                self.query_one("#holding-cost", Input).value,
                per_unit=self.query_one("#holding-per-unit", Switch).value,
                currency=self.currency,
            )
        except ConfigError as exc:
            # One line saying what is wrong; the dialog stays open and nothing is stored.
            msg = exc.msg
            if self.privacy:  # the message would repeat the typed digits the mask hides
                what = "amount" if msg.startswith("amount") else "cost"
                msg = f"{what} not accepted: a finite number, 0 or more, up to 1e15"
            self.query_one("#holding-error", Label).update(Text(msg))
            return
        self.dismiss(HoldingResult(holding))

    def action_cancel(self) -> None:
        self.dismiss(None)
