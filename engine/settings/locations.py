"""Where things live: the config and data dirs, and per world (live, demo, each replay) its
database, models dir and UI state file. ``--home DIR`` (or ``CRYPTOTUI_HOME``) puts all under DIR.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ConfigError

APP = "cryptotui"

# Worlds kept apart: live data, the bundled demo, and each replay (named by its files' identity).
# Each has its own database, models dir, watchlist and UI state, so nothing replayed is ever shown
# or learned from as live.
LIVE = "live"
DEMO = "demo"
_WORLD = re.compile(r"live|demo|replay-[0-9a-f]{16}")


def _world(world: str | bool) -> str:
    if isinstance(world, bool):  # the older signature: demo or not
        return DEMO if world else LIVE
    # A world names files: only the shapes made here are accepted.
    if not _WORLD.fullmatch(world):
        raise ValueError(f"not a world name: {world!r}")
    return world


def replay_world(coins: tuple[str, ...], files: tuple[Path, ...]) -> str:
    """The world of a replay: a hash of which (checked) coin each file plays and of each file's
    content, so the same files resume their own store, and different ones never mix.

    By content (SHA-256 of the bytes), not by path or modification time: a file rewritten in
    place with another coin's rows must be a new world (else one model learns two coins'
    prices), and copy tools keep modification times (``cp -p``, ``rsync -t``, ``tar``) while
    sizes can match. Hashing reads the file once at start (about 1 s per GB; replays are MBs).
    """
    import hashlib

    identity = "\n".join(
        sorted(f"{coin}={_content_hash(Path(f))}" for coin, f in zip(coins, files, strict=False))
    )
    return "replay-" + hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:16]


_HASHES: dict[tuple[str, int, int, int, int], str] = {}


def _content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes; the resolved path when it cannot be read (the replay reports
    that). Remembered within one run by path, size, inode and both times: the change time is set
    by the kernel on every write and no copy tool can set it back, so a rewrite is hashed again."""
    import hashlib

    try:
        resolved = path.expanduser().resolve()
        st = resolved.stat()
        key = (str(resolved), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        if key not in _HASHES:
            digest = hashlib.sha256()
            with open(resolved, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            _HASHES[key] = digest.hexdigest()
        return _HASHES[key]
    except OSError:
        return f"unreadable:{path}"


@dataclass(frozen=True)
class Locations:
    """Where things live. ``--home DIR`` puts everything under DIR."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Locations:
        home = home or os.environ.get("CRYPTOTUI_HOME") or None
        if home:
            root = Path(home).expanduser()
            return cls(config_dir=root, data_dir=root)
        import platformdirs  # only without --home: it costs a few ms of start-up

        return cls(
            config_dir=Path(platformdirs.user_config_dir(APP)),
            data_dir=Path(platformdirs.user_data_dir(APP)),
        )

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    def database(self, world: str | bool = LIVE) -> Path:
        """The world's database: live, demo (``True``) or a replay's own ``replay-HASH``."""
        world = _world(world)
        names = {LIVE: "cryptotui.sqlite3", DEMO: "demo.sqlite3"}
        return self.data_dir / names.get(world, f"{world}.sqlite3")

    def models_dir(self, world: str | bool = LIVE) -> Path:
        world = _world(world)
        return self.data_dir / ("models" if world == LIVE else f"models-{world}")

    def ui_file(self, world: str | bool = LIVE) -> Path:
        """The TUI's remembered preferences (selected coin, alert levels) of a world."""
        world = _world(world)
        return self.data_dir / ("ui.json" if world == LIVE else f"ui-{world}.json")

    @property
    def log_file(self) -> Path:
        return self.data_dir / "cryptotui.log"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    def ensure(self) -> None:
        """Create the data dir, or raise ConfigError saying why it cannot be used."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise ConfigError(f"cannot write to data dir {self.data_dir}: {reason}") from None
        self.remove_stale_temps()

    def remove_stale_temps(self) -> int:
        """Remove what interrupted atomic writes left behind (a kill -9 in the middle of saving
        holdings, a checkpoint or an export leaves a full hidden temp copy); how many."""
        from engine.atomic import remove_stale_temps

        folders = [self.data_dir, self.exports_dir, *self.data_dir.glob("models*")]
        removed = [p for folder in folders if folder.is_dir() for p in remove_stale_temps(folder)]
        if removed:
            import logging

            logging.getLogger(__name__).info(
                "removed %d temp files of unfinished writes: %s",
                len(removed),
                ", ".join(p.name for p in removed[:5]),
            )
        return len(removed)


__all__ = ["APP", "DEMO", "LIVE", "Locations", "replay_world"]
