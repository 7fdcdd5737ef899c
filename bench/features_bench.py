"""Feature-build benchmark: whole snapshot build, usage features alone, and a hand-written
DuckDB reference for the same usage aggregates, each in a fresh child process.

    uv run python bench/features_bench.py                      # 5,000 accounts, 20M events, 24 dates
    uv run python bench/features_bench.py --accounts 1500 --events 3000000 --repeat 1

The workspace is the sample generator's (tickets, feedback and touchpoints at its
realistic rates), with usage events replicated with jittered timestamps up to --events.
It is built and ingested once and cached under bench/out/. Figures: median wall seconds
over --repeat runs and the child's peak RSS, plus the usage/reference ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

PREPARE = """
import sys, duckdb
from datetime import date
from pathlib import Path
from radar.settings import load_settings
from features.ingest import ingest_workspace
from features.sampledata import generate_workspace
root, accounts, events = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ws = root / "workspace"
generate_workspace(ws, accounts=accounts, years=2, seed=11, end=date(2026, 10, 31))
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
have = con.execute(f"SELECT count(*) FROM '{ws}/usage_events.parquet'").fetchone()[0]
copies = max(1, round(events / have))
(ws / "usage_events").mkdir()
for c in range(copies):
    con.execute(f'''COPY (SELECT account_id,
        occurred_at + to_seconds(CAST(hash(account_id, occurred_at, user_id, {c}) % 7200 AS BIGINT)) AS occurred_at,
        event_type, user_id, quantity FROM '{ws}/usage_events.parquet')
        TO '{ws}/usage_events/part-{c:03d}.parquet' ''')
