"""Benchmark of the WebSocket feed: N clients of one fast engine, with and without a stalled client.

    python bench/bench_serve.py              # 50 clients, 600 minutes/s, 60 s per phase
    python bench/bench_serve.py --quick      # 5 s per phase
    python bench/bench_serve.py --clients 20 --rate 300 --duration 30

The engine (tests/fake_engine.FakeEngine, the demo data looped) and the server run in this process;
the clients run in a child process (one asyncio loop), so client work does not share the server's
GIL. Each minute emits four events per coin (bar, forecast, metrics, train). For every bar the
engine-side time of emission is recorded; each client records when it received it (both on the
system-wide monotonic clock, comparable across processes on Linux). Reported per phase: bars
received per fast client, whether all arrived in order with none missing, and the fast clients'
event latency (p50/p99/max). Results go to stdout and bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import re
import socket
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.feed.server import DEFAULT_QUEUE_SIZE  # noqa: E402  (after the sys.path line)

# The server writes compact JSON, v and type first, a bar's coin and ts first in it.
BAR_RE = re.compile(rb'\{"v":1,"type":"bar","bar":\{"coin":"([^"]+)","ts":(\d+)')


# Engine side --------------------------------------------------------------------------------------
def looping_engine(minutes: int) -> Any:
    """A FakeEngine whose demo data repeats (shifted in time) to last ``minutes`` minutes."""
    from engine.events import Bar
    from tests.fakes.fake_engine import FakeEngine

    engine = FakeEngine(history=0)
    for coin, bars in engine._data.items():  # bench-only reach into the fake's replay data
        if not bars:
            continue
        span = bars[-1].ts - bars[0].ts + 60
        looped: list[Bar] = []
        k = 0
        while len(looped) < minutes:
            shift = k * span
            looped.extend(Bar(b.coin, b.ts + shift, b.price, b.open, b.high, b.low, b.volume,
                              b.source) for b in bars)
            k += 1
        engine._data[coin] = looped[:minutes]
    return engine


class EmitClock:
    """Engine-side listener: when each bar was handed to the server (monotonic seconds)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def __call__(self, event: Any) -> None:
        if event.type == "bar":
            self.times[f"{event.bar.coin}:{event.bar.ts}"] = time.monotonic()


def feed(engine: Any, rate: float, duration: float) -> int:
    """Advance ``engine`` at ``rate`` minutes per second for ``duration`` seconds; minutes done."""
    t0 = time.monotonic()
    done = 0
    total = int(rate * duration)
    while done < total:
        due = min(total, int(rate * (time.monotonic() - t0)) + 1)
        if due > done:
            engine.advance(due - done)
            done = due
        time.sleep(0.002)
    return done


