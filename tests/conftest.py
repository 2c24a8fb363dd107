"""Shared fixtures and the --long switch for slow variants."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.events import ForecastEvent

ROOT = Path(__file__).resolve().parent.parent  # the repository
SHARED = ROOT.parent / "shared"


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
    from tests.fakes.fake_engine import FakeEngine

    return FakeEngine(history=40)


@pytest.fixture
def server(engine: Any) -> Iterator[Any]:
    """The WebSocket feed on 127.0.0.1, serving ``engine``."""
    from engine.feed.server import ServerThread

    with ServerThread(engine) as st:
        yield st


# Shared helpers (imported from here by the tests; one copy each) -------------------------------


def banded(coin: str, price: float, half: float, ts: int = 0) -> ForecastEvent:
    """A 5-minute forecast of no change from ``price`` with an 80 % band of +-``half`` (log
    return) and a 95 % band twice as wide."""
    return ForecastEvent(
        coin, ts, price, (5,), (0.0,), (-half,), (half,), (-2 * half,), (2 * half,)
    )


def run_cli(
    *args: str,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """The real ``cryptotui`` in a subprocess: no CoinGecko or cryptotui settings from the outer
    environment, its own ``home`` (when given), stdin closed, output captured as text."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CRYPTOTUI_"))}
    e["PYTHONPATH"] = str(ROOT)
    if home is not None:
        e["CRYPTOTUI_HOME"] = str(home)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=e,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        **kw,
    )


def one_line_error(r: subprocess.CompletedProcess[str], *words: str, status: int = 2) -> str:
    """The one line a refused command prints (exit ``status``, no traceback), holding ``words``."""
    assert r.returncode == status, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith("cryptotui") and "Traceback" not in r.stderr, r.stderr[-2000:]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test with asyncio (no async pytest plugin is installed)."""

    @functools.wraps(fn)
    def run(**kwargs: object) -> None:
        asyncio.run(fn(**kwargs))

    return run


async def engine_started(app: Any, pilot: Any) -> None:
    """Wait until the app has started its engine (after the first frames, as it does live)."""
    for _ in range(300):
        if getattr(app.engine, "started", True):
            return
        await pilot.pause(0.01)


async def settle(app: Any, pilot: Any, wait: float = 0.0, *, workers: bool = False) -> None:
    """Let posted events arrive (and the engine start), then repaint now instead of waiting for
    the redraw timer; ``workers``: also wait for the app's workers to finish."""
    await pilot.pause(wait)
    await engine_started(app, pilot)
    if workers:
        await app.workers.wait_for_complete()
    app.main.flush()
    await pilot.pause()


def snap_settle(app: Any, then: Callable[[], None] | None = None) -> Callable[[Any], Any]:
    """A snapshot test's ``run_before``: the engine started, ``then`` (events a test injects come
    after the start, as they would from a running engine), and a repaint."""

    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        await engine_started(app, pilot)
        if then is not None:
            then()
        await pilot.pause()
        app.main.flush()
        await pilot.pause()

    return run_before
