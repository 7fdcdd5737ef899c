"""The CRM table in a file (Parquet or CSV) or a DuckDB database, upserted all or nothing.

A file is read, merged by key, written to a temporary file beside it and renamed over
the old one (atomic on one file system); a DuckDB table gets `INSERT OR REPLACE` of the
new and changed rows in one transaction.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from serving.crm.table import COLUMNS, COMPARED, KEY, TABLE, WriteReport, compare, normalise, to_arrow


def read_file(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return normalise(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    return normalise(pd.read_parquet(path))


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


def write_file(rows: pd.DataFrame, path: Path) -> WriteReport:
    remove_stale_tmp(path)
    existing = read_file(path) if path.exists() else rows.iloc[:0]
    report, write = compare(existing, rows)
    if not write.any():
        return report  # nothing new: the file is not touched
    rows = rows[write.to_numpy()]  # unchanged rows keep their stored scored_at
    replaced = existing.set_index(list(KEY)).index.isin(rows.set_index(list(KEY)).index)
    merged = pd.concat([existing[~replaced], rows], ignore_index=True).sort_values(list(KEY), kind="stable")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        table = to_arrow(merged)
        for c in COLUMNS:
            if not c.nullable and table.column(c.name).null_count:
                raise ValueError(
                    f"CRM column {c.name} must not be empty ({table.column(c.name).null_count} empty value(s))"
                )
        if path.suffix.lower() == ".csv":
            merged.to_csv(tmp, index=False)
        else:
            pq.write_table(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return report


DUCKDB_TYPES = {
    "str": "VARCHAR",
    "date": "DATE",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}


def duckdb_ddl(table: str = TABLE) -> str:
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({', '.join(KEY)}))"


def write_duckdb(rows: pd.DataFrame, path: Path) -> WriteReport:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        incoming = to_arrow(rows)
        con.register("crm_incoming_rows", incoming)
        on = " AND ".join(f"i.{k} = t.{k}" for k in KEY)
        differs = " OR ".join(f"i.{c} IS DISTINCT FROM t.{c}" for c in COMPARED)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(duckdb_ddl())
            counts = con.execute(
                f"SELECT count(*) FILTER (WHERE t.account_id IS NULL), "
                f"count(*) FILTER (WHERE t.account_id IS NOT NULL AND ({differs})) "
                f"FROM crm_incoming_rows i LEFT JOIN {TABLE} t ON {on}"
            ).fetchone()
            assert counts is not None  # an aggregate without GROUP BY returns one row
            inserted, changed = counts
            con.execute(
                f"INSERT OR REPLACE INTO {TABLE} SELECT i.* FROM crm_incoming_rows i "
                f"LEFT JOIN {TABLE} t ON {on} WHERE t.account_id IS NULL OR {differs}"
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return WriteReport(int(inserted), int(changed), len(rows) - int(inserted) - int(changed))
