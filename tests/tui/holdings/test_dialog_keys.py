"""The holding dialog driven by the keyboard alone, as a user types it: what is stored is what was
typed (Tab moves between the fields, space toggles, Enter saves, Esc cancels), at 80x24 too."""

from __future__ import annotations

import json
from pathlib import Path

from textual import events
from textual.widgets import Button

from tests.conftest import settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.holdings.dialog import HoldingScreen
from tui.widgets.dialog_parts import Toggle
from tui.widgets.safe_input import SafeInput


def stored(tmp_path: Path) -> dict[str, dict[str, object]]:
    return json.loads((tmp_path / "holdings.json").read_text())["holdings"]


def focused_id(app: CryptoApp) -> str | None:
    return app.screen.focused.id if app.screen.focused is not None else None


@sync
async def test_amount_tab_cost_enter_stores_both(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H")
        await pilot.pause()
        assert isinstance(app.screen, HoldingScreen)
        await pilot.press(*"0.5", "tab", *"3000", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, HoldingScreen)
    assert stored(tmp_path) == {"bitcoin": {"amount": 0.5, "cost": 3000.0, "currency": "usd"}}


@sync
async def test_tab_order_is_reading_order_and_space_toggles_the_per_unit_switch(
    tmp_path: Path,
) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H")
        await pilot.pause()
        order = [focused_id(app)]
        for _ in range(4):
            await pilot.press("tab")
            order.append(focused_id(app))
        assert order == ["holding-amount", "holding-cost", "holding-per-unit", "cancel", "save"]
        await pilot.press("tab")  # wraps around to the first field
        assert focused_id(app) == "holding-amount"
        await pilot.press("shift+tab")
        assert focused_id(app) == "save"
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "shift+tab")
        assert focused_id(app) == "holding-amount"
        # amount, Tab, cost, Tab, space on the switch, Enter: a per-unit cost.
        await pilot.press(*"2", "tab", *"1,250.5", "tab", "space")
        assert app.screen.query_one("#holding-per-unit", Toggle).value is True
        await pilot.press("enter")  # on the switch: Enter saves, it does not toggle
        await settle(app, pilot)
        assert not isinstance(app.screen, HoldingScreen)
    assert stored(tmp_path)["bitcoin"] == {"amount": 2.0, "cost": 2501.0, "currency": "usd"}


@sync
async def test_edit_and_remove_by_keys_and_escape_changes_nothing(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H", *"1", "enter")
        await settle(app, pilot)
        assert stored(tmp_path)["bitcoin"]["amount"] == 1.0
        # Edit: the fields come filled in; select-all is not needed, End and backspace work.
        await pilot.press("H")
        await pilot.pause()
        assert app.screen.query_one("#holding-amount", SafeInput).value == "1"
        await pilot.press("backspace", *"3", "escape")
        await settle(app, pilot)
        assert stored(tmp_path)["bitcoin"]["amount"] == 1.0  # Esc: nothing stored
        # Remove is reachable with Tab: amount, cost, switch, Remove.
        await pilot.press("H")
        await pilot.pause()
        await pilot.press("tab", "tab", "tab")
        assert isinstance(app.screen.focused, Button) and app.screen.focused.id == "remove"
        await pilot.press("enter")
        await settle(app, pilot)
    assert stored(tmp_path) == {}


@sync
async def test_a_bad_amount_keeps_the_dialog_open_and_says_why(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H", *"lots", "enter")
        await pilot.pause()
        assert isinstance(app.screen, HoldingScreen)
        assert "not a number" in str(app.screen.query_one("#holding-error").render())
        await pilot.press("escape")
        await settle(app, pilot)
    assert not (tmp_path / "holdings.json").exists()


@sync
async def test_the_buttons_are_on_screen_at_80x24(tmp_path: Path) -> None:
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H", *"1", "enter", "H")
        await pilot.pause()
        for button in app.screen.query(Button):
            region = button.region
            assert region.height >= 1 and 0 <= region.y and region.bottom <= 24, button.id


@sync
async def test_keys_typed_in_one_burst_land_in_their_fields(tmp_path: Path) -> None:
    """As a fast typist, a paste or tmux sends them: every key queued before any is handled."""
    app = CryptoApp(FakeEngine(history=60), state_path=tmp_path / "ui.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("H")
        await pilot.pause()
        burst = [("0", "0"), ("full_stop", "."), ("5", "5"), ("tab", "\t")]
        burst += [(c, c) for c in "3000"] + [("tab", "\t"), ("space", " "), ("enter", "\r")]
        for key, char in burst:
            app.post_message(events.Key(key, char))
        await settle(app, pilot)
        assert not isinstance(app.screen, HoldingScreen)
    assert stored(tmp_path) == {"bitcoin": {"amount": 0.5, "cost": 1500.0, "currency": "usd"}}
