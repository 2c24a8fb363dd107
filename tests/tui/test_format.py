"""Unit tests of tui.format: prices and percents readable at any magnitude, axis ticks, sparklines."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.format import (
    arrow,
    format_compact,
    format_percent,
    format_price,
    nice_ticks,
    sparkline,
    tick_labels,
)


@pytest.mark.parametrize(
    "value, text",
    [
        (104_231.456, "104,231"),
        (3_456.789, "3,456.79"),
        (12.3456, "12.35"),
        (0.5123456, "0.5123"),
        (0.00001234, "0.00001234"),
        (0.000012345678, "0.00001235"),
        (0.0, "0"),
        (None, "–"),
        (float("nan"), "–"),
        (float("inf"), "–"),
    ],
)
def test_format_price(value: float | None, text: str) -> None:
    assert format_price(value) == text


@given(st.floats(min_value=1e-9, max_value=1e9))
def test_price_keeps_four_significant_digits(value: float) -> None:
    text = format_price(value)
    parsed = float(text.replace(",", ""))
    # Below 100,000 the text keeps the value to 4 significant digits (or 2 decimals).
    assert math.isclose(parsed, value, rel_tol=1e-3) or abs(parsed - value) <= 0.5
    assert len(text) <= 14


def test_format_percent() -> None:
    assert format_percent(0.0123) == "+1.23%"
    assert format_percent(-0.5) == "-50.00%"
    assert format_percent(1.234) == "+123%"
    assert format_percent(25.0) == "+2,500%"
    assert format_percent(0.8, signed=False) == "80.00%"
    assert format_percent(None) == "–"


def test_arrow() -> None:
    assert arrow(0.01) == "▲"
    assert arrow(-0.01) == "▼"
    assert arrow(1e-7) == "→"
    assert arrow(None) == "→"


def test_format_compact() -> None:
    assert format_compact(1234.0) == "1.2k"
    assert format_compact(2_500_000.0) == "2.5M"
    assert format_compact(0.93) == "0.93"
    assert format_compact(0.0001234) == "1.2e-04"


@pytest.mark.parametrize(
    "lo, hi",
    [(66_001, 66_980), (0.0000120, 0.0000125), (7.1, 7.35), (99_000, 101_000), (0.98, 1.02)],
)
def test_tick_labels_are_distinct_and_inside(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi, 5)
    assert 2 <= len(ticks) <= 11
    assert all(lo <= t <= hi for t in ticks)
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels)  # neighbours never print the same
    assert all(len(label) <= 11 for label in labels)


def test_tick_labels_for_a_micro_cap_price() -> None:
    labels = tick_labels(nice_ticks(0.0000120, 0.0000125, 4))
    assert labels[0].startswith("0.0000")
    assert float(labels[0]) == pytest.approx(0.0000121, rel=0.05)


def test_sparkline() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8) == "▁▂▃▄▅▆▇█"
    assert len(sparkline(list(range(100)), 10)) == 10
    assert sparkline(list(range(100)), 10).endswith("█")  # ends on the latest value
    assert sparkline([5, 5, 5], 3) == "▄▄▄"
    assert sparkline([], 5) == ""
    assert sparkline([1.0, float("nan"), 2.0], 5) == "▁█"
