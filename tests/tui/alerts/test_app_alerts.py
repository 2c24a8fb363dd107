"""Alerts in the running app: a level hovered around for 30 minutes tells each real crossing once,
toasts never pile up (newest replaces oldest), the bell rings once per alert."""

from __future__ import annotations

import json
import math
from pathlib import Path

from textual.widgets import Input, OptionList

from engine.events import Bar, BarEvent, ForecastEvent
from tests.conftest import banded, settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
from tui.widgets.dialog_parts import Toggle
from tui.widgets.toasts import MAX_TOASTS, SHORT_MAX_TOASTS, Toasts


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@sync
async def test_a_price_hovering_at_a_level_for_30_minutes_tells_each_real_crossing_once() -> None:
    engine = FakeEngine(history=60, coins=("bitcoin",))
    app = CryptoApp(engine)
    clock = Clock()
    app.alerts.clock = clock
    rings: list[int] = []
    app.alerts.ring = lambda: rings.append(1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        last = engine.snapshot("bitcoin").bars[-1]
        level = round(last.price)
        app.prefs.levels["bitcoin"] = [float(level)]
        app.prefs.bell = True
        app.prefs.surprise = False
        # The next minute's 80 % band is +-0.2 %: crossing by less is hovering, not crossing.
        half = 0.002
        margin = level * math.expm1(half)
        bands = ((-half, -half), (half, half))
        engine.emit(ForecastEvent("bitcoin", last.ts, float(level), (1, 5), (0.0, 0.0), *bands))
        small = [-0.2, 0.3, -0.5, 0.6, 0.8, -0.7, 0.9, -0.1, 0.2]  # in margins: all inside
        path = (
            [-3.0]  # below the level
            + small
            + [3.0]  # a real crossing up
            + [0.5, -0.5, 0.2, -0.7, -0.9, 0.0, -0.2, 0.6, -0.4]
            + [-3.0]  # a real crossing down
            + small
        )
        assert len(path) == 30
        before = len(app.alerts.delivered)
        for i, m in enumerate(path, 1):
            clock.now += 60.0  # a live minute
            bar = Bar("bitcoin", last.ts + 60 * i, level + m * margin)
            engine.emit(BarEvent(bar))
            await pilot.pause()
        await settle(app, pilot)
        told = [a.title for a in app.alerts.delivered[before:]]
        assert told == [f"Bitcoin above {level:,.2f}", f"Bitcoin below {level:,.2f}"]
        assert len(rings) == 2  # one bell per alert
        said = [t for t, _m, _s in app.said if t.startswith("Bitcoin ")]
        assert said == told


@sync
async def test_toasts_never_pile_up_and_stay_off_the_chart() -> None:
    app = CryptoApp(FakeEngine(history=60))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for i in range(10):
            app.notify(f"message {i}", title=f"toast {i}")
        await pilot.pause()
        rack = app.main.query_one(Toasts)
        shown = rack.messages
        assert [t for t, _m, _s in shown] == [f"toast {i}" for i in range(10 - MAX_TOASTS, 10)]
        # The same toast again is counted, not stacked.
        app.notify("message 9", title="toast 9")
        await pilot.pause()
        assert len(rack.messages) == MAX_TOASTS
        chart = app.main.query_one("#chart")
        assert rack.region.right <= chart.region.x  # over the left column only
        assert rack.region.bottom <= app.main.query_one("#status").region.y
    app = CryptoApp(FakeEngine(history=60))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for i in range(5):
            app.notify(f"message {i}", title=f"toast {i}")
        await pilot.pause()
        assert len(app.main.query_one(Toasts).messages) == SHORT_MAX_TOASTS


def test_chance_alert_fires_once_per_rise() -> None:
    from tui.alerts.rules import Alert, AlertChecker, chance_text

    checker = AlertChecker()
    levels = [101.0]

    def check(half: float, minute: int, threshold: float | None = 0.2) -> list[Alert]:
        f = banded("bitcoin", 100.0, half, ts=60 * minute)
        return checker.check_chances(f, levels, 5, threshold, "Bitcoin", wall=10.0 * minute)

    assert check(0.001, 0) == []  # a narrow band: no chance to speak of
    alerts = check(0.02, 1)
    assert len(alerts) == 1 and alerts[0].kind == "chance" and "above 101" in alerts[0].title
    assert check(0.02, 20) == []  # still above the threshold: told once
    assert check(0.019, 21) == []  # a wobble just under it does not re-arm it
    assert check(0.02, 40) == []
    assert check(0.001, 41) == []  # falls well back: re-armed ...
    assert len(check(0.02, 60)) == 1  # ... and told again when it rises
    assert check(0.001, 61) == [] and check(0.02, 62) == []  # within the quiet time after that
    assert check(0.02, 90, threshold=None) == []
    assert chance_text(banded("bitcoin", 100.0, 0.02), 5, 101.0).endswith("% above in 5 min")
    assert chance_text(None, 5, 101.0) == ""


@sync
async def test_alerts_modal_shows_chances_and_desktop_notification(tmp_path: Path) -> None:
    from tui.alerts.dialog import AlertsScreen

    sent: list[tuple[str, str]] = []

    async def sender(title: str, message: str) -> None:
        sent.append((title, message))

    engine = FakeEngine(history=200)
    app = CryptoApp(engine, state_path=tmp_path / "ui.json")
    app.alerts.sender = sender
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        price = engine.snapshot("bitcoin").bars[-1].price
        await pilot.press("A")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press(*f"{price * 1.0005:.2f}", "enter")
        await pilot.pause()
        levels = app.screen.query_one("#alerts-levels", OptionList)
        option = str(levels.get_option_at_index(0).prompt)
        assert "% above in 5 min" in option
        await pilot.click("#alerts-threshold")
        await pilot.press(*"abc")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)  # a bad threshold is refused, said why
        assert "chance 'abc' is not a number" in str(app.screen.query_one("#alerts-hint").render())
        app.screen.query_one("#alerts-threshold", Input).value = "1"
        app.screen.query_one("#alerts-desktop", Toggle).value = True
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.prefs.thresholds == {"bitcoin": 0.01} and app.prefs.desktop == {"bitcoin": True}
        saved = json.loads((tmp_path / "ui.json").read_text())["ui"]
        assert saved["thresholds"] == {"bitcoin": 0.01} and saved["desktop"] == {"bitcoin": True}
        engine.advance(3)
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        assert sent and "chance above" in sent[0][0]
