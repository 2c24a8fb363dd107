"""The scoreboard: per horizon, model vs persistence ("no change"), with a verdict in plain words."""

from __future__ import annotations

import math

from rich.text import Text

from engine.events import HorizonMetrics, MetricsEvent
from engine.forecast.evaluate import explain_band
from tui.format import format_percent
from tui.widgets.columns import Column, TextLines, layout_columns, wrap_words
from tui.widgets.palette import Palette


def _pct(v: float, signed: bool = False) -> str:
    return format_percent(v, signed=signed) if math.isfinite(v) else "–"


def _share(v: float) -> str:
    return f"{v * 100:.0f}%" if math.isfinite(v) else "–"


def verdict(row: HorizonMetrics | None, horizon: int) -> tuple[str, str]:
    """One sentence on how good the model is at ``horizon``, and its tone ("good", "bad", "wait")."""
    if row is None or row.n == 0:
        return (
            f"No {horizon}-min forecast scored yet: each is scored {horizon} min after it is made.",
            "wait",
        )
    if not math.isfinite(row.rel_mae):
        return (
            f"{row.n} forecasts scored at {horizon} min; no baseline to compare with yet.",
            "wait",
        )
    if row.best_lag > 0:
        return (
            (
                f"At {horizon} min the predictions follow the price {row.best_lag} min late: "
                "a lagged copy, not foresight."
            ),
            "bad",
        )
    if abs(row.rel_mae - 1) < 0.005:
        return (f'At {horizon} min the model is no better than "no change" yet (n={row.n}).', "bad")
    if row.rel_mae > 1:
        worse = (row.rel_mae - 1) * 100
        return (
            (
                f'At {horizon} min the model is worse than "no change" (errors {worse:.0f}% larger, '
                f"n={row.n}): do not trust its direction."
            ),
            "bad",
        )
    better = (1 - row.rel_mae) * 100
    return ((f'At {horizon} min the model beats "no change" by {better:.0f}% (n={row.n}).'), "good")


class MetricsPanel(TextLines):
    def show(self, metrics: MetricsEvent | None, horizon: int, no_data: str = "") -> None:
        if no_data:
            # A coin the source has nothing for is never scored: "not scored yet" would promise it.
            self.set_builder(lambda width: [Text("nothing to score", style="dim")])
            return
        self.set_builder(lambda width: self._lines(metrics, horizon, width))

    def _lines(self, metrics: MetricsEvent | None, horizon: int, width: int) -> list[Text]:
        pal = Palette.of(self)
        wide = width >= 58
        columns = [Column("h")]
        if wide:
            columns.append(Column("n"))
        columns += [Column("MAE"), Column("no chg"), Column("rel"), Column("dir"), Column("cov80")]
        if wide:
            columns.append(Column("cov95"))
        rows = metrics.rows if metrics else ()
        cells_rows: list[list[str | Text]] = []
        styles: list[str] = []
        for r in rows:
            # 1.00 is "no better than no change": dim, neither a win nor an alarm.
            if not math.isfinite(r.rel_mae) or abs(r.rel_mae - 1) < 0.005:
                rel_style = "dim"
            else:
                rel_style = pal.up if r.rel_mae < 1 else pal.down
            cells: list[str | Text] = [f"{r.horizon}m"]
            if wide:
                cells.append(f"{r.n:,}")
            cells += [
                _pct(r.mae),
                _pct(r.mae_persistence),
                Text(f"{r.rel_mae:.2f}" if math.isfinite(r.rel_mae) else "–", style=rel_style),
                _share(r.dir_acc),
                _share(r.coverage80),
            ]
            if wide:
                cells.append(_share(r.coverage95))
            cells_rows.append(cells)
            styles.append("reverse" if r.horizon == horizon else "")
        current = next((r for r in rows if r.horizon == horizon), None)
        sentence, tone = verdict(current, horizon)
        colour = {"good": pal.up, "bad": pal.down}.get(tone, "dim")
        body = wrap_words(sentence, width, colour)
        if current is not None and current.served80:
            # Which band is drawn and why: the served band is the one proven on past scores.
            body += wrap_words(explain_band(current), width, "dim")
        if not rows:
            return [Text("no scores yet", style="dim"), *body]
        return [*layout_columns(columns, cells_rows, styles, gap=2), *body]
