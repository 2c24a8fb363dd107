"""The alerts dialog: price levels to watch for the selected coin with the chance of ending beyond
each, a chance threshold to be told about, desktop notifications, and the global surprise and bell.

Driven by the keyboard alone: Tab and shift+Tab move through the level field, the levels, the
threshold, the switches and the buttons in reading order; Enter in the level field adds the level,
Enter anywhere else saves; del removes the highlighted level; space toggles a switch; Esc cancels.
The box scrolls on a short terminal, so Save is never cut off.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, Label, OptionList
from textual.widgets.option_list import Option

from engine.errors import ConfigError
from engine.events import ForecastEvent
from engine.settings.numbers import parse_user_number
from engine.sources.base import MAX_PRICE, MIN_PRICE
from tui.alerts.controller import AlertSettings
from tui.alerts.rules import chance_text
from tui.format import format_price
from tui.safe_text import clean, plain
from tui.widgets.dialog_parts import Dialog, DialogBox, Toggle
from tui.widgets.safe_input import SafeInput

MAX_LEVELS = 20  # per coin: more is noise, and each is checked on every bar


def parse_threshold(text: str) -> float | None:
    """A chance in percent ("30", "30%"), as a fraction; "" is off. ConfigError (one line) if it is
    not a number people type, or not 1-99."""
    raw = text.strip().rstrip("%").strip()
    if not raw:
        return None
    return parse_user_number(raw, "chance", 99, minimum=1) / 100


def parse_level(text: str) -> float:
    """A price typed by the user ("70,000", "0.00001234", "7e4"); ConfigError (one line) if it is
    not one: "1,5" is refused with a hint, never read as 15."""
    return parse_user_number(text, "level", MAX_PRICE, minimum=MIN_PRICE)


class LevelInput(SafeInput):
    """The level field: Enter hands its text over and empties it at once, in the order the keys
    came (the dialog adds the level when its message arrives, by then the next may be typed)."""

    async def action_submit(self) -> None:
        value = self.value
        self.value = ""
        self.post_message(self.Submitted(self, value))


class AlertsScreen(Dialog[AlertSettings | None]):
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > DialogBox { width: 66; max-width: 100%; height: auto; max-height: 100%;
                                    border: thick $primary; background: $surface; padding: 0 1; }
    AlertsScreen Label { width: 100%; }
    AlertsScreen OptionList, AlertsScreen OptionList:focus { height: auto; max-height: 5;
                                                             border: none; padding: 0; }
    AlertsScreen #alerts-threshold-row { height: auto; }
    AlertsScreen #alerts-threshold { width: 8; margin-right: 1; }
    AlertsScreen #alerts-threshold-label { width: 1fr; }
    AlertsScreen #alerts-hint { color: $text-muted; }
    AlertsScreen .alerts-heading { text-style: bold; margin-top: 1; }
    AlertsScreen #alerts-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    AlertsScreen Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter,ctrl+s", "save", "Save"),
        Binding("delete,backspace", "delete_level", "Delete level", show=False),
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
        with DialogBox() as box:
            box.border_title = Text(f"Alerts: {clean(self.coin_name, 48)}")
            box.border_subtitle = "tab moves · enter saves · esc cancels"
            yield Label(self._price_line(), id="alerts-now", markup=False)
            yield LevelInput(
                placeholder="a price level, then enter (e.g. 70000)",
                id="alerts-level",
                max_length=40,
                compact=True,
            )
            yield OptionList(id="alerts-levels", markup=False)
            yield Label("", id="alerts-hint")
            with Horizontal(id="alerts-threshold-row"):
                th = self.current.threshold
                yield SafeInput(
                    "" if th is None else f"{100 * th:g}",
                    placeholder="off",
                    id="alerts-threshold",
                    max_length=6,
                    compact=True,
                )
                yield Label(
                    f"% chance at {self.horizon} min to tell me (empty: off)",
                    id="alerts-threshold-label",
                )
            where = "" if self.desktop_available else " (n/a: bell instead)"
            yield Toggle(
                f"Desktop notifications for this coin{where}",
                self.current.desktop,
                id="alerts-desktop",
            )
            yield Label("For every coin:", classes="alerts-heading")
            yield Toggle(
                "Surprise: the coin on screen leaves its 95 % band",
                self.current.surprise,
                id="alerts-surprise",
            )
            yield Toggle("Ring the bell with every alert", self.current.bell, id="alerts-bell")
            with Horizontal(id="alerts-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Save", id="save", variant="primary", compact=True)

    def _price_line(self) -> str:
        now = f" (price now {format_price(self.price)})" if self.price is not None else ""
        return f"Tell me when {clean(self.coin_name, 48)} crosses a level{now}:"

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
        if self.levels:
            ol.highlighted = 0  # del acts on what is highlighted: never on nothing
        else:
            # Always in the Tab order, so the fields after it are reached by the same keys.
            ol.add_option(Option("   (no levels yet)", disabled=True))
        n = len(self.levels)
        count = "No levels yet" if not n else "1 level" if n == 1 else f"{n} levels"
        hint = f"{count}: enter adds one; del removes the one highlighted in the list."
        self.query_one("#alerts-hint", Label).update(hint)

    @on(SafeInput.Submitted, "#alerts-level")
    def _add(self, event: SafeInput.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.action_save()  # Enter in an empty level field: nothing to add, so save
            return
        try:
            level = parse_level(event.value)
        except ConfigError as exc:
            self.query_one("#alerts-hint", Label).update(plain(exc.msg))
            return
        if level not in self.levels:
            if len(self.levels) >= MAX_LEVELS:
                self.query_one("#alerts-hint", Label).update(
                    f"At most {MAX_LEVELS} levels per coin: remove one first."
                )
                return
            self.levels = sorted([*self.levels, level])
        self._refresh_levels()

    @on(SafeInput.Submitted, "#alerts-threshold")
    def _threshold_submitted(self, event: SafeInput.Submitted) -> None:
        event.stop()
        self.action_save()

    @on(OptionList.OptionSelected)
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_save()

    def action_delete_level(self) -> None:
        ol = self.query_one(OptionList)
        if self.focused is ol and ol.highlighted is not None and ol.highlighted < len(self.levels):
            del self.levels[ol.highlighted]
            self._refresh_levels()
            if self.levels:
                ol.focus()
            else:
                self.query_one("#alerts-level", SafeInput).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        self.after_keys(self._save)

    def _save(self) -> None:
        if not self.is_active:
            return  # already saved or cancelled by an earlier key
        text = self.query_one("#alerts-threshold", SafeInput).value
        try:
            threshold = parse_threshold(text)
        except ConfigError as exc:
            self.query_one("#alerts-hint", Label).update(
                plain(f"{exc.msg}: a chance is a percent from 1 to 99, or empty for off.")
            )
            return
        self.dismiss(
            AlertSettings(
                tuple(self.levels),
                self.query_one("#alerts-surprise", Toggle).value,
                self.query_one("#alerts-bell", Toggle).value,
                threshold,
                self.query_one("#alerts-desktop", Toggle).value,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
