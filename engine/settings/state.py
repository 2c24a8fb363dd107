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
from engine.settings.locations import Locations

log = logging.getLogger(__name__)


def load_state(loc: Locations) -> dict[str, Any]:
    """App-managed state (watchlist, alerts); a damaged file is ignored, never fatal."""
    try:
        data = json.loads(loc.state_file.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def load_watchlist(loc: Locations, key: str) -> tuple[str, ...]:
    """The coins remembered under ``key`` in ``state.json``, without any entry that is not a valid
    coin id (an older version stored ids unchecked); dropped entries are logged and the file is
    rewritten without them."""
    ids, bad = valid_coin_ids(load_state(loc).get(key))
    if bad:
        log.warning(
            "%s: dropped %d invalid coin ids from %r: %s",
            loc.state_file,
            len(bad),
            key,
            ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""),
        )
    if len(ids) > MAX_COINS:
        # An older version let a feed client add thousands; each would load a model at start.
        log.warning(
            "%s: %r holds %d coins; keeping the first %d", loc.state_file, key, len(ids), MAX_COINS
        )
        bad, ids = bad + ids[MAX_COINS:], ids[:MAX_COINS]
    if bad:
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
