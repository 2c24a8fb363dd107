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
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.ids import coin_id
from engine.settings.config import MAX_COINS, currency_problem
from engine.settings.jsonfile import keep_aside, move_aside, read_json, report
from engine.settings.numbers import file_number, number_problem, parse_user_number

log = logging.getLogger(__name__)

FILE_NAME = "holdings.json"
VERSION = 1
# Far beyond any real holding or price (BTC's whole supply at a billion each is 2.1e16), and small
# enough that amount x price x exp(band) stays finite in a float.
MAX_AMOUNT = 1e15
MAX_COST = 1e18
# Holdings read from a file: twice the coins one engine can watch (each held coin is valued from
# its prices), so every watched coin plus as many held but no longer watched. A hand-made file of
# 100,000 entries once took 79 s to the first price; beyond this the rest is kept aside.
MAX_HOLDINGS = 2 * MAX_COINS
# 200 holdings take about 20 kB; a far larger file is still read (its first MAX_HOLDINGS kept).
MAX_FILE_BYTES = 16_000_000


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

    def pnl(self, price: float, vs: str | None = None) -> float | None:
        """Profit or loss against the cost basis, or None without one, or when ``price`` is in a
        currency ``vs`` other than the cost's (no P&L across currencies: that would be a number
        without meaning, e.g. a USD cost against EUR prices)."""
        if self.cost is None or (vs is not None and vs.lower() != self.currency):
            return None
        return self.amount * price - self.cost

    def cost_note(self, vs: str) -> str | None:
        """Words for a cost entered in another currency than ``vs``, else None:
        "cost in USD, P&L not shown under EUR"."""
        if self.cost is None or vs.lower() == self.currency:
            return None
        return f"cost in {self.currency.upper()}, P&L not shown under {vs.upper()}"

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "cost": self.cost, "currency": self.currency}


def parse_amount(text: str, what: str = "amount", limit: float = MAX_AMOUNT) -> float:
    """A number typed by the user ("1,250.5", "0.001", "2e-3"); raises ConfigError saying why.

    ``engine.settings.numbers.parse_user_number``'s rule: finite, >= 0 and <= ``limit``; ``1,5``
    is refused with a hint, never read as 15. The message names ``what`` and repeats the input.
    """
    return parse_user_number(text, what, limit)


def cost_currency(previous: Holding | None, vs: str) -> str:
    """The currency a cost typed in the holding dialog is in: the holding's own when it already
    has a cost (editing a USD-cost holding under ``--vs eur`` must not relabel it as EUR), else
    the app's ``vs``. Pass it to ``make_holding(currency=...)`` and name it beside the field."""
    if previous is not None and previous.cost is not None:
        return previous.currency
    return vs.lower()


def make_holding(
    coin: str, amount: str, cost: str = "", *, per_unit: bool = False, currency: str = "usd"
) -> Holding:
    """A validated holding from the dialog's text fields; raises ConfigError for a bad one.

    ``currency`` is the one the cost was typed in (see ``cost_currency``); it is kept with the
    holding, saved with it and never converted.
    """
    problem = currency_problem(currency)
    if problem:
        raise ConfigError(f"currency {currency[:20]!r}: {problem}")
    currency = currency.strip().lower()
    amt = parse_amount(amount, "amount")
    basis: float | None = None
    if cost.strip():
        c = parse_amount(cost, "cost per unit" if per_unit else "total cost", MAX_COST)
        basis = c * amt if per_unit else c
        if not math.isfinite(basis) or basis > MAX_COST:
            raise ConfigError(f"cost {cost.strip()!r} x amount is too large")
    return Holding(coin_id(coin), amt, basis, currency)


def holding_from_entry(coin: object, d: Any) -> Holding | None:
    """A stored holding, or None for an entry that breaks the rules (hand-edited, damaged).

    The one rule for a holding from any file or peer (``holdings*.json``, a feed's ``hello``):
    a coin id, an amount and an optional cost by ``file_number``'s rule, a currency code.
    """
    reason = entry_problem(coin, d)
    if reason is not None or not isinstance(coin, str):
        return None
    amount, cost = d["amount"], d.get("cost")
    currency = d.get("currency", "usd").strip().lower()
    return Holding(coin_id(coin), float(amount), None if cost is None else float(cost), currency)


