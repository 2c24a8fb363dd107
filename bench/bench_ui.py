"""UI responsiveness while training: key press -> next rendered frame, real Engine + real CryptoApp.

    python bench/bench_ui.py [--quick] [--out FILE.json] [--seconds S]

The app runs headless (``App.run_test``) at 160x48 on the real engine replaying the bundled demo
data. A separate thread plays the terminal's input thread: at random intervals it hands a ``j``
(next coin) key to the driver exactly as Textual's Linux driver does (``driver.process_message``),
noting the time. The app's ``_display`` is wrapped to note every frame and which coin it shows;
headless Textual skips turning the frame into terminal bytes, so the wrapper does that too (a real
terminal pays it). Latency = first frame showing the newly selected coin - key press time.

Modes, each in its own engine and app:
  quiet    the test suite's FakeEngine with 24 h per coin: no threads, nothing arriving; the
           UI's own cost of a key press (the floor under every other mode);
  normal   demo at 10 minutes/s (the default speed), the trainer paced as shipped;
  flat-out demo at 60 minutes/s: the model thread never waits (bars + training queued;
           from ~120 minutes/s on, training starves: it only runs when the bar queue is empty);
  stress   (the issue's mode) normal, plus a thread doing training steps back to back on a
           second model as shipped: a trainer busy without any pause, sharing the GIL;
  stress-process  the same busy trainer in a child process instead of a thread (no shared
           GIL): what moving training to a process would give on this machine;
  flood    flat-out plus the busy trainer: the UI also takes in 180 bars a second (plus their
           forecasts and scores) while both trainers run; the harshest case, reported beside.

``BENCH_GC_FREEZE=1`` calls ``gc.freeze()`` once the app is up (the fix proposed for the long
tail: full collections of Textual's and the app's objects took 25-45 ms on the UI thread).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from bench._util import fmt, summary_ms, write_json  # noqa: E402

SIZE = (160, 48)
FLAT_OUT_SPEED = float(os.environ.get("BENCH_FLAT_OUT_SPEED", "60"))
MODES = tuple(os.environ.get("BENCH_UI_MODES", "quiet,normal,flat-out,stress,stress-process,flood").split(","))


class _Busy(threading.Thread):
    """Training steps back to back on a model of its own (torch on one thread, as the engine)."""

    def __init__(self) -> None:
        super().__init__(name="bench-busy-trainer", daemon=True)
        self.stop = threading.Event()
        self.steps = 0

    def run(self) -> None:
        import torch

        from bench.bench_model import ready_forecaster
        from bench._util import demo_bars

        torch.set_num_threads(1)
        fc = ready_forecaster(demo_bars(limit=400))
        while not self.stop.is_set():
            fc.learner.train_steps(1)
            self.steps += 1


class _BusyProcess:
    """The same back-to-back training in a child process: what moving training out would give."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.steps = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--busy-child"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def finish(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()  # the child stops at EOF and prints its step count
        out = self.proc.stdout.read()
        self.proc.wait(30)
        self.steps = int(out.strip() or 0)


def _busy_child() -> int:
    busy = _Busy()
    busy.start()
    sys.stdin.read()  # until the parent closes our stdin
    busy.stop.set()
    busy.join()
    print(busy.steps)  # CLI child: the parent reads the count
    return 0


async def _session(mode: str, seconds: float, seed: int) -> dict[str, Any]:
    from textual import events

    from engine.settings.locations import Locations
    from engine.settings.config import Settings
    from engine.runtime.engine import Engine
    from tui.app import CryptoApp

    speed = FLAT_OUT_SPEED if mode in ("flat-out", "flood") else 10.0
    frames: list[tuple[float, str | None]] = []
    presses: list[float] = []

    class TimedApp(CryptoApp):
        def _display(self, screen: Any, renderable: Any) -> None:  # type: ignore[override]
            super()._display(screen, renderable)
            if renderable is None:
                return
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(self.console)  # the bytes a real terminal would get
            frames.append((time.perf_counter(), self.state.selected))

    with tempfile.TemporaryDirectory() as tmp:
        engine: Any
        if mode == "quiet":
            from tests.fakes.fake_engine import FakeEngine

            engine = FakeEngine(history=1440)  # 24 h per coin, no threads, nothing happening
        else:
            engine = Engine(Settings(demo=True, speed=speed), Locations.resolve(tmp))
        app = TimedApp(engine, state_path=Path(tmp) / "ui.json")
        busy: _Busy | _BusyProcess | None = None
        if mode in ("stress", "flood"):
            busy = _Busy()
        elif mode == "stress-process":
            busy = _BusyProcess()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            if os.environ.get("BENCH_GC_FREEZE") == "1":
                gc.freeze()  # the proposed fix: hide startup's objects from the collector
            if busy is not None:
                busy.start()
            # Let the engine get going (pre-training is skipped on an empty store; bars flow).
            await asyncio.sleep(1.0)
            driver = app._driver
            assert driver is not None
            coins = app.state.coins
            start_sel = app.state.selected
            rng = random.Random(seed)
            stop = threading.Event()

            def typist() -> None:
                while not stop.is_set():
                    time.sleep(rng.uniform(0.12, 0.3))
                    if stop.is_set():
                        break
                    presses.append(time.perf_counter())
                    driver.process_message(events.Key("j", "j"))

            t = threading.Thread(target=typist, name="bench-typist", daemon=True)
            t0 = time.perf_counter()
            t.start()
            while time.perf_counter() - t0 < seconds:
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.to_thread(t.join)
            await pilot.pause(0.5)
            bars_seen = sum(len(st.bars) for st in app.state.views.values())
            steps = {c: (t.step if (t := engine.snapshot(c).train) else 0) for c in coins}
            steps = {c: (v if isinstance(v, int) else 0) for c, v in steps.items()}
        if isinstance(busy, _Busy):
            busy.stop.set()
            busy.join()
        elif busy is not None:
            busy.finish()
        if getattr(app, "stop_thread", None) is not None:
            app.stop_thread.join(10)
    # Match each press with the first frame after it that shows the coin it selects.
    lat = []
    missed = 0
    idx = coins.index(start_sel) if start_sel in coins else 0
    fi = 0
    for i, tp in enumerate(presses):
        want = coins[(idx + i + 1) % len(coins)]
        while fi < len(frames) and frames[fi][0] < tp:
            fi += 1
        j = fi
        while j < len(frames) and frames[j][1] != want:
            j += 1
        if j < len(frames):
            lat.append(frames[j][0] - tp)
        else:
            missed += 1
    return {"mode": mode, "speed": speed, "presses": len(presses), "unmatched": missed,
            "frames": len(frames), "latency": summary_ms(lat), "bars_in_ui": bars_seen,
            "train_steps": steps, "busy_steps": busy.steps if busy else 0}


def run(quick: bool, seconds: float | None = None) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    secs = seconds or (2.0 if quick else 30.0)
    out: dict[str, Any] = {"seconds_per_mode": secs, "size": list(SIZE)}
    print(f"UI responsiveness: key press -> next frame showing it ({SIZE[0]}x{SIZE[1]}, {secs:.0f} s per mode)")
    for i, mode in enumerate(MODES):
        r = asyncio.run(_session(mode, secs, seed=i))
        out[mode] = r
        lat = r["latency"]
        print(f"  {mode:<14} p50 {fmt(lat['median_ms'], '6.1f')} ms  p90 {fmt(lat['p90_ms'], '6.1f')} ms"
              f"  p99 {fmt(lat['p99_ms'], '6.1f')} ms  max {fmt(lat['max_ms'], '6.1f')} ms"
              f"  ({r['presses']} keys, {r['unmatched']} unmatched, {r['frames']} frames,"
              f" model steps {sum(r['train_steps'].values())}"
              + (f" + busy {r['busy_steps']}" if r["busy_steps"] else "") + ")")
    print("  target: p99 <= 50 ms under stress")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--busy-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.busy_child:
        return _busy_child()
    res = run(args.quick, args.seconds)
    if args.out:
        args.out.write_text(json.dumps(res, default=str))
    else:
        write_json("ui.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
