"""The alert rules: a level fires once per real crossing (hysteresis and a quiet time), a chance
once per rise, a surprise once per quiet period; the final state is always told."""

from __future__ import annotations

import itertools
import math

from engine.events import Bar, ForecastEvent
from tui.alerts.rules import COOLDOWN, COOLDOWN_WALL, FALLBACK_MARGIN, AlertChecker

LEVEL = 100.0


def band(ts: int, half: float = 0.002) -> ForecastEvent:
    """A forecast whose 1-minute 80 % band is +-``half`` (log return) around 100."""
    return ForecastEvent("b", ts, 100.0, (1, 5), (0.0, 0.0), (-half, -2 * half), (half, 2 * half))


def run(
    ch: AlertChecker, prices: list[float], wall_per_minute: float = 60.0, start: int = 0
) -> list[tuple[int, str]]:
    """Feed one bar a minute; the (minute, title) of every alert raised."""
    out = []
    for i, p in enumerate(prices, start):
        for a in ch.check(Bar("b", 60 * i, p), [LEVEL], 5, False, "B", wall=wall_per_minute * i):
            out.append((i, a.title))
    return out


def test_a_price_oscillating_around_a_level_for_30_minutes_fires_once_per_real_crossing() -> None:
    ch = AlertChecker()
    ch.add_forecast(band(0))  # the margin: 100 x expm1(0.002), about 0.20
    margin = ch.margin("b", LEVEL)
    assert math.isclose(margin, 100 * math.expm1(0.002))
    wiggle = [99.95, 100.05, 99.9, 100.1, 100.15, 99.85, 100.19, 99.97, 100.02]  # inside the margin
    prices = (
        [99.5]  # minute 0: below the level
        + wiggle  # 1-9: hovering at the level tells nothing
        + [100.6]  # 10: a real crossing up
        + [100.1, 99.9, 100.05, 99.85, 99.81, 100.0, 99.95, 100.12, 99.9]  # 11-19: hovering
        + [99.3]  # 20: a real crossing down
        + wiggle  # 21-29: hovering again
    )
    assert len(prices) == 30
    assert run(ch, prices) == [(10, "B above 100.00"), (20, "B below 100.00")]


def test_a_crossing_back_within_the_quiet_time_is_told_when_it_ends_if_still_true() -> None:
    ch = AlertChecker()
    ch.add_forecast(band(0))
    quiet = COOLDOWN // 60  # minutes
    # Up at minute 1, down at minute 2 (inside the quiet time), and it stays down.
    prices = [99.0, 101.0, 99.0] + [99.0] * quiet
    told = run(ch, prices)
    assert told == [(1, "B above 100.00"), (1 + quiet, "B below 100.00")]
    # Up and back down within the quiet time: nothing more to tell when it ends.
    ch2 = AlertChecker()
    ch2.add_forecast(band(0))
    told = run(ch2, [99.0, 101.0, 99.0, 101.0] + [101.0] * quiet)
    assert told == [(1, "B above 100.00")]


def test_a_fast_replay_is_quiet_for_seconds_of_wall_time_too() -> None:
    ch = AlertChecker()
    ch.add_forecast(band(0))
    # Ten minutes a second: 5 market minutes are half a second; the wall quiet time holds.
    per_minute = 0.1
    prices = [99.0, 101.0] + [99.0, 101.0] * 30
    told = run(ch, prices, wall_per_minute=per_minute)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(told)]
    assert told[0] == (1, "B above 100.00")
    assert all(g * per_minute >= COOLDOWN_WALL for g in gaps)


def test_without_a_forecast_the_margin_is_a_share_of_the_level() -> None:
    ch = AlertChecker()
    assert ch.margin("b", LEVEL) == FALLBACK_MARGIN * LEVEL
    # 0.1 % of 100: 100.05 is not a crossing, 100.2 is.
    assert run(ch, [99.9, 100.05, 99.95]) == []
    assert run(ch, [100.2], start=3) == [(3, "B above 100.00")]


def test_levels_are_independent_and_forgotten_with_their_coin() -> None:
    ch = AlertChecker()
    ch.add_forecast(band(0))
    b = [Bar("b", 0, 99.0), Bar("b", 60, 106.0)]
    out = [
        a.title for bar in b for a in ch.check(bar, [100.0, 105.0], 5, False, "B", 60.0 * bar.ts)
    ]
    assert out == ["B above 100.00", "B above 105.00"]
    ch.forget("b")
    # Forgotten: the next price only sets the side again.
    assert ch.check(Bar("b", 120, 90.0), [100.0], 5, False, "B", 1e6) == []
