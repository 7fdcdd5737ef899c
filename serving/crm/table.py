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
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from radar.settings import ServingSettings
from serving.scoring.decisions import call_order

TABLE = "crm_scores"
KEY = ("account_id", "as_of")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str, date, float, int, bool, timestamp
    nullable: bool = False


COLUMNS = (
    Column("account_id", "str"),
    Column("as_of", "date"),
    Column("call_rank", "int"),
    Column("churn_risk", "float"),
    Column("churn_lift", "float"),
    Column("risk_tier", "str"),
    Column("expected_mrr_loss", "float"),
    Column("next_renewal", "date", nullable=True),
    Column("renewal_likelihood", "float", nullable=True),
    Column("risk_summary", "str"),
    Column("upsell_likelihood", "float"),
    Column("upsell_lift", "float"),
    Column("opportunity", "bool"),
    Column("health_score", "float", nullable=True),
    Column("top_reasons", "str"),
    Column("top_reasons_json", "str"),
    Column("recommended_action", "str"),
    Column("action_owner", "str"),
    Column("renewal_model", "str"),
    Column("renewal_model_version", "str"),
    Column("upsell_model", "str"),
    Column("upsell_model_version", "str"),
    Column("next_renewal_model", "str", nullable=True),
    Column("next_renewal_model_version", "str", nullable=True),
    Column("scored_at", "timestamp"),
)
NAMES = [c.name for c in COLUMNS]
# what makes a stored row out of date: a new scoring time alone does not
COMPARED = [c for c in NAMES if c not in KEY and c != "scored_at"]
ARROW = {
    "str": pa.string(),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
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
        text, js = (
            _reasons(upsell, "upsell", k) if playbook == "expansion_opportunity" else _reasons(renewal, "renewal", k)
        )
        texts.append(text)
        jsons.append(js)
    made = ("top_reasons", "top_reasons_json", "call_rank")
    out = scored.reindex(columns=[c for c in NAMES if c not in made])
    out.insert(NAMES.index("top_reasons") - 1, "top_reasons", texts)
    out.insert(NAMES.index("top_reasons_json") - 1, "top_reasons_json", jsons)
    out.insert(NAMES.index("call_rank"), "call_rank", 0)
    return rank_calls(normalise(out))


def rank_calls(rows: pd.DataFrame) -> pd.DataFrame:
    """`call_rank` per as_of: 1 = first on the call list (`serving.scoring.decisions.call_order`:
    expected MRR lost, the sooner renewal breaking ties). Applied to a whole portfolio, so
    the CRM table orders accounts exactly as every screen does."""
    out = rows.copy()
    days = (pd.to_datetime(out["next_renewal"]) - pd.to_datetime(out["as_of"])).dt.days
    keyed = out.assign(days_to_next_renewal=days)
    for _, group in keyed.groupby("as_of", sort=False):
        ordered = call_order(group)
        out.loc[ordered.index, "call_rank"] = np.arange(1, len(ordered) + 1)
    out["call_rank"] = out["call_rank"].astype("int64")
    return out


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
        elif c.kind == "int":
            out[c.name] = pd.to_numeric(col, errors="coerce").fillna(0).astype("int64")
        elif c.kind == "bool":
            out[c.name] = col.map(lambda v: v if v is None or pd.isna(v) else str(v).lower() in ("true", "1"))
            out[c.name] = out[c.name].astype(bool) if out[c.name].notna().all() else out[c.name].astype(object)
        elif c.kind == "date":
            out[c.name] = pd.Series(
                [None if pd.isna(v) else v for v in pd.to_datetime(col).dt.date], index=col.index, dtype=object
            )
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
