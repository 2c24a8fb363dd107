"""The holdings panel: per coin value, P&L and share, a total row, and the 80 % range at the horizon.

The numbers are worked out by ``build_view`` (pure, tested without an app) from the holdings, the
last prices, the served forecasts and the measured correlation; the panel only lays them out. With
privacy on, every amount becomes a mask of fixed width, so neither the digits nor their length
show on screen or in a screenshot; what is stored does not change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text

from engine.events import ForecastEvent
from engine.forecast.portfolio import (
    RangeScore,
    ValueRange,
    holding_range,
    served_quantiles,
    total_range,
)
from engine.settings.holdings import Holding
from tui.format import DASH
from tui.widgets.columns import Column, TextLines, layout_columns
from tui.widgets.palette import Palette

MASK = "•••••"
# A forecast older than this (seconds before the last price) is not a range for now.
STALE_FORECAST = 180


@dataclass(frozen=True)
class HoldingRow:
    """One holding as shown: None where a number is unknown (no price yet, no cost basis)."""

    coin: str
    label: str
    value: float | None
    pnl: float | None
    share: float | None
    range: ValueRange | None


@dataclass(frozen=True)
class HoldingsView:
    rows: tuple[HoldingRow, ...]
    total: float | None
    total_pnl: float | None  # over the coins with a cost basis in ``currency`` only
    total_range: ValueRange | None
    horizon: int
    currency: str
    pnl_coins: int = 0  # how many priced coins the total's P&L counts
    other_currency: tuple[str, ...] = ()  # currencies of cost bases not in ``currency``


def build_view(
    holdings: Mapping[str, Holding],
    coins: Sequence[str],
    labels: Mapping[str, str],
    prices: Mapping[str, tuple[int, float] | None],
    forecasts: Mapping[str, ForecastEvent | None],
    horizon: int,
    corr: Mapping[tuple[str, str], float],
    currency: str,
) -> HoldingsView:
    """The rows in watchlist order (then holdings of coins no longer watched, without a price).

    The total's range needs a range for every priced holding; otherwise it is left out rather than
    shown too narrow. A cost basis counts towards P&L only in the currency it was entered in.
    """
    order = [c for c in coins if c in holdings] + sorted(c for c in holdings if c not in coins)
    values: dict[str, float] = {}
    ranges: dict[str, ValueRange] = {}
    pnl: dict[str, float] = {}
    other: set[str] = set()
    for coin in order:
        h, last = holdings[coin], prices.get(coin)
        if last is None:
            continue
        ts, price = last
        values[coin] = h.value(price)
        if h.cost is not None and h.currency != currency:
            other.add(h.currency)
        elif h.currency == currency:
            p = h.pnl(price)
            if p is not None:
                pnl[coin] = p
        f = forecasts.get(coin)
        q = served_quantiles(f, horizon) if f is not None and f.ts >= ts - STALE_FORECAST else None
        if q is not None:
            ranges[coin] = holding_range(values[coin], q[1], q[3])
    total = sum(values.values()) if values else None
    rows = tuple(
        HoldingRow(
            coin,
            labels.get(coin, coin),
            values.get(coin),
            pnl.get(coin),
            values[coin] / total if coin in values and total else None,
            ranges.get(coin),
        )
        for coin in order
    )
    tr = None
    priced = [c for c in order if c in values and values[c] > 0]
    if priced and all(c in ranges for c in priced):
        matrix = [[1.0 if a == b else corr.get((a, b), 0.0) for b in priced] for a in priced]
        tr = total_range([ranges[c] for c in priced], matrix)
    return HoldingsView(
        rows,
        total,
        sum(pnl.values()) if pnl else None,
        tr,
        horizon,
        currency,
        len(pnl),
        tuple(sorted(other)),
    )


def money_decimals(values: Sequence[float | None]) -> int:
    """Decimals for a column of money: cents while every value is below 1,000, else none, so a
    column never mixes "763.10" with "3,508"."""
    big = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    return 2 if big < 1000 else 0


def format_money(value: float | None, decimals: int = 2, *, signed: bool = False) -> str:
    """Money in a narrow column: digits with separators up to a billion, then "bn" and "tn"
    (words for money, not the SI "G" of a measurement)."""
    if value is None or not math.isfinite(value):
        return DASH
    sign = "+" if signed and value > 0 else ""
    a = abs(value)
    if a >= 1e12:
        return f"{sign}{value / 1e12:,.2f}tn"
    if a >= 1e9:
        return f"{sign}{value / 1e9:,.2f}bn"
    return f"{sign}{value:,.{decimals}f}"


class HoldingsPanel(TextLines):
    """Holdings of the watched coins; the main screen hands it a ``HoldingsView``."""

    def show(
        self,
        view: HoldingsView,
        privacy: bool,
        score: RangeScore | None = None,
        read_only: bool = False,
    ) -> None:
        self.set_builder(lambda width: self._lines(view, privacy, width, score, read_only))

    def _lines(
        self,
        view: HoldingsView,
        privacy: bool,
        width: int,
        score: RangeScore | None = None,
        read_only: bool = False,
    ) -> list[Text]:
        pal = Palette.of(self)
        values = [r.value for r in view.rows] + [view.total]
        decimals = money_decimals(values)
        pnl_decimals = money_decimals([r.pnl for r in view.rows] + [view.total_pnl])

        def money(v: float | None, d: int = decimals, signed: bool = False) -> str:
            return MASK if privacy and v is not None else format_money(v, d, signed=signed)

        def coloured(v: float | None) -> Text:
            style = "" if v is None or privacy else pal.up if v > 0 else pal.down if v < 0 else ""
            return Text(money(v, pnl_decimals, signed=True), style=style)

        def rng(r: ValueRange | None) -> str:
            if r is None:
                return DASH
            if privacy:
                return MASK
            # Narrow: the half-width as a share of the value; wide: the ends in money.
            if wide:
                return f"{format_money(r.lo, decimals)}–{format_money(r.hi, decimals)}"
            return f"±{100 * (r.hi - r.lo) / 2 / r.centre:.2f}%" if r.centre > 0 else DASH

        wide = width >= 52
        columns = [
            Column("coin", "left", 4, 8),
            Column("value"),
            Column("P&L"),
            Column("share"),
            Column(f"80% {view.horizon}m"),
        ]
        cells: list[list[str | Text]] = []
        for r in view.rows:
            share = DASH if r.share is None else MASK[:3] if privacy else f"{100 * r.share:.0f}%"
            cells.append([Text(r.label), money(r.value), coloured(r.pnl), share, rng(r.range)])
        total_share = "100%" if view.total else DASH
        cells.append(
            [
                Text("total"),
                money(view.total),
                coloured(view.total_pnl),
                MASK[:3] if privacy and view.total else total_share,
                rng(view.total_range),
            ]
        )
        styles = [""] * len(view.rows) + ["bold"]
        lines = layout_columns(columns, cells, styles)
        cur = view.currency.upper()

        def note(text: str) -> None:
            lines.append(Text(text, style="dim", no_wrap=True, overflow="ellipsis", end=""))

        if view.total_range is not None and not privacy:
            lo, hi = view.total_range.lo, view.total_range.hi
            note(
                f"{view.horizon} min ahead, 80 %: {format_money(lo, decimals)}–"
                f"{format_money(hi, decimals)} {cur}"
            )
        elif privacy:
            note("amounts hidden (m shows them)")
        else:
            note(f"values in {cur}; no range yet")
        priced = sum(1 for r in view.rows if r.value is not None)
        if view.total_pnl is not None and view.pnl_coins < priced and not privacy:
            note(f"P&L: {view.pnl_coins} of {priced} coins have a cost basis in {cur}")
        if view.other_currency and not privacy:
            others = ", ".join(c.upper() for c in view.other_currency)
            note(f"cost in {others}: no P&L in {cur}")
        if score is not None and score.n and not privacy:
            held = f"range held {100 * score.hits / score.n:.0f} % of {score.n:,} (aim 80 %)"
            if wide:
                held += f" · interval score {100 * score.score / score.n:.2f} %"
            note(held)
        if read_only:
            note("the remote engine's holdings: edit them there")
        return lines
