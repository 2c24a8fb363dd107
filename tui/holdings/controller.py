"""The user's holdings in the app: the file, the panel's numbers, and the live score of its range.

Runs on the UI thread, which owns the holdings dict and writes the file (a few hundred bytes,
fsynced: well under a frame). On a remote engine started with ``serve --with-holdings`` the
holdings are the engine's, shown read-only: editing stays on the engine's side.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from pathlib import Path

from engine.api import EngineAPI
from engine.events import Bar
from engine.forecast.portfolio import LiveRangeScore, RangeScore, correlation, scaled_returns
from engine.settings.holdings import Holding, load_holdings, save_holdings
from tui.holdings.panel import HoldingsView, build_view
from tui.state import UIState


def _ts(bar: Bar) -> int:
    return bar.ts


class HoldingsController:
    """Holdings, their view for the panel, and the file they are kept in."""

    def __init__(
        self,
        state: UIState,
        engine: EngineAPI,
        path: Path | None = None,
        problems: list[str] | None = None,
    ) -> None:
        self.state = state
        self.engine = engine
        # A remote engine's holdings are its own (sent in its hello with --with-holdings, or
        # none): shown read-only, never written to a file of the viewer's.
        self.read_only = engine.mode == "REMOTE"
        self.path = None if self.read_only else path
        self._own: Mapping[str, Holding] = {}
        if not self.read_only and path is not None:
            self._own = load_holdings(path, problems)
        self.range_score = LiveRangeScore()
        self._corr_key: tuple[object, ...] = ()
        self._corr: dict[tuple[str, str], float] = {}
        self._view_key: tuple[object, ...] = ()
        self._view: HoldingsView | None = None

    @property
    def holdings(self) -> Mapping[str, Holding]:
        if not self.read_only:
            return self._own
        remote = getattr(self.engine, "holdings", None)  # set by each hello of the engine
        return remote if isinstance(remote, Mapping) else {}

    @property
    def shared(self) -> bool:
        """Whether a remote engine shares its holdings (``serve --with-holdings``)."""
        return isinstance(getattr(self.engine, "holdings", None), Mapping)

    @property
    def currency(self) -> str:
        return self.engine.vs_currency

    def view(self) -> HoldingsView:
        """The panel's rows, total and range (worked out again only when an input changed)."""
        st = self.state
        held = [c for c in self.holdings if c in st.views]
        key = (
            st.horizon,
            self.currency,
            id(self.holdings),
            tuple(st.coins),
            *((c, st.last_bar(c), st.current_forecast(c)) for c in held),
        )
        if self._view is None or key != self._view_key:
            prices = {c: ((b.ts, b.price) if (b := st.last_bar(c)) else None) for c in held}
            forecasts = {c: st.current_forecast(c) for c in held}
            labels = {c: st.label(c) for c in self.holdings}
            self._view = build_view(
                self.holdings,
                st.coins,
                labels,
                prices,
                forecasts,
                st.horizon,
                self._correlations(),
                self.currency,
            )
            self._view_key = key
            self._score(self._view)
        return self._view

    def score(self) -> RangeScore | None:
        return self.range_score.scores.get(self.state.horizon)

    def _correlations(self) -> dict[tuple[str, str], float]:
        """Pairwise correlation of the held coins' scaled returns summed over the horizon, over
        the last day of minutes (see ``engine.forecast.portfolio``); worked out again only for a new
        minute or horizon (it costs a few ms per coin)."""
        st = self.state
        coins = sorted(c for c in self.holdings if st.last_bar(c) is not None)
        key = (st.horizon, *((c, st.last_bar(c)) for c in coins))
        if key != self._corr_key:
            matrix = correlation(
                [scaled_returns((b.ts, b.price) for b in st.views[c].bars) for c in coins],
                k=st.horizon,
            )
            self._corr = {
                (a, b): matrix[i][j] for i, a in enumerate(coins) for j, b in enumerate(coins)
            }
            self._corr_key = key
        return self._corr

    def _score(self, view: HoldingsView) -> None:
        """Issue the total's range for the newest minute every held coin has, and score the ranges
        whose target minute has come: the panel shows how often the range held (live, as the
        backtest's --portfolio does over files)."""
        st = self.state
        held = [c for c in self.holdings if st.last_bar(c) is not None]
        if not held:
            return
        now = min(st.views[c].bars[-1].ts for c in held)
        if view.total_range is not None:
            amounts = {c: self.holdings[c].amount for c in held}
            self.range_score.issue(now, view.horizon, amounts, view.total_range)

        def price_at(coin: str, ts: int) -> float | None:
            bars = st.views[coin].bars if coin in st.views else ()
            i = bisect.bisect_left(bars, ts, key=_ts)
            return bars[i].price if i < len(bars) and bars[i].ts == ts else None

        self.range_score.mature(price_at, now)

    def set(self, coin: str, holding: Holding | None) -> None:
        """Store the change; raises OSError (nothing changed) when the file cannot be written."""
        if self.read_only:
            raise PermissionError("the holdings are the remote engine's")
        new = dict(self._own)
        if holding is None:
            new.pop(coin, None)
        else:
            new[coin] = holding
        if self.path is not None:
            save_holdings(self.path, new)
        self._own = new


__all__ = ["HoldingsController"]
