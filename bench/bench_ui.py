"""UI responsiveness while training: key press -> next rendered frame, real Engine + real CryptoApp.

    python bench/bench_ui.py [--quick] [--out FILE.json] [--seconds S]

The app runs headless (``App.run_test``) at 160x48 on the real engine replaying the bundled demo
data. A separate thread plays the terminal's input thread: at random intervals it hands a ``j``
(next coin) key to the driver exactly as Textual's Linux driver does (``driver.process_message``),
noting the time. The app's ``_display`` is wrapped to note every frame and which coin it shows;
headless Textual skips turning the frame into terminal bytes, so the wrapper does that too (a real
terminal pays it). Latency = first frame showing the newly selected coin - key press time.

Modes, each in its own engine and app:
  normal   demo at 10 minutes/s (the default speed), the trainer paced as shipped;
  flat-out demo at 300 minutes/s: the model thread never waits (bars + training queued);
  stress   flat-out plus a thread doing training steps back to back on a second model,
           i.e. the trainer busy without any pause.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
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


async def _session(mode: str, seconds: float, seed: int) -> dict[str, Any]:
    from textual import events

    from engine.config import Locations, Settings
    from engine.engine import Engine
    from tui.app import CryptoApp

    speed = 10.0 if mode == "normal" else 300.0
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
            frames.append((time.perf_counter(), self.selected))

    with tempfile.TemporaryDirectory() as tmp:
        loc = Locations.resolve(tmp)
        settings = Settings(demo=True, speed=speed)
        engine = Engine(settings, loc)
        app = TimedApp(engine, state_path=Path(tmp) / "ui.json")
        busy = _Busy() if mode == "stress" else None
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            if busy is not None:
                busy.start()
            # Let the engine get going (pre-training is skipped on an empty store; bars flow).
            await asyncio.sleep(1.0)
            driver = app._driver
            assert driver is not None
            coins = app.coins
            start_sel = app.selected
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
            bars_seen = sum(len(st.prices) for st in app.states.values())
            steps = {c: (st.train.step if st.train else 0) for c, st in app.states.items()}
        if busy is not None:
            busy.stop.set()
            busy.join()
        if app.stop_thread is not None:
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
    secs = seconds or (5.0 if quick else 30.0)
    out: dict[str, Any] = {"seconds_per_mode": secs, "size": list(SIZE)}
    print(f"UI responsiveness: key press -> next frame showing it ({SIZE[0]}x{SIZE[1]}, {secs:.0f} s per mode)")
    for i, mode in enumerate(("normal", "flat-out", "stress")):
        r = asyncio.run(_session(mode, secs, seed=i))
        out[mode] = r
        lat = r["latency"]
        print(f"  {mode:<9} p50 {fmt(lat['median_ms'], '6.1f')} ms  p90 {fmt(lat['p90_ms'], '6.1f')} ms"
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
    args = ap.parse_args(argv)
    res = run(args.quick, args.seconds)
    if args.out:
        args.out.write_text(json.dumps(res, default=str))
    else:
        write_json("ui.json", res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