(ws / "usage_events.parquet").unlink()
ingest_workspace(ws, load_settings(output_dir=root / "db"))
print(copies * have)
"""

FULL = """
import sys, time, resource
from pathlib import Path
from features.build import build_features
from radar.settings import load_settings
from datetime import date
s = load_settings(output_dir=Path(sys.argv[1]))
t = time.perf_counter()
r = build_features(s, date(2024, 11, 30), date(2026, 10, 31))
print(time.perf_counter() - t, r.rows, len(r.as_of_dates), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

USAGE = """
import sys, time, resource
from datetime import date
from pathlib import Path
from features.build import open_workspace
from features.calendar import as_of_calendar, calendar_table
from radar.settings import load_settings
from features.subscriptions import subscription_features
from features.usage import usage_features
s = load_settings(output_dir=Path(sys.argv[1]))
ws = open_workspace(s)
cal = calendar_table(as_of_calendar(date(2024, 11, 30), date(2026, 10, 31)))
spine = subscription_features(ws.tables["subscriptions"], cal).cache()
t = time.perf_counter()
expr = usage_features(ws.tables["usage_events"], spine, cal, s.features)
ws.backend.create_table("_bench_usage", expr, overwrite=True, temp=True)
n = ws.backend.table("_bench_usage").count().execute()
print(time.perf_counter() - t, n, 24, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

# The same windowed usage aggregates as features.usage, written by hand the fast way:
# events reduced to daily tables first, then each day assigned to the as-of windows that
# hold it (current or previous window) and counted. (A plain range join of the raw
# events to the calendar computing the same aggregates took 31-55 s at 20M events.)
REFERENCE = r"""
import sys, time, resource, duckdb
from datetime import date
from pathlib import Path
from features.calendar import as_of_calendar
from radar.settings import load_settings
s = load_settings(output_dir=Path(sys.argv[1]))
con = duckdb.connect(str(s.database_path), read_only=True)
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
dates = ", ".join(f"DATE '{d}'" for d in as_of_calendar(date(2024, 11, 30), date(2026, 10, 31)))
f = s.features
def lst(xs): return "[" + ", ".join(f"'{x}'" for x in xs) + "]"
t = time.perf_counter()
con.execute("CREATE TEMP TABLE cal AS SELECT unnest([" + dates + "]) AS as_of")
con.execute("CREATE TEMP TABLE daily AS SELECT account_id, CAST(occurred_at AS DATE) AS d, event_type, count(*) AS n "
            "FROM usage_events GROUP BY ALL")
con.execute("CREATE TEMP TABLE udays AS SELECT DISTINCT account_id, CAST(occurred_at AS DATE) AS d, user_id "
            "FROM usage_events WHERE user_id IS NOT NULL")
for w in f.windows:
    win = f"(SELECT x.*, c.as_of, x.d >= c.as_of - {w} AS cur FROM {{t}} x JOIN cal c ON x.d < c.as_of AND x.d >= c.as_of - {2 * w})"
    con.execute(
        f"CREATE TEMP TABLE ev{w} AS SELECT account_id, as_of, "
        f"sum(n) FILTER (cur) AS events, sum(n) FILTER (NOT cur) AS events_prev, "
        f"sum(n) FILTER (cur AND list_contains({lst(f.login_events)}, event_type)) AS logins, "
        f"sum(n) FILTER (NOT cur AND list_contains({lst(f.login_events)}, event_type)) AS logins_prev, "
        f"sum(n) FILTER (cur AND list_contains({lst(f.value_events)}, event_type)) AS value_events, "
        f"count(DISTINCT event_type) FILTER (cur) AS event_types, "
        f"count(DISTINCT event_type) FILTER (cur AND list_contains({lst(f.feature_events)}, event_type)) AS features, "
        f"count(DISTINCT d) FILTER (cur) AS active_days "
        f"FROM {win.format(t='daily')} GROUP BY ALL"
    )
    con.execute(
        f"CREATE TEMP TABLE us{w} AS SELECT account_id, as_of, count(DISTINCT user_id) FILTER (cur) AS users, "
        f"count(DISTINCT user_id) FILTER (NOT cur) AS users_prev FROM {win.format(t='udays')} GROUP BY ALL"
    )
w0, w1 = f.windows[0], f.windows[-1]
con.execute(f"CREATE TEMP TABLE reference AS SELECT * FROM ev{w0} FULL JOIN us{w0} USING (account_id, as_of) "
            f"FULL JOIN ev{w1} e1 USING (account_id, as_of) FULL JOIN us{w1} u1 USING (account_id, as_of)")
n = con.execute("SELECT count(*) FROM reference").fetchone()[0]
print(time.perf_counter() - t, n, 24, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def run(code: str, *args: str) -> tuple[float, int, float]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    wall, rows, _, rss_kb = out.stdout.split()[-4:]
    return float(wall), int(rows), int(rss_kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=5_000)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = HERE / "out" / f"features-{args.accounts}-{args.events}"
    if not (root / "db" / "radar.duckdb").exists():
        root.mkdir(parents=True, exist_ok=True)
        print("preparing workspace (once) ...", flush=True)
        subprocess.run([sys.executable, "-c", PREPARE, str(root), str(args.accounts), str(args.events)], check=True)
    db = str(root / "db")
    figures: dict[str, list[tuple[float, int, float]]] = {
        "full build": [],
        "usage features": [],
        "hand-written reference": [],
    }
    for _ in range(args.repeat):
        figures["full build"].append(run(FULL, db))
        figures["usage features"].append(run(USAGE, db))
        figures["hand-written reference"].append(run(REFERENCE, db))
    print(f"{args.accounts:,} accounts, ~{args.events:,} usage events, 24 monthly as-of dates, {args.repeat} runs")
    med = {}
    for name, runs in figures.items():
        walls = [r[0] for r in runs]
        med[name] = statistics.median(walls)
        print(
            f"  {name:<24} wall s median {med[name]:6.1f} (min {min(walls):.1f}, max {max(walls):.1f})"
            f"   peak RSS median {statistics.median(r[2] for r in runs):,.0f} MiB   rows {runs[0][1]:,}"
        )
    print(f"  usage features / reference: {med['usage features'] / med['hand-written reference']:.2f}x")


if __name__ == "__main__":
    main()
