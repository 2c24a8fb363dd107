"""One rule for text the app did not write (a remote engine's frames, a server's words, a file, a
path): a ``str`` without escape sequences or control characters, bounded in length.

The engine applies it where foreign text comes in (``engine.feed.codec.decode_foreign``: every
string of every frame a remote engine sends); the TUI applies the same function where it draws
(``tui.safe_text``, which adds the Rich ``Text`` wrapping that keeps markup from being parsed).

What is removed, and why:
- terminal escape sequences (CSI, OSC, DCS, ... in their 7-bit and 8-bit forms), whole: written to
  the terminal they retitle it (OSC 0/2), set the clipboard (OSC 52), make links (OSC 8), clear
  rows or move the cursor (CSI); their parameters alone are noise;
- C0/C1 control characters (BEL among them), DEL: the same, one byte at a time (line breaks
  become spaces);
- Unicode format characters (bidi overrides and isolates, zero-width spaces and joiners, BOM) and
  lone surrogates: the first reorder or hide what is shown, a lone surrogate cannot be encoded and
  would end the app when written;
- combining marks beyond a few per character: a stack of them draws over the rows above and below.

Markup (``[red]``, ``[link=...]``) is not removed: it is harmless characters once the UI renders
foreign text as ``Text`` (it does, everywhere), and a coin may well be called "[X]".
"""

from __future__ import annotations

import re
import unicodedata

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


# Control characters other than the line ends and tab that a CSV may hold; format characters too.
_LINE_CONTROLS = dict.fromkeys(
    [
        *range(0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        *range(0x7F, 0xA0),
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        0xFEFF,
    ]
)


def clean_lines(text: str) -> str:
    """Foreign text kept as lines (a CSV from a remote engine, written to a file the user may
    ``cat``): escape sequences and control characters removed, line ends and tabs kept, no bound
    on length (the caller bounds it)."""
    if text.isascii() and text.isprintable():
        return text
    return _ESCAPES.sub("", text).translate(_LINE_CONTROLS)


__all__ = ["DEFAULT_LIMIT", "ELLIPSIS", "MAX_MARKS", "clean", "clean_lines"]
