"""One engine per data dir and world: an exclusive lock file that names the process holding it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from engine.errors import StoreError


def acquire_instance_lock(path: Path) -> IO[str] | None:
    """Hold an exclusive lock on the data dir, or raise StoreError naming the other process."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; SQLite's own locking still protects the file
        return None
    # Not a with-block: the lock lasts as long as this handle stays open (the engine closes it).
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        other = fh.read().strip() or "?"
        fh.close()
        raise StoreError(
            f"another cryptotui (pid {other}) is using {path.parent}; close it first, "
            "or use --home DIR for a separate data dir, or --connect to share its engine"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


__all__ = ["acquire_instance_lock"]
