"""Export's memory at scale (issue 24, case 9): peak RSS and time of ``cryptotui export`` on a coin of
N million stored minutes.

    python bench/bench_export.py [--rows 10000000] [--quick] [--before REF] [--out FILE.json]

A data dir is filled once with N bars of one coin and a forecast (4 horizons) every 10th minute;
then a fresh ``cryptotui export --coin bitcoin`` process writes the CSV and reports its peak RSS
(``ru_maxrss`` of the child, read by the parent) and wall time. ``--before REF`` exports with the
code of a git ref too (``git archive``, e.g. ``main``). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import ROOT, write_json  # noqa: E402

START = 1_500_000_000 - 1_500_000_000 % 60


def fill(home: Path, rows: int) -> Path:
    """A database with ``rows`` bars of bitcoin and a forecast every 10th minute (fast: raw SQL)."""
    sys.path.insert(0, str(ROOT))
    from engine.store import Store

    home.mkdir(parents=True, exist_ok=True)
    db = home / "cryptotui.sqlite3"
    Store(db).close()  # the schema
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    chunk = 200_000
    for lo in range(0, rows, chunk):
        hi = min(rows, lo + chunk)
        con.executemany(
            "INSERT INTO bars VALUES (?,?,?,?,?,?,?,?,?)",
            (
                ("bitcoin", START + 60 * i, 100.0 + i % 97, None, None, None, None, "replay", 0)
                for i in range(lo, hi)
            ),
        )
        con.executemany(
            "INSERT INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                ("bitcoin", START + 60 * i, h, START + 60 * (i + h), 100.0, 0.0, -0.01, 0.01,
                 -0.02, 0.02, None, 0.0)
                for i in range(lo, hi, 10)
                for h in (1, 5, 15, 60)
            ),
        )  # fmt: skip
        con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db


# The export in a child that reports its own peak RSS (VmHWM) at exit: ru_maxrss of a child
# starts from its parent's peak at fork, so it cannot be read from the parent.
CHILD = r"""
import atexit, runpy, sys
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                sys.stderr.write("VmHWM %d\n" % int(line.split()[1]))
atexit.register(hwm)
sys.argv = ["cryptotui", *sys.argv[1:]]
runpy.run_module("tui", run_name="__main__")
"""


def export(code_root: Path, home: Path) -> dict[str, Any]:
    out = home / "out.csv"
    out.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "export", "--coin", "bitcoin", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=code_root,
        env={"PYTHONPATH": str(code_root), "CRYPTOTUI_HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    wall = time.monotonic() - started
    result: dict[str, Any] = {"seconds": round(wall, 1), "rc": proc.returncode}
    hwm = [ln for ln in proc.stderr.splitlines() if ln.startswith("VmHWM ")]
    result["peak_rss_mb"] = round(int(hwm[-1].split()[1]) / 1024) if hwm else None
    result["csv_mb"] = round(out.stat().st_size / 1e6) if out.exists() else 0
    if proc.returncode:
        result["error"] = [ln for ln in proc.stderr.splitlines() if not ln.startswith("VmHWM")][-1:]
    return result


def checkout(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="200,000 rows")
    ap.add_argument("--before", metavar="REF", help="also export with the code of this git ref")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "export.json")
    args = ap.parse_args()
    rows = 200_000 if args.quick else args.rows
    results: dict[str, Any] = {"rows": rows}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.monotonic()
        fill(home, rows)
        results["fill_seconds"] = round(time.monotonic() - t0, 1)
        results["after"] = export(ROOT, home)
        if args.before:
            code = Path(tmp) / "before"
            code.mkdir()
            results["before"] = export(checkout(args.before, code), home)
    for code in ("before", "after"):
        if code in results:
            r = results[code]
            print(f"{code:<7} {rows:>11,} rows: peak RSS {r['peak_rss_mb']} MB, {r['seconds']} s, "
                  f"CSV {r['csv_mb']} MB" + (f"  {r['error']}" if "error" in r else ""))  # fmt: skip
    write_json(args.out, results)


if __name__ == "__main__":
    main()
