"""Cold start (launch -> first painted frame, vs a bare Textual app) and idle CPU of the real app.

    python bench/bench_start.py [--quick] [--out FILE.json] [--idle-seconds S]

Both are measured from outside, on a real pseudo-terminal (160x48): the child is started with the
pty as its terminal and the parent reads what it draws.

Cold start: ``python -m tui`` (live mode, the data dir populated with 24 h of 3 coins, their
forecasts and models; source: the local CoinGecko fake) against ``bench/_bare_app.py`` (a Textual
app painting one Static), alternated, several runs each. Time = process launch -> the text
"Watchlist" appears on the terminal. The project is byte-compiled first, as an installed copy is. Each child also reports, at its first paint, whether torch
had been imported by then (it must not be on that path).

Idle: the same app against the fake started with ``--stale`` (nothing new ever arrives); after it
settles, CPU time from /proc/PID/stat over the window, as a share of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import ROOT, cpu_seconds, free_port, pct, populate, write_json  # noqa: E402

COLS, ROWS = 160, 48
MARKER = b"Watchlist"
CHART_MARKER = "┤".encode()  # a price tick on the chart's axis: plotext has drawn the figure
PROBE = ROOT / "bench" / "_first_paint.py"


class FakeServer:
    """``python -m tests.fakes.coingecko_server`` in a child process, on a free port."""

    def __init__(self, stale: bool) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "tests.fakes.coingecko_server", "--port", str(self.port)]
        if stale:
            args.append("--stale")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/ping", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("the fake CoinGecko server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v3"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PtyChild:
    """A child process whose terminal is a new pty of COLS x ROWS; the parent drains its output."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.master = master
        self.buf = bytearray()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                                     start_new_session=True)
        os.close(slave)

    def read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the child closed the terminal."""
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def wait_for(self, marker: bytes, timeout: float) -> float | None:
        """Seconds from launch until ``marker`` was drawn, or None."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.read(0.005):
                break
            if marker in self.buf:
                return time.perf_counter() - self.t0
        return None

    def stop(self) -> None:
        # Our own child only: SIGTERM (Textual restores the terminal), then SIGKILL if it hangs.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def _env(report: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS),
                "PYTHONPATH": str(ROOT)})
    env.pop("TEXTUAL", None)
    if report is not None:
        env["BENCH_FIRST_PAINT"] = str(report)
    return env


def _app_args(home: Path, url: str, probe: bool) -> list[str]:
    head = [sys.executable, str(PROBE), "app"] if probe else [sys.executable, "-m", "tui"]
    return head + ["--home", str(home), "--api-url", url]


def byte_compile() -> bool:
    """Write the project's bytecode, as ``pip install`` does for an installed package.

    Textual's modules in site-packages were compiled when they were installed; a source checkout
    run with ``PYTHONDONTWRITEBYTECODE=1`` (as here) would otherwise compile our 30-odd modules on
    every launch, which a user's installed copy never does.
    """
    import compileall

    ok = True
    for pkg in ("engine", "tui"):
        ok = bool(compileall.compile_dir(ROOT / pkg, quiet=2)) and ok
    return ok


