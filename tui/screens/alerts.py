"""The alerts modal: price levels for the selected coin; surprise alerts and the bell, for all coins."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Switch
from textual.widgets.option_list import Option

from tui.format import format_price
from tui.safe_text import clean, plain
from tui.widgets.safe_input import SafeInput


@dataclass(frozen=True)
class AlertSettings:
    levels: tuple[float, ...]
    surprise: bool
    bell: bool


def parse_level(text: str) -> float | None:
    """A price typed by the user ("70,000", "0.00001234", "7e4"), or None if it is not one."""
    try:
        value = float(text.strip().replace(",", "").replace("_", ""))
    except ValueError:
        return None
    return value if value > 0 and value != float("inf") else None


class AlertsScreen(ModalScreen[AlertSettings | None]):
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > Vertical { width: 64; max-width: 95%; height: auto; max-height: 95%;
                              border: thick $primary; background: $surface; padding: 0 1; }
    AlertsScreen OptionList { height: auto; max-height: 6; border: none; }
    AlertsScreen Horizontal { height: auto; }
    AlertsScreen Switch { margin-right: 1; }
    AlertsScreen .row-label { padding-top: 1; }
    AlertsScreen .alerts-heading { text-style: bold; margin-top: 1; }
    AlertsScreen #alerts-hint { color: $text-muted; width: 1fr; }
    AlertsScreen #alerts-now { width: 1fr; }
    AlertsScreen #alerts-buttons { align-horizontal: right; }
    AlertsScreen Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("delete,backspace", "delete_level", "Delete level", show=False),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, name: str, price: float | None, current: AlertSettings) -> None:
        super().__init__()
        self.coin_name = name
        self.price = price
        self.levels: list[float] = sorted(current.levels)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Alerts"
            # Short enough for the 64-cell box; the other keys are in the hint below the levels.
            box.border_subtitle = "ctrl+s save · esc cancel"
            yield Label(self._price_line(), id="alerts-now", markup=False)
            yield SafeInput(placeholder="price level, e.g. 70000", id="alerts-level", max_length=40)
            yield OptionList(id="alerts-levels")
            yield Label("", id="alerts-hint")
            yield Label("For every coin:", classes="alerts-heading")
            with Horizontal():
                yield Switch(value=self.current.surprise, id="alerts-surprise")
                yield Label("Surprise: the coin on screen leaves its 95 % band", classes="row-label")
            with Horizontal():
                yield Switch(value=self.current.bell, id="alerts-bell")
                yield Label("Ring the terminal bell with alerts", classes="row-label")
            with Horizontal(id="alerts-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def _price_line(self) -> str:
        now = f" (now {format_price(self.price)})" if self.price is not None else ""
        return f"{clean(self.coin_name, 48)}: notify when the price crosses a level{now}:"

    def set_price(self, price: float) -> None:
        """The coin's latest price: the dialog stays current while it is open."""
        if price == self.price:
            return
        self.price = price
        if self.is_mounted:
            self.query_one("#alerts-now", Label).update(self._price_line())

    def on_mount(self) -> None:
        self._refresh_levels()
        self.query_one(SafeInput).focus()

    def _refresh_levels(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        for level in self.levels:
            ol.add_option(Option(format_price(level)))
        count = "No levels yet" if not self.levels else f"{len(self.levels)} level(s)"
        hint = f"{count}: enter adds one, del removes the highlighted one."
        self.query_one("#alerts-hint", Label).update(hint)

    @on(SafeInput.Submitted, "#alerts-level")
    def _add(self, event: SafeInput.Submitted) -> None:
        level = parse_level(event.value)
        if level is None:
            self.query_one("#alerts-hint", Label).update(plain(f"{event.value!r} is not a price."))
            return
        if level not in self.levels:
            self.levels = sorted(self.levels + [level])
        event.input.value = ""
        self._refresh_levels()

    def action_delete_level(self) -> None:
        ol = self.query_one(OptionList)
        if self.focused is ol and ol.highlighted is not None and self.levels:
            del self.levels[ol.highlighted]
            self._refresh_levels()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        self.dismiss(AlertSettings(
            tuple(self.levels),
            self.query_one("#alerts-surprise", Switch).value,
            self.query_one("#alerts-bell", Switch).value,
        ))

    def action_cancel(self) -> None:
        self.dismiss(None)
