"""An ``Input`` that refuses control characters and escape sequences, however the text arrives."""

from __future__ import annotations

from textual.widgets import Input

from tui.safe_text import clean


class SafeInput(Input):
    """Typed keys are printable already; a paste is not, so every insertion is cleaned here.

    ``Input.replace`` is where typing, pasting and programmatic inserts all end up, so this is the
    one place to clean them (an escape sequence pasted into the search would otherwise be echoed
    to the terminal as the input draws its value).
    """

    def replace(self, text: str, start: int, end: int) -> None:
        # A limit as long as the text: Input's own max_length bounds the value.
        super().replace(clean(text, max(1, len(text))), start, end)
