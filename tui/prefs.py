"""UI preferences the user sets (horizon, window, alerts, theme), kept in the app's state JSON file.

The file may hold other keys (the engine's watchlist): only the ``"ui"`` key is ours, and the
rest is written back untouched. Nothing in it is lost: a file that cannot be read (bad JSON or
UTF-8, nested too deep, too large) is moved aside to ``NAME.bad-TIME`` and the app starts with the
defaults; values that break the rules (a level of 1e-320 or with 400 digits, a threshold of 5)
are left out, the file as it was is copied aside and rewritten without them. Each of these is one
line in the ``problems`` list the caller passes (the TUI shows them as notifications).
Every number goes through ``engine.settings.numbers.file_number``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.ids import is_coin_id
from engine.settings.jsonfile import keep_aside, read_json, report
from engine.settings.numbers import file_number
from engine.sources.base import MAX_PRICE, MIN_PRICE

log = logging.getLogger(__name__)

KEY = "ui"
MAX_FILE_BYTES = 1_000_000
MAX_LEVELS = 50  # price levels per coin
MAX_PREF_COINS = 1000  # coins with levels, thresholds or desktop switches
WINDOWS = ("1h", "6h", "24h")


@dataclass
class Prefs:
    """What the UI remembers between runs."""

    horizon: int | None = None  # minutes; None: the engine's second horizon (or first)
    window: str = "6h"
    coin: str | None = None  # last selected coin
    levels: dict[str, list[float]] = field(default_factory=dict)  # coin -> price levels to watch
    surprise: bool = True  # notify when the coin on screen leaves its 95 % band
    bell: bool = False  # ring the terminal bell with alerts
    theme: str | None = None  # Textual theme name, e.g. "textual-light"
    privacy: bool = False  # mask every amount of the holdings on screen
    # coin -> chance (fraction) at which a level's "chance beyond" alert is told; absent: off
    thresholds: dict[str, float] = field(default_factory=dict)
    desktop: dict[str, bool] = field(default_factory=dict)  # coin -> desktop notifications

    @classmethod
    def from_dict(cls, data: Any, rejected: list[str] | None = None) -> Prefs:
        """The preferences in ``data``; what breaks the rules is left out and, when ``rejected``
        is given, named there (a few words each)."""
        p = cls()
        bad: list[str] = [] if rejected is None else rejected
        if not isinstance(data, dict):
            if data is not None:
                bad.append(f"'ui' is a {type(data).__name__}, not an object")
            return p
        if "horizon" in data and data["horizon"] is not None:
            h = file_number(data["horizon"], low=1, high=1440, integer=True)
            if h is None:
                bad.append(f"horizon {_shown(data['horizon'])}")
            else:
                p.horizon = int(h)
        if "window" in data:
            if data["window"] in WINDOWS:
                p.window = data["window"]
            else:
                bad.append(f"window {_shown(data['window'])}")
        if isinstance(data.get("coin"), str) and is_coin_id(data["coin"]):
            p.coin = data["coin"]
        elif data.get("coin") is not None:
            bad.append(f"coin {_shown(data['coin'])}")
        theme = data.get("theme")
        if isinstance(theme, str) and 0 < len(theme) <= 100 and theme.isprintable():
            p.theme = theme
        elif theme is not None:
            bad.append(f"theme {_shown(theme)}")
        levels = data.get("levels")
        if isinstance(levels, dict):
            for coin, vals in list(levels.items())[:MAX_PREF_COINS]:
                if not is_coin_id(coin) or not isinstance(vals, list):
                    bad.append(f"levels of {_shown(coin)}")
                    continue
                good: list[float] = []
                for v in vals[:MAX_LEVELS]:
                    # A level is a price: the engine's price bounds (1e-320 once crashed the app).
                    x = file_number(v, low=MIN_PRICE, high=MAX_PRICE)
                    if x is None:
                        bad.append(f"level {_shown(v)} of {coin}")
                    else:
                        good.append(float(x))
                if len(vals) > MAX_LEVELS:
                    bad.append(f"{len(vals) - MAX_LEVELS} levels of {coin} beyond {MAX_LEVELS}")
                if good:
                    p.levels[coin] = sorted(set(good))
        elif levels is not None:
            bad.append("levels")
        thresholds = data.get("thresholds")
        if isinstance(thresholds, dict):
            for coin, v in list(thresholds.items())[:MAX_PREF_COINS]:
                x = file_number(v, low=0.01, high=0.99)
                if x is None or not is_coin_id(coin):
                    bad.append(f"threshold {_shown(v)} of {_shown(coin)}")
                else:
                    p.thresholds[coin] = float(x)
        elif thresholds is not None:
            bad.append("thresholds")
        desktop = data.get("desktop")
        if isinstance(desktop, dict):
            p.desktop = {
                c: True
                for c, v in list(desktop.items())[:MAX_PREF_COINS]
                if v is True and is_coin_id(c)
            }
        for key in ("surprise", "bell", "privacy"):
            if isinstance(data.get(key), bool):
                setattr(p, key, data[key])
            elif key in data:
                bad.append(f"{key} {_shown(data[key])}")
        return p


def _shown(value: object) -> str:
    """A refused value in a few characters (a 400-digit number is not printed whole)."""
    text = value if isinstance(value, str) else type(value).__name__
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        digits = len(str(abs(value))) if isinstance(value, int) else 0
        text = f"of {digits} digits" if digits > 20 else repr(value)
    return repr(text[:20]) if isinstance(value, str) else text


def load_prefs(path: Path | None, problems: list[str] | None = None) -> Prefs:
    """The preferences in the state file at ``path`` (defaults without one).

    ``problems`` (optional) receives one line per thing the user should know: the file moved
    aside as unreadable, or values left out (the file as it was kept as ``NAME.bad-TIME``).
    """
    if path is None:
        return Prefs()
    data = read_json(path, "UI state file", problems, max_bytes=MAX_FILE_BYTES)
    if data is None:
        return Prefs()
    rejected: list[str] = []
    prefs = Prefs.from_dict(data.get(KEY) if isinstance(data, dict) else None, rejected)
    if not isinstance(data, dict):
        rejected.append(f"the file holds a {type(data).__name__}, not an object")
    if rejected:
        aside = keep_aside(path)
        if aside is not None:
            save_prefs(path, prefs)  # the next start is clean; the copy keeps what was left out
        where = f"the file as it was is kept as {aside.name}" if aside else "the file is unchanged"
        shown = ", ".join(rejected[:3]) + (
            f" and {len(rejected) - 3} more" if len(rejected) > 3 else ""
        )
        report(problems, f"UI state file {path.name}: left out {shown}; {where}")
    return prefs


def save_prefs(path: Path | None, prefs: Prefs) -> None:
    """Merge our key into the state file and replace it atomically."""
    if path is None:
        return
    try:
        # Read as load_prefs does: a file damaged since is moved aside, never written over.
        data = read_json(path, "UI state file", None, max_bytes=MAX_FILE_BYTES)
        if not isinstance(data, dict):
            data = {}
        data[KEY] = asdict(prefs)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True))
    except (OSError, ValueError) as exc:
        # Losing a preference is not worth stopping the app for; the log says why.
        log.warning("cannot save UI state to %s: %s", path, exc)
