"""The model panel: the training story: state, loss over time, which band and mean are served and why.

The sentence on the selected horizon's served band is the score panel's (under its verdict); this
panel adds the mean served, the band per horizon against the simple one, coverage and a key.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from engine.events import ForecastEvent, HorizonMetrics, TrainEvent
from tui.format import format_compact
from tui.safe_text import clean
from tui.state import ModelView
from tui.widgets.columns import Column, TextLines, layout_columns, update_static, wrap_words
from tui.widgets.palette import Palette

_STATE_WORDS = {
    "warming up": "warming up",
    "pretraining": "pre-training on stored history",
    "training": "training online",
    "paused": "paused: press p to resume",
    "rolled back": "rolled back to the last good weights",
    "idle": "idle",
}

_BAND_WORDS = {
    "network": "the network's band",
    "simple": "the simple band",
    "blend": "a blend of the network's and the simple band",
}

# What the columns of the score table and this panel mean, in a line or two.
KEY = (
    'key: rel = model MAE / "no change" MAE (below 1 beats it) · dir = moves called right · '
    "cov80 = outcomes inside the 80 % band · band = the one served · vs simple = the "
    "network's interval score against the simple band's"
)


def _ratio_words(ratio: float) -> str:
    """0.96 -> "4 % better"; 1.155 -> "16 % worse"; small differences keep a decimal."""
    diff = abs(1 - ratio) * 100
    amount = f"{diff:.1f}" if diff < 2 else f"{diff:.0f}"
    if amount in ("0.0", "0"):
        return "as good as"
    return f"{amount} % {'better' if ratio < 1 else 'worse'}"


def served_sentence(row: HorizonMetrics | None, horizon: int) -> str:
    """Which 80 % band is served at ``horizon`` and why, in words."""
    if row is not None and row.n > 0 and not row.served80:
        return f"{horizon} min: this engine does not say which band it serves."
    if row is None or not row.served80:
        return (
            f"{horizon} min: no band scored yet, so none is proven; each forecast is scored "
            f"{horizon} min after it is made."
        )
    band = _BAND_WORDS.get(row.served80, row.served80)
    text = f"{horizon} min: {band} served"
    if math.isfinite(row.recent_ratio80) and row.recent_n > 0:
        words = _ratio_words(row.recent_ratio80)
        if words == "as good as":
            text += (
                f"; the network's band is as good as the simple one over the last "
                f"{row.recent_n:,} minutes"
            )
        else:
            text += (
                f"; the network's band is {words} than the simple one over the last "
                f"{row.recent_n:,} minutes"
            )
        # The engine leaves the simple band only for a clear margin (a share and two standard
        # errors): a small lead is not enough, and the sentence must not read as a contradiction.
        if row.served80 == "simple" and row.recent_ratio80 < 1 and words != "as good as":
            text += ", not yet by a clear margin"
    if row.served95 and row.served95 != row.served80:
        text += f" (95 %: {_BAND_WORDS.get(row.served95, row.served95)})"
    return text + "."


def mean_sentence(forecast: ForecastEvent | None, horizon: int) -> str:
    """Which mean is served: "no change", the network's own, or the network's shrunk towards zero."""
    if forecast is None or horizon not in forecast.horizons or not forecast.mean:
        return ""
    i = forecast.horizons.index(horizon)
    mean = forecast.mean[i]
    raw = forecast.raw[i] if len(forecast.raw) > i else math.nan
    if abs(mean) < 1e-9:
        return (
            'Mean: "no change"; the network\'s own mean is not yet proven better, so it is '
            "not served (the chart draws it while it beats no change)."
        )
    if not math.isfinite(raw) or abs(raw) < 1e-12 or abs(mean - raw) <= 1e-9 * max(1.0, abs(raw)):
        return "Mean: the network's own."
    share = mean / raw
    if 0 < share < 1:
        return (
            f'Mean: the network\'s, shrunk to {share * 100:.0f} % towards "no change" until '
            "its scores earn more."
        )
    return 'Mean: a blend of the network\'s and "no change".'


class ModelPanel(Vertical):
    DEFAULT_CSS = """
    ModelPanel { height: auto; }
    ModelPanel > #model-state { height: auto; }
    ModelPanel > ProgressBar { height: 1; display: none; }
    ModelPanel.-progress > ProgressBar { display: block; }
    ModelPanel > Sparkline { height: 1; }
    ModelPanel.-no-loss > Sparkline { display: none; }
    ModelPanel.-no-loss > #model-loss-label { display: none; }
    .-tall ModelPanel > Sparkline { height: 3; }
    ModelPanel ProgressBar Bar { width: 20; }
    ModelPanel > #model-loss-label { height: 1; color: $text-muted; }
    ModelPanel > #model-story { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="model-state")
        # The progress bar (four widgets) is mounted the first time there is progress to show:
        # most starts have none, and it would cost the first frame a few ms.
        yield Static(id="model-loss-label")
        yield Sparkline([], id="model-loss")
        yield TextLines(id="model-story")

    def show(self, view: ModelView) -> None:
        pal = Palette.of(self)
        state = self.query_one("#model-state", Static)
        spark = self.query_one(Sparkline)
        story = self.query_one("#model-story", TextLines)
        train = view.train
        if view.no_data:
            # The watchlist and the chart say why; here only what it means for the model.
            update_static(
                state, Text.assemble(("● ", pal.warning), ("nothing to learn from", pal.warning))
            )
            self._hide_progress()
            spark.data = []
            self.set_class(True, "-no-loss")
            story.set_builder(lambda width: [])
            return
        if train is None:
            update_static(state, Text("no model status yet", style="dim"))
            self._hide_progress()
            spark.data = []
            self.set_class(True, "-no-loss")
            story.set_builder(lambda width: [])
            return
        update_static(state, self._state_line(train, view.paused, view.horizon, pal))
        show_progress = train.progress is not None and train.state in ("warming up", "pretraining")
        self.set_class(show_progress, "-progress")
        if show_progress:
            bars = self.query(ProgressBar)
            if bars:
                bar = bars.first()
            else:
                bar = ProgressBar(total=1.0, show_eta=False, id="model-progress")
                self.mount(bar, after="#model-state")
            bar.update(total=1.0, progress=max(0.0, min(1.0, train.progress or 0.0)))
        spark.data = list(train.losses)
        self.set_class(not train.losses, "-no-loss")
        if train.losses:
            loss = f" {format_compact(train.loss)}" if train.loss is not None else ""
            trend = ""
            if len(train.losses) >= 4:
                half = len(train.losses) // 2
                first = sum(train.losses[:half]) / half
                last = sum(train.losses[half:]) / (len(train.losses) - half)
                trend = (
                    " falling"
                    if last < first * 0.97
                    else " rising"
                    if last > first * 1.03
                    else " flat"
                )
            update_static(
                self.query_one("#model-loss-label", Static),
                Text(
                    f"loss{loss}{trend} · {len(train.losses)} updates",
                    no_wrap=True,
                    overflow="ellipsis",
                ),
            )
        story.set_builder(lambda width: self._story(view, width, pal))

    def _hide_progress(self) -> None:
        self.set_class(False, "-progress")

    def _state_line(self, train: TrainEvent, paused: bool, horizon: int, pal: Palette) -> Text:
        state = "paused" if paused else train.state
        colour = {"training": pal.up, "paused": pal.warning, "rolled back": pal.down}.get(
            state, pal.accent
        )
        # State, message and device may come from a remote engine: foreign text.
        words = _STATE_WORDS.get(state) or clean(state, 40)
        if state == "training" and train.samples == 0:
            # Online training needs matured labels: until the first one there is nothing to learn.
            words = "waiting for the first scored minute"
            colour = pal.accent
        line = Text.assemble(
            ("● ", colour), (words, f"bold {colour}"), no_wrap=True, overflow="ellipsis"
        )
        if train.samples:
            line.append(f" · {train.samples:,} samples", style="dim")
        # The engine's own pause message repeats the state line; anything else is news.
        if train.message and state != "paused" and "paused" not in train.message:
            line.append(f"\n{clean(train.message)}", style="dim")
        return line

    @staticmethod
    def _details(train: TrainEvent | None) -> str:
        if train is None:
            return ""
        details = []
        if train.step:
            details.append(f"{train.step:,} steps")
        if train.step_ms is not None:
            details.append(f"{train.step_ms:.1f} ms/step")
        if train.lr is not None:
            details.append(f"lr {train.lr:.0e}")
        if train.device:
            details.append(clean(train.device, 24))
        return " · ".join(details)

    def _story(self, view: ModelView, width: int, pal: Palette) -> list[Text]:
        rows = view.metrics.rows if view.metrics else ()
        current = next((r for r in rows if r.horizon == view.horizon), None)
        # Once a band is served, the score panel says which and why (engine.forecast.evaluate.explain_band,
        # under its verdict): said there once; here the per-horizon table shows all horizons.
        out: list[Text] = []
        if current is None or not current.served80:
            out += wrap_words(served_sentence(current, view.horizon), width)
        mean = mean_sentence(view.forecast, view.horizon)
        if mean:
            out += wrap_words(mean, width, "dim")
        scored = [r for r in rows if r.served80]
        if scored:
            columns = [
                Column("h"),
                Column("band"),
                Column("vs simple", "right"),
                Column("cov80", "right"),
                Column("cov95", "right"),
            ]
            cells: list[list[str | Text]] = []
            styles: list[str] = []
            for r in scored:
                ratio = r.recent_ratio80
                vs = Text("–", style="dim")
                if math.isfinite(ratio):
                    vs = Text(
                        f"{ratio:.2f}",
                        style=pal.up if ratio < 0.995 else pal.down if ratio > 1.005 else "",
                    )
                cells.append(
                    [f"{r.horizon}m", r.served80, vs, _share(r.coverage80), _share(r.coverage95)]
                )
                styles.append("reverse" if r.horizon == view.horizon else "")
            out += [Text(""), *layout_columns(columns, cells, styles, gap=2)]
        details = self._details(view.train)
        if details:
            out += wrap_words(details, width, "dim")
        out += [Text(""), *wrap_words(KEY, width, "dim")]
        return out


def _share(v: float) -> str:
    return f"{v * 100:.0f}%" if math.isfinite(v) else "–"
