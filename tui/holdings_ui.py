"""The app's holdings behaviour: the dialog key, the privacy key and the panel's numbers.

A mixin of ``CryptoApp`` (kept apart so the app module only wires it in). Everything here runs on
the UI thread: the holdings dict is owned by it, and the file is written from it (a few hundred
bytes, fsynced: well under a frame).
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.events import Bar
from engine.forecast.portfolio import LiveRangeScore, correlation, scaled_returns
from engine.settings.holdings import Holding, holdings_path, load_holdings, save_holdings
from tui.widgets.holdings_panel import HoldingsPanel, HoldingsView, build_view

if TYPE_CHECKING:
    from textual.screen import Screen

log = logging.getLogger(__name__)


def _ts(bar: Bar) -> int:
    return bar.ts


class HoldingsMixin:
    """Holdings state and actions; expects the attributes ``CryptoApp`` has (see ``_app``)."""

    holdings: dict[str, Holding]
    holdings_file: Path | None
    _corr_key: tuple[Any, ...]
    _corr: dict[tuple[str, str], float]

    def _init_holdings(self, state_path: Path | None) -> None:
        self.holdings_file = holdings_path(state_path) if state_path is not None else None
        self.holdings = load_holdings(self.holdings_file) if self.holdings_file else {}
        self._corr_key = ()
        self._corr = {}
        self.range_score = LiveRangeScore()

    @property
    def _app(self) -> Any:
        return self

    def holdings_view(self) -> HoldingsView:
        app = self._app
        prices = {
            c: ((st.bars[-1].ts, st.bars[-1].price) if st.bars else None)
            for c, st in app.states.items()
        }
        forecasts = {c: st.forecast for c, st in app.states.items()}
        labels = {c: app.label(c).upper() if c in app.labels else app.label(c) for c in app.coins}
        return build_view(
            self.holdings,
            app.coins,
            labels,
            prices,
            forecasts,
            app.horizon,
            self._correlations(),
            app.engine.vs_currency,
        )

    def _correlations(self) -> dict[tuple[str, str], float]:
        """Pairwise correlation of the held coins' scaled returns summed over the horizon, over
        the last day of minutes (see ``engine.forecast.portfolio``); worked out again only for a new
        minute or horizon (it costs a few ms per coin)."""
        app = self._app
        coins = sorted(c for c in self.holdings if c in app.states and app.states[c].bars)
        key = (app.horizon, *((c, app.states[c].bars[-1].ts) for c in coins))
        if key != self._corr_key:
            matrix = correlation(
                [scaled_returns((b.ts, b.price) for b in app.states[c].bars) for c in coins],
                k=app.horizon,
            )
            self._corr = {
                (a, b): matrix[i][j] for i, a in enumerate(coins) for j, b in enumerate(coins)
            }
            self._corr_key = key
        return self._corr

    def _draw_holdings(self, main: Screen[object]) -> None:
        main.set_class(bool(self.holdings), "-holdings")
        if self.holdings:
            view = self.holdings_view()
            self._score_range(view)
            score = self.range_score.scores.get(view.horizon)
            main.query_one(HoldingsPanel).show(view, self._app.prefs.privacy, score)

    def _score_range(self, view: HoldingsView) -> None:
        """Issue the total's range for the newest minute every held coin has, and score the ranges
        whose target minute has come: the panel shows how often the range held (live, as the
        backtest's --portfolio does over files)."""
        app = self._app
        held = [c for c in self.holdings if c in app.states and app.states[c].bars]
        if not held:
            return
        now = min(app.states[c].bars[-1].ts for c in held)
        if view.total_range is not None:
            amounts = {c: self.holdings[c].amount for c in held}
            self.range_score.issue(now, view.horizon, amounts, view.total_range)

        def price_at(coin: str, ts: int) -> float | None:
            bars = app.states[coin].bars if coin in app.states else ()
            i = bisect.bisect_left(bars, ts, key=_ts)
            return bars[i].price if i < len(bars) and bars[i].ts == ts else None

        self.range_score.mature(price_at, now)

    def _set_holding(self, coin: str, holding: Holding | None) -> bool:
        """Store the change (or nothing, if the file cannot be written: then say so)."""
        app = self._app
        new = dict(self.holdings)
        if holding is None:
            new.pop(coin, None)
        else:
            new[coin] = holding
        if self.holdings_file is not None:
            try:
                save_holdings(self.holdings_file, new)
            except OSError as exc:
                app._show_error(
                    "Holdings not saved",
                    f"cannot write {self.holdings_file}: {exc.strerror or exc}",
                )
                return False
        self.holdings = new
        return True

    def action_holding(self) -> None:
        from tui.screens.holdings import HoldingResult, HoldingScreen

        app = self._app
        coin = app.selected
        if coin is None:
            return
        st = app.states.get(coin)
        price = st.bars[-1].price if st and st.bars else None

        def done(result: HoldingResult | None) -> None:
            if result is None:
                return
            name = app.coin_title(coin)
            if self._set_holding(coin, None if result.remove else result.holding):
                app.notify(
                    f"Holding of {name} removed." if result.remove else f"Holding of {name} saved.",
                    timeout=3,
                    markup=False,
                )
                app._mark("all")
                app.flush()

        app.push_screen(
            HoldingScreen(
                coin,
                app.coin_title(coin),
                price,
                app.engine.vs_currency,
                self.holdings.get(coin),
                privacy=app.prefs.privacy,
            ),
            done,
        )

    def action_privacy(self) -> None:
        from tui.prefs import save_prefs

        app = self._app
        app.prefs.privacy = not app.prefs.privacy
        save_prefs(app.state_path, app.prefs)
        app.notify("Amounts hidden." if app.prefs.privacy else "Amounts shown.", timeout=3)
        app._mark("all")
        app.flush()
