"""One rule for text the app did not write: it is shown as plain text, never as markup or codes.

Foreign text (typed, pasted, from CoinGecko, a remote engine, a source's error, a file or a path)
reaches the screen only through ``clean`` (a ``str`` without control characters, bounded) or
``plain`` (the same as a Rich ``Text``, which Textual never parses as markup). Where Textual
takes a ``str`` it would parse (``Label``, ``Static``, ``notify``, ``border_title``, ``Option``),
callers pass a ``Text`` or ``markup=False``.

What is removed, and why:
- terminal escape sequences (CSI, OSC, DCS, ... in their 7-bit and 8-bit forms), whole: written to
  the terminal they retitle it, clear rows or move the cursor; their parameters alone are noise;
- C0/C1 control characters, DEL: the same, one byte at a time (line breaks become spaces);
- Unicode format characters (bidi overrides and isolates, zero-width spaces and joiners, BOM) and
  lone surrogates: the first reorder or hide what is shown, a lone surrogate cannot be encoded and
  would end the app when written;
- combining marks beyond a few per character: a stack of them draws over the rows above and below.
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

# Long enough for any real coin name, status line or path; a hostile string is cut here.
DEFAULT_LIMIT = 200
ELLIPSIS = "…"
# Real scripts use up to about three marks on one letter (Vietnamese, Hebrew with points).
MAX_MARKS = 3

_ESCAPES = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [\ -/]* [@-~]?                  # CSI: cursor, erase, colours
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])               # OSC, DCS, SOS, PM, APC ...
      [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)?                #   ... up to BEL or ST (or the end)
    | \x1b [\ -/]* [0-~]?                                   # any other ESC sequence
    """,
    re.VERBOSE,
)
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")
_DROP = frozenset(("Cc", "Cf", "Cs"))


def clean(value: object, limit: int = DEFAULT_LIMIT, *, newlines: bool = False) -> str:
    """``value`` as text safe to show: no escape sequences or control characters, at most ``limit``
    characters (cut with an ellipsis). Line breaks become spaces unless ``newlines``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text  # the common case: plain ASCII, nothing to do
    # Bound the work before the scan: what is cut here would be cut below anyway (escapes aside).
    text = _ESCAPES.sub("", text[: limit * 4 + 64])
    out: list[str] = []
    marks = 0
    for ch in text:
        if ch in _BREAKS:
            out.append("\n" if newlines and ch == "\n" else " ")
            marks = 0
            continue
        category = unicodedata.category(ch)
        if category in _DROP:
            continue
        if category in ("Mn", "Me"):  # drawn over the character before (Mc has a cell of its own)
            marks += 1
            if marks > MAX_MARKS:
                continue
        else:
            marks = 0
        out.append(ch)
    result = "".join(out)
    if len(result) > limit:
        result = result[: max(0, limit - 1)] + ELLIPSIS
    return result


def plain(
    value: object, style: str = "", limit: int = DEFAULT_LIMIT, *, newlines: bool = False
) -> Text:
    """``clean(value)`` as a Rich ``Text``: shown literally wherever Textual or Rich take it."""
    return Text(clean(value, limit, newlines=newlines), style=style)
