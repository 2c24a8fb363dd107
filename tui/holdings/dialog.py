"""The holding dialog: enter, edit or remove the selected coin's amount and cost basis.

Driven by the keyboard alone: Tab and shift+Tab move through the fields, the per-unit switch and
the buttons in reading order; Enter saves from any field or the switch (space toggles it); Esc
cancels. The box scrolls on a short terminal, so its buttons are never cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Label

from engine.errors import ConfigError
from engine.settings.holdings import Holding, cost_currency, make_holding
from tui.format import format_price
from tui.widgets.dialog_parts import Dialog, DialogBox, Toggle
from tui.widgets.safe_input import SafeInput


@dataclass(frozen=True)
class HoldingResult:
    """What the dialog decided: a new holding, or ``remove`` (``holding`` is then None)."""

    holding: Holding | None
    remove: bool = False


def _plain(value: float) -> str:
    # repr keeps every digit the user typed (0.00012345 stays that); no exponent for normal sizes.
    text = f"{value:.12f}".rstrip("0").rstrip(".")
    return text if float(text) == value else repr(value)


class HoldingScreen(Dialog[HoldingResult | None]):
    DEFAULT_CSS = """
    HoldingScreen { align: center middle; }
    HoldingScreen > DialogBox { width: 66; max-width: 100%; height: auto; max-height: 100%;
                                     border: thick $primary; background: $surface; padding: 0 1; }
    HoldingScreen Label { width: 100%; }
    HoldingScreen SafeInput { margin-bottom: 1; }
    HoldingScreen #holding-note { color: $text-muted; }
    HoldingScreen #holding-error { color: $error; }
    HoldingScreen #holding-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    HoldingScreen Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter,ctrl+s", "save", "Save"),
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
        self.currency = currency  # the engine's quote currency: new costs are in it
        self.current = current
        self.privacy = privacy
        # An existing cost keeps the currency it was entered in, whatever the engine quotes now.
        self.cost_currency = cost_currency(current, currency)

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            # The name is foreign text (from a server): a Text, never markup.
            box.border_title = Text(f"Holding: {self.coin_name}")
            box.border_subtitle = "tab moves · enter saves · esc cancels"
            yield Label(Text(f"Amount of {self.coin_name} you hold:"))
            amount = "" if self.current is None else _plain(self.current.amount)
            # Privacy also covers the dialog: the fields show dots, not the stored numbers.
            yield SafeInput(
                amount, placeholder="e.g. 0.25", id="holding-amount", password=self.privacy
            )
            yield Label(self._cost_label(), id="holding-cost-label")
            cost = ""
            if self.current is not None and self.current.cost is not None:
                cost = _plain(round(self.current.cost, 8))
            yield SafeInput(
                cost, placeholder="total paid, e.g. 15000", id="holding-cost", password=self.privacy
            )
            yield Toggle("The cost is per unit (else the total paid)", id="holding-per-unit")
            yield Label(self._note(), id="holding-note")
            yield Label("", id="holding-error")
            with Horizontal(id="holding-buttons"):
                if self.current is not None:
                    yield Button("Remove", id="remove", variant="error", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", id="save", variant="primary", compact=True)

    def _cost_label(self) -> Text:
        return Text(f"Cost basis in {self.cost_currency.upper()} (optional, for P&L):")

    def _note(self) -> Text:
        cur = self.currency.upper()
        parts = []
        if self.price is not None and not self.privacy:
            parts.append(f"Price now {format_price(self.price)} {cur}.")
        if self.cost_currency != self.currency:
            parts.append(
                f"The cost was entered in {self.cost_currency.upper()}; this engine quotes "
                f"{cur}, so no P&L is shown until you enter the cost in {cur} (clear it first)."
            )
        return Text(" ".join(parts))

    def on_mount(self) -> None:
        self.query_one("#holding-amount", SafeInput).focus()

    @on(SafeInput.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(SafeInput.Changed, "#holding-cost")
    def _cost_changed(self, event: SafeInput.Changed) -> None:
        # A cleared cost starts over in the engine's currency.
        if not event.value.strip() and self.cost_currency != self.currency:
            self.cost_currency = self.currency
            self.query_one("#holding-cost-label", Label).update(self._cost_label())
            self.query_one("#holding-note", Label).update(self._note())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "remove":
            self.dismiss(HoldingResult(None, remove=True))
        else:
            self.action_cancel()

    def action_save(self) -> None:
        self.after_keys(self._save)

    def _save(self) -> None:
        if not self.is_active:
            return  # already saved or cancelled by an earlier key
        try:
            holding = make_holding(
                self.coin,
                self.query_one("#holding-amount", SafeInput).value,
                self.query_one("#holding-cost", SafeInput).value,
                per_unit=self.query_one("#holding-per-unit", Toggle).value,
                currency=self.cost_currency,
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
