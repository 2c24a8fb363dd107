"""UI preferences the user sets (horizon, window, alerts, theme), kept in the app's state JSON file.

The file may hold other keys (the engine's watchlist): only the ``"ui"`` key is ours, and the
rest is written back untouched. A damaged file is ignored, never fatal.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic

log = logging.getLogger(__name__)

KEY = "ui"


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
    def from_dict(cls, data: Any) -> Prefs:
        p = cls()
        if not isinstance(data, dict):
            return p
        if isinstance(data.get("horizon"), int):
            p.horizon = data["horizon"]
        if data.get("window") in ("1h", "6h", "24h"):
            p.window = data["window"]
        if isinstance(data.get("coin"), str):
            p.coin = data["coin"]
        if isinstance(data.get("theme"), str):
            p.theme = data["theme"]
        levels = data.get("levels")
        if isinstance(levels, dict):
            for coin, vals in levels.items():
                if isinstance(vals, list):
                    clean = [float(v) for v in vals if isinstance(v, (int, float)) and v > 0]
                    if clean:
                        p.levels[str(coin)] = sorted(set(clean))
        thresholds = data.get("thresholds")
        if isinstance(thresholds, dict):
            for coin, v in thresholds.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.01 <= v <= 0.99:
                    p.thresholds[str(coin)] = float(v)
        desktop = data.get("desktop")
        if isinstance(desktop, dict):
            p.desktop = {str(c): True for c, v in desktop.items() if v is True}
        for key in ("surprise", "bell", "privacy"):
            if isinstance(data.get(key), bool):
                setattr(p, key, data[key])
        return p


def load_prefs(path: Path | None) -> Prefs:
    if path is None:
        return Prefs()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Prefs()
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable state file %s: %s", path, exc)
        return Prefs()
    return Prefs.from_dict(data.get(KEY) if isinstance(data, dict) else None)


def save_prefs(path: Path | None, prefs: Prefs) -> None:
    """Merge our key into the state file and replace it atomically."""
    if path is None:
        return
    try:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[KEY] = asdict(prefs)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True))
    except OSError as exc:
        # Losing a preference is not worth stopping the app for; the log says why.
        log.warning("cannot save UI state to %s: %s", path, exc)
