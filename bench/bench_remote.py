"""The viewer's memory under a hostile remote engine (issue 24, case 3): RSS of a RemoteEngine process.

    python bench/bench_remote.py [--quick] [--before REF] [--out FILE.json]

A local WebSocket server plays the remote engine; a fresh child process runs ``RemoteEngine`` on it
and reports its RSS (current and peak) after the first snapshot, during and after each flood:

- coins: 20 ``coins`` frames of 50,000 new ids each (about 15 MB in all), each followed by bars of
  200 made-up coins, then the engine goes back to 3 coins;
- giant: one snapshot frame of about N MB (a coin with that many bars), for N in 8, 24, 64, 240
  (``--quick``: 8 and 24).

``--before REF`` runs the same child on the code of a git ref (``git archive``, e.g. ``main``) as
well, so the figures come as before/after. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.sync.server import ServerConnection, serve  # noqa: E402

from bench._util import ROOT, write_json  # noqa: E402

CHILD = r"""
import json, sys, time, threading
from engine.feed.remote import RemoteEngine

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")

def rss():
    return status("VmRSS")

def peak():
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's peak at fork.
    return status("VmHWM")

url, seconds = sys.argv[1], float(sys.argv[2])
r = RemoteEngine(url, backoff=(0.5, 2.0))
r.start()
r.wait_ready(30)
out = {"ready_rss_mb": rss()}
end = time.monotonic() + seconds
while time.monotonic() < end:
    time.sleep(0.05)
out["peak_rss_mb"] = peak()
out["end_rss_mb"] = rss()
out["coins_at_end"] = len(r.coins())
out["views_at_end"] = len(r._state)
r.stop()
print(json.dumps(out))
"""


def hello(coins: list[str]) -> str:
    return json.dumps(
        {
            "v": 1,
            "type": "hello",
            "server": "bench",
            "protocol": 1,
            "mode": "LIVE",
            "source_info": "",
            "coins": coins,
            "horizons": [1, 5, 15, 60],
            "vs_currency": "usd",
            "ops": [],
            "max_op_bytes": 4096,
            "queue_size": 10,
            "batch": True,
        }
    )


def bar(coin: str, ts: int) -> dict[str, Any]:
    return {
        "coin": coin,
        "ts": ts,
        "price": 70000.12345,
        "open": 69990.5,
        "high": 70010.25,
        "low": 69980.75,
        "volume": 1.2345,
        "source": "kraken",
        "filled": False,
    }


def snapshot(coin_bars: dict[str, int]) -> str:
    coins = [
        {
            "coin": c,
            "bars": [bar(c, 60 * (i + 1)) for i in range(n)],
            "forecasts": [],
            "metrics": None,
            "train": None,
        }
        for c, n in coin_bars.items()
    ]
    return json.dumps({"v": 1, "type": "snapshot", "coins": coins, "status": None})


def hold(ws: ServerConnection) -> None:
    """Keep the connection until the client goes (the server then shuts down at once)."""
    try:
        for _ in ws:
            pass
    except Exception:  # noqa: BLE001 - closed, whichever way
        return


def coins_flood(ws: ServerConnection) -> None:
    ws.send(hello(["bitcoin", "ethereum", "solana"]))
    ws.send(snapshot({"bitcoin": 100, "ethereum": 100, "solana": 100}))
    time.sleep(1.0)
    for n in range(20):
        ids = [f"x{n}-{i}" for i in range(50_000)]
        ws.send(json.dumps({"v": 1, "type": "coins", "coins": ids, "unknown": [], "labels": []}))
        frames = [{"v": 1, "type": "bar", "bar": bar(f"y{n}-{i}", 60)} for i in range(200)]
        ws.send(json.dumps({"v": 1, "type": "batch", "frames": frames}))
    ws.send(json.dumps({"v": 1, "type": "coins", "coins": ["bitcoin", "ethereum", "solana"]}))
    hold(ws)


def giant(mb: int) -> Any:
    per_bar = len(json.dumps(bar("bitcoin", 60))) + 1
    n = mb * 1_000_000 // per_bar
    frame = snapshot({"bitcoin": n})

    def handler(ws: ServerConnection) -> None:
        ws.send(hello(["bitcoin"]))
        ws.send(snapshot({"bitcoin": 10}))
        time.sleep(1.0)
        ws.send(frame)
        hold(ws)

    return handler, len(frame)


def run_child(code_root: Path, handler: Any, seconds: float) -> dict[str, Any]:
    with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        try:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, url, str(seconds)],
                capture_output=True,
                text=True,
                cwd=code_root,
                env={"PYTHONPATH": str(code_root), "PATH": "/usr/bin:/bin"},
                timeout=seconds + 120,
                check=False,
            )
        finally:
            server.shutdown()
            thread.join(5)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(code_root: Path, quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"coins_flood": run_child(code_root, coins_flood, 12.0)}
    for mb in (8, 24) if quick else (8, 24, 64, 240):
        handler, size = giant(mb)
        results[f"giant_{mb}mb"] = {"frame_mb": round(size / 1e6, 1), **run_child(code_root, handler, 10.0)}
    return results


def checkout(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--before", metavar="REF", help="also measure the code of this git ref")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "remote.json")
    args = ap.parse_args()
    runs: dict[str, Any] = {}
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            runs["before"] = measure(checkout(args.before, Path(tmp)), args.quick)
    runs["after"] = measure(ROOT, args.quick)
    print(f"{'scenario':<14}{'code':<8}{'frame MB':>9}{'ready MB':>10}{'peak MB':>9}{'end MB':>8}"
          f"{'coins':>7}{'views':>7}")  # fmt: skip
    for code, res in runs.items():
        for name, r in res.items():
            print(
                f"{name:<14}{code:<8}{r.get('frame_mb', ''):>9}{r.get('ready_rss_mb', 0):>10.0f}"
                f"{r.get('peak_rss_mb', 0):>9.0f}{r.get('end_rss_mb', 0):>8.0f}"
                f"{r.get('coins_at_end', ''):>7}{r.get('views_at_end', ''):>7}"
                + (f"  {r['error']}" if "error" in r else "")
            )
    write_json(args.out, runs)


if __name__ == "__main__":
    main()
