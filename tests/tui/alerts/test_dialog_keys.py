"""The alerts dialog driven by the keyboard alone: levels added with Enter and removed with del,
every field and switch reached with Tab in reading order, Enter saves, Esc cancels; Save is on
screen at 80x24."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button

from tests.conftest import settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.alerts.dialog import AlertsScreen
from tui.app import CryptoApp


def focused_id(app: CryptoApp) -> str | None:
    return app.screen.focused.id if app.screen.focused is not None else None


def saved(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "ui.json").read_text())["ui"]


@sync
async def test_the_whole_flow_by_keys_stores_what_was_typed(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        # Two levels, each added with Enter; the field stays for the next one.
        await pilot.press(*"7000", "enter", *"7400", "enter")
        assert app.screen.levels == [7000.0, 7400.0]
        order = [focused_id(app)]
        for _ in range(7):
            await pilot.press("tab")
            order.append(focused_id(app))
        assert order == [
            "alerts-level",
            "alerts-levels",
            "alerts-threshold",
            "alerts-desktop",
            "alerts-surprise",
            "alerts-bell",
            "cancel",
            "save",
        ]
        # Back to the list: del removes the highlighted level (the first).
        for _ in range(6):
            await pilot.press("shift+tab")
        assert focused_id(app) == "alerts-levels"
        await pilot.press("delete")
        assert app.screen.levels == [7400.0]
        # Threshold 30 %, surprise off (space), bell on (space), then Enter saves.
        await pilot.press("tab", *"30", "tab", "tab", "space", "tab", "space", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, AlertsScreen)
    ui = saved(tmp_path)
    assert ui["levels"] == {"bitcoin": [7400.0]}
    assert ui["thresholds"] == {"bitcoin": pytest.approx(0.3)}
    assert ui["surprise"] is False and ui["bell"] is True and ui["desktop"] == {}


@sync
async def test_escape_cancels_and_enter_in_an_empty_field_saves(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("A", *"7000", "enter", "escape")
        await settle(app, pilot)
        assert app.prefs.levels == {}
        await pilot.press("A", *"7000", "enter", "enter")  # the second Enter: nothing to add
        await settle(app, pilot)
        assert not isinstance(app.screen, AlertsScreen)
        assert app.prefs.levels == {"bitcoin": [7000.0]}


@sync
async def test_a_bad_threshold_keeps_the_dialog_open(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("A", "tab", "tab", *"150", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        assert "chance '150' is too large" in str(app.screen.query_one("#alerts-hint").render())


@pytest.mark.parametrize("levels", [0, 8])
@sync
async def test_save_is_on_screen_at_80x24(tmp_path: Path, levels: int) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    app.prefs.levels["bitcoin"] = [7000.0 + 10 * i for i in range(levels)]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        # Tab to Save: the box scrolls it into view if it has to; it is never cut off.
        while focused_id(app) != "save":
            await pilot.press("tab")
        await pilot.pause()
        save = app.screen.query_one("#save", Button)
        assert save.region.height >= 1 and 0 <= save.region.y and save.region.bottom <= 24


@sync
async def test_the_flow_typed_in_one_burst_stores_the_same(tmp_path: Path) -> None:
    """Every key queued before any is handled, as a paste or tmux sends them."""
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("A")
        await pilot.pause()
        keys = [*"7000", "enter", *"7400", "enter", "tab", "tab", *"30", "tab", "tab", "space"]
        keys += ["tab", "space", "enter"]
        chars = {"enter": "\r", "tab": "\t", "space": " "}
        for key in keys:
            app.post_message(events.Key(key, chars.get(key, key)))
        await settle(app, pilot)
        assert not isinstance(app.screen, AlertsScreen)
    ui = saved(tmp_path)
    assert ui["levels"] == {"bitcoin": [7000.0, 7400.0]}
    assert ui["thresholds"] == {"bitcoin": pytest.approx(0.3)}
    assert ui["surprise"] is False and ui["bell"] is True
