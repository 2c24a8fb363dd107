"""Foreign text through the real widgets: names, symbols, messages, paths, pastes (issue 14).

Every field the app shows but did not write is driven with hostile text (markup, escape sequences,
control characters, wide characters, marks) through a running app (Pilot). What reaches the screen
must hold no control characters, and markup must be shown as the characters typed.
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from textual import events
from textual.app import App
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Static

from engine.api import CoinMatch
from engine.errors import CryptotuiError
from engine.events import CoinsEvent, ErrorEvent, StatusEvent, TrainEvent
from tests.conftest import ROOT, settle
from tests.fakes.fake_engine import FakeEngine
from tests.tui.test_safe_text import foreign
from tui.alerts.dialog import AlertsScreen
from tui.app import INFO_TITLES, CryptoApp
from tui.safe_text import clean
from tui.screens.add_coin import AddCoinScreen
from tui.screens.confirm import ConfirmScreen
from tui.widgets.chart_plot import ChartPlot
from tui.widgets.status_bar import StatusBar
from tui.widgets.watchlist import Watchlist

FIELDS = (
    "coin_id",
    "symbol",
    "source",
    "state",
    "status",
    "error_title",
    "error_msg",
    "train_state",
    "train_message",
    "device",
    "query",
    "match_name",
    "match_symbol",
    "search_error",
    "level",
    "path",
    "export_error",
)


class HostileEngine(FakeEngine):
    """The fake engine, with a lookup and an export whose words come from the test."""

    def __init__(self, texts: dict[str, str]) -> None:
        super().__init__(history=60)
        self.texts = texts
        self.fail_search = False
        self.fail_export = False

    def search(self, query: str) -> list[CoinMatch]:
        if self.fail_search:
            raise CryptotuiError(self.texts["search_error"], title=self.texts["error_title"])
        t = self.texts
        return [CoinMatch(t["coin_id"], t["match_name"], t["match_symbol"], 7)]

    def export(self, coin: str, path: Path | None = None) -> Path:
        if self.fail_export:
            raise CryptotuiError(self.texts["export_error"], title=self.texts["error_title"])
        return Path(self.texts["path"])  # the toast shows it; nothing is written


def painted(app: App[None]) -> str:
    """What every widget of the active screen paints, line by line (as the terminal gets it).

    Each line must also be as wide as it says: a line wider than declared (wide characters
    counted as one cell) runs past its widget, and past the screen's edge it wraps and shifts rows.
    """
    lines = []
    for widget in [app.screen, *app.screen.query("*")]:
        if widget.size.area and widget.display:
            for strip in widget.render_lines(widget.size.region):
                assert cell_len(strip.text) == strip.cell_length, (widget, strip.text)
                lines.append(strip.text)
    return "\n".join(lines)


def visible(widget: Widget) -> str:
    """A widget's content before layout crops it: markup taken as markup would be missing here."""
    return str(getattr(widget.render(), "plain", ""))


def assert_clean(app: App[None]) -> None:
    for text in (painted(app), app.export_screenshot()):
        bad = {ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch != "\n"}
        assert not bad, f"control characters on screen: {sorted(map(repr, bad))}"


def head(text: str, n: int = 3) -> str:
    """The first few visible characters, for fields that a column or a width may cut."""
    return "".join(text.split())[:n]


def squeezed(text: str) -> str:
    return "".join(text.split())


