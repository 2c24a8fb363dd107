"""CoinGecko ids of common coins, their display symbols and their Kraken v2 pairs."""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import CoinMatch


@dataclass(frozen=True, slots=True)
class CoinInfo:
    """A well-known coin: its CoinGecko id, name, symbol, rank and Kraken quotes."""

    id: str  # CoinGecko id
    name: str
    symbol: str  # display symbol, also Kraken v2's base (v2 says BTC, not XBT)
    rank: int | None = None
    quotes: tuple[str, ...] = ("usd", "eur")  # vs currencies Kraken lists a pair for


_MAJOR_QUOTES = ("usd", "eur", "gbp", "cad", "jpy", "chf", "aud")

# Market-cap ranks are approximate and only order search results.
COINS: tuple[CoinInfo, ...] = (
    CoinInfo("bitcoin", "Bitcoin", "BTC", 1, _MAJOR_QUOTES),
    CoinInfo("ethereum", "Ethereum", "ETH", 2, _MAJOR_QUOTES),
    CoinInfo("tether", "Tether", "USDT", 3, ("usd", "eur", "gbp", "cad", "aud", "chf", "jpy")),
    CoinInfo("ripple", "XRP", "XRP", 4, ("usd", "eur", "gbp", "cad", "aud")),
    CoinInfo("solana", "Solana", "SOL", 6, ("usd", "eur", "gbp")),
    CoinInfo("usd-coin", "USDC", "USDC", 7, ("usd", "eur", "gbp", "cad", "aud", "chf")),
    CoinInfo("dogecoin", "Dogecoin", "DOGE", 8, ("usd", "eur")),
    CoinInfo("cardano", "Cardano", "ADA", 9, ("usd", "eur", "gbp")),
    CoinInfo("tron", "TRON", "TRX", 10, ("usd", "eur")),
    CoinInfo("chainlink", "Chainlink", "LINK", 12, ("usd", "eur", "gbp")),
    CoinInfo("avalanche-2", "Avalanche", "AVAX", 13, ("usd", "eur")),
    CoinInfo("stellar", "Stellar", "XLM", 14, ("usd", "eur", "gbp")),
    CoinInfo("bitcoin-cash", "Bitcoin Cash", "BCH", 15, ("usd", "eur", "gbp")),
    CoinInfo("shiba-inu", "Shiba Inu", "SHIB", 16, ("usd", "eur")),
    CoinInfo("litecoin", "Litecoin", "LTC", 17, ("usd", "eur", "gbp", "aud")),
    CoinInfo("polkadot", "Polkadot", "DOT", 18, ("usd", "eur", "gbp")),
    CoinInfo("monero", "Monero", "XMR", 20, ("usd", "eur")),
    CoinInfo("uniswap", "Uniswap", "UNI", 22, ("usd", "eur")),
    CoinInfo("near", "NEAR Protocol", "NEAR", 25, ("usd", "eur")),
    CoinInfo("aave", "Aave", "AAVE", 27, ("usd", "eur", "gbp")),
    CoinInfo("ethereum-classic", "Ethereum Classic", "ETC", 30, ("usd", "eur")),
    CoinInfo("polygon-ecosystem-token", "POL (ex-MATIC)", "POL", 35, ("usd", "eur")),
    CoinInfo("cosmos", "Cosmos Hub", "ATOM", 38, ("usd", "eur", "gbp")),
    CoinInfo("algorand", "Algorand", "ALGO", 45, ("usd", "eur", "gbp")),
    CoinInfo("filecoin", "Filecoin", "FIL", 40, ("usd", "eur", "gbp")),
    CoinInfo("tezos", "Tezos", "XTZ", 70, ("usd", "eur", "gbp")),
)

BY_ID: dict[str, CoinInfo] = {c.id: c for c in COINS}


def symbol_of(coin: str) -> str:
    """Display symbol of a CoinGecko id (the id upper-cased when it is not in the table)."""
    info = BY_ID.get(coin)
    return info.symbol if info else coin.upper()