def cold_start(quick: bool, home: Path, server: FakeServer) -> dict[str, Any]:
    runs = 3 if quick else 12  # a median of three: one run alone swings by 0.1x
    kinds = ("bare", "app")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    chart_times: list[float] = []
    torch_at_paint: dict[str, list[bool]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for kind in kinds:
                report = Path(tmp) / f"{kind}-{i}.json"
                args = ([sys.executable, str(PROBE), "bare"] if kind == "bare"
                        else _app_args(home, server.url, probe=True))
                child = PtyChild(args, _env(report))
                t = child.wait_for(MARKER, 60)
                if kind == "app":
                    tc = child.wait_for(CHART_MARKER, 60)
                    if tc is not None:
                        chart_times.append(tc)
                # The probe quits by itself right after its first paint; wait for its report.
                deadline = time.monotonic() + 20
                while child.proc.poll() is None and time.monotonic() < deadline:
                    child.read(0.05)
                child.stop()
                if t is not None:
                    times[kind].append(t)
                if report.exists():
                    torch_at_paint[kind].append(bool(json.loads(report.read_text())["torch"]))
    med = {k: pct(v, 50) for k, v in times.items()}
    return {
        "runs": runs,
        "bare_median_s": med["bare"],
        "app_median_s": med["app"],
        "bare_s": times["bare"],
        "app_s": times["app"],
        "ratio": med["app"] / med["bare"] if times["bare"] and times["app"] else float("nan"),
        "app_chart_median_s": pct(chart_times, 50) if chart_times else float("nan"),
        "app_chart_s": chart_times,
        "torch_imported_at_first_paint": any(torch_at_paint["app"]) if torch_at_paint["app"] else None,
    }


def idle_cpu(quick: bool, home: Path, settle: float, window: float) -> dict[str, Any]:
    server = FakeServer(stale=True)
    try:
        child = PtyChild(_app_args(home, server.url, probe=False), _env(None))
        try:
            first = child.wait_for(MARKER, 60)
            end = time.perf_counter() + settle
            while time.perf_counter() < end:
                child.read(0.2)
            c0, t0 = cpu_seconds(child.proc.pid), time.perf_counter()
            end = t0 + window
            drawn0 = len(child.buf)
            while time.perf_counter() < end:
                child.read(0.2)
            c1, t1 = cpu_seconds(child.proc.pid), time.perf_counter()
            drawn = len(child.buf) - drawn0
            alive = child.proc.poll() is None
        finally:
            child.stop()
    finally:
        server.close()
    return {"settle_s": settle, "window_s": t1 - t0, "cpu_s": c1 - c0,
            "cpu_pct_of_core": 100.0 * (c1 - c0) / (t1 - t0), "bytes_drawn": drawn,
            "first_paint_s": first, "alive_at_end": alive}


def run(quick: bool, idle_seconds: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        out["populated"] = populate(home, ("bitcoin", "ethereum", "solana"))
        out["populate_s"] = time.perf_counter() - t0
        out["byte_compiled"] = byte_compile()
        server = FakeServer(stale=False)
        try:
            cs = cold_start(quick, home, server)
        finally:
            server.close()
        out["cold_start"] = cs
        print(f"cold start to first painted frame ({COLS}x{ROWS} pty, {cs['runs']} runs each, alternated;"
              f" project byte-compiled first, as an installed copy is: {out['byte_compiled']})")
        print(f"  bare Textual app      median {cs['bare_median_s'] * 1000:.0f} ms  "
              f"runs {[round(t * 1000) for t in cs['bare_s']]}")
        print(f"  cryptotui (3 coins, 24 h, models)  median {cs['app_median_s'] * 1000:.0f} ms  "
              f"runs {[round(t * 1000) for t in cs['app_s']]}")
        print(f"  ... its chart drawn   median {cs['app_chart_median_s'] * 1000:.0f} ms  "
              f"runs {[round(t * 1000) for t in cs['app_chart_s']]} (the plot joins after the first frame)")
        print(f"  ratio                 {cs['ratio']:.2f}x (target <= 1.5x);"
              f" torch imported at first paint: {cs['torch_imported_at_first_paint']}")
        settle = 5.0 if quick else 20.0
        window = idle_seconds or (4.0 if quick else 120.0)
        idle = idle_cpu(quick, home, settle, window)
        out["idle"] = idle
        print(f"idle live mode (CoinGecko fake --stale, nothing new), after {settle:.0f} s settling")
        print(f"  CPU                   {idle['cpu_pct_of_core']:.2f} % of one core over"
              f" {idle['window_s']:.0f} s ({idle['cpu_s']:.2f} CPU-s; target <= 2 %;"
              f" {idle['bytes_drawn']} bytes drawn; still running: {idle['alive_at_end']})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--idle-seconds", type=float)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    res = run(args.quick, args.idle_seconds)
    if args.out:
        args.out.write_text(json.dumps(res, default=str))
    else:
        write_json("start.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
