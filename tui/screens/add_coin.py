"""The add-coin modal: type a name or symbol, pick from the engine's lookup results as you type."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from engine.api import CoinMatch, EngineAPI
from engine.errors import CryptotuiError
from engine.ids import is_coin_id
from tui.safe_text import clean, plain
from tui.widgets.dialog_parts import Dialog
from tui.widgets.safe_input import SafeInput

log = logging.getLogger(__name__)

# Wait for a pause in typing before asking the engine (a CoinGecko lookup costs budget).
DEBOUNCE = 0.3
# No coin name, symbol or id is this long; a longer paste is not a search.
MAX_QUERY = 100
# Bounds on what a search result may show, whatever the server sends.
NAME_LIMIT = 48
SYMBOL_LIMIT = 12
ID_LIMIT = 64


@dataclass(frozen=True)
class Picked:
    """The coin chosen: its id, and its name and symbol when a search result gave them."""

    coin: str
    name: str = ""
    symbol: str = ""


class AddCoinScreen(Dialog[Picked | None]):
    DEFAULT_CSS = """
    AddCoinScreen { align: center middle; }
    AddCoinScreen > Vertical { width: 64; max-width: 95%; height: auto; max-height: 90%;
                               border: thick $primary; background: $surface; padding: 0 1; }
    AddCoinScreen OptionList { height: auto; max-height: 12; border: none; }
    AddCoinScreen #add-hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "focus_results", "Results", show=False),
    ]

    def __init__(self, engine: EngineAPI, exclude: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.engine = engine
        self.exclude = set(exclude)
        self.matches: list[CoinMatch] = []
        self._timer: Timer | None = None
        self.searches = 0  # how many lookups reached the engine (tests check debouncing)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Add a coin"
            box.border_subtitle = "enter to add · esc to cancel"
            yield SafeInput(placeholder=self._placeholder(), id="add-query", max_length=MAX_QUERY)
            yield Label("Type to search.", id="add-hint")
            yield OptionList(id="add-results", markup=False)

    def _placeholder(self) -> str:
        # A replay has only its own coins: suggesting CoinGecko's would promise what it lacks.
        if getattr(self.engine, "mode", "") == "DEMO":
            return "name or symbol of a recorded coin (e.g. bitcoin, ETH)"
        return "name, symbol or CoinGecko id (e.g. solana, SOL)"

    def on_mount(self) -> None:
        self.query_one(SafeInput).focus()

    @on(SafeInput.Changed, "#add-query")
    def _changed(self, event: SafeInput.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        query = event.value.strip()
        if not query:
            self._show([], "Type to search.")
            return
        self._timer = self.set_timer(DEBOUNCE, lambda: self.search(query))

    def search(self, query: str) -> None:
        """Ask the engine now (the debounce timer calls this; tests may too)."""
        self.query_one("#add-hint", Label).update(plain(f"Searching for {query!r}…"))
        self._lookup(query)

    @work(thread=True, exclusive=True, group="coin-search")
    def _lookup(self, query: str) -> None:
        self.searches += 1
        try:
            matches = self.engine.search(query)
        except (CryptotuiError, OSError) as exc:
            self.app.call_from_thread(self._show, [], f"Search failed: {clean(exc)}")
            return
        self.app.call_from_thread(self._results, query, matches)

    def _results(self, query: str, matches: list[CoinMatch]) -> None:
        if self.query_one(SafeInput).value.strip() != query:
            return  # typed on since: a newer search is coming
        hint = (
            f"{len(matches)} found for {query!r}." if matches else f"Nothing found for {query!r}."
        )
        if not matches and getattr(self.engine, "mode", "") == "DEMO":
            hint += " A replay has only its recorded coins (the demo: BTC, ETH, LTC)."
        self._show(matches, hint)

    def _show(self, matches: list[CoinMatch], hint: str) -> None:
        self.matches = matches
        # The hint quotes the query or a server's error: text, never markup.
        self.query_one("#add-hint", Label).update(plain(hint))
        ol = self.query_one(OptionList)
        ol.clear_options()
        for m in matches:
            mark = "  (watching)" if m.id in self.exclude else ""
            rank = f"  #{m.rank}" if m.rank else ""
            name = clean(m.name, NAME_LIMIT)
            symbol = clean(m.symbol, SYMBOL_LIMIT).upper()
            ol.add_option(
                Option(plain(f"{name} ({symbol}){rank}  {clean(m.id, ID_LIMIT)}{mark}"), id=m.id)
            )
        if matches:
            ol.highlighted = 0

    @on(SafeInput.Submitted, "#add-query")
    def _submitted(self) -> None:
        ol = self.query_one(OptionList)
        if self.matches:
            index = ol.highlighted if ol.highlighted is not None else 0
            self._pick(self.matches[index].id)
            return
        # No result (offline, or the search failed): an exact CoinGecko id is added as typed,
        # and the source says whether it knows it.
        query = self.query_one(SafeInput).value.strip().lower()
        if is_coin_id(query):
            self._pick(query)
        elif query:
            self.query_one("#add-hint", Label).update(
                plain(
                    f"Nothing to add for {query!r}: pick a search result, or type an exact "
                    "CoinGecko id (a-z, 0-9 and -, e.g. cardano)."
                )
            )

    @on(OptionList.OptionSelected, "#add-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._pick(event.option.id)

    def _pick(self, coin: str) -> None:
        if coin in self.exclude:
            # In the dialog, not a toast: toasts are held back while a dialog is open.
            self.query_one("#add-hint", Label).update(
                plain(f"{clean(coin, ID_LIMIT)} is already in the watchlist.")
            )
            return
        match = next((m for m in self.matches if m.id == coin), None)
        if match is None:
            self.dismiss(Picked(coin))
        else:
            self.dismiss(
                Picked(coin, clean(match.name, NAME_LIMIT), clean(match.symbol, SYMBOL_LIMIT))
            )

    def action_focus_results(self) -> None:
        self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
