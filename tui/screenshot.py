"""Render the app on the deterministic fake engine to an SVG for the README (run from a checkout).

python -m tui.screenshot [--out docs/screenshot.svg] [--size 120x40] [--minutes 420]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def render(out: Path, size: tuple[int, int], minutes: int) -> Path:
    """Replay ``minutes`` of the bundled data on the fake engine and save what the app shows."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fakes.fake_engine import FakeEngine
    from tui.app import CryptoApp

    engine = FakeEngine(history=minutes)
    app = CryptoApp(engine)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.main.flush()
        await pilot.pause()
        out.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=out.name, path=str(out.parent))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui.screenshot", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.svg")
    parser.add_argument("--size", default="120x40", help="terminal size WIDTHxHEIGHT")
    parser.add_argument("--minutes", type=int, default=420, help="minutes of demo data replayed")
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"invalid size {args.size!r}: expected WIDTHxHEIGHT, e.g. 120x40")
    # Axis times are local time; UTC makes the picture the same on every machine.
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = asyncio.run(render(args.out, (w, h), args.minutes))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
