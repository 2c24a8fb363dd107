"""One way to write a file atomically: temp file beside it, fsync, rename, fsync the folder.

A kill -9 or a power cut at any instant leaves either the old file or the new one, never half of
either. Every file the app writes for itself (checkpoints, state, holdings, the request budget,
UI preferences, CSV exports) goes through here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _sync_folder(folder: Path) -> None:
    # The rename itself survives a power cut only once the folder is synced too.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a folder; the data is already on disk
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_for(path: Path) -> Path:
    # Named after this process and thread, so two writers never share a temp file.
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text handle whose contents replace ``path`` only when the block ends without error.

    On any error (a full disk, an exception in the block) the temp file is removed and ``path`` is
    left untouched.
    """
    path = Path(path)
    tmp = _temp_for(path)
    try:
        # newline="": CSV writers choose their own line ends; JSON has none to translate.
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8); raises OSError on failure."""
    path = Path(path)
    tmp = _temp_for(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


__all__ = ["atomic_text", "write_atomic"]