def kraken_pair(coin: str, vs: str) -> str | None:
    """Kraken v2 symbol (``"BTC/USD"``) for a CoinGecko id and vs currency; None if none."""
    info = BY_ID.get(coin)
    vs = vs.lower()
    if info is None or vs not in info.quotes:
        return None
    return f"{info.symbol}/{vs.upper()}"


def coin_of_pair(pair: str) -> str | None:
    """CoinGecko id for a Kraken v2 symbol (``"BTC/USD"`` -> ``"bitcoin"``); None if unknown."""
    base = pair.split("/", 1)[0].upper()
    if base == "XBT":  # v1 name, still seen in Kraken's own error messages
        base = "BTC"
    for info in COINS:
        if info.symbol == base:
            return info.id
    return None


def no_pair_reason(coin: str, vs: str) -> str:
    """One line telling the user why a coin cannot be streamed from Kraken."""
    info = BY_ID.get(coin)
    if info is None:
        return (
            f"Kraken: no pair known for {coin!r} "
            f"(the Kraken source covers {len(COINS)} common coins)"
        )
    quotes = ", ".join(q.upper() for q in info.quotes)
    return f"Kraken: no {info.symbol}/{vs.upper()} pair (try --vs with one of {quotes})"


def search_table(query: str, vs: str | None = None, limit: int = 25) -> list[CoinMatch]:
    """Coins of the table whose id, name or symbol matches ``query`` (exact symbol first)."""
    q = query.strip().lower()
    if not q:
        return []
    hits: list[tuple[int, int, CoinInfo]] = []
    for info in COINS:
        if vs is not None and vs.lower() not in info.quotes:
            continue
        if q == info.symbol.lower() or q == info.id:
            score = 0
        elif info.name.lower().startswith(q) or info.id.startswith(q):
            score = 1
        elif q in info.name.lower() or q in info.id or q in info.symbol.lower():
            score = 2
        else:
            continue
        hits.append((score, info.rank or 10_000, info))
    hits.sort(key=lambda h: (h[0], h[1]))
    return [CoinMatch(i.id, i.name, i.symbol, i.rank) for _, _, i in hits[:limit]]


def resolve_coin(text: str) -> tuple[str, str | None]:
    """What a person typed for a coin (an id, a symbol or a name, any case) as a coin id, with a
    one-line note when it was read as something else ("BTC -> bitcoin") or looks like a typo of a
    coin this table knows (a suggestion); ConfigError (with the suggestion) for an invalid id.

    An id the table does not know is kept: CoinGecko lists thousands of coins.
    """
    import difflib

    from engine.errors import ConfigError
    from engine.ids import coin_id

    typed = text.strip()
    key = typed.lower()
    if key in BY_ID:
        return key, None
    for info in COINS:
        if key in (info.symbol.lower(), info.name.lower()):
            return info.id, f"{typed} -> {info.id}"
    names = {c.symbol.lower(): c for c in COINS} | {c.id: c for c in COINS}
    names |= {c.name.lower(): c for c in COINS}
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
    hint = f"did you mean {names[close[0]].id} ({names[close[0]].symbol})?" if close else ""
    try:
        cid = coin_id(typed)
    except ConfigError as exc:
        raise ConfigError(f"{exc.msg}; {hint}" if hint else exc.msg) from None
    if hint:
        return cid, f"{typed}: not a coin id or symbol this app knows; kept as an id ({hint})"
    return cid, None


def resolve_coins(value: str | list[object]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--coins BTC,eth`` -> ((bitcoin, ethereum), ("BTC -> bitcoin", "eth -> ethereum")): ids in
    order without repeats, and the notes of ``resolve_coin`` (each said once)."""
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    ids: dict[str, None] = {}
    notes: dict[str, None] = {}
    for item in items:
        if not item.strip():
            continue
        cid, note = resolve_coin(item)
        ids[cid] = None
        if note:
            notes[note] = None
    return tuple(ids), tuple(notes)


__all__ = [
    "BY_ID",
    "COINS",
    "CoinInfo",
    "coin_of_pair",
    "kraken_pair",
    "no_pair_reason",
    "resolve_coin",
    "resolve_coins",
    "search_table",
    "symbol_of",
]
