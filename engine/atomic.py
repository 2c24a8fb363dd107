"""One way to write a file atomically: temp file beside it, fsync, rename, fsync the folder.

A kill -9 or a power cut at any instant leaves either the old file or the new one, never half of
either. Every file the app writes for itself (checkpoints, state, holdings, the request budget,
UI preferences, CSV exports) goes through here.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
import time
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


_TEMP = re.compile(r"\..+\.(\d+)\.\d+\.tmp")
# A temp file of a writer that is still alive but this old is left behind by a bug, not a write.
STALE_AFTER = 24 * 3600.0


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's process, or a platform that cannot tell: leave it
    return True


def remove_stale_temps(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the temp files of atomic writes that never finished (a kill -9 or a power cut in
    the middle of one: a full hidden copy of a checkpoint, holdings or export); the removed paths.

    A temp file is stale when the process that wrote it is gone, or when it is older than a day.
    Only names of ``_temp_for``'s shape are touched.
    """
    removed: list[Path] = []
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.fullmatch(entry.name)
        if m is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
            if old or not _alive(int(m.group(1))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except (OSError, ValueError):
            continue
    return removed


def _create(tmp: Path, mode: int | None) -> IO[bytes]:
    if mode is None:
        return open(tmp, "wb")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits off; never added any
    except (OSError, AttributeError):  # no fchmod on Windows
        pass
    return os.fdopen(fd, "wb")


def _check_target(path: Path) -> None:
    # A rename replaces whatever has the name: as root, "--out /dev/full" would replace the
    # device itself. Only regular files (or new names) are ever replaced.
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (will not replace it)", str(path))


@contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text handle whose contents replace ``path`` only when the block ends without error.

    On any error (a full disk, an exception in the block) the temp file is removed and ``path`` is
    left untouched. ``path`` must be a regular file or a new name (OSError otherwise).
    """
    path = Path(path)
    _check_target(path)
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


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8); raises OSError on failure.

    ``mode`` (e.g. 0o600 for private files): the temp file is created with it, so the data is
    never readable by others, not even for the moment before the rename.
    """
    path = Path(path)
    _check_target(path)
    tmp = _temp_for(path)
    try:
        with _create(tmp, mode) as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


__all__ = ["atomic_text", "remove_stale_temps", "write_atomic"]