_from_dict = holding_from_entry  # the name an earlier version used


def entry_problem(coin: object, d: Any) -> str | None:
    """Why a stored holding entry is refused, in a few words, or None when it is good."""
    if not isinstance(coin, str):
        return "not a coin id"
    try:
        coin_id(coin)
    except ConfigError:
        return "not a coin id"
    if not isinstance(d, dict):
        return "not an object with an amount"
    if file_number(d.get("amount"), low=0.0, high=MAX_AMOUNT) is None:
        return f"amount {number_problem(d.get('amount'), low=0.0, high=MAX_AMOUNT)}"
    cost = d.get("cost")
    if cost is not None and file_number(cost, low=0.0, high=MAX_COST) is None:
        return f"cost {number_problem(cost, low=0.0, high=MAX_COST)}"
    cur = d.get("currency", "usd")
    if not isinstance(cur, str) or currency_problem(cur) is not None:
        return "currency is not a code like usd"
    return None


def load_holdings(path: Path, problems: list[str] | None = None) -> dict[str, Holding]:
    """Holdings by coin; a missing file is none. Nothing in the file is ever lost:

    - a file that cannot be read (bad JSON or UTF-8, too deep, too large, not the expected shape)
      is moved aside to ``NAME.bad-TIME`` and the app starts without holdings;
    - entries that break the rules, and those beyond ``MAX_HOLDINGS``, are not loaded: the file
      as it was is copied to ``NAME.bad-TIME`` and rewritten with the good entries only (so the
      next start is clean and the next save loses nothing);
    - a file others may read is made private again (0600).

    Each of these is one line in ``problems`` (when given; the TUI shows them, ``serve`` and
    ``export`` print them) and in the log.
    """
    data = read_json(path, "holdings file", problems, max_bytes=MAX_FILE_BYTES)
    if data is None:
        return {}
    _make_private(path)
    entries = data.get("holdings") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        aside = move_aside(path)
        where = f"moved to {aside.name}" if aside else "left in place"
        report(problems, f"holdings file {path.name} has no 'holdings' object; {where}")
        return {}
    out: dict[str, Holding] = {}
    refused: list[str] = []
    for seen, (coin, d) in enumerate(entries.items()):
        if len(out) >= MAX_HOLDINGS:
            refused.append(f"{len(entries) - seen} more beyond the first {MAX_HOLDINGS} holdings")
            break
        reason = entry_problem(coin, d)
        h = holding_from_entry(coin, d) if reason is None else None
        if h is None:
            refused.append(f"{str(coin)[:40]!r}: {reason}")
        else:
            out[h.coin] = h
    if refused:
        aside = keep_aside(path)
        if aside is not None:
            try:
                save_holdings(path, out)
            except OSError as exc:
                log.warning("cannot rewrite %s: %s", path, exc.strerror or exc)
        where = f"the file as it was is kept as {aside.name}" if aside else "the file is unchanged"
        shown = "; ".join(refused[:3]) + (
            f"; and {len(refused) - 3} more" if len(refused) > 3 else ""
        )
        report(
            problems,
            f"holdings file {path.name}: {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} "
            f"not loaded ({shown}); {where}",
        )
    return out


def _make_private(path: Path) -> None:
    # Holdings are private numbers: a file others may read (an older version wrote 0644, or a
    # copy) is made 0600 again.
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            os.chmod(path, 0o600)
            log.info("%s was readable by others (mode %o); made it 0600", path, mode & 0o777)
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc.strerror or exc)


def save_holdings(path: Path, holdings: Mapping[str, Holding]) -> None:
    """Write all holdings atomically (temp file + fsync + os.replace), readable by the user only
    (0600); raises OSError on failure."""
    data = {"v": VERSION, "holdings": {c: h.to_dict() for c, h in sorted(holdings.items())}}
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, mode=0o600)


def holdings_path(ui_file: Path) -> Path:
    """The holdings file beside a world's UI state: ``ui.json`` -> ``holdings.json``,
    ``ui-demo.json`` -> ``holdings-demo.json`` (demo and replays never mix with real holdings)."""
    stem = ui_file.stem
    suffix = stem[2:] if stem.startswith("ui") else ""
    return ui_file.with_name(f"holdings{suffix}.json")
