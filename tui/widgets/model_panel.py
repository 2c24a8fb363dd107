"""The model panel: training state (with progress while warming up), steps, loss sparkline, step time, lr."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from engine.events import TrainEvent
from tui.format import format_compact
from tui.safe_text import clean
from tui.widgets.columns import update_static
from tui.widgets.palette import Palette

_STATE_WORDS = {
    "warming up": "warming up",
    "pretraining": "pre-training on stored history",
    "training": "training online",
    "paused": "paused (press p to resume)",
    "rolled back": "rolled back to the last good weights",
    "idle": "idle",
}


class ModelPanel(Vertical):
    DEFAULT_CSS = """
    ModelPanel { height: auto; }
    ModelPanel > #model-state { height: auto; }
    ModelPanel > ProgressBar { height: 1; display: none; }
    ModelPanel.-progress > ProgressBar { display: block; }
    ModelPanel > Sparkline { height: 1; }
    ModelPanel.-no-loss > Sparkline { display: none; }
    .-tall ModelPanel > Sparkline { height: 3; }
    ModelPanel ProgressBar Bar { width: 20; }
    ModelPanel > #model-stats { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="model-state")
        # The progress bar (four widgets) is mounted the first time there is progress to show:
        # most starts have none, and it would cost the first frame a few ms.
        yield Sparkline([], id="model-loss")
        yield Static(id="model-stats")

    def show(self, train: TrainEvent | None) -> None:
        pal = Palette.of(self)
        state = self.query_one("#model-state", Static)
        stats = self.query_one("#model-stats", Static)
        spark = self.query_one(Sparkline)
        if train is None:
            update_static(state, Text("no model status yet", style="dim"))
            update_static(stats, Text(""))
            spark.data = []
            self.set_class(False, "-progress")
            self.set_class(True, "-no-loss")
            return
        colour = {"training": pal.up, "paused": pal.warning, "rolled back": pal.down}.get(
            train.state, pal.accent
        )
        # State, message and device may come from a remote engine: foreign text.
        words = _STATE_WORDS.get(train.state) or clean(train.state, 40)
        line = Text.assemble(("● ", colour), (words, f"bold {colour}"))
        if train.message:
            line.append(f"\n{clean(train.message)}", style="dim")
        update_static(state, line)
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
        loss = format_compact(train.loss) if train.loss is not None else "–"
        step_ms = f"{train.step_ms:.1f} ms" if train.step_ms is not None else "–"
        lr = f"{train.lr:.0e}" if train.lr is not None else "–"
        update_static(
            stats,
            Text.assemble(
                ("steps ", "dim"), f"{train.step:,}  ",
                ("loss ", "dim"), f"{loss}  ",
                ("step ", "dim"), f"{step_ms}\n",
                ("lr ", "dim"), f"{lr}  ",
                ("samples ", "dim"), f"{train.samples:,}  ",
                ("device ", "dim"), clean(train.device, 24),
            )
        )
