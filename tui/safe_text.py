"""One rule for text the app did not write: it is shown as plain text, never as markup or codes.

Foreign text (typed, pasted, from CoinGecko, a remote engine, a source's error, a file or a path)
reaches the screen only through ``clean`` (a ``str`` without control characters, bounded) or
``plain`` (the same as a Rich ``Text``, which Textual never parses as markup). Where Textual
takes a ``str`` it would parse (``Label``, ``Static``, ``notify``, ``border_title``, ``Option``),
callers pass a ``Text`` or ``markup=False``.

``clean`` is the engine's rule (``engine.text``, where what is removed and why is listed): the
engine applies it where a remote engine's frames are decoded, the TUI again where it draws.
"""

from __future__ import annotations

from rich.text import Text

from engine.text import DEFAULT_LIMIT, ELLIPSIS, MAX_MARKS, clean


def plain(
    value: object, style: str = "", limit: int = DEFAULT_LIMIT, *, newlines: bool = False
) -> Text:
    """``clean(value)`` as a Rich ``Text``: shown literally wherever Textual or Rich take it."""
    return Text(clean(value, limit, newlines=newlines), style=style)


__all__ = ["DEFAULT_LIMIT", "ELLIPSIS", "MAX_MARKS", "clean", "plain"]
