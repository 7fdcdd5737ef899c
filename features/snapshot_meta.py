"""What build made the snapshot table, recorded with it, and its partial as-of dates.

`radar build-features` records the parameters of the build in two places:

* the Parquet file (`snapshots.parquet`): its key-value metadata holds, under the key
  `radar.build` (`PARQUET_KEY`), a JSON object; `read_parquet_meta(path)` returns it as
  a dict (None for a file written before this existed or by someone else). This is what
  training logs to MLflow, so that a run says which build made its training table;
* the workspace database, beside the `snapshots` table: `snapshot_build` (`BUILD_TABLE`,
  one row per key: key, value as JSON text) with the same object, and `snapshot_as_of`
  (`AS_OF_TABLE`: as_of, accounts, compared_with, compared_accounts, partial), one row
  per as-of date, which serving reads to skip partial dates (`partial_dates(con)`).

The keys of the object (`BuildMeta.to_dict`):

* `freq`: the as-of calendar the build used ("month" or "week"; the `--freq` option,
  else `features.freq`), not merely the config at training time;
* `horizon_days`, `grace_days`, `expansion_min_pct`, `max_lead_days`,
  `renewal_window_mode`: the label definition (DOMAIN 2, `[domain]`), and
  `label_definition`, the same in one sentence;
* `data_start`, `data_end` (ISO dates) and `data_end_source` (a sentence: configured,
  or which table's last date it is, with the later ones);
* `as_of_first`, `as_of_last`, `as_of_count`, `windows`, `engine`;
* `partial_as_of` (ISO dates) and `partial_drop_share`: the as-of dates whose active
  population fell by more than that share against the previous complete one
  (`features.calendar.partial_as_of`);
* `event_types` (names) and `event_types_source` (pinned, kept from the record, or
  chosen): the per-event-type features' event types (`features.events`), which a
  model trained on the table needs again when it scores;
* `built_at`: when (UTC, ISO timestamp).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_KEY = "radar.build"
BUILD_TABLE = "snapshot_build"
AS_OF_TABLE = "snapshot_as_of"


@dataclass(frozen=True)
class BuildMeta:
    freq: str
    horizon_days: int
    grace_days: int
    expansion_min_pct: float
    max_lead_days: int
    renewal_window_mode: bool
    label_definition: str
    data_start: str
    data_end: str
    data_end_source: str
    as_of_first: str
    as_of_last: str
    as_of_count: int
    windows: list[int]
    engine: str
    partial_as_of: list[str]
    partial_drop_share: float
    built_at: str
    event_types: list[str] = field(default_factory=list)
    event_types_source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def label_sentence(horizon_days: int, grace_days: int, expansion_min_pct: float, max_lead_days: int) -> str:
    """The label definition in words (DOMAIN 2)."""
    return (
        f"churned: MRR falls to 0 within {horizon_days} days of as_of and stays 0 for {grace_days} days; "
        f"expanded: MRR up by at least {expansion_min_pct:.0%} (or an add-on) within {horizon_days} days "
        f"without churn; churned_by_renewal: churn before the next renewal + {grace_days} days "
        f"(at least {horizon_days}, at most {max_lead_days} days ahead)"
    )


def populations(store: ibis.BaseBackend, table: str = "snapshots") -> list[tuple[date, int]]:
    """(as_of, accounts) for every as-of date of the snapshot table."""
    snaps = store.table(table)
    frame = snaps.group_by("as_of").aggregate(accounts=snaps.count()).order_by("as_of").execute()
    return [(pd.Timestamp(d).date(), int(n)) for d, n in zip(frame["as_of"], frame["accounts"], strict=True)]


def as_of_frame(counts: list[tuple[date, int]], partial: dict[date, tuple[date, int]]) -> pa.Table:
    """The `snapshot_as_of` rows: each as-of date, its accounts and whether it is partial."""
    return pa.table(
        {
            "as_of": pa.array([d for d, _ in counts], type=pa.date32()),
            "accounts": pa.array([n for _, n in counts], type=pa.int64()),
            "compared_with": pa.array([partial[d][0] if d in partial else None for d, _ in counts], type=pa.date32()),
            "compared_accounts": pa.array(
                [partial[d][1] if d in partial else None for d, _ in counts], type=pa.int64()
            ),
            "partial": pa.array([d in partial for d, _ in counts], type=pa.bool_()),
        }
    )


def record(store: ibis.BaseBackend, meta: BuildMeta, as_of_rows: pa.Table) -> None:
    """Write `snapshot_build` and `snapshot_as_of` into the build's database."""
    items = meta.to_dict()
    store.create_table(
        BUILD_TABLE,
        pa.table({"key": list(items), "value": [json.dumps(v) for v in items.values()]}),
        overwrite=True,
    )
    store.create_table(AS_OF_TABLE, as_of_rows, overwrite=True)


def write_parquet(store: ibis.BaseBackend, table: str, path: Path, meta: BuildMeta) -> None:
    """Export `table` of the DuckDB `store` to `path` with the build's metadata (through
    a temporary file beside it, renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    blob = json.dumps(meta.to_dict()).replace("'", "''")
    target = str(tmp).replace("'", "''")
    store.raw_sql(
        f"COPY (SELECT * FROM \"{table}\") TO '{target}' (FORMAT parquet, KV_METADATA {{'{PARQUET_KEY}': '{blob}'}})"
    )
    os.replace(tmp, path)


def read_parquet_meta(path: Path) -> dict | None:
    """The build's metadata from a snapshot Parquet file, or None when it has none."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PARQUET_KEY.encode())
    return json.loads(raw) if raw else None


def partial_dates(con) -> dict[date, tuple[date, int, int]]:
    """Partial as-of dates recorded by the last build, from a DuckDB connection to the
    workspace database: as_of -> (compared_with, compared_accounts, accounts). Empty when
    the build predates the record."""
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if AS_OF_TABLE not in names:
        return {}
    rows = con.execute(
        f"SELECT as_of, compared_with, compared_accounts, accounts FROM {AS_OF_TABLE} WHERE partial ORDER BY as_of"
    ).fetchall()
    return {pd.Timestamp(d).date(): (pd.Timestamp(c).date(), int(cn), int(n)) for d, c, cn, n in rows}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
