"""Settings: defaults, the user's TOML config file, environment variables and options, in that order.

The config file is the user's: it is read, never rewritten. State the app changes (the watchlist,
alerts) lives in the data dir, in ``state.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.ids import coin_id, valid_coin_ids

log = logging.getLogger(__name__)

APP = "cryptotui"
DEFAULT_COINS = ("bitcoin", "ethereum", "solana")
DEMO_COINS = ("bitcoin", "ethereum", "litecoin")
DEFAULT_HORIZONS = (1, 5, 15, 60)
MAX_COINS = 100  # one engine tracks tens of coins (DESIGN: Scale); more is a mistake or an attack
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

PUBLIC_API = "https://api.coingecko.com/api/v3"
PRO_API = "https://pro-api.coingecko.com/api/v3"
KRAKEN_WS = "wss://ws.kraken.com/v2"


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
    """The world of a replay: a hash of which file plays which (checked) coin, so the same files
    resume their own store, and different ones never mix."""
    import hashlib

    identity = "\n".join(sorted(f"{coin}={Path(f).expanduser().resolve()}"
                                for coin, f in zip(coins, files)))
    return "replay-" + hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:16]


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


@dataclass(frozen=True)
class Settings:
    """Every engine setting: defaults, then the config file, the environment and the command line."""

    coins: tuple[str, ...] = DEFAULT_COINS
    vs: str = "usd"
    source: str = "coingecko"  # "coingecko" | "kraken" | "replay"
    demo: bool = False
    replay_files: tuple[Path, ...] = ()
    replay_coins: tuple[str, ...] = ()  # the coin each replay file stands for
    speed: float = 10.0  # replay minutes per second
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    api_url: str | None = None  # None: chosen by plan
    api_key: str | None = field(default=None, repr=False)
    api_plan: str = "demo"  # "demo" | "pro" (keyless is "demo" without a key)
    kraken_url: str = KRAKEN_WS
    poll_seconds: float = 60.0
    calls_per_minute: int | None = None  # None: plan default
    calls_per_month: int | None = None
    log_level: str = "INFO"
    connect: str | None = None
    token: str | None = field(default=None, repr=False)
    shared_model: bool = False

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url.rstrip("/")
        return PRO_API if self.api_plan == "pro" else PUBLIC_API

    @property
    def mode(self) -> str:
        if self.connect:
            return "REMOTE"
        return "DEMO" if self.demo or self.source == "replay" else "LIVE"

    @property
    def world(self) -> str:
        """Which store and models this engine uses (see ``Locations.database``)."""
        if self.demo:
            return DEMO
        if self.source == "replay":
            return replay_world(self.replay_coins, self.replay_files)
        return LIVE


_FILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "coins": list,
    "vs": str,
    "source": str,
    "speed": (int, float),
    "horizons": list,
    "api_url": str,
    "api_key": str,
    "api_plan": str,
    "kraken_url": str,
    "poll_seconds": (int, float),
    "calls_per_minute": int,
    "calls_per_month": int,
    "log_level": str,
    "shared_model": bool,
}


def _toml_line(text: str, key: str) -> int | None:
    # A bare or quoted key at the start of a line; "vs" must not match "vs_extra = ...".
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i
    return None


def _decode_error_line(text: str, exc: Exception) -> str:
    # Python 3.11's tomllib says "at end of document" without a line number; name the last line.
    message = str(exc)
    if "at end of document" in message:
        return f"{message}, line {max(1, len(text.splitlines()))}"
    return message


MAX_SPEED = 1_000_000  # replay minutes per second; beyond it pacing means nothing
MAX_POLL_SECONDS = 86_400  # a poll a day; longer would overflow a sleep's timeout


def speed_problem(value: float) -> str | None:
    """Why a replay speed is unusable, or None: one rule for the config file and ``--speed``."""
    if not (math.isfinite(value) and 0 < value < MAX_SPEED):
        return f"must be a number > 0 and below {MAX_SPEED} (minutes per second)"
    return None


def vs_problem(value: str) -> str | None:
    """Why a quote currency is unusable, or None: one rule for the config file and ``--vs``."""
    if not (value.strip() and value.strip().isascii() and value.strip().isalnum()):
        return "expected a currency code like usd"
    return None


def _check_value(key: str, value: Any) -> str | None:
    """Why a (well-typed) config value is unusable, or None."""
    if key == "speed":
        return speed_problem(value)
    if key == "poll_seconds":
        if not (math.isfinite(value) and 0 < value <= MAX_POLL_SECONDS):
            return f"must be a number > 0 and at most {MAX_POLL_SECONDS}"
    elif key in ("calls_per_minute", "calls_per_month") and value < 1:
        return "must be at least 1"
    elif key == "log_level" and value.upper() not in LOG_LEVELS:
        return f"expected one of {', '.join(LOG_LEVELS)}"
    elif key == "api_plan" and value.strip().lower() not in ("demo", "pro"):
        return "expected demo or pro"
    elif key == "source" and value not in ("coingecko", "kraken", "replay"):
        return "expected coingecko, kraken or replay"
    elif key == "vs":
        return vs_problem(value)
    elif key == "api_url" and not value.startswith(("http://", "https://")):
        return "expected an http:// or https:// URL"
    elif key == "kraken_url" and not value.startswith(("ws://", "wss://")):
        return "expected a ws:// or wss:// URL"
    elif key == "api_key" and (not value or any(ch.isspace() or not ch.isprintable() for ch in value)):
        # Never echo the value: it is a secret.
        return "must be a non-empty key without spaces or control characters"
    return None


def load_config_file(path: Path) -> dict[str, Any]:
    """Read the user's TOML config; raise ConfigError naming the file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
    import tomllib  # only when there is a file: a few ms of start-up otherwise

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {_decode_error_line(text, exc)}") from None
    section = data.get("cryptotui", data)
    if not isinstance(section, dict):
        line = _toml_line(text, "cryptotui")
        where = f"{path}" + (f", line {line}" if line else "")
        raise ConfigError(f"{where}: key 'cryptotui' must be a table ([cryptotui])")
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key == "cryptotui" or key == "alerts":
            continue
        expected = _FILE_KEYS.get(key)
        line = _toml_line(text, key)
        where = f"{path}" + (f", line {line}" if line else "")
        if expected is None:
            raise ConfigError(f"{where}: unknown key {key!r}")
        if not isinstance(value, expected) or isinstance(value, bool) and expected is not bool:
            raise ConfigError(f"{where}: key {key!r} has the wrong type ({type(value).__name__})")
        try:
            if key == "coins":
                parse_coins(value)
            elif key == "horizons":
                parse_horizons(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: key {key!r}: {exc.msg}") from None
        problem = _check_value(key, value)
        if problem:
            raise ConfigError(f"{where}: key {key!r} {problem}")
        if key == "log_level":
            value = value.upper()
        elif key == "api_plan":
            value = value.strip().lower()
        out[key] = value
    return out


def check_permissions(path: Path) -> str | None:
    """A warning when the config file holds an API key and others may read it, else None.

    The CLI calls this once at start and shows the message; nothing is changed on disk (the file
    is the user's).
    """
    if os.name != "posix":
        return None  # NTFS ACLs do not map to mode bits
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not mode & 0o077:
        return None
    import tomllib

    try:
        data = tomllib.loads(text)
        section = data.get("cryptotui", data)
        has_key = isinstance(section, dict) and bool(section.get("api_key"))
    except tomllib.TOMLDecodeError:
        # Unparsable files are reported elsewhere; still warn if a key seems to be in there.
        has_key = _toml_line(text, "api_key") is not None
    if not has_key:
        return None
    who = "everyone" if mode & 0o007 else "your group"
    return (
        f"{path} holds an API key and is readable by {who} (mode {stat.S_IMODE(mode):o}); "
        f"run: chmod 600 {path}"
    )


def parse_coins(value: str | list[Any]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    coins = tuple(dict.fromkeys(coin_id(c) for c in items if c.strip()))
    if not coins:
        raise ConfigError("no coins given")
    return coins


def parse_horizons(value: str | list[Any]) -> tuple[int, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    try:
        hs = tuple(sorted({int(str(h).strip()) for h in items if str(h).strip()}))
    except ValueError:
        raise ConfigError(f"invalid horizons {value!r}: expected minutes like 1,5,15,60") from None
    if not hs or any(h < 1 or h > 1440 for h in hs):
        raise ConfigError(f"invalid horizons {value!r}: each must be 1..1440 minutes")
    return hs


def settings_from(file_values: dict[str, Any], env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Merge config file values, environment and explicit overrides (None means not given)."""
    env = dict(os.environ if env is None else env)
    s = Settings()
    vals: dict[str, Any] = {}
    for key, value in file_values.items():
        if key == "coins":
            vals["coins"] = parse_coins(value)
        elif key == "horizons":
            vals["horizons"] = parse_horizons(value)
        else:
            vals[key] = value
    if env.get("COINGECKO_API_KEY"):
        vals["api_key"] = env["COINGECKO_API_KEY"]
    if env.get("COINGECKO_API_PLAN"):
        vals["api_plan"] = env["COINGECKO_API_PLAN"].strip().lower()
    if env.get("COINGECKO_API_URL"):
        vals["api_url"] = env["COINGECKO_API_URL"]
    for key, value in overrides.items():
        if value is not None:
            vals[key] = value
    s = replace(s, **vals)
    if s.api_plan not in ("demo", "pro"):
        raise ConfigError(f"invalid API plan {s.api_plan!r}: expected demo or pro")
    if s.source not in ("coingecko", "kraken", "replay"):
        raise ConfigError(f"invalid source {s.source!r}: expected coingecko, kraken or replay")
    problem = speed_problem(s.speed)
    if problem:
        raise ConfigError(f"invalid speed {s.speed!r}: {problem}")
    return s


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
        log.warning("%s: dropped %d invalid coin ids from %r: %s", loc.state_file, len(bad), key,
                    ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    if len(ids) > MAX_COINS:
        # An older version let a feed client add thousands; each would load a model at start.
        log.warning("%s: %r holds %d coins; keeping the first %d", loc.state_file, key, len(ids),
                    MAX_COINS)
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
