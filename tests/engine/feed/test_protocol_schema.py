"""Every frame the feed sends, and every op a client sends, validates against the schema."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from websockets.sync.client import ClientConnection, connect

from engine.events import (
    Bar,
    BarEvent,
    CoinsEvent,
    CoinSnapshot,
    ErrorEvent,
    ForecastEvent,
    HorizonMetrics,
    MetricsEvent,
    SnapshotEvent,
    StatusEvent,
    TrainEvent,
)
from engine.feed.codec import from_dict, to_dict
from engine.feed.server import OPS, ServerThread
from tests.conftest import ROOT
from tests.fakes.fake_engine import FakeEngine

SCHEMA = json.loads((ROOT / "engine" / "data" / "protocol.schema.json").read_text())
FRAME_TYPES = {
    "hello",
    "snapshot",
    "bar",
    "forecast",
    "metrics",
    "train",
    "status",
    "error",
    "coins",
    "reply",
}


def validator(ref: str | None = None) -> jsonschema.Draft202012Validator:
    """The frame schema, or one of its definitions (``op``) with the same ``$defs``."""
    schema = SCHEMA if ref is None else {"$ref": f"#/$defs/{ref}", "$defs": SCHEMA["$defs"]}
    return jsonschema.Draft202012Validator(schema)


FRAME = validator()
OP = validator("op")


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    ("defn", "cls"),
    [
        ("bar", Bar),
        ("forecast", ForecastEvent),
        ("horizon_metrics", HorizonMetrics),
        ("metrics", MetricsEvent),
        ("train", TrainEvent),
        ("status", StatusEvent),
        ("coin_snapshot", CoinSnapshot),
        ("error_frame", ErrorEvent),
        ("coins_frame", CoinsEvent),
        ("snapshot_frame", SnapshotEvent),
    ],
)
def test_schema_names_exactly_the_event_fields(defn: str, cls: type) -> None:
    # A field added to an event without the schema (or the reverse) fails here, not on a client.
    props = set(SCHEMA["$defs"][defn]["properties"]) - {"v", "type"}
    assert props == {f.name for f in dataclasses.fields(cls)}
    assert set(SCHEMA["$defs"][defn]["required"]) - {"v", "type"} == props


def test_schema_rejects_what_it_should() -> None:
    good = to_dict(BarEvent(Bar("bitcoin", 60, 1.5)))
    assert FRAME.is_valid(good)
    assert not FRAME.is_valid({**good, "v": 2})
    assert not FRAME.is_valid({**good, "type": "bars"})
    assert not FRAME.is_valid({**good, "extra": 1})
    assert not FRAME.is_valid({**good, "bar": {**good["bar"], "ts": "60"}})
    bar = dict(good["bar"])
    del bar["price"]
    assert not FRAME.is_valid({**good, "bar": bar})
    fc = to_dict(ForecastEvent("bitcoin", 60, 1.0, (1, 5), (0.1, math.nan)))
    assert fc["mean"] == [0.1, None] and FRAME.is_valid(fc)
    assert not FRAME.is_valid({**fc, "mean": ["x"]})
    ok = {"v": 1, "type": "reply", "id": 1, "op": "search", "ok": True, "result": []}
    assert FRAME.is_valid(ok)
    assert not FRAME.is_valid({**ok, "error": "also failed"})
    assert not FRAME.is_valid({"v": 1, "type": "reply", "id": 1, "op": "search", "ok": False})


def test_ops_schema() -> None:
    assert set(SCHEMA["$defs"]["op"]["properties"]["op"]["enum"]) == set(OPS)
    for op in (
        {"op": "watch", "coin": "bitcoin"},
        {"op": "resync"},
        {"op": "pause", "paused": False},
        {"op": "search", "query": "eth", "id": 3},
        {"op": "export", "coin": "x", "id": "a"},
    ):
        assert OP.is_valid(op), op
    for op in (
        {"op": "watch"},
        {"op": "fly"},
        {"op": "export", "coin": "x"},
        {"op": "pause"},
        {"op": "watch", "coin": "BTC!"},
        {"op": "resync", "extra": 1},
    ):
        assert not OP.is_valid(op), op


def test_events_round_trip_through_json() -> None:
    engine = FakeEngine(history=35)
    snap = SnapshotEvent(
        tuple(engine.snapshot(c) for c in engine.coins()),
        StatusEvent("demo", "ok", "x", 1.0, 2.0, 3, 4, 30, 10000),
    )
    for event in (snap, CoinsEvent(("a",), ("b",), (("a", "A"),)), ErrorEvent("T", "m", "a")):
        frame = json.loads(json.dumps(to_dict(event)))
        FRAME.validate(frame)
        # Compared as JSON: NaN (the metrics' mae_drift) is never equal to itself.
        assert to_dict(from_dict(frame)) == frame


# Every frame type from a real server --------------------------------------------------------------
@contextlib.contextmanager
def client(url: str) -> Iterator[ClientConnection]:
    with connect(url, max_size=None, close_timeout=1) as ws:
        yield ws


def collect(ws: ClientConnection, until: str, frames: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=5))
        frames.append(frame)
        if frame["type"] == until:
            return frame


def test_every_frame_from_a_real_server_validates() -> None:
    engine = FakeEngine(history=40)
    frames: list[dict[str, Any]] = []
    with ServerThread(engine) as st, client(st.url) as ws:
        collect(ws, "snapshot", frames)
        engine.advance(3)
        for _ in range(3 * 3 * 4):
            frames.append(json.loads(ws.recv(timeout=5)))
        engine.emit(
            StatusEvent("demo", "rate limited", "retry in 119 s", 1.0, 120.0, 30, 9000, 30, 10000)
        )
        collect(ws, "status", frames)
        ws.send(json.dumps({"op": "watch", "coin": "solana"}))  # unknown to the fake: coins + error
        collect(ws, "error", frames)
        ws.send(json.dumps({"op": "search", "query": "coin", "id": 1}))
        collect(ws, "reply", frames)
        ws.send(json.dumps({"op": "export", "coin": "bitcoin", "id": "e1"}))
        collect(ws, "reply", frames)
        ws.send(json.dumps({"op": "search", "id": 2}))  # a failed reply
        collect(ws, "reply", frames)
        ws.send("{broken")
        collect(ws, "error", frames)
        with client(st.url + "/?batch=1") as bws:
            collect(bws, "snapshot", frames)
            assert st.server is not None and st.server._loop is not None
            st.server._loop.call_soon_threadsafe(engine.advance, 5)  # queued together: a batch
            collect(bws, "batch", frames)
    seen = {f["type"] for f in frames}
    assert seen == FRAME_TYPES | {"batch"}
    assert not FRAME.is_valid({"v": 1, "type": "batch", "frames": [frames[0], {"v": 1}]})
    for frame in frames:
        errors = sorted(FRAME.iter_errors(frame), key=lambda e: e.path)
        assert not errors, (frame["type"], [e.message for e in errors][:3])
    replies = [f for f in frames if f["type"] == "reply"]
    assert [r["ok"] for r in replies] == [True, True, False]


# The documented example session -------------------------------------------------------------------
def doc_session() -> list[tuple[str, dict[str, Any]]]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    block = re.search(r"```text\n(# example session.*?)```", text, re.DOTALL)
    assert block, "docs/protocol.md has no example session block"
    lines = []
    for line in block.group(1).splitlines():
        m = re.match(r"^(C|S|X): (.*)$", line)
        if m:
            lines.append((m.group(1), json.loads(m.group(2))))
    return lines


def test_documented_example_session_validates() -> None:
    session = doc_session()
    assert len(session) >= 10
    server = [f for who, f in session if who == "S"]
    assert {f["type"] for f in server} == FRAME_TYPES
    for who, frame in session:
        if who == "X":  # shown on purpose: an op the server answers with an error
            assert not OP.is_valid(frame), frame
        else:
            (FRAME if who == "S" else OP).validate(frame)
