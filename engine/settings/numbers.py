"""Numbers from outside the code: the one rule for a number read from a file, and the one parser
for a number a person types (amounts, costs, alert levels).

A file is foreign input even when the app wrote it (a hand edit, a damaged disk, an older version):
every number read from ``holdings*.json``, ``ui*.json``, ``state.json`` or ``config.toml`` goes
through ``file_number``. JSON and TOML give Python ints of any size, and floats that overflowed
to infinity: ``math.isfinite(10**400)`` raises OverflowError and ``float('1e999')`` is ``inf``, so
the checks are done without ever converting an int to float first.

What a person types goes through ``parse_user_number``: ``1,5`` is a decimal comma in half of the
world and a typo in the other half, so it is refused with a hint rather than read as 15.
"""

from __future__ import annotations

import math
import re

from engine.errors import ConfigError

# Beyond any real amount, price or count, and small enough that products of two stay finite.
MAX_FILE_INT = 10**15
MAX_FILE_NUMBER = 1e15

NUMBER_HINT = "use . for decimals; commas only between groups of three digits, as in 1,250.5"

# ASCII digits only (``float`` also takes Arabic-Indic and full-width digits, and ``1_000``).
_PLAIN = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def file_number(
    value: object,
    *,
    low: float = -MAX_FILE_NUMBER,
    high: float = MAX_FILE_NUMBER,
    integer: bool = False,
) -> int | float | None:
    """``value`` if it is a usable number read from a file, else None.

    Usable: an int or a float (a bool is not a number), finite, within ``low``..``high``; an int of
    more than 1e15 in size is refused whatever the bounds (no real figure is that large, and
    converting it to float would overflow or lose digits). ``integer``: only an int will do.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        if not -MAX_FILE_INT <= value <= MAX_FILE_INT:
            return None
    elif integer or not math.isfinite(value):
        return None
    return value if low <= value <= high else None


def number_problem(
    value: object,
    *,
    low: float = -MAX_FILE_NUMBER,
    high: float = MAX_FILE_NUMBER,
    integer: bool = False,
) -> str | None:
    """Why ``value`` is not a usable file number (``file_number``'s rule, in words), or None."""
    if file_number(value, low=low, high=high, integer=integer) is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, not {type(value).__name__}"
    if integer and not isinstance(value, int):
        return "must be a whole number"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and abs(value) > MAX_FILE_INT:
        return f"is too large (more than {MAX_FILE_NUMBER:g})"
    return f"must be within {low:g}..{high:g}"


def parse_user_number(
    text: str, what: str, limit: float, *, positive: bool = False, minimum: float = 0.0
) -> float:
    """A number as a person types it, or ConfigError with one line saying why and how to type it.

    Accepted: ``1250.5``, ``1,250.5`` (commas only between groups of three digits), ``.5``,
    ``2e-3``; surrounding spaces are ignored. Refused with a hint: ``1,5``, ``1,,,2``, ``1.2.3``,
    ``1_000``, ``1 250``, words, ``nan``, ``inf``. The value must be finite, at least ``minimum``
    (above it when ``positive``) and at most ``limit``. The message names ``what`` and repeats the
    input (cut to 40 characters), so a dialog shows one clear line.
    """
    raw = text.strip() if isinstance(text, str) else ""
    shown = raw if len(raw) <= 40 else f"{raw[:40]}..."
    if not raw:
        raise ConfigError(f"{what} is empty: type a number such as 1,250.5")
    if _GROUPED.fullmatch(raw):
        raw = raw.replace(",", "")
    elif not _PLAIN.fullmatch(raw):
        if raw[:1] == "-" and _PLAIN.fullmatch(raw[1:].replace(",", "")):
            raise ConfigError(f"{what} {shown!r} is negative: it must be {minimum:g} or more")
        if any(c in raw for c in ",._ ") and any(c.isdigit() for c in raw):
            raise ConfigError(f"{what} {shown!r} is not a number as typed: {NUMBER_HINT}")
        raise ConfigError(f"{what} {shown!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ConfigError(f"{what} {shown!r} is too large (at most {limit:g})")
    if value > limit:
        raise ConfigError(f"{what} {shown!r} is too large (at most {limit:g})")
    if positive and value <= minimum:
        raise ConfigError(f"{what} {shown!r} must be more than {minimum:g}")
    if value < minimum:
        raise ConfigError(f"{what} {shown!r} is too small (at least {minimum:g})")
    return value + 0.0  # -0.0 would print as "-0"


__all__ = [
    "MAX_FILE_INT",
    "MAX_FILE_NUMBER",
    "NUMBER_HINT",
    "file_number",
    "number_problem",
    "parse_user_number",
]
