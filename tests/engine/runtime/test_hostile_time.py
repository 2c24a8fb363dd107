"""Time the engine can trust, and honest status on a failing disk (issue 14): rows and checkpoints
from the future are repaired or set aside at start-up, never obeyed; a bar from the future is never
stored; temp files of atomic writes do not outlive a full disk; bad URLs end the CLI in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.events import Bar, ErrorEvent, Event, ForecastEvent, StatusEvent
from engine.runtime.engine import Engine
from engine.runtime.messages import FromSource
from engine.settings.config import Settings
from engine.settings.locations import Locations
from engine.store import Store
from tests.conftest import ROOT, one_line_error, run_cli
from tests.fakes.chaos import ScriptedSource, bar
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

BASE = 1_704_067_200  # minute 0 of tests.fakes.chaos.bar
NOW = BASE + 60 * 20  # the engine's clock: minute 20
TWO_DAYS = 2 * 86400


class TimedStub(StubForecaster):
    """The stub with the one field a real checkpoint has that matters here: its last minute."""

    last_ts: int | None = None

    def save(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {"coin": self.coin, "seen": self.seen, "steps": self.steps, "last_ts": self.last_ts}
            )
        )

    @classmethod
    def load(cls, path: Path, coin: str, config: Any = None) -> TimedStub:
        fc = super().load(path, coin, config)
        assert isinstance(fc, TimedStub)
        fc.last_ts = json.loads(path.read_text()).get("last_ts")
        return fc


def run_engine(home: Path, items: list[Any], **kw: Any) -> tuple[Engine, list[Event]]:
    engine = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(home),
        source=ScriptedSource(items),
        forecaster_factory=StubFactory(kw.pop("factory", StubForecaster)),
        clock=lambda: NOW,
        **kw,
    )
    events: list[Event] = []
    engine.subscribe(events.append)
    engine.start()
    try:
        assert engine.source.done.wait(10)  # type: ignore[attr-defined]
        assert engine.wait_idle(10)
    finally:
        engine.stop()
    return engine, events


def stored_ts(home: Path) -> list[int]:
    store = Store(Locations.resolve(home).database())
    try:
        return [b.ts for b in store.bars("bitcoin")]
    finally:
        store.close()


def test_a_store_poisoned_with_future_rows_is_repaired_at_start_and_says_so(home: Path) -> None:
    Locations.resolve(home).ensure()
    store = Store(Locations.resolve(home).database())
    store.add_bars([bar("bitcoin", m, 100.0 + m) for m in range(1, 11)])
    future = BASE + 60 * 10 + TWO_DAYS
    store.add_bars([Bar("bitcoin", future, 111.0)])
    hs = (1, 5)
    store.add_forecast(
        ForecastEvent(
            "bitcoin",
            future,
            111.0,
            hs,
            (0.0, 0.0),
            (-1e-3,) * 2,
            (1e-3,) * 2,
            (-2e-3,) * 2,
            (2e-3,) * 2,
        )
    )
    store.close()

    _engine, events = run_engine(home, [bar("bitcoin", m, 100.0 + m) for m in range(11, 16)])
    notices = [e for e in events if isinstance(e, ErrorEvent) and e.title == "Database"]
    assert len(notices) == 1
    assert notices[0].msg.startswith("dropped 1 stored minute dated after this computer's clock")
    # The new minutes were taken (before, each looked older than the poisoned one and was refused).
    assert stored_ts(home) == [BASE + 60 * m for m in range(1, 16)]
    forecasts = Store(Locations.resolve(home).database()).forecasts("bitcoin")
    assert forecasts and all(f.ts <= NOW for f in forecasts)  # the future one went too


def test_a_bar_from_the_future_is_refused_and_never_stored(home: Path, caplog: Any) -> None:
    items = [
        bar("bitcoin", 11, 111.0),
        Bar("bitcoin", NOW + TWO_DAYS // 60 * 60, 112.0),
        bar("bitcoin", 12, 112.0),
    ]
    engine, _events = run_engine(home, items)
    assert stored_ts(home) == [BASE + 660, BASE + 720]
    assert engine.rejected == 1
    assert "ahead of this computer's clock" in caplog.text


def test_a_checkpoint_from_the_future_is_set_aside_with_a_message(home: Path) -> None:
    models = Locations.resolve(home).models_dir(False)
    models.mkdir(parents=True)
    (models / "bitcoin.pt").write_text(
        json.dumps({"coin": "bitcoin", "seen": 9, "steps": 9, "last_ts": NOW + TWO_DAYS})
    )
    _engine, events = run_engine(
        home, [bar("bitcoin", m, 100.0 + m) for m in range(11, 14)], factory=TimedStub
    )
    errors = [e for e in events if isinstance(e, ErrorEvent) and e.coin == "bitcoin"]
    assert len(errors) == 1
    assert errors[0].msg.startswith(
        "checkpoint bitcoin.pt ends at a time 2 d ahead of this computer's clock; set aside as "
        "bitcoin.pt.bad-"
    )
    assert len(list(models.glob("bitcoin.pt.bad-*"))) == 1
    assert json.loads((models / "bitcoin.pt").read_text())["seen"] == 3  # a fresh model learned


def test_the_status_does_not_say_ok_while_bars_cannot_be_saved(home: Path) -> None:
    engine = Engine(
        Settings(coins=("bitcoin",)),
        Locations.resolve(home),
        source=ScriptedSource(
            [bar("bitcoin", 11, 111.0), StatusEvent("scripted", "ok", "live: 1 coin")]
        ),
        forecaster_factory=StubFactory(StubForecaster),
        clock=lambda: NOW,
    )

    def full(bars: Any) -> int:
        raise StoreError(f"cannot store bars in {engine.store.path}: database or disk is full")

    real = engine.store.add_bars
    engine.store.add_bars = full  # type: ignore[method-assign]
    statuses: list[StatusEvent] = []
    engine.subscribe(lambda e: statuses.append(e) if isinstance(e, StatusEvent) else None)
    engine.start()
    try:
        assert engine.source.done.wait(10)  # type: ignore[attr-defined]
        assert engine.wait_idle(10)
        assert statuses[-1].state == "error"
        assert statuses[-1].message.startswith(
            "live: 1 coin; new data is not being saved: cannot store"
        )
        engine.store.add_bars = real  # type: ignore[method-assign]
        engine._inbox.put(FromSource(bar("bitcoin", 12, 112.0)))  # the disk has room again
        assert engine.wait_idle(10)
    finally:
        engine.store.add_bars = real  # type: ignore[method-assign]
        engine.stop()
    assert statuses[-1] == StatusEvent("scripted", "ok", "live: 1 coin")


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from engine.settings.locations import Locations
    from engine.settings.state import save_state
    from engine.sources.budget import save_counts as save_budget
    home = Path(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))  # a full disk
    for write in (lambda: save_budget(home / "budget.json", {"month": "2026-11", "month_used": 5}),
                  lambda: save_state(Locations(home, home), {"coins": ["bitcoin"]})):
        try:
            write()
            print("WROTE")
        except OSError as exc:
            print("ERROR", type(exc).__name__)
    """
)


def test_atomic_writes_leave_no_temp_file_on_a_full_disk(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["ERROR OSError", "ERROR OSError"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no 0-byte .tmp left behind


def test_the_env_api_url_is_validated_like_the_option(tmp_path: Path) -> None:
    line = one_line_error(
        run_cli(
            "--coins",
            "bitcoin",
            home=tmp_path / "h",
            env={"COINGECKO_API_URL": "file:///etc/passwd"},
        )
    )
    assert line == (
        "cryptotui: error: invalid COINGECKO_API_URL 'file:///etc/passwd': expected "
        "http:// or https://HOST"
    )
    line = one_line_error(run_cli("serve", "--api-url", "gopher://x", home=tmp_path / "h"))
    assert "invalid --api-url 'gopher://x'" in line
    line = one_line_error(
        run_cli(
            "--coins",
            "bitcoin",
            home=tmp_path / "h",
            env={"COINGECKO_API_URL": "ftp://alice:hunter2-secret@example.org/api"},
        )
    )
    assert "alice:***@example.org" in line and "hunter2-secret" not in line
