"""The alerts modal: price levels to watch for the selected coin with the chance of ending beyond
each, a chance threshold to be told about, surprise alerts, bell and desktop notifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Switch
from textual.widgets.option_list import Option

from engine.events import ForecastEvent
from tui.alerts import chance_text
from tui.format import format_price
from tui.safe_text import clean, plain
from tui.widgets.safe_input import SafeInput


@dataclass(frozen=True)
class AlertSettings:
    levels: tuple[float, ...]
    surprise: bool
    bell: bool
    threshold: float | None = None  # tell when a level's chance reaches this fraction; None: off
    desktop: bool = False  # this coin's alerts also as desktop notifications


def parse_threshold(text: str) -> float | None:
    """A chance in percent ("30", "30%"), as a fraction; "" is off. ValueError if not 1-99."""
    raw = text.strip().rstrip("%").strip()
    if not raw:
        return None
    value = float(raw)  # ValueError for words
    if not 1 <= value <= 99:
        raise ValueError(raw)
    return value / 100


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
    AlertsScreen Input.short { width: 6; margin: 1 1 0 0; }
    AlertsScreen .gap-after { margin-right: 2; }
    AlertsScreen .row-label { padding-top: 1; }
    AlertsScreen .alerts-heading { text-style: bold; margin-top: 1; }
    AlertsScreen #alerts-hint { color: $text-muted; width: 1fr; }
    AlertsScreen #alerts-now { width: 1fr; }
    AlertsScreen #alerts-buttons { align-horizontal: right; }
    AlertsScreen Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("delete,backspace", "delete_level", "Delete level", show=False),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self,
        name: str,
        price: float | None,
        current: AlertSettings,
        forecast: ForecastEvent | None = None,
        horizon: int = 5,
        desktop_available: bool = False,
    ) -> None:
        super().__init__()
        self.forecast = forecast
        self.horizon = horizon
        self.desktop_available = desktop_available
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
            # Two switches a row: the modal has to fit 24 lines, buttons included, with levels in it.
            with Horizontal():
                yield Switch(value=self.current.surprise, id="alerts-surprise")
                yield Label("Surprise: leaves its 95 % band", classes="row-label gap-after")
                yield Switch(value=self.current.bell, id="alerts-bell")
                yield Label("Bell", classes="row-label")
            with Horizontal():
                th = self.current.threshold
                yield SafeInput(
                    "" if th is None else f"{100 * th:g}",
                    placeholder="off",
                    id="alerts-threshold",
                    classes="short",
                    compact=True,
                )
                # Per coin, unlike the switches above.
                yield Label(
                    f"% at {self.horizon}m: tell me (this coin)", classes="row-label gap-after"
                )
                yield Switch(value=self.current.desktop, id="alerts-desktop")
                where = "" if self.desktop_available else " n/a"
                yield Label(f"desktop{where}", classes="row-label")
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
        self.query_one("#alerts-level", SafeInput).focus()

    def _refresh_levels(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        for level in self.levels:
            chance = chance_text(self.forecast, self.horizon, level)
            ol.add_option(Option(f"{format_price(level):>14}   {chance}"))
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
        text = self.query_one("#alerts-threshold", SafeInput).value
        try:
            threshold = parse_threshold(text)
        except ValueError:
            self.query_one("#alerts-hint", Label).update(
                Text(f"{text.strip()!r} is not a chance: a percent from 1 to 99, or empty for off.")
            )
            return
        self.dismiss(
            AlertSettings(
                tuple(self.levels),
                self.query_one("#alerts-surprise", Switch).value,
                self.query_one("#alerts-bell", Switch).value,
                threshold,
                self.query_one("#alerts-desktop", Switch).value,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
