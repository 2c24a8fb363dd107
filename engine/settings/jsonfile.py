"""The app's own JSON files (holdings, UI state, state.json), read so that none is ever lost.

A file that cannot be read (bad JSON, bad UTF-8, nested deeper than ``MAX_DEPTH``, larger than its
bound, not the expected shape) is moved aside to ``NAME.bad-YYYYmmdd-HHMMSS`` at once, before
anything can write over it, and the reader gets one human line saying so (the TUI shows it as a
notification, ``serve`` and ``export`` print it on stderr). A file whose entries were partly
refused is copied aside the same way (``keep_aside``), so what was dropped is kept too.

The depth is checked before ``json.loads`` (whose C parser recurses once per level): JSON nested
100,000 deep is a refusal in one line, never a RecursionError.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# The app's files are at most four levels deep; 32 leaves room for a later version's shape.
MAX_DEPTH = 32
# Strings (with their escapes) are skipped whole: a "[" inside one is not a level.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class Unreadable(Exception):
    """Why a file could not be read, in words (``str``) for the one-line report."""


def depth_problem(data: bytes, limit: int = MAX_DEPTH) -> str | None:
    """Why ``data`` nests too deeply to be parsed safely, or None (a linear scan, no recursion)."""
    depth = 0
    for m in _TOKENS.finditer(data):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return f"nested more than {limit} levels deep"
        elif tok in (b"]", b"}"):
            depth -= 1
    return None


def parse_json(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``data``, or Unreadable saying why (bad UTF-8, bad JSON, too deep)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text (byte {exc.start})") from None
    deep = depth_problem(data, max_depth)
    if deep:
        raise Unreadable(deep)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Unreadable(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        # ValueError: an integer of more than 4,300 digits (Python's own guard).
        raise Unreadable(f"not valid JSON: {str(exc)[:80]}") from None


def aside_name(path: Path, now: float | None = None) -> Path:
    """``NAME.bad-YYYYmmdd-HHMMSS`` beside ``path`` (with a counter if that name is taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    candidate = path.with_name(f"{path.name}.bad-{stamp}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bad-{stamp}-{n}")
        n += 1
    return candidate


def move_aside(path: Path) -> Path | None:
    """Rename ``path`` to its ``.bad-TIME`` name; the new path, or None if it could not be moved."""
    target = aside_name(path)
    try:
        os.replace(path, target)
    except OSError as exc:
        log.error("cannot move %s aside: %s", path, exc.strerror or exc)
        return None
    return target


def keep_aside(path: Path) -> Path | None:
    """Copy ``path`` to its ``.bad-TIME`` name (the original stays); the copy, or None."""
    target = aside_name(path)
    try:
        shutil.copy2(path, target)
    except OSError as exc:
        log.error("cannot copy %s aside: %s", path, exc.strerror or exc)
        return None
    return target


def read_json(path: Path, what: str, problems: list[str] | None, *, max_bytes: int) -> Any:
    """The JSON value of the file at ``path``; None when it is missing or unreadable.

    An unreadable file (too large, bad UTF-8, bad JSON, too deep) is moved aside and one line
    naming both files goes to ``problems`` (and the log). A file that cannot even be opened
    (permissions) is left where it is: nothing will overwrite what could not be read.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Unreadable(f"larger than {max_bytes // 1_000_000 or 1} MB ({size:,} bytes)")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise Unreadable(f"larger than {max_bytes:,} bytes")
        return parse_json(data)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        report(problems, f"{what} {path} is a folder, not a file: it was not read")
        return None
    except OSError as exc:
        report(problems, f"cannot read {what} {path}: {exc.strerror or exc}; it was left as it is")
        return None
    except Unreadable as exc:
        aside = move_aside(path)
        where = f"moved to {aside.name}" if aside else "left in place (could not be moved)"
        report(
            problems, f"{what} {path.name} could not be read ({exc}); {where}, starting without it"
        )
        return None


def report(problems: list[str] | None, line: str) -> None:
    """One problem line: to the sink the caller gave, and to the log."""
    log.warning("%s", line)
    if problems is not None:
        problems.append(line)


__all__ = [
    "MAX_DEPTH",
    "Unreadable",
    "aside_name",
    "depth_problem",
    "keep_aside",
    "move_aside",
    "parse_json",
    "read_json",
    "report",
]
