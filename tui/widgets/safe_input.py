"""An ``Input`` that refuses control characters and escape sequences, however the text arrives,
and submits on Enter in the order the keys came."""

from __future__ import annotations

from textual import events
from textual.widgets import Input

from tui.safe_text import clean


class SafeInput(Input):
    """Typed keys are printable already; a paste is not, so every insertion is cleaned here.

    ``Input.replace`` is where typing, pasting and programmatic inserts all end up, so this is the
    one place to clean them (an escape sequence pasted into the search would otherwise be echoed
    to the terminal as the input draws its value).
    """

    def replace(self, text: str, start: int, end: int) -> None:
        room = len(text)
        if self.max_length:
            # A paste longer than the room left is cut to fit (Input would refuse it whole); the
            # cut also bounds the cleaning of a huge paste.
            room = max(0, self.max_length - len(self.value) + abs(end - start))
        # The limit is the text's own length: only codes are removed here, never an ellipsis added.
        cleaned = clean(text[: room * 4 + 64], max(1, len(text)))
        super().replace(cleaned[:room], start, end)

    async def on_key(self, event: events.Key) -> None:
        # Enter is Input's binding, resolved only once the key has bubbled up to the app: keys
        # typed after it (a fast typist, a burst from a terminal multiplexer) reached the field
        # first, and "7000<Enter>7400<Enter>" submitted "70007400". Handled here, in order.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            await self.action_submit()
