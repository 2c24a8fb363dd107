"""Pieces of the app's dialogs: the dialog screen, a switch that leaves Enter to it, a box that
scrolls."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from textual import events
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox


class Toggle(Checkbox, inherit_bindings=False):
    """``Checkbox`` whose only key is space: Textual's binds Enter too, which would make "type,
    Tab, Enter" toggle the box instead of saving the dialog. Compact (one row) by default.

    Space is handled as the key arrives, not as a binding: a binding is resolved once the key has
    bubbled up to the app, against whatever has the focus then, so in a burst ("space, Tab, space")
    both spaces toggled the second box."""

    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, label: str, value: bool = False, *, id: str | None = None) -> None:
        super().__init__(label, value, id=id, compact=True)

    def on_key(self, event: events.Key) -> None:
        if event.key == "space":
            event.stop()
            event.prevent_default()
            self.toggle()


class DialogBox(VerticalScroll, can_focus=False):
    """A dialog's box: it scrolls (a focused field is scrolled into view) on a short terminal, but
    is not itself a stop on the Tab key's way round the fields."""


ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    """A modal dialog whose Tab and shift+Tab move the focus before the next key is read.

    Textual hands a key to the focused widget and resolves a binding when the key has bubbled up
    to the screen; keys that arrive in one burst (a fast typist, a paste, a terminal multiplexer)
    have all been handed to the first field by then, so "0.5<Tab>3000" typed quickly stored 0.53
    in the amount. As priority bindings, the app resolves Tab and shift+Tab at once, in order.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def after_keys(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once the keys already typed have reached their fields.

        Each field handles its keys in its own queue: Enter on a switch may reach the dialog
        before the digits typed into a field above it were handled. After the next refresh,
        which comes when the app is idle, every field holds what was typed."""
        self.call_after_refresh(callback)
