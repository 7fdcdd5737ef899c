"""The CRM tables' columns, declared once, and the projection of scores onto them.

Two tables, written together by `serving.crm.write.write_scores`:

- `crm_accounts` (key `account_id`): one row per account, what a CRM syncs. Likelihoods
  as 0-100 integers, up to 3 renewal and 3 expansion reasons as separate columns of at
  most `TEXT_LIMIT` characters, the previous tier and likelihoods, `changed` /
  `changed_at` (moved only when something a CSM acts on changed: a likelihood integer
  by `ServingSettings.crm_change_points` since the last change, kept in `synced_*`) and a `status`
  (`active`, `churned`); see `serving.crm.accounts` for how a write moves them.
  A reason's text carries its feature's value ("… is 0.04 over the last 28 days"),
  which moves almost every week; what a CSM acts on is which feature it names and
  which way it pushes, kept per reason in `renewal_reason_keys` / `expansion_reason_keys`
  (`reason_keys`: "feature:raises, feature:lowers", in the order of the reason columns).
  Those, not the texts, decide `changed`.
- `crm_score_history` (key `account_id`, `as_of`): the same score columns per snapshot,
  plus the raw model outputs (churn risk, likelihoods and lifts as floats, the health
  score, the risk summary and the reasons as JSON) for trends and audits. It holds every
  column of the former per-as_of table `crm_scores`; `serving.crm.read.read_score_history` reads it (or
  that older table when a target has only it).

`crm_frame` projects `score_frame`'s output onto the history columns; the account rows are
derived from those by the writer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from radar.settings import ServingSettings
from serving.scoring.decisions import call_order

TEXT_LIMIT = 255  # a CRM text field (e.g. a Salesforce Text(255)) holds at most this many characters
ELLIPSIS = "\u2026"
REASON_SLOTS = 3  # renewal_reason_1..3 and expansion_reason_1..3
ACTIVE, CHURNED = "active", "churned"
RAISES, LOWERS = "raises", "lowers"  # a reason's direction on its likelihood (churn risk for renewal reasons)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # str, date, float, int, bool, timestamp
    nullable: bool = False


@dataclass(frozen=True)
class CrmTable:
    """A CRM table: its name, columns and primary key."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @cached_property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def compared(self) -> list[str]:
        """What makes a stored row out of date: a new scoring time alone does not."""
        return [c for c in self.names if c not in self.key and c != "scored_at"]

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, ARROW[c.kind]) for c in self.columns])


RENEWAL_REASONS = [f"renewal_reason_{i}" for i in range(1, REASON_SLOTS + 1)]
EXPANSION_REASONS = [f"expansion_reason_{i}" for i in range(1, REASON_SLOTS + 1)]
PCT = ("churn_risk_pct", "renewal_likelihood_pct", "upsell_likelihood_pct")
# what the reasons say a CSM should look at, without the values inside their texts (`reason_keys`)
REASON_KEYS = ("renewal_reason_keys", "expansion_reason_keys")
SYNCED = {c: f"synced_{c}" for c in PCT}  # crm_accounts: each likelihood integer at the account's last change

