"""Settings: defaults, the user's TOML config file, environment variables and options, in that order.

The config file is the user's: it is read, never rewritten. State the app changes (the watchlist)
lives in the data dir, in ``state.json`` (``engine.settings.state``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import ConfigError
from engine.settings.locations import DEMO, LIVE, replay_world
from engine.settings.numbers import number_problem

log = logging.getLogger(__name__)

DEFAULT_COINS = ("bitcoin", "ethereum", "solana")
DEMO_COINS = ("bitcoin", "ethereum", "litecoin")
DEFAULT_HORIZONS = (1, 5, 15, 60)
MAX_COINS = 100  # one engine tracks tens of coins; more is a mistake or an attack
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SOURCES = ("coingecko", "kraken", "replay")  # the values of --source and the file's ``source``
# The schemes a URL of each kind may have (CoinGecko's REST API; Kraken's and our own WebSockets).
URL_SCHEMES = {"http": ("http", "https"), "ws": ("ws", "wss")}

PUBLIC_API = "https://api.coingecko.com/api/v3"
PRO_API = "https://pro-api.coingecko.com/api/v3"
KRAKEN_WS = "wss://ws.kraken.com/v2"


@dataclass(frozen=True)
class Settings:
    """Every engine setting: defaults, then the config file, the environment and the command line."""

    coins: tuple[str, ...] = DEFAULT_COINS
    vs: str = "usd"
    source: str = "coingecko"  # one of SOURCES
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


CURRENCY_MAX = 10  # CoinGecko's vs currencies are 3-4 letters (usd, eur, btc, sats)
_CURRENCY = re.compile(rf"[a-z]{{1,{CURRENCY_MAX}}}")


def currency_problem(value: object) -> str | None:
    """Why a currency code is unusable, or None: the one rule for ``--vs``, the config file, a
    holding's currency and a remote engine's ``vs_currency`` (a short a-z code; case and
    surrounding spaces are forgiven)."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.strip().lower()):
        return f"expected a currency code like usd (letters a-z, at most {CURRENCY_MAX})"
    return None


def vs_problem(value: str) -> str | None:
    """Why a quote currency is unusable, or None: one rule for the config file and ``--vs``."""
    return currency_problem(value)


_SOURCES_EXPECTED = f"expected {', '.join(SOURCES[:-1])} or {SOURCES[-1]}"


def url_problem(value: str, kind: str) -> str | None:
    """Why ``value`` is not a URL of ``kind`` ("http" or "ws"), or None; the one rule for the
    config file, the environment and every option that takes a URL."""
    schemes = URL_SCHEMES[kind]
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return f"expected {' or '.join(f'{s}://' for s in schemes)}HOST"
    if parts.scheme.lower() not in schemes or not host:
        return f"expected {' or '.join(f'{s}://' for s in schemes)}HOST"
    return None


def _has_type(value: object, expected: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool (an int to Python) is only ever a bool.

    A function rather than an inline isinstance: narrowing to a type known only at run time would
    leave the value typed ``object`` for the checks that follow."""
    return isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)


def _check_value(key: str, value: Any) -> str | None:
    """Why a (well-typed) config value is unusable, or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        # The one rule for a number from a file first (finite; an int of 400 digits is refused
        # before any float conversion could overflow).
        problem = number_problem(
            value, low=-math.inf, high=math.inf, integer=_FILE_KEYS[key] is int
        )
        if problem:
            return problem
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
    elif key == "source" and value not in SOURCES:
        return _SOURCES_EXPECTED
    elif key == "vs":
        return vs_problem(value)
    elif key == "api_url":
        return url_problem(value, "http")
    elif key == "kraken_url":
        return url_problem(value, "ws")
    elif key == "api_key" and (
        not value or any(ch.isspace() or not ch.isprintable() for ch in value)
    ):
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
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
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
        if not _has_type(value, expected):
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
    except (tomllib.TOMLDecodeError, RecursionError):
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
    """Coin ids from ids, symbols or names as typed (``BTC,eth`` -> bitcoin, ethereum); see
    ``engine.sources.coins.resolve_coins`` for the notes to tell the user."""
    from engine.sources.coins import resolve_coins

    coins, _notes = resolve_coins(value)
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


def settings_from(
    file_values: dict[str, Any], env: dict[str, str] | None = None, **overrides: Any
) -> Settings:
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
    if s.source not in SOURCES:
        raise ConfigError(f"invalid source {s.source!r}: {_SOURCES_EXPECTED}")
    problem = speed_problem(s.speed)
    if problem:
        raise ConfigError(f"invalid speed {s.speed!r}: {problem}")
    return s