async def drive(t: dict[str, str]) -> None:
    engine = HostileEngine(t)
    app = CryptoApp(engine)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot, 0.05, workers=True)
        # From the engine (or a remote one): a coin id and symbols, status, training, errors.
        weird = t["coin_id"] or "x"
        coins = (*engine.coins(), weird) if weird not in engine.coins() else engine.coins()
        labels = (("bitcoin", t["symbol"]), (weird, t["symbol"]))
        engine.emit(CoinsEvent(coins=coins, labels=labels))
        engine.emit(StatusEvent(source=t["source"], state=t["state"], message=t["status"]))
        engine.emit(
            TrainEvent("bitcoin", t["train_state"], message=t["train_message"], device=t["device"])
        )
        engine.emit(ErrorEvent(t["error_title"], t["error_msg"]))
        await settle(app, pilot, workers=True)
        assert_clean(app)
        label = app.state.label("bitcoin")
        assert head(label) in squeezed(visible(app.query_one(Watchlist)))
        assert app.query_one(ChartPlot).title_text.endswith(f"({label})")
        bar = squeezed(visible(app.query_one(StatusBar)))
        status = clean(t["status"])
        if status.lower().startswith(t["state"] + ":"):  # the bar says the state word once
            status = status[len(t["state"]) + 1 :]
        assert squeezed(clean(t["source"], 24)) in bar and squeezed(status) in bar
        model = squeezed(visible(app.query_one("#model-state", Static)))
        assert squeezed(clean(t["train_message"])) in model
        toasts = [squeezed(visible(toast)) for toast in app.screen.query("Toast")]
        want = squeezed(clean(t["error_title"], 80) + clean(t["error_msg"], 400, newlines=True))
        # One place per message: an error the status bar already says is not toasted again.
        said = t["state"] != "ok" and t["error_msg"] and t["error_msg"] in t["status"]
        if not said and t["error_title"] not in INFO_TITLES:
            assert want in toasts

        # The odd coin selected: header, chart notice, alerts, confirm and export toasts name it.
        app.main.select(weird)
        await settle(app, pilot, workers=True)
        assert_clean(app)
        title = app.state.coin_title(weird)
        assert head(title) in squeezed(painted(app))
        await pilot.press("A")
        await settle(app, pilot, workers=True)
        assert isinstance(app.screen, AlertsScreen)
        # The dialog names the coin in its price line ("Tell me when NAME crosses a level").
        now_line = squeezed(visible(app.screen.query_one("#alerts-now", Label)))
        assert now_line.startswith("Tellmewhen" + head(clean(title, 48), 12))
        level = app.screen.query_one(Input)
        level.post_message(events.Paste(t["level"]))
        await settle(app, pilot, workers=True)
        await pilot.press("enter")
        await settle(app, pilot, workers=True)
        assert_clean(app)
        await pilot.press("escape")
        await pilot.press("x")
        await settle(app, pilot, workers=True)
        assert isinstance(app.screen, ConfirmScreen)
        question = visible(app.screen.query_one("#confirm-question", Label))
        assert question == f"Remove {title} from the watchlist?"
        assert_clean(app)
        await pilot.press("n")
        # It has no data: nothing is exported, and the refusal names it (as the CLI does).
        await pilot.press("e")
        await settle(app, pilot, 0.05, workers=True)
        assert engine.exports == [] and app.said[-1][1] == clean(f"No data for {title} yet.", 400)
        app.main.select("bitcoin")
        await pilot.press("e")
        await settle(app, pilot, 0.05, workers=True)
        path = squeezed(clean(str(Path(t["path"])), 400, newlines=True))
        assert any(squeezed(f"{title}{message}").endswith(path) for title, message, _ in app.said)
        engine.fail_export = True
        await pilot.press("e")
        await settle(app, pilot, 0.05, workers=True)
        assert_clean(app)

        # Typed or pasted into the search; names and symbols from the lookup; its failure.
        await pilot.press("a")
        await settle(app, pilot, workers=True)
        screen = app.screen
        assert isinstance(screen, AddCoinScreen)
        query = screen.query_one(Input)
        query.post_message(events.Paste(t["query"]))
        await settle(app, pilot, workers=True)
        assert query.value == clean(t["query"].splitlines()[0] if t["query"] else "", 10_000)[:100]
        if not query.value.strip():
            query.value = "q"  # an empty search asks nothing
        await settle(app, pilot, 0.5)  # the debounce, then the lookup
        assert_clean(app)
        prompt = visible_option(screen.query_one(OptionList))
        assert squeezed(clean(t["match_name"], 48)) in squeezed(prompt)
        assert squeezed(clean(t["match_symbol"], 12).upper()) in squeezed(prompt)
        engine.fail_search = True
        screen.search("q")
        await settle(app, pilot, workers=True)
        hint = squeezed(visible(screen.query_one("#add-hint", Label)))
        assert head(clean(t["search_error"]), 20) in hint
        assert_clean(app)
        await pilot.press("escape")
        await settle(app, pilot, workers=True)


