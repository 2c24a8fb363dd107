"""Coin identifiers: the one check every id passes at the edge, before it is stored or names a file.

A coin id arrives from many places (CoinGecko's ``/search``, the command line, the config file,
``state.json``, a feed client's op, a replay's ``COIN=FILE``) and later names files (a model
checkpoint, an export). So it is checked once where it comes in, against CoinGecko's own id
alphabet, and everything downstream may trust it. CoinGecko coin ids are lowercase ASCII letters,
digits and hyphens (``bitcoin``, ``usd-coin``, ``avalanche-2``); exchanges use underscores
(``uniswap_v3``) but those are not coins.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from engine.errors import ConfigError

COIN_ID_MAX = 100
# ``fullmatch`` with no anchors: ``$`` would accept a trailing newline ("bitcoin\n").
_COIN_ID = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{COIN_ID_MAX - 1}}}")
# The same rule for JSON Schema (engine/data/protocol.schema.json), where "$" is strict.
COIN_ID_PATTERN = rf"^[a-z0-9][a-z0-9-]{{0,{COIN_ID_MAX - 1}}}$"


def is_coin_id(value: object) -> TypeGuard[str]:
    """True when ``value`` is, exactly as given, a string in CoinGecko's id alphabet."""
    return isinstance(value, str) and _COIN_ID.fullmatch(value) is not None


def coin_id(value: str) -> str:
    """``value`` as a coin id (surrounding spaces dropped, lower-cased), or ConfigError saying why.

    For what a person types (command line, config file): ``Bitcoin `` is forgiven, ``../x`` is not.
    """
    cleaned = value.strip().lower() if isinstance(value, str) else value
    return require_coin_id(cleaned) if is_coin_id(cleaned) else require_coin_id(value)


def require_coin_id(value: object) -> str:
    """``value`` unchanged if it is a coin id, else ConfigError saying why.

    For ids a program sent (a search result, a feed op): ``bitcoin\n`` is not ``bitcoin``.
    """
    if is_coin_id(value):
        return value
    text = str(value)
    shown = text if len(text) <= 40 else f"{text[:40]}..."
    raise ConfigError(
        f"invalid coin id {shown!r}: expected a CoinGecko id such as bitcoin or usd-coin "
        f"(a-z, 0-9 and '-', at most {COIN_ID_MAX} characters)"
    )


def valid_coin_ids(values: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a remembered list into (good ids in order, without repeats; the rejects, as text).

    For state the app wrote itself (``state.json``): a bad entry is dropped, never fatal.
    """
    if not isinstance(values, list):
        return (), ()
    good: dict[str, None] = {}
    bad: list[str] = []
    for v in values:
        if is_coin_id(v):
            good[v] = None
        else:
            bad.append(repr(v)[:60])
    return tuple(good), tuple(bad)


__all__ = [
    "COIN_ID_MAX",
    "COIN_ID_PATTERN",
    "coin_id",
    "is_coin_id",
    "require_coin_id",
    "valid_coin_ids",
]
