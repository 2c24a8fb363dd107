"""Shared fixtures and the --long switch for slow variants."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="run long variants too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC for the test (chart axes and status times are drawn in local time)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data dir, so no test touches the user's home."""
    d = tmp_path / "home"
    monkeypatch.setenv("CRYPTOTUI_HOME", str(d))
    monkeypatch.delenv("COINGECKO_API_KEY", raising=False)
    monkeypatch.delenv("COINGECKO_API_URL", raising=False)
    monkeypatch.delenv("COINGECKO_API_PLAN", raising=False)
    return d


@pytest.fixture
def engine() -> Any:
    """A deterministic engine with 40 minutes of demo history (feed and remote tests)."""
    from tests.fake_engine import FakeEngine

    return FakeEngine(history=40)


@pytest.fixture
def server(engine: Any) -> Iterator[Any]:
    """The WebSocket feed on 127.0.0.1, serving ``engine``."""
    from engine.feed.server import ServerThread

    with ServerThread(engine) as st:
        yield st
