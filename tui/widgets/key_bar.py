"""The key bar: the main screen's keys on one line, as Textual's compact Footer shows them, in one widget.

Textual's Footer is a scrolling container holding one widget per key (twelve here), styled one by
one and recomposed whenever the bindings change: mounting it was about a fifth of what the app's
start-up costs beyond a bare Textual app (bench/bench_start.py). This draws the same line (each
key, its description, a space between keys, keys that cannot act now dimmed, cropped at the
right edge) as one line of text. The keys are clickable and highlighted under the mouse, as in
the Footer.

It shows the keys of the screen in front: with a modal open, the modal's own keys ("esc/q Close"),
not the main screen's, which the modal does not run. A key that does not fit whole is left out.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widget import Widget


class KeyBar(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "key-bar--key",
        "key-bar--description",
        "key-bar--hover",
    }
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        text-wrap: nowrap;
        text-overflow: clip;
        color: $footer-foreground;
        background: $footer-background;
        &:hover { pointer: pointer; }
        & > .key-bar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-bar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-bar--hover {
            color: $footer-key-foreground;
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, Binding, bool]] = []  # cells start, end; binding; enabled
        self._hover: int | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def _bindings_changed(self, _screen: Any) -> None:
        self.refresh()

    def _screen_changed(self, screen: Any) -> None:
        if screen is not self.screen:
            screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.refresh()

    def keys(self) -> list[tuple[Binding, bool]]:
        """The keys shown, as the Footer picks them: bindings marked ``show`` that are active on
        the screen in front now (``check_action`` not False), the first binding of each action;
        on a modal, only the modal's own."""
        seen: set[str] = set()
        out: list[tuple[Binding, bool]] = []
        front = self.app.screen
        modal = front is not self.screen
        for node, binding, enabled, _tooltip in front.active_bindings.values():
            if modal and node is self.app:
                continue
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                out.append((binding, enabled))
        return out

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-bar--key")
        description_style = self.get_component_rich_style("key-bar--description")
        hover_style = self.get_component_rich_style("key-bar--hover")
        dim = Style(dim=True)
        text = Text(no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, Binding, bool]] = []
        width = self.size.width or 10_000
        for i, (binding, enabled) in enumerate(self.keys()):
            start = text.cell_len
            if (
                start + len(self.app.get_key_display(binding)) + 1 + len(binding.description)
                > width
            ):
                break
            ks, ds = (
                (key_style, description_style)
                if enabled
                else (key_style + dim, description_style + dim)
            )
            if i == self._hover:
                ks, ds = ks + hover_style, ds + hover_style
            text.append(self.app.get_key_display(binding), ks)
            text.append(" " + binding.description, ds)
            spans.append((start, text.cell_len, binding, enabled))
            text.append(" ")
        self._spans = spans
        return text

    def _index_at(self, x: int) -> int | None:
        for i, (start, end, _binding, _enabled) in enumerate(self._spans):
            if start <= x < end:
                return i
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        hover = self._index_at(event.x)
        if hover != self._hover:
            self._hover = hover
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        i = self._index_at(event.x)
        if i is None:
            return
        _start, _end, binding, enabled = self._spans[i]
        if enabled:
            self.app.simulate_key(binding.key)
        else:
            self.app.bell()
