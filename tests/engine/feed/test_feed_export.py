"""The feed's export op (issue 24, cases 8 and 9): the CSV travels as reply parts read from the
store as they are sent, no file is left on the server, exports are rate-limited per client, and
the viewer writes the parts into its own exports folder (atomically, in flat memory)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

from engine.errors import CryptotuiError
from engine.events import Bar
from engine.feed.remote import RemoteEngine
from engine.feed.server import EXPORT_PART_BYTES, ServerThread
from engine.runtime.engine import Engine
from engine.settings.config import Settings
from engine.settings.locations import Locations
from engine.store import Store
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.stub_forecaster import StubFactory, StubForecaster

START = 1_700_000_000 - 1_700_000_000 % 60


def replies(ws: object, rid: object) -> list[dict[str, object]]:
    """The reply frames of one op id, up to the last part (or a failure)."""
    out = []
    while True:
        frame = json.loads(ws.recv(timeout=30))  # type: ignore[attr-defined]
        if frame.get("type") == "reply" and frame.get("id") == rid:
            out.append(frame)
            result = frame.get("result")
            if not frame["ok"] or not (isinstance(result, dict) and result.get("more")):
                return out


def test_export_op_streams_parts_leaves_no_file_and_is_rate_limited(tmp_path: Path) -> None:
    engine = FakeEngine(history=200)
    with ServerThread(engine) as st, connect(st.url, max_size=None) as ws:
        ws.send(json.dumps({"op": "export", "coin": "bitcoin", "id": 1}))
        got = replies(ws, 1)
        assert [f["ok"] for f in got] == [True] and got[-1]["result"]["more"] is False  # type: ignore[index]
        csv = "".join(f["result"]["csv"] for f in got)  # type: ignore[index]
        assert csv.splitlines()[0] == "timestamp,price" and len(csv.splitlines()) == 201
        # The fake exported into a private temporary folder, removed once sent.
        assert engine.exports and not engine.exports[-1][1].exists()
        ws.send(json.dumps({"op": "export", "coin": "bitcoin", "id": 2}))
        (refused,) = replies(ws, 2)
        assert refused["ok"] is False and refused["title"] == "Too many requests"
        assert "one export every" in str(refused["error"])
        assert st.server is not None and st.server.stats["exports_refused"] == 1


@pytest.fixture
def served_engine(tmp_path: Path) -> Engine:
    home = tmp_path / "server-home"
    home.mkdir()
    store = Store(Locations.resolve(home).database())
    store.add_bars([Bar("bitcoin", START + 60 * m, 100.0 + m % 7) for m in range(30_000)])
    store.close()
    settings = Settings(coins=("bitcoin", "ethereum"))
    return Engine(settings, Locations.resolve(home), forecaster_factory=StubFactory(StubForecaster))


def test_a_viewer_exports_a_large_coin_in_parts_into_its_own_folder(
    tmp_path: Path, served_engine: Engine
) -> None:
    with ServerThread(served_engine, start_engine=False, export_every=0) as st:
        r = RemoteEngine(st.url, export_dir=tmp_path / "viewer" / "exports")
        r.start()
        try:
            assert r.wait_ready(10)
            path = r.export("bitcoin")
            direct = served_engine.export("bitcoin", tmp_path / "direct.csv")
            assert path.parent == tmp_path / "viewer" / "exports"
            assert path.read_text() == direct.read_text()
            assert path.stat().st_size > EXPORT_PART_BYTES  # it came in several parts
            # Nothing was written in the server's exports folder.
            assert not list(served_engine.loc.exports_dir.glob("*.csv"))
            # No data yet: a one-line error, and no empty file in the viewer's folder.
            with pytest.raises(CryptotuiError) as empty:
                r.export("ethereum")
            assert empty.value.title == "Export" and "no data for ethereum yet" in empty.value.msg
            assert not list(path.parent.glob("ethereum*"))
            # A full disk on the viewer's side is one line too.
            with pytest.raises(CryptotuiError) as full:
                r.export("bitcoin", Path("/dev/full"))
            assert full.value.title == "Export failed" and "No space left" in full.value.msg
            assert Path("/dev/full").is_char_device()
        finally:
            r.stop()
            served_engine.stop()


def test_a_demo_engine_is_said_and_its_exports_named_as_local_ones(tmp_path: Path) -> None:
    from engine.settings.holdings import Holding

    engine = FakeEngine(history=30)  # a DEMO engine
    held = {"bitcoin": Holding("bitcoin", 0.5, 3000.0, "usd")}
    with ServerThread(engine, holdings=held) as st:
        r = RemoteEngine(st.url, export_dir=tmp_path / "exports")
        r.start()
        try:
            assert r.wait_ready(10)
            assert (r.mode, r.served_mode, r.source_info) == ("REMOTE", "DEMO", "")
            assert r.holdings == held
            path = r.export("bitcoin")
            assert path.name.startswith("bitcoin-demo-") and path.parent == tmp_path / "exports"
        finally:
            r.stop()
    with ServerThread(FakeEngine(history=5)) as st:  # without --with-holdings: none
        r = RemoteEngine(st.url)
        r.start()
        try:
            assert r.wait_ready(10) and r.holdings is None
        finally:
            r.stop()
