"""The CRM table: one row per (account_id, as_of), written as an idempotent upsert.

`crm_frame` projects `score_frame`'s output onto the CRM columns (declared once, in
`COLUMNS`); `write_scores` upserts it into a target, all or nothing:

- a `.parquet` or `.csv` file: read, merge by key, write a temporary file beside it and
  rename it over the old one (atomic on one file system);
- a DuckDB database (`*.duckdb`, `*.db` or `duckdb:///path`): table `crm_scores` with a
  primary key, `INSERT OR REPLACE` of new and changed rows in one transaction;
- a SQLAlchemy URL (PostgreSQL; SQLite works too): table `crm_scores` created if missing
  with PRIMARY KEY (account_id, as_of), rows staged in a temporary table, then
  `INSERT ... ON CONFLICT (account_id, as_of) DO UPDATE ... WHERE <row changed>`, in one
  transaction.

A failure anywhere (a NULL in a required column halfway through the batch, a lost
connection) leaves the previous table as it was. A row whose scores equal the stored
ones is unchanged and not rewritten, whatever its `scored_at` (which then stays the time
those scores were first written), so a rerun changes nothing.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serving.settings import ServingSettings

TABLE = "crm_scores"
KEY = ("account_id", "as_of")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str, date, float, bool, timestamp
    nullable: bool = False


COLUMNS = (
    Column("account_id", "str"), Column("as_of", "date"),
    Column("renewal_likelihood", "float"), Column("risk_tier", "str"),
    Column("upsell_likelihood", "float"), Column("opportunity", "bool"),
    Column("health_score", "float", nullable=True),
    Column("top_reasons", "str"), Column("top_reasons_json", "str"),
    Column("recommended_action", "str"), Column("action_owner", "str"),
    Column("renewal_model", "str"), Column("renewal_model_version", "str"),
    Column("upsell_model", "str"), Column("upsell_model_version", "str"),
    Column("scored_at", "timestamp"),
)
NAMES = [c.name for c in COLUMNS]
# what makes a stored row out of date: a new scoring time alone does not
COMPARED = [c for c in NAMES if c not in KEY and c != "scored_at"]
ARROW = {"str": pa.string(), "date": pa.date32(), "float": pa.float64(), "bool": pa.bool_(),
         "timestamp": pa.timestamp("us", tz="UTC")}
SCHEMA = pa.schema([pa.field(c.name, ARROW[c.kind], nullable=c.nullable) for c in COLUMNS])


@dataclass(frozen=True)
class WriteReport:
    inserted: int
    updated: int
    unchanged: int


def _reasons(drivers: list[dict] | None, target: str, k: int) -> tuple[str, str]:
    top = (drivers or [])[:k]
    text = "; ".join(d["reason"] for d in top)
    return text, json.dumps([{"target": target, **d} for d in top], ensure_ascii=False)


def crm_frame(scored: pd.DataFrame, serving: ServingSettings | None = None) -> pd.DataFrame:
    """The CRM rows of scored accounts. The reasons explain the recommended action: the
    upsell drivers for an expansion opportunity, the renewal drivers otherwise."""
    k = (serving or ServingSettings()).crm_reasons
    texts, jsons = [], []
    for playbook, renewal, upsell in zip(scored["playbook"], scored["renewal_drivers"], scored["upsell_drivers"]):
        text, js = (_reasons(upsell, "upsell", k) if playbook == "expansion_opportunity"
                    else _reasons(renewal, "renewal", k))
        texts.append(text)
        jsons.append(js)
    out = scored.reindex(columns=[c for c in NAMES if c not in ("top_reasons", "top_reasons_json")])
    out.insert(NAMES.index("top_reasons"), "top_reasons", texts)
    out.insert(NAMES.index("top_reasons_json"), "top_reasons_json", jsons)
    return normalise(out)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """The CRM columns in canonical types (what every writer and reader compares):
    text and dates as Python objects (missing: None), floats, bools, UTC timestamps."""
    absent = [c for c in NAMES if c not in frame.columns]
    if absent:
        raise ValueError(f"CRM frame lacks column(s): {', '.join(absent)}")
    out = {}
    for c in COLUMNS:
        col = frame[c.name]
        if c.kind == "float":
            out[c.name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif c.kind == "bool":
            out[c.name] = col.map(lambda v: v if v is None or pd.isna(v) else str(v).lower() in ("true", "1"))
            out[c.name] = out[c.name].astype(bool) if out[c.name].notna().all() else out[c.name].astype(object)
        elif c.kind == "date":
            out[c.name] = pd.Series([None if pd.isna(v) else v for v in pd.to_datetime(col).dt.date],
                                    index=col.index, dtype=object)
        elif c.kind == "timestamp":
            out[c.name] = pd.to_datetime(col, utc=True).astype("datetime64[us, UTC]")
        else:
            out[c.name] = pd.Series([None if pd.isna(v) else str(v) for v in col], index=col.index, dtype=object)
    return pd.DataFrame(out).reset_index(drop=True)


def to_arrow(rows: pd.DataFrame) -> pa.Table:
    """Normalised CRM rows as an Arrow table of `SCHEMA` (missing values as nulls)."""
    arrays = []
    for c in COLUMNS:
        col = rows[c.name]
        values = col.dt.tz_convert(None).to_numpy() if c.kind == "timestamp" else col.to_numpy()
        arrays.append(pa.array(values, type=ARROW[c.kind], from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(c.name, ARROW[c.kind]) for c in COLUMNS]))


def _check(frame: pd.DataFrame) -> None:
    dupes = frame.duplicated(list(KEY), keep=False)
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise ValueError(f"{int(dupes.sum())} CRM rows share a key, e.g. {first.account_id} at {first.as_of}")


def write_scores(frame: pd.DataFrame, target: str | Path) -> WriteReport:
    """Upsert CRM rows (`crm_frame`) into `target`, all or nothing; see the module doc."""
    rows = normalise(frame)
    _check(rows)
    target = str(target)
    if target.startswith("duckdb:///"):  # duckdb:///relative/path or duckdb:////absolute/path
        return _write_duckdb(rows, Path(target.removeprefix("duckdb:///")))
    if "://" in target:
        from serving.crm_sql import write_sql

        return write_sql(rows, target)
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        return _write_file(rows, path)
    if suffix in (".duckdb", ".db"):
        return _write_duckdb(rows, path)
    raise ValueError(f"unknown CRM target {target!r}: use a .parquet or .csv file, a .duckdb database "
                     "or a SQLAlchemy URL such as postgresql+psycopg://user@host/db")


def compare(existing: pd.DataFrame, incoming: pd.DataFrame) -> tuple[WriteReport, pd.Series]:
    """Counts, and per incoming row whether it must be written (new or changed)."""
    old = existing.set_index(list(KEY))
    new = incoming.set_index(list(KEY))
    present = new.index.isin(old.index)
    same = np.zeros(len(new), dtype=bool)
    if present.any():
        a = new[present].reset_index(drop=True)
        b = old.loc[new.index[present]].reset_index(drop=True)
        equal = np.ones(len(a), dtype=bool)
        for c in COMPARED:
            x, y = a[c], b[c]
            equal &= ((x == y) | (x.isna() & y.isna())).to_numpy(dtype=bool)
        same[present] = equal
    report = WriteReport(int((~present).sum()), int((present & ~same).sum()), int(same.sum()))
    return report, pd.Series(~same, index=incoming.index)


def read_file(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return normalise(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    return normalise(pd.read_parquet(path))


def _write_file(rows: pd.DataFrame, path: Path) -> WriteReport:
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
                raise ValueError(f"CRM column {c.name} must not be empty "
                                 f"({table.column(c.name).null_count} empty value(s))")
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


DUCKDB_TYPES = {"str": "VARCHAR", "date": "DATE", "float": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}


def duckdb_ddl(table: str = TABLE) -> str:
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}" for c in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({', '.join(KEY)}))"


def _write_duckdb(rows: pd.DataFrame, path: Path) -> WriteReport:
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
            inserted, changed = con.execute(
                f"SELECT count(*) FILTER (WHERE t.account_id IS NULL), "
                f"count(*) FILTER (WHERE t.account_id IS NOT NULL AND ({differs})) "
                f"FROM crm_incoming_rows i LEFT JOIN {TABLE} t ON {on}").fetchone()
            con.execute(f"INSERT OR REPLACE INTO {TABLE} SELECT i.* FROM crm_incoming_rows i "
                        f"LEFT JOIN {TABLE} t ON {on} WHERE t.account_id IS NULL OR {differs}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return WriteReport(int(inserted), int(changed), len(rows) - int(inserted) - int(changed))
