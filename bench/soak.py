"""Long chaos soak: the real Engine against a random-fault CoinGecko in virtual time; prints RSS and counts.

    python bench/soak.py [--minutes 20000] [--seed 11] [--rate 0.35] [--quick]

Figures are printed, not asserted (tests/engine/runtime/test_chaos.py asserts the behaviour).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.engine.runtime.test_chaos import check, run_soak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=20_000, help="virtual minutes of polling")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--rate", type=float, default=0.35, help="share of price requests that fail")
    p.add_argument("--quick", action="store_true", help="a short run (CI keeps the script working)")
    args = p.parse_args(argv)
    minutes = 300 if args.quick else args.minutes
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run_soak(Path(tmp) / "home", minutes=minutes, seed=args.seed, rate=args.rate,
                     max_slow=2 if args.quick else 10, verify_every=200)
        wall = time.perf_counter() - t0
        ok = True
        try:
            check(r)
        except AssertionError as exc:
            ok = False
            print(f"CHECK FAILED: {exc}")
    ref = r.referee
    print(f"virtual minutes     {minutes} ({wall:.1f} s wall)")
    print(f"requests            {ref.requests}")
    print(f"faults injected     {sum(ref.kinds.values())}  {dict(sorted(ref.kinds.items()))}")
    print(f"good bodies         {ref.good_bodies}")
    print(f"quotes recorded     {ref.verified} (stored live bars {sum(r.stored.values())}, missing {len(r.missing)})")
    print(f"statuses judged     {ref.statuses}, untruthful {len(ref.violations)}")
    print(f"engine events       {dict(sorted(r.events.items()))}")
    print(f"RSS start/end       {r.rss_start_kb} / {r.rss_end_kb} KiB (growth {r.rss_end_kb - r.rss_start_kb} KiB)")
    print(f"result              {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
