"""Alerts in the running app: a level hovered around for 30 minutes tells each real crossing once,
toasts never pile up (newest replaces oldest), the bell rings once per alert."""

from __future__ import annotations

import math

from engine.events import Bar, BarEvent, ForecastEvent
from tests.conftest import settle, sync
from tests.fakes.fake_engine import FakeEngine
from tui.app import CryptoApp
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