def run_phase(args: argparse.Namespace, stalled: bool) -> dict[str, Any]:
    from engine.feed.server import ServerThread

    minutes = int(args.rate * args.duration) + 10
    engine = looping_engine(minutes)
    clock = EmitClock()
    engine.subscribe(clock)  # before the server: its time is taken first
    engine.advance(30, emit=False)  # a snapshot with some history, like a running engine
    with ServerThread(engine, queue_size=args.queue, ping_interval=None) as st:
        assert st.server is not None
        emit_file = ROOT / "bench" / "results" / f".emit-{os.getpid()}.json"
        cmd = [sys.executable, __file__, "--worker", st.url, str(args.clients),
               "1" if stalled else "0", str(emit_file), "0" if args.no_batch else "1"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise SystemExit(f"client worker failed to start: {line!r}")
            load0 = os.getloadavg()[0]
            t0, cpu0 = time.monotonic(), time.process_time()
            done = feed(engine, args.rate, args.duration)
            fed_s = time.monotonic() - t0
            cpu = time.process_time() - cpu0
            time.sleep(2.0)  # let in-flight frames land
            emit_file.write_text(json.dumps(clock.times))
            proc.stdin.write("done\n")
            proc.stdin.flush()
            out, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            emit_file.unlink(missing_ok=True)
        stats = dict(st.server.stats)
    result: dict[str, Any] = json.loads(out)
    result.update({
        "stalled_client": stalled,
        "minutes_fed": done,
        "feed_seconds": round(fed_s, 2),
        "server_cpu_seconds": round(cpu, 2),  # engine + server process, while feeding
        # The machine's 1-minute load average before and after: other work shares these cores.
        "loadavg": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "achieved_rate": round(done / fed_s, 1),
        "bars_emitted": len(clock.times),
        "server": stats,
    })
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a child process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase_real(args: argparse.Namespace, stalled: bool) -> dict[str, Any]:
    """The same clients against ``cryptotui serve --demo`` (the real engine) in a subprocess.

    The engine's emission times are not visible from outside: latency here is each client's
    delay behind the first client to receive the same bar (the fan-out spread), and "complete"
    means every client has every bar any client saw since all were connected.
    """
    import tempfile

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tempfile.mkdtemp(prefix="bench-serve-")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--demo", "--speed", f"{args.rate:g}", "--port",
         str(port), "--home", home, "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not start: {server.stderr.read()[-2000:]}")
                time.sleep(0.2)
        url = f"ws://127.0.0.1:{port}"
        missing_file = ROOT / "bench" / "results" / f".none-{os.getpid()}.json"
        cmd = [sys.executable, __file__, "--worker", url, str(args.clients),
               "1" if stalled else "0", str(missing_file), "0" if args.no_batch else "1"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("client worker failed to start")
        load0 = os.getloadavg()[0]
        cpu0 = _cpu_seconds(server.pid)
        time.sleep(args.duration)
        cpu = _cpu_seconds(server.pid) - cpu0
        proc.stdin.write("done\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=300)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result: dict[str, Any] = json.loads(out)
    result.update({
        "engine": "cryptotui serve --demo (real engine, subprocess)",
        "stalled_client": stalled,
        "server_exit_code": server.returncode,
        "server_cpu_seconds": round(cpu, 2),
        "loadavg": [round(load0, 2), round(os.getloadavg()[0], 2)],
    })
    return result


# Client side (child process) ----------------------------------------------------------------------
async def worker(url: str, n: int, stalled: bool, emit_file: str, batch: bool) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    recv_ts: list[dict[str, array[int]]] = [{} for _ in range(n)]
    recv_t: list[dict[str, array[float]]] = [{} for _ in range(n)]
    errors = [0] * n
    snapshots = [0] * n
    stop = asyncio.Event()
    batch_url = url + "/?batch=1" if batch else url

    async def fast(i: int) -> None:
        async with connect(batch_url, max_size=None, compression=None, ping_interval=None) as ws:
            ready.release()
            while True:
                msg = await ws.recv(decode=False)  # bytes: no UTF-8 decoding of 5 MB/s each
                now = time.monotonic()
                # A scan, not json.loads: this process plays 50 terminals on a shared CPU, and
                # what is measured is the server, not the parsing of forecasts nobody looks at.
                for m in BAR_RE.finditer(msg):
                    coin = m.group(1).decode()
                    if coin not in recv_ts[i]:
                        recv_ts[i][coin] = array("q")
                        recv_t[i][coin] = array("d")
                    recv_ts[i][coin].append(int(m.group(2)))
                    recv_t[i][coin].append(now)
                # Errors and snapshots are never inside a batch: the head says it.
                if msg.startswith(b'{"v":1,"type":"error"'):
                    errors[i] += 1
                elif msg.startswith(b'{"v":1,"type":"snapshot"'):
                    snapshots[i] += 1
                if stop.is_set():
                    return

    stall_report: dict[str, Any] = {}

    async def stall() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((url.split("//")[1].split(":")[0], int(url.rsplit(":", 1)[1])))
        async with connect(url, sock=sock, max_size=None, max_queue=4, compression=None,
                           ping_interval=None, close_timeout=1) as ws:
            await ws.recv()
            ready.release()
            await stop.wait()  # never reads while the engine runs
            # Now it reads what was waiting for it: its old backlog, then (if the ring overtook
            # it) a "Too slow" error and a fresh snapshot.
            kinds: list[str] = []
            read = 0
            deadline = time.monotonic() + 20
            try:
                while kinds[-2:] != ["error", "snapshot"]:
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    msg = await asyncio.wait_for(ws.recv(), 3)
                    read += 1
                    kind = json.loads(msg)["type"]
                    if kind in ("error", "snapshot"):
                        kinds.append(kind)
                end = "resynced"
            except TimeoutError:
                end = "caught up without a resync (3 s of silence, or 20 s of reading)"
            except Exception as exc:
                end = exc.__class__.__name__
            stall_report["after_stall"] = {"frames_read": read, "error_snapshot": kinds[-3:],
                                           "end": end}

    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(fast(i)) for i in range(n)]
    if stalled:
        tasks.append(asyncio.create_task(stall()))
    for _ in tasks:
        await ready.acquire()
    print("ready", flush=True)
    cpu0 = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu = time.process_time() - cpu0
    stop.set()
    if stalled:
        # Give the stalled client time to read its backlog and the resync that follows it.
        await asyncio.wait([tasks[-1]], timeout=30)
    expected: dict[str, list[int]] = {}
    if Path(emit_file).exists():
        emitted: dict[str, float] = json.loads(Path(emit_file).read_text())
        for key in emitted:
            coin, ts = key.split(":")
            expected.setdefault(coin, []).append(int(ts))
    else:
        # An engine we cannot see into: the reference is what the clients saw, from the moment
        # every client was connected; a bar's time is when the first client got it.
        emitted = {}
        coins = {c for i in range(n) for c in recv_ts[i]}
        for coin in coins:
            # From when every client was connected to when the first one was told to stop
            # (the engine goes on: frames still in flight to the others are not missing).
            have = [i for i in range(n) if recv_ts[i].get(coin)]
            start = max((recv_ts[i][coin][0] for i in have), default=0)
            end = min((recv_ts[i][coin][-1] for i in have), default=0)
            for i in have:
                keep = [k for k, ts in enumerate(recv_ts[i][coin]) if start <= ts <= end]
                recv_ts[i][coin] = array("q", (recv_ts[i][coin][k] for k in keep))
                recv_t[i][coin] = array("d", (recv_t[i][coin][k] for k in keep))
                for ts, t in zip(recv_ts[i][coin], recv_t[i][coin]):
                    key = f"{coin}:{ts}"
                    emitted[key] = min(t, emitted.get(key, t))
        for key in emitted:
            coin, ts = key.split(":")
            expected.setdefault(coin, []).append(int(ts))
    for ts_list in expected.values():
        ts_list.sort()
    lat: list[float] = []
    per_client: list[dict[str, Any]] = []
    for i in range(n):
        got = sum(len(a) for a in recv_ts[i].values())
        in_order = all(list(a) == sorted(a) for a in recv_ts[i].values())
        complete = all(list(recv_ts[i].get(c, [])) == ts for c, ts in expected.items())
        per_client.append({"bars": got, "in_order": in_order, "complete": complete,
                           "too_slow_errors": errors[i], "snapshots": snapshots[i]})
        for coin, a in recv_ts[i].items():
            for ts, t in zip(a, recv_t[i][coin]):
                e = emitted.get(f"{coin}:{ts}")
                if e is not None:
                    lat.append(t - e)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat.sort()

    def pct(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else float("nan")

    return {
        "clients": n,
        "bars_expected_per_client": sum(len(v) for v in expected.values()),
        "bars_min": min(c["bars"] for c in per_client),
        "bars_max": max(c["bars"] for c in per_client),
        "all_in_order": all(c["in_order"] for c in per_client),
        "all_complete": all(c["complete"] for c in per_client),
        "fast_clients_resynced": sum(1 for c in per_client if c["too_slow_errors"]),
        "clients_cpu_seconds": round(cpu, 2),
        "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0),
                       "mean": round(1000 * statistics.fmean(lat), 2) if lat else None},
        **stall_report,
    }


# Main ---------------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, n, stalled, emit_file = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
        batch = sys.argv[6] == "1"
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats
            prof = cProfile.Profile()
            result = prof.runcall(asyncio.run, worker(url, n, stalled, emit_file, batch))
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(18)
        else:
            result = asyncio.run(worker(url, n, stalled, emit_file, batch))
        print(json.dumps(result), flush=True)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rate", type=float, default=600.0, help="engine minutes per second")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    p.add_argument("--queue", type=int, default=DEFAULT_QUEUE_SIZE,
                   help="the server's queue_size: the longest backlog a client may have (frames)")
    p.add_argument("--quick", action="store_true", help="5 s per phase")
    p.add_argument("--phases", choices=("both", "plain", "stalled"), default="both",
                   help="without and with a stalled client (default), or only one of them")
    p.add_argument("--real", action="store_true",
                   help="clients of 'cryptotui serve --demo --speed RATE' (the real engine) instead "
                        "of the fake engine in this process")
    p.add_argument("--no-batch", action="store_true",
                   help="clients do not ask for batch frames (one message per event)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = p.parse_args()
    if args.quick:
        args.duration = 5.0
    if args.real and args.out == p.get_default("out"):
        args.out = args.out.with_name("serve_real.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)  # scratch files, also with --out
    print(f"feed bench: {args.clients} clients, {args.rate:g} minutes/s x 3 coins x 4 events, "
          f"{args.duration:g} s per phase, queue {args.queue}, "
          f"{'one message per event' if args.no_batch else 'batch frames (?batch=1)'}")
    phases = []
    for stalled in {"both": (False, True), "plain": (False,), "stalled": (True,)}[args.phases]:
        r = run_phase_real(args, stalled) if args.real else run_phase(args, stalled)
        phases.append(r)
        lat = r["latency_ms"]
        print(f"\n{'with' if stalled else 'without'} a stalled client:")
        if args.real:
            print(f"  real engine, {args.duration:g} s; server exit code {r['server_exit_code']}")
        else:
            print(f"  fed {r['minutes_fed']} minutes in {r['feed_seconds']} s "
                  f"({r['achieved_rate']} min/s), "
                  f"{r['bars_emitted']} bars, {r['server']['events']} events, "
                  f"{r['server']['frames_sent']} frames sent in "
                  f"{r['server']['messages_sent']} messages")
        print(f"  bars per fast client: {r['bars_min']}..{r['bars_max']} "
              f"of {r['bars_expected_per_client']}; "
              f"in order: {r['all_in_order']}; none missing: {r['all_complete']}; "
              f"fast clients resynced: {r['fast_clients_resynced']}")
        print(f"  CPU seconds while running: engine+server {r['server_cpu_seconds']}, "
              f"all clients {r['clients_cpu_seconds']} (the clients' includes the drain after); "
              f"load average {r['loadavg'][0]} -> {r['loadavg'][1]} on {os.cpu_count()} CPUs")
        what = "behind the first client" if args.real else "since the engine emitted it"
        print(f"  fast-client bar latency ms ({what}): p50 {lat['p50']}  p99 {lat['p99']}  "
              f"max {lat['max']}  mean {lat['mean']}")
        if stalled:
            resyncs = "?" if args.real else r["server"]["resyncs"]
            print(f"  stalled client: server resyncs {resyncs}, "
                  f"then on reading: {r.get('after_stall')}")
    report = {
        "bench": "serve",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "phases": phases,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
