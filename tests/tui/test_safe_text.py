"""Unit and property tests of tui.safe_text: foreign text loses its codes, keeps its letters."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tui.safe_text import ELLIPSIS, MAX_MARKS, clean, plain

# Pieces a hostile name, message or paste is made of; random text fills the gaps.
HOSTILE = (
    "[/x]",
    "[@click=app.quit]",
    "[b",
    "[bold red]x[/]",
    "[link=https://example.com]y[/link]",
    "\x1b]0;title\x07",
    "\x1b]8;;http://evil\x1b\\",
    "\x1b[2J",
    "\x1b[31m",
    "\x1b[10;1H",
    "\x1bc",
    "\x1b7",
    "\x1bP1$r\x1b\\",
    "\x9b2J",
    "\x9d0;t\x9c",
    "\x1b",
    "\x07",
    "\x00",
    "\x08",
    "\r",
    "\n",
    "\t",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00ad",
    "\ud800",
    "宽字符",
    "🐸",
    "👨‍👩‍👧",
    "e\u0301",
    "\u0301" * 12,
    "\u0e01\u0e34",
    "ａｂ",
    " ",
)
foreign = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6)), max_size=8).map(
    "".join
)


def bad_chars(text: str, *, newlines: bool = False) -> list[str]:
    """Characters that must never reach the terminal: controls, format characters, surrogates."""
    return [
        ch
        for ch in text
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and not (newlines and ch == "\n")
    ]


def test_escape_sequences_go_whole() -> None:
    assert clean("\x1b]0;pwned\x07Bitcoin") == "Bitcoin"
    assert clean("Bit\x1b]8;;http://evil\x1b\\coin") == "Bitcoin"
    assert clean("\x1b[2J\x1b[31mred\x1b[0m") == "red"
    assert clean("\x9b2Jrow\x9d0;t\x9c") == "row"
    assert clean("a\x1bcb") == "ab"
    assert clean("unterminated \x1b]0;title and the rest") == "unterminated "


def test_controls_bidi_and_zero_width_go_line_breaks_become_spaces() -> None:
    assert clean("a\u202eb\u2066c\u200bd\ufeffe\x00f\x7fg") == "abcdefg"
    assert clean("one\ntwo\r\nthree\tfour") == "one two  three four"
    assert clean("one\ntwo\r", newlines=True) == "one\ntwo "
    assert clean("lone \ud800 surrogate") == "lone  surrogate"


def test_markup_and_ordinary_text_are_kept_as_they_are() -> None:
    for text in ("[/x]", "[@click=app.quit]quit[/]", "[b", "Ethereum (ETH)", "宽 🐸 e\u0301"):
        assert clean(text) == text
        assert plain(text).plain == text
        assert not plain(text).spans  # nothing was taken for a style


def test_length_is_bounded_and_marks_are_capped() -> None:
    assert clean("x" * 300, 10) == "x" * 9 + ELLIPSIS
    assert len(clean("\x1b[2J" * 10_000 + "y" * 10_000)) <= 200
    assert clean("e" + "\u0301" * 50) == "e" + "\u0301" * MAX_MARKS
    assert clean(12345) == "12345"  # exceptions and paths are shown through str()


@settings(max_examples=400)
@given(text=foreign, limit=st.integers(1, 300), newlines=st.booleans())
def test_clean_leaves_nothing_the_terminal_would_act_on(
    text: str, limit: int, newlines: bool
) -> None:
    out = clean(text, limit, newlines=newlines)
    assert not bad_chars(out, newlines=newlines)
    assert "\x1b" not in out
    assert len(out) <= limit
    out.encode("utf-8")  # a lone surrogate cannot be written to the terminal
    assert clean(out, limit, newlines=newlines) == out  # cleaning twice changes nothing


@given(
    text=st.text(
        st.characters(exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Mn", "Me")), max_size=200
    )
)
def test_clean_text_passes_unchanged(text: str) -> None:
    assert clean(text) == text
