"""App-managed state in ``state.json`` (the watchlist of each world): read forgivingly, written
atomically under a lock, since live and demo instances may share the file.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from engine.atomic import write_atomic
from engine.ids import valid_coin_ids
from engine.settings.config import MAX_COINS
from engine.settings.jsonfile import keep_aside, move_aside, read_json, report
from engine.settings.locations import Locations

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 4_000_000  # a few watchlists of at most MAX_COINS ids each


def load_state(loc: Locations, problems: list[str] | None = None) -> dict[str, Any]:
    """App-managed state (the watchlists); never fatal. A file that cannot be read (bad JSON or
    UTF-8, nested too deep, too large, not an object) is moved aside to ``state.json.bad-TIME``
    before anything writes a new one, and one line saying so goes to ``problems``."""
    data = read_json(loc.state_file, "state file", problems, max_bytes=MAX_FILE_BYTES)
    if data is None or isinstance(data, dict):
        return data or {}
    aside = move_aside(loc.state_file)
    where = f"moved to {aside.name}" if aside else "left in place"
    report(problems, f"state file {loc.state_file.name} is not an object; {where}")
    return {}


def load_watchlist(loc: Locations, key: str, problems: list[str] | None = None) -> tuple[str, ...]:
    """The coins remembered under ``key`` in ``state.json``, without any entry that is not a valid
    coin id (an older version stored ids unchecked); dropped entries are logged, kept in a
    ``state.json.bad-TIME`` copy, and the file is rewritten without them."""
    ids, bad = valid_coin_ids(load_state(loc, problems).get(key))
    what: list[str] = []
    if bad:
        shown = ", ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")
        what.append(f"dropped {len(bad)} invalid coin ids from {key!r} ({shown})")
    if len(ids) > MAX_COINS:
        # An older version let a feed client add thousands; each would load a model at start.
        what.append(f"{key!r} holds {len(ids)} coins; keeping the first {MAX_COINS}")
        bad, ids = bad + ids[MAX_COINS:], ids[:MAX_COINS]
    if bad:
        aside = keep_aside(loc.state_file)
        where = f"the file as it was is kept as {aside.name}" if aside else "the file is unchanged"
        report(problems, f"state file {loc.state_file.name}: {'; '.join(what)}; {where}")
        try:
            update_state(loc, key, list(ids))
        except OSError as exc:  # a read-only data dir: the list is still cleaned in memory
            log.warning("cannot rewrite %s: %s", loc.state_file, exc.strerror or exc)
    return ids


def save_state(loc: Locations, state: dict[str, Any]) -> None:
    """Write ``state.json`` atomically."""
    write_atomic(loc.state_file, json.dumps(state, indent=2, sort_keys=True))


def update_state(loc: Locations, key: str, value: Any) -> None:
    """Set one key of ``state.json``; live and demo instances may share the file, so the
    read-modify-write runs under an exclusive lock and never loses the other's keys."""
    with open(loc.data_dir / ".state.lock", "a+", encoding="utf-8") as lock:
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except ImportError:  # no advisory locks on Windows; the rename is still atomic
            pass
        state = load_state(loc)
        state[key] = value
        save_state(loc, state)


__all__ = ["load_state", "load_watchlist", "save_state", "update_state"]
