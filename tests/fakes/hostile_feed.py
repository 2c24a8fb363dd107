"""A hostile feed server on 127.0.0.1: real WebSockets, every field of every frame type carrying
terminal escapes (OSC 0/2/8/52, CSI, BEL, ST, C1) and Rich markup, for the viewer's tests.

It speaks protocol v1 as far as the frame shapes go (so the frames are decoded, not dropped as
malformed), and lies in every string: what a compromised or malicious ``cryptotui serve`` could send.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.server import ServerConnection, serve

# A marker the tests look for in the terminal's bytes: it is inside every escape's payload.
MARK = "EVIL7"
EVIL = (
    f"[red]x[/red][link=http://{MARK}.invalid/]y[/link][bold]"
    f"\x1b]0;{MARK}title\x07"  # OSC 0: window title, ended by BEL
    f"\x1b]2;{MARK}title\x1b\\"  # OSC 2, ended by ST
    f"\x1b]52;c;RVZJTDc=\x07"  # OSC 52: write the clipboard
    f"\x1b]8;;http://{MARK}.invalid/\x1b\\L\x1b]8;;\x1b\\"  # OSC 8: a hyperlink
    "\x1b[2J\x1b[7777;7777H\x1b[31;1m"  # CSI: clear the screen, move the cursor, colour
    "\x07\x07"  # BEL
    f"\x9b2J\x9d0;{MARK}c1\x9c\x90q{MARK}\x9c"  # C1 forms: CSI, OSC, ST, DCS
    "\x1bPq\x1b\\\x7fz"  # DCS, DEL
)
# The escape sequences only: what the terminal must never receive from the peer.
ESCAPES = (b"\x1b]0;" + MARK.encode(), b"\x1b]2;" + MARK.encode(), b"\x1b]52;", b"\x1b]8;;http")


def hostile_frames() -> list[dict[str, Any]]:
    """Every frame type after the hello, each string field hostile."""
    ts = (int(time.time()) // 60 - 30) * 60
    bar = {
        "coin": "bitcoin",
        "ts": ts,
        "price": 70000.0,
        "open": 69990.0,
        "high": 70010.0,
        "low": 69980.0,
        "volume": 1.5,
        "source": EVIL,
        "filled": False,
    }
    forecast = {
        "coin": "bitcoin",
        "ts": ts,
        "price": 70000.0,
        "horizons": [1, 5, 15, 60],
        "mean": [0.0, 0.0, 0.0, 0.0],
        "lo80": [-0.001, -0.002, -0.003, -0.006],
        "hi80": [0.001, 0.002, 0.003, 0.006],
        "lo95": [-0.002, -0.004, -0.006, -0.012],
        "hi95": [0.002, 0.004, 0.006, 0.012],
        "raw": [],
    }
    row = {
        "horizon": 5,
        "n": 10,
        "mae": 0.001,
        "rmse": 0.001,
        "mae_persistence": 0.001,
        "rmse_persistence": 0.001,
        "rel_mae": 1.0,
        "rel_rmse": 1.0,
        "dir_acc": 0.5,
        "coverage80": 0.8,
        "coverage95": 0.95,
        "width80": 0.002,
        "best_lag": 0,
        "served80": EVIL,
        "served95": EVIL,
    }
    metrics = {"coin": "bitcoin", "rows": [row]}
    train = {
        "coin": "bitcoin",
        "state": EVIL,
        "step": 3,
        "loss": 0.5,
        "lr": 0.001,
        "step_ms": 1.0,
        "samples": 3,
        "progress": None,
        "device": EVIL,
        "message": EVIL,
        "losses": [0.5],
    }
    status = {
        "source": EVIL,
        "state": EVIL,
        "message": EVIL,
        "last_update": time.time(),
        "next_update": None,
        "calls_minute": None,
        "calls_month": None,
        "limit_minute": None,
        "limit_month": None,
    }
    bars = [{**bar, "ts": ts - 60 * i, "price": 70000.0 + i} for i in range(30, 0, -1)]
    return [
        {
            "v": 1,
            "type": "snapshot",
            "coins": [
                {
                    "coin": "bitcoin",
                    "bars": bars,
                    "forecasts": [forecast],
                    "metrics": metrics,
                    "train": train,
                }
            ],
            "status": status,
        },
        {
            "v": 1,
            "type": "coins",
            "coins": ["bitcoin"],
            "unknown": [],
            "labels": [["bitcoin", EVIL]],
        },
        {"v": 1, "type": "bar", "bar": bar},
        {"v": 1, "type": "forecast", **forecast, "ts": ts + 60},
        {"v": 1, "type": "metrics", **metrics},
        {"v": 1, "type": "train", **train},
        {"v": 1, "type": "status", **status},
        {"v": 1, "type": "error", "title": EVIL, "msg": EVIL, "coin": None},
    ]


def hostile_hello() -> dict[str, Any]:
    return {
        "v": 1,
        "type": "hello",
        "server": EVIL,
        "protocol": 1,
        "mode": EVIL,
        "source_info": EVIL,
        "coins": ["bitcoin", EVIL],
        "horizons": [1, 5, 15, 60],
        "vs_currency": "usd" + EVIL,
        "ops": ["watch"],
        "max_op_bytes": 4096,
        "queue_size": 10,
        "batch": True,
        "holdings": {
            "bitcoin": {"amount": 1.0, "cost": 100.0, "currency": "usd" + EVIL},
            EVIL: {"amount": 1.0, "cost": None, "currency": "usd"},
            "ethereum": {"amount": 2.0, "cost": None, "currency": "usd"},
        },
    }


def _reply(op: dict[str, Any]) -> dict[str, Any]:
    rid = op.get("id")
    result: Any
    if op.get("op") == "search":
        result = [{"id": "bitcoin", "name": EVIL, "symbol": EVIL, "rank": 1}]
        return {"v": 1, "type": "reply", "id": rid, "op": "search", "ok": True, "result": result}
    if op.get("op") == "export" and op.get("coin") == "bitcoin":
        csv = f"time,price,note\r\n1,2,{EVIL}\r\n"
        result = {"filename": f"../../{EVIL}", "csv": csv, "more": False}
        return {"v": 1, "type": "reply", "id": rid, "op": "export", "ok": True, "result": result}
    return {
        "v": 1,
        "type": "reply",
        "id": rid,
        "op": op.get("op", ""),
        "ok": False,
        "error": EVIL,
        "title": EVIL,
    }


def _handler(ws: ServerConnection, repeat: float) -> None:
    ws.send(json.dumps(hostile_hello()))
    for frame in hostile_frames():
        ws.send(json.dumps(frame))
    stop = threading.Event()

    def replies() -> None:
        with contextlib.suppress(Exception):  # the client went away
            for message in ws:
                op = json.loads(message)
                if isinstance(op, dict) and "id" in op:
                    ws.send(json.dumps(_reply(op)))
        stop.set()

    threading.Thread(target=replies, daemon=True).start()
    # Keep sending the events (as a batch, as a real server does under load) while connected.
    while not stop.wait(repeat):
        try:
            ws.send(json.dumps({"v": 1, "type": "batch", "frames": hostile_frames()[1:]}))
        except Exception:  # noqa: BLE001
            return


@contextmanager
def hostile_server(repeat: float = 0.5) -> Iterator[str]:
    """A hostile feed on 127.0.0.1 (a free port); yields its ws:// URL."""
    with serve(lambda ws: _handler(ws, repeat), "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            yield f"ws://127.0.0.1:{port}"
        finally:
            server.shutdown()
            thread.join(5)
