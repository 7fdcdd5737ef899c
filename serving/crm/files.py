"""The CRM tables in files (Parquet or CSV) or a DuckDB database, written all or nothing.

Files: `crm_accounts` goes to the target file and `crm_score_history` beside it
(`history_path`: `crm.parquet` -> `crm.history.parquet`). Each is read, merged by key,
written to a temporary file beside it and renamed over the old one (atomic on one file
system); both temporary files are complete before the first rename, the history is
renamed first, so a write killed between the renames leaves the accounts one write
behind and the next write completes it. CSV cells a spreadsheet would execute are
neutralised (`serving.crm.csv_cells`) and restored on reading.

DuckDB: both tables in one transaction: `INSERT OR REPLACE` of the new and changed
history rows and of the account rows `serving.crm.accounts.plan_accounts` made. A
table written before a column of `table.ADDED_LATER` existed gets it (empty) first.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from serving.crm.accounts import plan_accounts
from serving.crm.csv_cells import neutralise_cell, neutralise_frame, restore_frame, safe_csv  # noqa: F401 - the CSV rule
from serving.crm.table import (
    ACCOUNTS,
    ADDED_LATER,
    HISTORY,
    LEGACY_TABLE,
    CrmTable,
    WriteReport,
    compare,
    empty,
    from_legacy,
    normalise,
    required_nulls,
    to_arrow,
)

FILE_SUFFIXES = (".parquet", ".pq", ".csv")


def history_path(path: Path) -> Path:
    """Where the score history of a file target goes: beside it, `<stem>.history<suffix>`."""
    return path.with_name(f"{path.stem}.history{path.suffix}")


def read_file(path: Path, table: CrmTable = HISTORY) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        frame = restore_frame(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    else:
        frame = pd.read_parquet(path)
    if table is ACCOUNTS and "status" not in frame.columns and "top_reasons" in frame.columns:
        raise ValueError(
            f"{path} holds the former per-as_of CRM table: write crm_accounts to a new file "
            f"(its history goes beside it) or move {path.name} away"
        )
    return normalise(frame, table)


def remove_stale_tmp(path: Path) -> None:
    """Remove temporary files an earlier, killed write of this target left beside it.

    They are named `.{name}.{32 hex}.tmp`; the workspace lock keeps one writer at a time,
    so none of them belongs to a write still under way."""
    prefix, suffix = f".{path.name}.", ".tmp"
    if not path.parent.is_dir():
        return
    for leftover in path.parent.iterdir():
        middle = leftover.name[len(prefix) : -len(suffix)]
        if (
            leftover.name.startswith(prefix)
            and leftover.name.endswith(suffix)
            and len(middle) == 32
            and all(ch in "0123456789abcdef" for ch in middle)
            and leftover.is_file()
        ):
            leftover.unlink(missing_ok=True)


def _merged(existing: pd.DataFrame, rows: pd.DataFrame, table: CrmTable) -> pd.DataFrame:
    key = list(table.key)
    replaced = existing.set_index(key).index.isin(rows.set_index(key).index)
    merged = pd.concat([existing[~replaced], rows], ignore_index=True).sort_values(key, kind="stable")
    return merged.reset_index(drop=True)


def _write_tmp(frame: pd.DataFrame, path: Path, table: CrmTable) -> Path:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            safe_csv(frame, tmp)
        else:
            pq.write_table(to_arrow(frame, table), tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_file(
    rows: pd.DataFrame, path: Path, *, written_at: datetime | None = None, change_points: int | None = None
) -> WriteReport:
    """Write history rows and the account rows they make to `path` and `history_path(path)`."""
    hpath = history_path(path)
    remove_stale_tmp(path)
    remove_stale_tmp(hpath)
    history = read_file(hpath, HISTORY) if hpath.exists() else empty(HISTORY)
    accounts = read_file(path, ACCOUNTS) if path.exists() else empty(ACCOUNTS)
    report, write = compare(history, rows, HISTORY)
    plan = plan_accounts(accounts, rows, written_at, change_points)
    pending: list[tuple[pd.DataFrame, Path, CrmTable]] = []
    if write.any() or not hpath.exists():
        pending.append((_merged(history, rows[write.to_numpy()], HISTORY), hpath, HISTORY))
    if len(plan.rows) or not path.exists():
        pending.append((_merged(accounts, plan.rows, ACCOUNTS), path, ACCOUNTS))
    for frame, _, table in pending:
        required_nulls(frame, table)
    tmps: list[Path] = []
    try:
        for frame, where, table in pending:
            tmps.append(_write_tmp(frame, where, table))
        for tmp, (_, where, _) in zip(tmps, pending):
            os.replace(tmp, where)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return _report(report, plan)


def _report(history: WriteReport, plan) -> WriteReport:
    return WriteReport(history.inserted, history.updated, history.unchanged, plan.changed, plan.churned, len(plan.rows))


DUCKDB_TYPES = {
    "str": "VARCHAR",
    "date": "DATE",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}


def duckdb_ddl(table: CrmTable = HISTORY) -> str:
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}, PRIMARY KEY ({', '.join(table.key)}))"


def duckdb_add_columns(con, table: CrmTable) -> None:
    """Add the columns of `table.ADDED_LATER` a stored `table` lacks (empty)."""
    for c in table.columns:
        if c.name in ADDED_LATER:
            con.execute(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {c.name} {DUCKDB_TYPES[c.kind]}")


def _duckdb_frame(con, sql: str, table: CrmTable) -> pd.DataFrame:
    return normalise(con.execute(sql).to_arrow_table().to_pandas(), table)


def write_duckdb(
    rows: pd.DataFrame, path: Path, *, written_at: datetime | None = None, change_points: int | None = None
) -> WriteReport:
    """Upsert history rows and the account rows they make into a DuckDB database, one transaction."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("BEGIN TRANSACTION")
        try:
            for table in (HISTORY, ACCOUNTS):
                con.execute(duckdb_ddl(table))
                duckdb_add_columns(con, table)
            con.register("crm_incoming_rows", to_arrow(rows, HISTORY))
            on = " AND ".join(f"i.{k} = t.{k}" for k in HISTORY.key)
            differs = " OR ".join(f"i.{c} IS DISTINCT FROM t.{c}" for c in HISTORY.compared)
            counts = con.execute(
                f"SELECT count(*) FILTER (WHERE t.account_id IS NULL), "
                f"count(*) FILTER (WHERE t.account_id IS NOT NULL AND ({differs})) "
                f"FROM crm_incoming_rows i LEFT JOIN {HISTORY.name} t ON {on}"
            ).fetchone()
            assert counts is not None  # an aggregate without GROUP BY returns one row
            inserted, updated = int(counts[0]), int(counts[1])
            con.execute(
                f"INSERT OR REPLACE INTO {HISTORY.name} ({', '.join(HISTORY.names)}) "
                f"SELECT {', '.join(f'i.{c}' for c in HISTORY.names)} FROM crm_incoming_rows i "
                f"LEFT JOIN {HISTORY.name} t ON {on} WHERE t.account_id IS NULL OR {differs}"
            )
            stored = _duckdb_frame(con, f"SELECT * FROM {ACCOUNTS.name}", ACCOUNTS)
            plan = plan_accounts(stored, rows, written_at, change_points)
            if len(plan.rows):
                required_nulls(plan.rows, ACCOUNTS)
                con.register("crm_account_rows", to_arrow(plan.rows, ACCOUNTS))
                names = ", ".join(ACCOUNTS.names)
                con.execute(f"INSERT OR REPLACE INTO {ACCOUNTS.name} ({names}) SELECT {names} FROM crm_account_rows")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    report = WriteReport(inserted, updated, len(rows) - inserted - updated)
    return _report(report, plan)


def _duckdb_tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def read_duckdb(con, table: CrmTable) -> pd.DataFrame:
    tables = _duckdb_tables(con)
    if table.name in tables:
        return _duckdb_frame(con, f"SELECT * FROM {table.name}", table)
    if table is HISTORY and LEGACY_TABLE in tables:
        return from_legacy(con.execute(f"SELECT * FROM {LEGACY_TABLE}").to_arrow_table().to_pandas())
    return empty(table)