def visible_option(options: OptionList) -> str:
    prompt = options.get_option_at_index(0).prompt
    return str(getattr(prompt, "plain", prompt))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.fixed_dictionaries({name: foreign for name in FIELDS}))
def test_foreign_text_is_shown_as_text_everywhere(texts: dict[str, str]) -> None:
    asyncio.run(drive(texts))


def test_markup_and_escapes_in_every_field() -> None:
    """The cases the issue names, every time (hypothesis picks its own)."""
    asyncio.run(
        drive(
            {
                name: f"宽🐸e\u0301[/x]\x1b]0;title\x07[@click=app.quit]{name}[b \x1b[2J"
                for name in FIELDS
            }
        )
    )


def test_typing_a_closing_tag_into_the_search_shows_it() -> None:
    async def run() -> None:
        app = CryptoApp(FakeEngine(history=60))
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot, 0.05, workers=True)
            await pilot.press("a")
            await pilot.pause()
            await pilot.press(*"[/x]")
            await settle(app, pilot, 0.5)  # the debounce, then the lookup
            screen = app.screen
            assert isinstance(screen, AddCoinScreen)
            assert screen.query_one(Input).value == "[/x]"
            assert "[/x]" in painted(app)
            assert visible(screen.query_one("#add-hint", Label)).startswith(
                "Nothing found for '[/x]'."
            )

    asyncio.run(run())


def test_frames_from_a_remote_engine_are_shown_as_text() -> None:
    """The same fields over --connect: a real feed server, RemoteEngine and its JSON frames."""
    from engine.feed.remote import RemoteEngine
    from engine.feed.server import ServerThread

    nasty = "[/x][@click=app.quit]q\x1b]0;pwned\x07\x1b[2J\ud800\u202e宽🐸"
    shown = clean(nasty)
    engine = FakeEngine(history=40)

    async def run(remote: RemoteEngine) -> None:
        app = CryptoApp(remote)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            for _ in range(300):
                await settle(app, pilot, 0.05, workers=True)
                if app.state.views.get("bitcoin") and app.state.views["bitcoin"].bars:
                    break
            engine.emit(CoinsEvent(coins=engine.coins(), labels=(("bitcoin", nasty),)))
            engine.emit(TrainEvent("bitcoin", nasty, message=nasty, device=nasty))
            engine.emit(StatusEvent(source=nasty, state="error", message=nasty))
            # Not the status bar's words: those are said once, in the status bar, not toasted.
            engine.emit(ErrorEvent(nasty, "export failed: " + nasty))
            for _ in range(300):
                await settle(app, pilot, 0.05, workers=True)
                if shown in visible(app.query_one(StatusBar)) and app.screen.query("Toast"):
                    break
            assert_clean(app)
            assert shown in visible(app.query_one(StatusBar))
            assert shown in visible(app.query_one("#model-state", Static))
            assert app.query_one(ChartPlot).title_text.startswith("Bitcoin ([/X][@CL")
            toasts = [squeezed(visible(toast)) for toast in app.screen.query("Toast")]
            assert squeezed(shown + "export failed: " + shown) in toasts

    with ServerThread(engine) as server:
        remote = RemoteEngine(server.url, backoff=(0.05, 0.2))
        try:
            asyncio.run(run(remote))
        finally:
            remote.stop()


def test_an_error_on_the_command_line_quotes_a_hostile_path_as_text(tmp_path: Path) -> None:
    """Errors before the TUI go to stderr, still one line, with no escape sequence in it."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("x")
    home = blocker / "sub\x1b]0;pwned\x07\nline\x1b[2J"
    env = {k: v for k, v in os.environ.items() if k not in ("COINGECKO_API_KEY", "CRYPTOTUI_HOME")}
    r = subprocess.run(
        [sys.executable, "-m", "tui", "--demo", "--home", str(home)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot write to data dir" in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "sub line" in r.stderr  # the path, as text
