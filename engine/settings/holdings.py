"""What the user owns: an amount per coin with an optional cost basis, kept in ``holdings.json``.

Holdings are the user's private numbers, so they live in a file of their own in the data dir
(never in ``config.toml``, never in the watchlist state) and are written atomically: a temp file
in the same folder, flushed and fsynced, then ``os.replace``. A kill -9 at any instant leaves the
old file or the new one, never a mix. Every number is checked by ``parse_amount`` before it is
kept, so a bad one is refused with one message and nothing is stored. Headless (no Textual).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.ids import coin_id

log = logging.getLogger(__name__)

FILE_NAME = "holdings.json"
VERSION = 1
# Far beyond any real holding or price (BTC's whole supply at a billion each is 2.1e16), and small
# enough that amount x price x exp(band) stays finite in a float.
MAX_AMOUNT = 1e15
MAX_COST = 1e18


@dataclass(frozen=True, slots=True)
class Holding:
    """One coin's holding. ``cost`` is the total paid for ``amount``, in ``currency``."""

    coin: str
    amount: float
    cost: float | None = None  # total cost basis; None: unknown (no P&L shown)
    currency: str = "usd"  # the app's vs currency when it was entered

    @property
    def unit_cost(self) -> float | None:
        return self.cost / self.amount if self.cost is not None and self.amount > 0 else None

    def value(self, price: float) -> float:
        return self.amount * price

    def pnl(self, price: float) -> float | None:
        """Profit or loss against the cost basis, or None without one (or in another currency)."""
        return None if self.cost is None else self.amount * price - self.cost

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "cost": self.cost, "currency": self.currency}


def parse_amount(text: str, what: str = "amount", limit: float = MAX_AMOUNT) -> float:
    """A number typed by the user ("1,250.5", "0.001", "2e-3"); raises ConfigError saying why.

    Accepted: finite, >= 0 and <= ``limit``. The message names ``what`` and repeats the input, so
    the dialog shows one clear line.
    """
    raw = text.strip().replace(",", "").replace("_", "")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} {text.strip()!r} is not a finite number")
    if value < 0:
        raise ConfigError(f"{what} {text.strip()!r} is negative: it must be 0 or more")
    if value > limit:
        raise ConfigError(f"{what} {text.strip()!r} is too large (at most {limit:g})")
    return value + 0.0  # -0.0 would print as "-0"


def make_holding(
    coin: str, amount: str, cost: str = "", *, per_unit: bool = False, currency: str = "usd"
) -> Holding:
    """A validated holding from the dialog's text fields; raises ConfigError for a bad one."""
    amt = parse_amount(amount, "amount")
    basis: float | None = None
    if cost.strip():
        c = parse_amount(cost, "cost per unit" if per_unit else "total cost", MAX_COST)
        basis = c * amt if per_unit else c
        if not math.isfinite(basis) or basis > MAX_COST:
            raise ConfigError(f"cost {cost.strip()!r} x amount is too large")
    return Holding(coin_id(coin), amt, basis, currency)


def _from_dict(coin: str, d: Any) -> Holding | None:
    """A stored holding, or None for an entry that breaks the rules (hand-edited, damaged)."""
    try:
        cid = coin_id(coin)
    except ConfigError:
        return None
    if not isinstance(d, dict):
        return None
    amount, cost, cur = d.get("amount"), d.get("cost"), d.get("currency", "usd")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        return None
    if not (math.isfinite(amount) and 0 <= amount <= MAX_AMOUNT):
        return None
    if cost is not None and (
        isinstance(cost, bool)
        or not isinstance(cost, (int, float))
        or not (math.isfinite(cost) and 0 <= cost <= MAX_COST)
    ):
        return None
    if not isinstance(cur, str) or not cur.isalnum() or len(cur) > 10:
        return None
    return Holding(cid, float(amount), None if cost is None else float(cost), cur.lower())


def load_holdings(path: Path) -> dict[str, Holding]:
    """Holdings by coin; a missing file is none, a damaged one is logged and ignored."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable holdings file %s: %s", path, exc)
        return {}
    entries = data.get("holdings") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        log.warning("ignoring holdings file %s: no 'holdings' object", path)
        return {}
    out: dict[str, Holding] = {}
    for coin, d in entries.items():
        h = _from_dict(str(coin), d)
        if h is None:
            log.warning("%s: dropped an invalid holding for %r", path, coin)
        else:
            out[h.coin] = h
    return out


def save_holdings(path: Path, holdings: Mapping[str, Holding]) -> None:
    """Write all holdings atomically (temp file + fsync + os.replace); raises OSError on failure."""
    data = {"v": VERSION, "holdings": {c: h.to_dict() for c, h in sorted(holdings.items())}}
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def holdings_path(ui_file: Path) -> Path:
    """The holdings file beside a world's UI state: ``ui.json`` -> ``holdings.json``,
    ``ui-demo.json`` -> ``holdings-demo.json`` (demo and replays never mix with real holdings)."""
    stem = ui_file.stem
    suffix = stem[2:] if stem.startswith("ui") else ""
    return ui_file.with_name(f"holdings{suffix}.json")
