"""Ingest benchmark: rows/s and peak memory for a workspace with N usage events, side by side
with plain DuckDB SQL doing the same checks.

    uv run python bench/ingest_bench.py --events 10000000 --format parquet --repeat 3

Builds the workspace once (cached under bench/out/; about one event in a million names an
unknown account and one in a million has no event type, so both sides have rows to reject),
then per repeat runs, each in a fresh child process and into a new database, `radar ingest`
(`ingest_workspace`) and the plain-SQL reference (REFERENCE below: read the files, cast the
types, flag missing required values, duplicate rows and unknown account ids, keep the good
rows and write every reject with its file, row, column and reason, in one transaction, under
the same DuckDB memory limit and threads). Prints the median wall time, rows/s and peak RSS
of each and the ratios ingest / reference (issue 13 asks for at most 1.3), and checks that
both read and rejected the same number of rows. The reference reads Parquet row numbers, so
it runs for --format parquet only.
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
    ws = root / f"ws-{events}-{fmt}-v2"
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
            f"""COPY (SELECT CASE WHEN i % 1000003 = 17 THEN 'X99999'
                                  ELSE printf('A%05d', (i * 7919) % {accounts}) END AS account_id,
                             TIMESTAMP '2023-01-01' + to_seconds((i * 37) % 63072000) AS occurred_at,
                             CASE WHEN i % 1000033 = 5 THEN NULL ELSE 'event_' || (i % 20) END AS event_type,
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
print(wall, ev.read, ev.rejected, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

# Plain DuckDB SQL doing ingest's checks on the same files, as one would write them by hand:
# typed columns, the first problem of each row, duplicate rows (ranked among hash candidates
# only), unknown accounts, the good rows kept and every reject written with file and row.
REFERENCE = '''
import sys, time, resource
from pathlib import Path
import duckdb
from radar.settings import load_settings

ws, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = load_settings(output_dir=out).ingest
t = time.perf_counter()
out.mkdir(parents=True, exist_ok=True)
con = duckdb.connect(str(out / "reference.duckdb"))
for setting in (f"SET memory_limit = '{cfg.memory_limit}'", f"SET threads = {cfg.threads}",
                "SET preserve_insertion_order = false", "SET TimeZone = 'UTC'"):
    con.execute(setting)


def src(table):
    files = f"{ws}/{table}/*.parquet" if (ws / table).is_dir() else f"{ws}/{table}.parquet"
    return f"read_parquet('{files}', filename = true, file_row_number = true)"


con.execute("BEGIN TRANSACTION")
con.execute("CREATE TABLE rejects (table_name VARCHAR, source_file VARCHAR, row_number BIGINT, "
            "column_name VARCHAR, reason VARCHAR)")


def load(table, select, problems, key_cols, unknown_accounts):
    cases = " ".join(f"WHEN {cond} THEN {{'column': '{col}', 'reason': {why}}}" for col, cond, why in problems)
    con.execute(f"CREATE TEMP TABLE _t AS SELECT filename AS _file, file_row_number + 1 AS _row, {select}, "
                f"CASE {cases} END AS _problem FROM {src(table)}")
    cols = ", ".join(key_cols)
    con.execute(f"""CREATE TEMP TABLE _dup AS
        WITH candidates AS (SELECT hash({cols}) AS h FROM _t WHERE _problem IS NULL GROUP BY 1 HAVING count(*) > 1)
        SELECT _file, _row FROM (
            SELECT _file, _row, row_number() OVER (PARTITION BY {cols} ORDER BY _file, _row) AS n
            FROM _t WHERE _problem IS NULL AND hash({cols}) IN (SELECT h FROM candidates)) WHERE n > 1""")
    unknown = "account_id NOT IN (SELECT account_id FROM accounts)" if unknown_accounts else "false"
    con.execute(f"""INSERT INTO rejects
        SELECT '{table}', _file, _row, _problem.column, _problem.reason FROM _t WHERE _problem IS NOT NULL
        UNION ALL SELECT '{table}', _file, _row, '*', 'duplicate row' FROM _dup
        UNION ALL SELECT '{table}', _file, _row, 'account_id', 'unknown account_id ' || account_id FROM _t t
            WHERE _problem IS NULL AND {unknown}
              AND NOT EXISTS (SELECT 1 FROM _dup d WHERE d._file = t._file AND d._row = t._row)""")
    con.execute(f"""CREATE TABLE {table} AS SELECT * EXCLUDE (_file, _row, _problem) FROM _t t
        WHERE _problem IS NULL AND NOT EXISTS (SELECT 1 FROM rejects r WHERE r.table_name = '{table}'
            AND r.source_file = t._file AND r.row_number = t._row)""")
    read = con.execute("SELECT count(*) FROM _t").fetchone()[0]
    con.execute("DROP TABLE _t; DROP TABLE _dup")
    kept = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    rejected = con.execute(f"SELECT count(*) FROM rejects WHERE table_name = '{table}'").fetchone()[0]
    assert read == kept + rejected, (table, read, kept, rejected)
    return read, rejected


def missing(col):
    return (col, f"{col} IS NULL", "'missing required value'")


load("accounts", "CAST(account_id AS VARCHAR) AS account_id, CAST(name AS VARCHAR) AS name, "
     "CAST(segment AS VARCHAR) AS segment", [missing("account_id")], ["account_id"], False)
load("subscriptions",
     "CAST(subscription_id AS VARCHAR) AS subscription_id, CAST(account_id AS VARCHAR) AS account_id, "
     "CAST(product AS VARCHAR) AS product, TRY_CAST(start_date AS DATE) AS start_date, "
     "TRY_CAST(end_date AS DATE) AS end_date, TRY_CAST(mrr AS DOUBLE) AS mrr, TRY_CAST(seats AS BIGINT) AS seats, "
     "CAST(billing_period AS VARCHAR) AS billing_period",
     [missing("subscription_id"), missing("account_id"), missing("product"), missing("start_date"),
      missing("mrr"), ("mrr", "mrr < 0", "'below 0'")],
     ["subscription_id"], True)
read, rejected = load(
    "usage_events",
    "CAST(account_id AS VARCHAR) AS account_id, TRY_CAST(occurred_at AS TIMESTAMP) AS occurred_at, "
    "CAST(event_type AS VARCHAR) AS event_type, CAST(user_id AS VARCHAR) AS user_id, "
    "COALESCE(TRY_CAST(quantity AS DOUBLE), 1.0) AS quantity",
    [missing("account_id"), missing("occurred_at"), missing("event_type"), ("quantity", "quantity < 0", "'below 0'")],
    ["account_id", "occurred_at", "event_type", "user_id", "quantity"], True)
con.execute("COMMIT")
con.close()
wall = time.perf_counter() - t
print(wall, read, rejected, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def _run(script: str, *args: str) -> tuple[float, int, int, float]:
    """(wall s, rows read, rows rejected, peak RSS MiB) of one child process."""
    res = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"a benchmark child failed:\n{res.stderr[-3000:]}")
    wall, rows, rejected, maxrss_kb = res.stdout.split()[-4:]
    return float(wall), int(rows), int(rejected), int(maxrss_kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--accounts", type=int, default=5_000)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    out = HERE / "out"
    ws = build_workspace(out, args.events, args.accounts, args.format)
    sides = {"radar ingest": CHILD} | ({"plain DuckDB SQL": REFERENCE} if args.format == "parquet" else {})
    runs: dict[str, list[tuple[float, int, int, float]]] = {name: [] for name in sides}
    for _ in range(args.repeat):  # alternating, so that both sides see the same machine load
        for name, script in sides.items():
            shutil.rmtree(out / "db", ignore_errors=True)  # each run writes a new database
            runs[name].append(_run(script, str(ws), str(out / "db")))
    medians = {}
    for name, results in runs.items():
        walls, rss = [r[0] for r in results], [r[3] for r in results]
        rows, rejected = results[0][1], results[0][2]
        wall, memory = medians[name] = (statistics.median(walls), statistics.median(rss))
        print(f"{name}: {rows:,} usage events ({args.format}, {args.accounts:,} accounts), {rejected:,} rejected")
        print(f"  wall s    median {wall:.1f}  min {min(walls):.1f}  max {max(walls):.1f}  ({args.repeat} runs)")
        print(f"  rows/s    median {rows / wall:,.0f}")
        print(f"  peak RSS  median {memory:,.0f} MiB  max {max(rss):,.0f} MiB")
    if len(runs) == 2:
        ingest, reference = runs.values()
        assert ingest[0][1:3] == reference[0][1:3], (
            f"rows read/rejected differ: ingest {ingest[0][1:3]}, reference {reference[0][1:3]}"
        )
        (iw, im), (rw, rm) = medians.values()
        print(
            f"ingest / plain DuckDB SQL, medians: wall time x{iw / rw:.2f}, peak memory x{im / rm:.2f} "
            "(issue 13: at most x1.3)"
        )


if __name__ == "__main__":
    main()
