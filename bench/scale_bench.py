"""Scale benchmark: the feature build on DuckDB and on Spark local[2] in the same run, and
how the DuckDB build time grows with the number of usage events.

    uv run --extra spark python bench/scale_bench.py       # 5,000 accounts, 20M events; DuckDB series 5-40M
    uv run --extra spark python bench/scale_bench.py --accounts 1000 --events 2000000 \\
        --series 1000000,2000000,4000000,8000000 --repeat 1

Workspaces are those of bench/features_bench.py (same generator, same cache folders under
bench/out/, prepared once per size). Each build runs `build_features` in a fresh child
process; its peak memory is the largest sampled sum of the resident memory of the child
and all its descendants (for Spark: the JVM and its Python workers), read from /proc
(Linux). Figures are medians over --repeat runs. The series prints seconds per million
events and the log-log slope of time against events (1.0 = linear).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from features_bench import PREPARE  # noqa: E402  (the workspace generator, shared)

BUILD = """
import sys, time
from datetime import date
from pathlib import Path
from features.build import build_features
from radar.settings import load_settings
s = load_settings(output_dir=Path(sys.argv[1]))
t = time.perf_counter()
r = build_features(s, date(2024, 11, 30), date(2026, 10, 31))
print(time.perf_counter() - t, r.rows, s.features.engine)
"""


def workspace(accounts: int, events: int) -> tuple[Path, int]:
    """The output folder of a prepared workspace of about this size (prepared on first use)
    and its actual number of usage events (whole copies of the generated events)."""
    root = HERE / "out" / f"features-{accounts}-{events}"
    if not (root / "db" / "radar.duckdb").exists():
        root.mkdir(parents=True, exist_ok=True)
        print(f"preparing workspace {accounts:,} accounts / {events:,} events (once) ...", flush=True)
        subprocess.run([sys.executable, "-c", PREPARE, str(root), str(accounts), str(events)], check=True)
    with duckdb.connect(str(root / "db" / "radar.duckdb"), read_only=True) as con:
        return root / "db", con.execute("SELECT count(*) FROM usage_events").fetchone()[0]


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants, now."""
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run_build(db: Path, engine: str, master: str, driver_memory: str) -> tuple[float, int, float]:
    """One build in a fresh child: (build seconds, snapshot rows, peak MiB of the process tree)."""
    env = os.environ | {
        "RADAR_FEATURES__ENGINE": engine,
        "RADAR_SPARK__MASTER": master,
        "RADAR_SPARK__DRIVER_MEMORY": driver_memory,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", BUILD, str(db)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode:
        sys.exit(f"{engine} build failed:\n{err[-3000:]}")
    wall, rows, _ = out.split()[-3:]
    return float(wall), int(rows), peak / 2**20


def medians(runs: list[tuple[float, int, float]]) -> tuple[float, int, float]:
    return statistics.median(r[0] for r in runs), runs[0][1], statistics.median(r[2] for r in runs)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1.0 when y grows linearly with x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=5_000)
    ap.add_argument("--events", type=int, default=20_000_000, help="size of the DuckDB-vs-Spark comparison")
    ap.add_argument(
        "--larger", type=int, default=0, help="also compare both engines at this many events (e.g. 40000000); 0 = no"
    )
    ap.add_argument(
        "--series",
        default="5000000,10000000,20000000,40000000",
        help="event counts of the DuckDB scaling series, comma-separated; empty = none",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--master", default="local[2]", help="Spark master of the comparison")
    ap.add_argument("--driver-memory", default="4g", help="Spark driver memory (all of Spark in local mode)")
    ap.add_argument("--skip-spark", action="store_true", help="DuckDB only")
    args = ap.parse_args()

    sizes = [args.events] + ([args.larger] if args.larger else [])
    print(
        f"DuckDB vs Spark {args.master}: {args.accounts:,} accounts, 24 monthly as-of dates, "
        f"{args.repeat} run(s), medians"
    )
    duck_at: dict[int, tuple[float, int, float]] = {}
    for size in sizes:
        db, events = workspace(args.accounts, size)
        engines = ["duckdb"] + ([] if args.skip_spark else ["spark"])
        res = {
            e: medians([run_build(db, e, args.master, args.driver_memory) for _ in range(args.repeat)]) for e in engines
        }
        duck_at[size] = res["duckdb"]
        for e, (wall, rows, mib) in res.items():
            print(
                f"  {events:>12,} events  {e:<7} build s {wall:7.1f}   peak memory {mib:7,.0f} MiB   rows {rows:,}",
                flush=True,
            )
        if "spark" in res:
            print(
                f"  {'':>12}         spark / duckdb: time {res['spark'][0] / res['duckdb'][0]:.1f}x, "
                f"memory {res['spark'][2] / res['duckdb'][2]:.1f}x",
                flush=True,
            )

    series = [int(x) for x in args.series.split(",") if x.strip()]
    if not series:
        return
    print(f"DuckDB build time against usage events ({args.accounts:,} accounts)")
    counts, walls = [], []
    for size in series:
        db, events = workspace(args.accounts, size)
        wall, rows, mib = duck_at.get(size) or medians(
            [run_build(db, "duckdb", args.master, args.driver_memory) for _ in range(args.repeat)]
        )
        counts.append(events)
        walls.append(wall)
        print(
            f"  {events:>12,} events  build s {wall:7.1f}   s per million events {wall / events * 1e6:6.2f}"
            f"   peak memory {mib:7,.0f} MiB",
            flush=True,
        )
    if len(series) > 1:
        print(
            f"  time ratio {walls[-1] / walls[0]:.2f}x for {counts[-1] / counts[0]:.1f}x the events; "
            f"log-log slope {slope(counts, walls):.2f} (1.0 = linear)"
        )


if __name__ == "__main__":
    main()