# the score columns both tables hold
SCORE_COLUMNS = (
    Column("account_id", "str"),
    Column("as_of", "date"),
    Column("crm_id", "str", nullable=True),
    Column("name", "str", nullable=True),
    Column("csm_owner", "str", nullable=True),
    Column("segment", "str", nullable=True),
    Column("call_rank", "int"),
    Column("risk_tier", "str"),
    Column("churn_risk_pct", "int"),
    Column("renewal_likelihood_pct", "int", nullable=True),
    Column("upsell_likelihood_pct", "int"),
    Column("next_renewal", "date", nullable=True),
    Column("expected_mrr_loss", "float"),
    *(Column(c, "str", nullable=True) for c in RENEWAL_REASONS),
    *(Column(c, "str", nullable=True) for c in EXPANSION_REASONS),
    *(Column(c, "str", nullable=True) for c in REASON_KEYS),
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
HISTORY = CrmTable(
    "crm_score_history",
    (
        *SCORE_COLUMNS,
        # the raw model outputs, for trends, monitoring and audits
        Column("churn_risk", "float"),
        Column("churn_lift", "float"),
        Column("renewal_likelihood", "float", nullable=True),
        Column("upsell_likelihood", "float"),
        Column("upsell_lift", "float"),
        Column("opportunity", "bool"),
        Column("health_score", "float", nullable=True),
        Column("risk_summary", "str"),
        Column("top_reasons", "str"),
        Column("top_reasons_json", "str"),
    ),
    ("account_id", "as_of"),
)
ACCOUNTS = CrmTable(
    "crm_accounts",
    (
        *SCORE_COLUMNS,
        Column("status", "str"),
        Column("status_since", "date"),  # the snapshot at which the account became active, or was found gone
        Column("previous_as_of", "date", nullable=True),
        Column("previous_risk_tier", "str", nullable=True),
        *(Column(f"previous_{c}", "int", nullable=True) for c in PCT),
        # the likelihood integers at the last change (what a sync reading `changed_at` holds):
        # `changed` compares the new ones with these, so a slow drift triggers once it adds up
        *(Column(SYNCED[c], "int", nullable=True) for c in PCT),
        Column("changed", "bool"),
        Column("changed_at", "timestamp"),
    ),
    ("account_id",),
)
# what a CSM sees; what of it sets `changed` and moves `changed_at` (`serving.crm.accounts`):
# any change of `ALWAYS`, a likelihood integer `ServingSettings.crm_change_points` away from
# its value at the last change (`SYNCED`), the first reason of either kind naming another
# feature or direction (by its key, not its text; the 2nd/3rd reasons update quietly)
ALWAYS = ["risk_tier", "recommended_action", "action_owner", "status"]
VISIBLE = ["risk_tier", *PCT, *REASON_KEYS, "recommended_action", "action_owner", "status"]
REASON_TEXTS = [*RENEWAL_REASONS, *EXPANSION_REASONS]
FIRST_REASONS = [RENEWAL_REASONS[0], EXPANSION_REASONS[0]]
# columns added after tables were first written: a stored table may lack them (readers give
# them empty, the DuckDB and SQL writers add them); a row stored without its keys is compared
# by its first reasons' texts, one stored without `SYNCED` values against its stored integers
ADDED_LATER = (*REASON_KEYS, *SYNCED.values())
LEGACY_TABLE = "crm_scores"  # the per-as_of table written before crm_score_history (still read)

# the history table is what `crm_frame` returns and `write_scores` takes
TABLE = HISTORY.name
KEY = HISTORY.key
COLUMNS = HISTORY.columns
NAMES = HISTORY.names
COMPARED = HISTORY.compared
ARROW = {
    "str": pa.string(),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class WriteReport:
    """What a write did. `inserted`/`updated`/`unchanged` count the history rows of the
    batch; `changed` the account rows whose `changed_at` moved (what the next incremental
    sync picks up), of which `churned` turned churned; `accounts_written` every account
    row rewritten (a new snapshot with nothing visible changed rewrites its row quietly)."""

    inserted: int
    updated: int
    unchanged: int
    changed: int = 0
    churned: int = 0
    accounts_written: int = 0


def clip_text(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """`text` cut to at most `limit` characters on a word boundary, ending in an ellipsis."""
    if text is None or len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS) + 1]
    cut = head.rfind(" ")
    head = head[:cut] if cut > 0 else head[: limit - len(ELLIPSIS)]
    return head.rstrip(" ,;:.-\u2013\u2014")[: limit - len(ELLIPSIS)] + ELLIPSIS


def to_pct(values) -> pd.Series:
    """Probabilities as 0-100 integers (half up), missing stays missing."""
    p = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64")
    return np.floor(p.clip(0, 1) * 100 + 0.5).astype("Int64")


def _reason_columns(drivers: list[dict] | None, k: int) -> list[str | None]:
    top = [clip_text(d["reason"]) for d in (drivers or [])[: min(k, REASON_SLOTS)]]
    return top + [None] * (REASON_SLOTS - len(top))


def reason_key(driver: Mapping) -> str:
    """What a reason asks a CSM to look at: its feature and which way it pushes the
    likelihood ("active_user_ratio_28d:raises"; a positive contribution raises, as the
    reason's text says), without the value its text quotes."""
    return f"{driver['feature']}:{RAISES if float(driver['contribution']) > 0 else LOWERS}"


def reason_keys(drivers: list[dict] | None, k: int = REASON_SLOTS) -> str | None:
    """The keys of the reasons in the reason columns (`_reason_columns`), in their order,
    joined by ", "; None without reasons."""
    top = (drivers or [])[: min(k, REASON_SLOTS)]
    return ", ".join(reason_key(d) for d in top) or None


def _reasons(drivers: list[dict] | None, target: str, k: int) -> tuple[str, str]:
    top = (drivers or [])[:k]
    text = "; ".join(d["reason"] for d in top)
    return text, json.dumps([{"target": target, **d} for d in top], ensure_ascii=False)


def crm_frame(
    scored: pd.DataFrame, serving: ServingSettings | None = None, *, crm_ids: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The CRM history rows of scored accounts (`score_frame`'s output). The renewal and
    expansion reasons are the top renewal and upsell drivers; `top_reasons` (history only)
    explains the recommended action: the upsell drivers for an expansion opportunity, the
    renewal drivers otherwise. `crm_ids` maps account_id to the CRM record id (from the
    accounts table, `workspace_crm_ids`); without it a `crm_id` column of `scored` is used."""
    k = (serving or ServingSettings()).crm_reasons
    texts, jsons, renewal_cols, expansion_cols, renewal_keys, expansion_keys = [], [], [], [], [], []
    for playbook, renewal, upsell in zip(scored["playbook"], scored["renewal_drivers"], scored["upsell_drivers"]):
        text, js = (
            _reasons(upsell, "upsell", k) if playbook == "expansion_opportunity" else _reasons(renewal, "renewal", k)
        )
        texts.append(text)
        jsons.append(js)
        renewal_cols.append(_reason_columns(renewal, k))
        expansion_cols.append(_reason_columns(upsell, k))
        renewal_keys.append(reason_keys(renewal, k))
        expansion_keys.append(reason_keys(upsell, k))
    out = scored.reindex(columns=[c for c in NAMES if c in scored.columns]).copy()
    out["top_reasons"], out["top_reasons_json"], out["call_rank"] = texts, jsons, 0
    for i, (r, e) in enumerate(zip(RENEWAL_REASONS, EXPANSION_REASONS)):
        out[r] = [cols[i] for cols in renewal_cols]
        out[e] = [cols[i] for cols in expansion_cols]
    out["renewal_reason_keys"], out["expansion_reason_keys"] = renewal_keys, expansion_keys
    for c in PCT:
        out[c] = to_pct(scored[c.removesuffix("_pct")]).to_numpy()
    if crm_ids is not None:
        out["crm_id"] = scored["account_id"].astype(str).map(dict(crm_ids)).to_numpy()
    elif "crm_id" not in out.columns:
        out["crm_id"] = None
    out["expected_mrr_loss"] = pd.to_numeric(out["expected_mrr_loss"], errors="coerce").round(2)
    return rank_calls(normalise(out.reindex(columns=NAMES)))


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


def normalise(frame: pd.DataFrame, table: CrmTable = HISTORY) -> pd.DataFrame:
    """The columns of `table` in canonical types (what every writer and reader compares):
    text and dates as Python objects (missing: None), floats, nullable integers, bools,
    UTC timestamps."""
    absent = [c for c in table.names if c not in frame.columns]
    if absent and set(absent) <= set(ADDED_LATER):  # a table stored before those columns existed
        frame = frame.assign(**{c: None for c in absent})
    elif absent:
        raise ValueError(f"CRM frame for {table.name} lacks column(s): {', '.join(absent)}")
    out = {}
    for c in table.columns:
        col = frame[c.name]
        if c.kind == "float":
            out[c.name] = pd.to_numeric(col, errors="coerce").astype("float64")
        elif c.kind == "int":
            values = pd.to_numeric(col, errors="coerce")
            out[c.name] = (values if c.nullable else values.fillna(0)).astype("Int64")
        elif c.kind == "bool":
            out[c.name] = col.map(lambda v: v if v is None or pd.isna(v) else str(v).lower() in ("true", "1"))
            out[c.name] = out[c.name].astype(bool) if out[c.name].notna().all() else out[c.name].astype(object)
        elif c.kind == "date":
            days = pd.to_datetime(col)
            out[c.name] = _objects(days.dt.date.astype(object), days.isna())
        elif c.kind == "timestamp":
            out[c.name] = _timestamps(col)
        else:
            text = _objects(col.astype(object), col.isna())
            if pd.api.types.infer_dtype(text, skipna=True) not in ("string", "empty"):
                text = _objects(text.map(lambda v: v if v is None else str(v)), text.isna())
            out[c.name] = text
    return pd.DataFrame(out).reset_index(drop=True)


def _timestamps(col: pd.Series) -> pd.Series:
    """UTC timestamps from datetimes or ISO 8601 text (CSV, SQLite); other text formats parsed one by one."""
    try:
        stamps = pd.to_datetime(col, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        stamps = pd.to_datetime(col, utc=True, format="mixed")
    return stamps.astype("datetime64[us, UTC]")


def _objects(values: pd.Series, missing: pd.Series) -> pd.Series:
    """An object Series with None where `missing`."""
    array = values.to_numpy(dtype=object, copy=True)
    array[missing.to_numpy(dtype=bool)] = None
    return pd.Series(array, index=values.index, dtype=object)


def to_arrow(rows: pd.DataFrame, table: CrmTable = HISTORY) -> pa.Table:
    """Normalised rows of `table` as an Arrow table (missing values as nulls)."""
    arrays = []
    for c in table.columns:
        col = rows[c.name]
        if c.kind == "timestamp":
            values = col.dt.tz_convert(None).to_numpy()
        elif c.kind == "int":
            values = col.astype("Int64").to_numpy(dtype=object, na_value=None)
        else:
            values = col.to_numpy()
        arrays.append(pa.array(values, type=ARROW[c.kind], from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema)


def required_nulls(rows: pd.DataFrame, table: CrmTable) -> None:
    """Raise naming the first required column of `table` with an empty value."""
    for c in table.columns:
        if not c.nullable and rows[c.name].isna().any():
            raise ValueError(
                f"{table.name} column {c.name} must not be empty ({int(rows[c.name].isna().sum())} empty value(s))"
            )


def same_values(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Per row, whether `a` and `b` (aligned, normalised) hold the same values in `columns`
    (two missing values are the same)."""
    equal = np.ones(len(a), dtype=bool)
    for c in columns:
        x, y = a[c], b[c]
        xm, ym = x.isna().to_numpy(dtype=bool), y.isna().to_numpy(dtype=bool)
        xv, yv = x.to_numpy(dtype=object), y.to_numpy(dtype=object)
        eq = np.zeros(len(a), dtype=bool)
        both = ~xm & ~ym
        if both.any():
            eq[both] = np.asarray(xv[both] == yv[both], dtype=bool)
        equal &= (xm & ym) | eq
    return equal


def compare(existing: pd.DataFrame, incoming: pd.DataFrame, table: CrmTable = HISTORY) -> tuple[WriteReport, pd.Series]:
    """Counts, and per incoming row whether it must be written (new or changed)."""
    old = existing.set_index(list(table.key))
    new = incoming.set_index(list(table.key))
    present = new.index.isin(old.index)
    same = np.zeros(len(new), dtype=bool)
    if present.any():
        a = new[present].reset_index(drop=True)
        b = old.loc[new.index[present]].reset_index(drop=True)
        same[present] = same_values(a, b, table.compared)
    report = WriteReport(int((~present).sum()), int((present & ~same).sum()), int(same.sum()))
    return report, pd.Series(~same, index=incoming.index)


def empty(table: CrmTable) -> pd.DataFrame:
    return normalise(pd.DataFrame({c: pd.Series(dtype=object) for c in table.names}), table)


def workspace_crm_ids(con) -> dict[str, str]:
    """account_id -> crm_id from the workspace's `accounts` table (a DuckDB connection);
    empty when there is no such table or column."""
    found = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'crm_id'"
    ).fetchone()[0]
    if not found:
        return {}
    rows = con.execute("SELECT account_id, crm_id FROM accounts WHERE crm_id IS NOT NULL").fetchall()
    return {str(a): str(c) for a, c in rows}


def from_legacy(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the former `crm_scores` table as history rows: the likelihood integers from
    the floats, the reasons from `top_reasons_json` by target; what it lacks is empty."""
    out = frame.copy()
    for c in PCT:
        out[c] = to_pct(out[c.removesuffix("_pct")]).to_numpy()
    renewal, expansion = [], []
    for js in out.get("top_reasons_json", pd.Series([None] * len(out))):
        reasons = json.loads(js) if isinstance(js, str) and js else []
        renewal.append([r for r in reasons if r.get("target") == "renewal"])
        expansion.append([r for r in reasons if r.get("target") == "upsell"])
    for i, (r, e) in enumerate(zip(RENEWAL_REASONS, EXPANSION_REASONS)):
        out[r] = [clip_text(x[i]["reason"]) if i < len(x) else None for x in renewal]
        out[e] = [clip_text(x[i]["reason"]) if i < len(x) else None for x in expansion]
    out["renewal_reason_keys"] = [_legacy_keys(x) for x in renewal]
    out["expansion_reason_keys"] = [_legacy_keys(x) for x in expansion]
    return normalise(out.reindex(columns=HISTORY.names), HISTORY)


def _legacy_keys(reasons: list[dict]) -> str | None:
    """`reason_keys` of stored reasons; None when one lacks its feature or contribution."""
    try:
        return reason_keys(reasons)
    except (KeyError, TypeError, ValueError):
        return None
