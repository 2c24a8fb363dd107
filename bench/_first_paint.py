"""Child of the cold-start benchmark: the real ``cryptotui`` (or a bare Textual app) that quits at first paint.

    python bench/_first_paint.py app [cryptotui options...]
    python bench/_first_paint.py bare

At the first refresh after mount it writes ``{"torch": bool, "since_start": s}`` to the file named
by ``BENCH_FIRST_PAINT`` (torch: imported by then?). The bare app then exits; the real app exits
once its chart has been drawn too (the plot joins in the frame after the first), so the parent can
time both. The real app runs through ``tui.__main__.main``; only its ``start_ui`` (run by the main screen's mount) is wrapped.
"""

from __future__ import annotations

import json
import os
import sys
import time

T0 = time.perf_counter()  # as early as this interpreter allows; the parent times from launch


def _report(app: object, exit_now: bool = True) -> None:
    path = os.environ.get("BENCH_FIRST_PAINT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"torch": "torch" in sys.modules, "since_start": time.perf_counter() - T0}, fh)
    if exit_now:
        app.exit()  # type: ignore[attr-defined]


def bare() -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("Watchlist")

        def on_mount(self) -> None:
            self.call_after_refresh(_report, self)

    Bare().run()
    return 0


def app(argv: list[str]) -> int:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import tui.app
    from tui.__main__ import main

    original = tui.app.CryptoApp.start_ui

    def start_ui(self: tui.app.CryptoApp) -> None:
        # Scheduled first, so the report runs before anything the app defers to after the first
        # paint (the engine's start): "torch imported" then means imported on the path to it.
        self.call_after_refresh(_report, self, False)
        original(self)

        def exit_once_charted() -> None:
            from tui.widgets.price_chart import PriceChart

            plot = self.screen.query_one(PriceChart).plot
            if plot is not None and plot.built_draw > 0:  # laid out with data, not blank
                self.call_after_refresh(self.exit)
            else:
                self.set_timer(0.01, exit_once_charted)

        self.set_timer(0.01, exit_once_charted)

    tui.app.CryptoApp.start_ui = start_ui  # type: ignore[method-assign]
    return int(main(argv) or 0)


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "bare"
    raise SystemExit(bare() if kind == "bare" else app(sys.argv[2:]))
