"""Pieces of the app's dialogs: a switch that leaves Enter to the dialog, a box that scrolls."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Checkbox


class Toggle(Checkbox, inherit_bindings=False):
    """``Checkbox`` whose only key is space: Textual's binds Enter too, which would make "type,
    Tab, Enter" toggle the box instead of saving the dialog. Compact (one row) by default."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_button", "Toggle", show=False)
    ]

    def __init__(self, label: str, value: bool = False, *, id: str | None = None) -> None:
        super().__init__(label, value, id=id, compact=True)


class DialogBox(VerticalScroll, can_focus=False):
    """A dialog's box: it scrolls (a focused field is scrolled into view) on a short terminal, but
    is not itself a stop on the Tab key's way round the fields."""
