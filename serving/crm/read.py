"""Reading the CRM tables back from any target: `read_score_history` and `read_accounts`.

For trends, monitoring, audits and checks. A source is what `write_scores` writes to (the
workspace or another DuckDB database as a path or `duckdb:///path`, a SQLAlchemy URL, a
`.parquet`/`.csv` file whose history lies beside it) or an open DuckDB connection. A
target written before `crm_score_history` existed is read from its `crm_scores` table
(`serving.crm.table.from_legacy`); a target with neither gives an empty frame with the
columns.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from serving.crm.files import FILE_SUFFIXES, history_path, read_duckdb, read_file
from serving.crm.sql import read_table
from serving.crm.table import ACCOUNTS, HISTORY, CrmTable, empty


def as_path(source) -> Path | None:
    """A local path for a file or DuckDB target, None for an URL or a connection."""
    if isinstance(source, Path):
        return source
    if isinstance(source, str):
        if source.startswith("duckdb:///"):
            return Path(source.removeprefix("duckdb:///"))
        return None if "://" in source else Path(source)
    return None


def read_stored(source, table: CrmTable = HISTORY) -> pd.DataFrame:
    """A stored CRM table (normalised, unordered); empty when the source has none."""
    path = as_path(source)
    if path is None and not isinstance(source, str):  # an open DuckDB connection
        return read_duckdb(source, table)
    if path is None:
        return read_table(str(source), table)
    if path.suffix.lower() in FILE_SUFFIXES:
        where = history_path(path) if table is HISTORY else path
        return read_file(where, table) if where.exists() else empty(table)
    if not path.exists():
        return empty(table)
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return read_duckdb(con, table)
    finally:
        con.close()


def read_score_history(
    source, *, account_ids: list[str] | None = None, since: date | None = None, table: CrmTable = HISTORY
) -> pd.DataFrame:
    """The stored score history, ordered by (account_id, as_of): every as_of scored.
    `account_ids` / `since` (an as_of date, inclusive) narrow it. With `table=ACCOUNTS` it
    reads `crm_accounts` instead (as `read_accounts`)."""
    rows = read_stored(source, table)
    if account_ids is not None:
        rows = rows[rows["account_id"].isin([str(a) for a in account_ids])]
    if since is not None:
        rows = rows[pd.to_datetime(rows["as_of"]) >= pd.Timestamp(since)]
    return rows.sort_values(list(table.key), kind="stable", ignore_index=True)


def read_accounts(source) -> pd.DataFrame:
    """The stored `crm_accounts` rows, ordered by account_id."""
    return read_score_history(source, table=ACCOUNTS)
