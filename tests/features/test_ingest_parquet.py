"""Ingest of Parquet parts whose columns are already typed: the values are checked as they are
(not turned into text and parsed again), and every reject still says file, row, column and reason."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from features.ingest import ingest_workspace
from tests.features.test_ingest import query, settings_for, write


def typed_part(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    account, at, event, user, quantity = zip(*rows, strict=True)
    pq.write_table(
        pa.table(
            {
                "account_id": pa.array(account, pa.string()),
                "occurred_at": pa.array(at, pa.timestamp("ns")),
                "event_type": pa.array(event, pa.string()),
                "user_id": pa.array(user, pa.string()),
                "quantity": pa.array(quantity, pa.float32()),
            }
        ),
        path,
    )


def accounts_and_subscriptions(ws: Path) -> None:
    write(ws, "accounts.csv", "account_id,name,segment\nA1,Acme,smb\nA2,Beta,enterprise")
    write(
        ws,
        "subscriptions.csv",
        "subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period\n"
        "S1,A1,base,2024-01-01,,100,5,month\nS2,A2,premium,2024-01-01,,500,20,year",
    )


def test_typed_parquet_parts_load_as_they_are_and_bad_values_are_rejected_by_row(tmp_path: Path):
    good_ws = tmp_path / "ws"
    accounts_and_subscriptions(good_ws)
    at = datetime(2024, 1, 5, 10, 0, 0)
    typed_part(
        good_ws / "usage_events" / "part-0.parquet",
        [("A1", at, "login", "u1", 1.0), ("A2", at, "export", "u2", None), ("A1", None, "login", "u1", 2.0)],
    )
    typed_part(
        good_ws / "usage_events" / "part-1.parquet",
        [
            ("A2", at, "export", "u2", -2.0),
            ("A1", at, "login", "u1", math.nan),
            ("A1", at, "login", "u1", 1.0),  # an exact copy of part-0's row 1
            ("A9", at, "login", "u9", 1.0),
            ("A2", datetime(2024, 1, 6, 0, 30, 0, 250), "view", "u2", 4.5),
        ],
    )
    # one row per batch: the table is larger than a batch (stored in read order, post-conditions on a batch)
    settings = settings_for(tmp_path, ingest={"batch_rows": 1, "max_unknown_account_share": 1.0})
    report = ingest_workspace(good_ws, settings)

    events = report.table("usage_events")
    assert (events.read, events.accepted, events.rejected) == (8, 3, 5)
    loaded = query(settings, "SELECT * FROM usage_events ORDER BY occurred_at, event_type")
    assert loaded["occurred_at"].tolist() == [at, at, datetime(2024, 1, 6, 0, 30, 0, 250)]
    assert loaded["quantity"].tolist() == [1.0, 1.0, 4.5]  # the missing quantity takes its default
    rejects = query(
        settings,
        "SELECT source_file, row_number, column_name, check_name, reason, raw FROM rejects "
        "WHERE table_name = 'usage_events' ORDER BY source_file, row_number",
    )
    got = [
        tuple(r) for r in rejects[["source_file", "row_number", "column_name", "check_name"]].itertuples(index=False)
    ]
    assert got == [
        ("usage_events/part-0.parquet", 3, "occurred_at", "missing"),
        ("usage_events/part-1.parquet", 1, "quantity", "min"),
        ("usage_events/part-1.parquet", 2, "quantity", "finite"),
        ("usage_events/part-1.parquet", 3, "*", "duplicate_row"),
        ("usage_events/part-1.parquet", 4, "account_id", "unknown_account"),
    ]
    reasons = rejects["reason"].tolist()
    assert reasons[1] == "'-2.0' is below the minimum 0"
    assert reasons[2] == "not a finite number: 'nan'"
    assert reasons[3] == "duplicate of row 1 in usage_events/part-0.parquet"
    # the raw values of each rejected row, as text
    assert json.loads(rejects["raw"][1]) == {
        "account_id": "A2",
        "occurred_at": "2024-01-05 10:00:00",
        "event_type": "export",
        "user_id": "u2",
        "quantity": "-2.0",
    }
    assert json.loads(rejects["raw"][4])["account_id"] == "A9"
