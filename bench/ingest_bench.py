"""Ingest benchmark: rows/s and peak memory for a workspace with N usage events.

    uv run python bench/ingest_bench.py --events 10000000 --format parquet --repeat 3

Builds the workspace once (cached under bench/out/), then ingests it in a fresh child
process per repeat and prints the median wall time, rows/s and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent


def build_workspace(root: Path, events: int, accounts: int, fmt: str) -> Path:
    ws = root / f"ws-{events}-{fmt}"
    if (ws / "_done").exists():
        return ws
    (ws / "usage_events").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT printf('A%05d', i) AS account_id, 'Account ' || i AS name, 'smb' AS segment
                  FROM range({accounts}) t(i)) TO '{ws}/accounts.{fmt}'"""
    )
    con.execute(
        f"""COPY (SELECT printf('S%05d', i) AS subscription_id, printf('A%05d', i) AS account_id,
                         'base' AS product, DATE '2023-01-01' AS start_date, NULL::DATE AS end_date,
                         100.0 AS mrr, 10 AS seats, 'month' AS billing_period
                  FROM range({accounts}) t(i)) TO '{ws}/subscriptions.{fmt}'"""
    )
    parts = max(1, events // 2_500_000)
    per = events // parts
    for p in range(parts):
        con.execute(
            f"""COPY (SELECT printf('A%05d', (i * 7919) % {accounts}) AS account_id,
                             TIMESTAMP '2023-01-01' + to_seconds((i * 37) % 63072000) AS occurred_at,
                             'event_' || (i % 20) AS event_type,
                             printf('U%05d-%02d', (i * 7919) % {accounts}, i % 12) AS user_id,
                             CASE WHEN i % 10 = 0 THEN 3.0 ELSE 1.0 END AS quantity
                      FROM range({p * per}, {(p + 1) * per}) t(i))
                TO '{ws}/usage_events/part-{p:03d}.{fmt}'"""
        )
    (ws / "_done").touch()
    return ws


CHILD = """
import sys, time, resource
from pathlib import Path
from radar.settings import load_settings
from features.ingest import ingest_workspace
ws, out = Path(sys.argv[1]), Path(sys.argv[2])
t = time.perf_counter()
report = ingest_workspace(ws, load_settings(output_dir=out))
wall = time.perf_counter() - t
ev = report.table("usage_events")
assert ev.read == ev.accepted + ev.rejected
print(wall, ev.read, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--accounts", type=int, default=5_000)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = HERE / "out"
    ws = build_workspace(out, args.events, args.accounts, args.format)
    walls, rss = [], []
    for _ in range(args.repeat):
        shutil.rmtree(out / "db", ignore_errors=True)  # each run ingests into a new database
        res = subprocess.run(
            [sys.executable, "-c", CHILD, str(ws), str(out / "db")],
            check=True,
            capture_output=True,
            text=True,
        )
        wall, rows, maxrss_kb = res.stdout.split()[-3:]
        walls.append(float(wall))
        rss.append(int(maxrss_kb) / 1024)
    med = statistics.median(walls)
    print(f"ingest {int(rows):,} usage events ({args.format}, {args.accounts:,} accounts), {args.repeat} runs")
    print(f"  wall s    median {med:.1f}  min {min(walls):.1f}  max {max(walls):.1f}")
    print(f"  rows/s    median {int(rows) / med:,.0f}")
    print(f"  peak RSS  median {statistics.median(rss):,.0f} MiB  max {max(rss):,.0f} MiB")


if __name__ == "__main__":
    main()
