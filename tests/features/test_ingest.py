"""Ingest: every input row is accepted or rejected with its precise reason."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.ingest import IngestError, ingest_workspace
from radar.cli import app
from radar.settings import load_settings


def write(ws: Path, name: str, text: str) -> None:
    path = ws / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.strip() + "\n")


def settings_for(tmp: Path, **kw):
    """Settings whose guard against many rejected subscription rows is off: these tests look at the rows."""
    ingest = {"max_rejected_subscription_share": 1.0, **kw.pop("ingest", {})}
    return load_settings(output_dir=tmp / "out", ingest=ingest, **kw)


def query(settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        return con.execute(sql).df()


@pytest.fixture
def good_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    write(
        ws,
        "accounts.csv",
        """
account_id,name,segment,created_at,csm_owner
A1,Acme,smb,2024-01-01,Ann
A2,Beta,enterprise,2024-01-01,Bob
""",
    )
    write(
        ws,
        "subscriptions.csv",
        """
subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period
S1,A1,base,2024-01-01,2024-02-01,100,5,month
S2,A1,base,2024-02-01,,100,5,month
S3,A2,premium,2024-01-01,2025-01-01,500,20,year
""",
    )
    write(
        ws,
        "usage_events.csv",
        """
account_id,occurred_at,event_type,user_id,quantity
A1,2024-01-05 10:00:00,login,u1,
A2,2024-01-06 00:30:00,export,u2,3
""",
    )
    return ws


def test_every_kind_of_bad_row_has_its_reason_and_counts_reconcile(good_ws: Path, tmp_path: Path):
    # given one bad row of each kind, next to good rows
    write(
        good_ws,
        "subscriptions.csv",
        """
subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period
S1,A1,base,2024-01-01,2024-02-01,100,5,month
S2,A1,base,2024-03-01,2024-02-01,100,5,month
S3,A1,base,2024-01-01,,-1,5,month
S4,A1,base,not-a-date,,10,5,month
S5,A1,,2024-01-01,,10,5,month
S6,A1,base,2024-01-01,,10,5,weekly
S7,A9,base,2024-01-01,,10,5,month
S1,A2,base,2024-01-01,,10,5,month
S8,A2,base,2024-01-01,,10,2.5,year
S9,A2,base,2024-01-01,,inf,5,year
""",
    )
    write(
        good_ws,
        "usage_events.csv",
        """
account_id,occurred_at,event_type,user_id,quantity
A1,2024-01-05 10:00:00,login,u1,
A1,2024-01-05 10:00:00,login,u1,
A1,2024-01-05 11:00:00,login,u1,1
""",
    )
    write(
        good_ws,
        "support_tickets.csv",
        """
ticket_id,account_id,opened_at,first_response_at,resolved_at,priority,escalated,csat
T1,A1,2024-01-05,2024-01-05 02:00,2024-01-06,high,false,4
T2,A1,2024-01-05,2024-01-04,,normal,no,
T3,A1,2024-01-05,,,normal,maybe,
T4,A1,2024-01-05,,,normal,true,7
""",
    )
    settings = settings_for(tmp_path)
    # when
    report = ingest_workspace(good_ws, settings)
    # then: each bad row is rejected with the column and check that explain it
    rejects = query(settings, "SELECT table_name, row_number, column_name, check_name, reason FROM rejects")
    got = {(r.table_name, r.row_number, r.column_name, r.check_name) for r in rejects.itertuples()}
    assert got == {
        ("subscriptions", 2, "end_date", "order"),
        ("subscriptions", 3, "mrr", "min"),
        ("subscriptions", 4, "start_date", "type"),
        ("subscriptions", 5, "product", "missing"),
        ("subscriptions", 6, "billing_period", "allowed"),
        ("subscriptions", 7, "account_id", "unknown_account"),
        ("subscriptions", 8, "subscription_id", "duplicate_key"),
        ("subscriptions", 9, "seats", "type"),
        ("subscriptions", 10, "mrr", "finite"),
        ("usage_events", 2, "*", "duplicate_row"),
        ("support_tickets", 2, "first_response_at", "order"),
        ("support_tickets", 3, "escalated", "type"),
        ("support_tickets", 4, "csat", "max"),
    }
    reasons = dict(((r.table_name, r.row_number), r.reason) for r in rejects.itertuples())
    assert reasons[("subscriptions", 4)] == "not a date: 'not-a-date'"
    assert "A9" in reasons[("subscriptions", 7)]
    assert "row 1" in reasons[("subscriptions", 8)] and "row 1" in reasons[("usage_events", 2)]
    # and nothing is lost: read = accepted + rejected, in the report and in the database
    for t in report.tables:
        if t.status == "loaded":
            assert t.read == t.accepted + t.rejected
            assert query(settings, f"SELECT count(*) n FROM {t.table}").n[0] == t.accepted
    assert report.table("subscriptions").rejected == 9
    assert report.table("subscriptions").accepted == 1
    # the rejects file holds the same rows, with the raw values
    file = pd.read_csv(settings.rejects_dir / "subscriptions.csv")
    assert len(file) == 9 and file["raw"].str.contains("not-a-date").any()


def test_a_row_with_several_problems_lists_them_all(good_ws: Path, tmp_path: Path):
    write(
        good_ws,
        "subscriptions.csv",
        """
subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period
S1,A1,base,2024-01-01,,-5,x,weekly
""",
    )
    settings = settings_for(tmp_path)
    # its only subscription is rejected: an empty required table, loaded only when accepted
    ingest_workspace(good_ws, settings, accept_shrink=True)
    problems = query(settings, "SELECT problems FROM rejects").problems[0]
    for part in ("mrr:", "seats:", "billing_period:"):
        assert part in problems


def test_csv_and_parquet_give_identical_tables(good_ws: Path, tmp_path: Path):
    pq_ws = tmp_path / "pq"
    pq_ws.mkdir()
    for name in ("accounts", "subscriptions", "usage_events"):
        df = pd.read_csv(good_ws / f"{name}.csv", dtype=str)
        if name == "subscriptions":
            df["start_date"] = pd.to_datetime(df["start_date"]).dt.date
            df["mrr"] = df["mrr"].astype(float)
            df["seats"] = df["seats"].astype("Int64")
        if name == "usage_events":
            df["occurred_at"] = pd.to_datetime(df["occurred_at"]).dt.tz_localize("UTC").dt.tz_convert("Europe/Rome")
            df["quantity"] = df["quantity"].astype(float)
        df.to_parquet(pq_ws / f"{name}.parquet", index=False)
    a, b = settings_for(tmp_path / "a"), settings_for(tmp_path / "b")
    ingest_workspace(good_ws, a)
    ingest_workspace(pq_ws, b)
    for name in ("accounts", "subscriptions", "usage_events"):
        left = query(a, f"SELECT * FROM {name} ORDER BY ALL")
        right = query(b, f"SELECT * FROM {name} ORDER BY ALL")
        pd.testing.assert_frame_equal(left, right)


def test_timezone_rule_naive_is_utc_and_offsets_are_converted(good_ws: Path, tmp_path: Path):
    write(
        good_ws,
        "usage_events.csv",
        """
account_id,occurred_at,event_type
A1,2024-01-05 10:00:00,naive
A1,2024-01-05T10:00:00+02:00,offset
A1,2024-01-05T10:00:00Z,zulu
A1,2024-01-05,date_only
""",
    )
    settings = settings_for(tmp_path)
    ingest_workspace(good_ws, settings)
    got = query(settings, "SELECT event_type, occurred_at FROM usage_events").set_index("event_type").occurred_at
    assert got["naive"] == pd.Timestamp("2024-01-05 10:00")
    assert got["offset"] == pd.Timestamp("2024-01-05 08:00")
    assert got["zulu"] == pd.Timestamp("2024-01-05 10:00")
    assert got["date_only"] == pd.Timestamp("2024-01-05 00:00")


def test_column_mapping_renames_user_columns(good_ws: Path, tmp_path: Path):
    write(
        good_ws,
        "usage_events.csv",
        """
customer,ts,action
A1,2024-01-05 10:00:00,login
""",
    )
    mapping = {"usage_events": {"customer": "account_id", "ts": "occurred_at", "action": "event_type"}}
    settings = settings_for(tmp_path, ingest={"column_mapping": mapping})
    ingest_workspace(good_ws, settings)
    got = query(settings, "SELECT * FROM usage_events")
    assert list(got.columns) == ["account_id", "occurred_at", "event_type", "user_id", "quantity"]
    assert got.event_type.tolist() == ["login"] and got.quantity.tolist() == [1.0]


def test_missing_required_column_names_it_and_the_fix(good_ws: Path, tmp_path: Path):
    write(good_ws, "usage_events.csv", "customer,ts,event_type\nA1,2024-01-05,login")
    with pytest.raises(IngestError) as err:
        ingest_workspace(good_ws, settings_for(tmp_path))
    msg = str(err.value)
    assert "usage_events" in msg and "account_id" in msg and "occurred_at" in msg
    assert "[ingest.column_mapping.usage_events]" in msg
    assert not (tmp_path / "out" / "radar.duckdb").exists()


def test_missing_subscriptions_is_an_error_but_missing_optional_tables_are_reported(good_ws, tmp_path):
    settings = settings_for(tmp_path)
    report = ingest_workspace(good_ws, settings)
    assert report.table("feedback").status == "missing"
    (good_ws / "subscriptions.csv").unlink()
    with pytest.raises(IngestError, match="required table subscriptions not found"):
        ingest_workspace(good_ws, settings)


def test_part_files_in_a_folder_are_one_table_with_per_file_row_numbers(good_ws, tmp_path):
    (good_ws / "usage_events.csv").unlink()
    write(good_ws, "usage_events/part-0.csv", "account_id,occurred_at,event_type\nA1,2024-01-05,login\nA1,bad,login")
    write(good_ws, "usage_events/part-1.csv", "account_id,occurred_at,event_type\nA2,2024-01-06,login\nA2,worse,login")
    settings = settings_for(tmp_path)
    report = ingest_workspace(good_ws, settings)
    assert report.table("usage_events").accepted == 2
    rejects = query(settings, "SELECT source_file, row_number FROM rejects ORDER BY 1")
    assert rejects.values.tolist() == [["usage_events/part-0.csv", 2], ["usage_events/part-1.csv", 2]]


def test_rerun_replaces_and_never_duplicates(good_ws, tmp_path):
    settings = settings_for(tmp_path)
    write(
        good_ws,
        "feedback.csv",
        "feedback_id,account_id,submitted_at,channel\nF1,A1,2024-01-01,chat\nF2,A1,2024-01-01,fax",
    )
    first = ingest_workspace(good_ws, settings)
    second = ingest_workspace(good_ws, settings)
    assert [(t.table, t.accepted, t.rejected) for t in first.tables] == [
        (t.table, t.accepted, t.rejected) for t in second.tables
    ]
    assert query(settings, "SELECT count(*) n FROM rejects").n[0] == 1
    # a table removed from the workspace is dropped, not left stale
    (good_ws / "feedback.csv").unlink()
    ingest_workspace(good_ws, settings)
    tables = set(query(settings, "SHOW TABLES").name)
    assert "feedback" not in tables
    assert query(settings, "SELECT count(*) n FROM rejects").n[0] == 0
    assert not (settings.rejects_dir / "feedback.csv").exists()


def test_data_span_is_recorded(good_ws, tmp_path):
    settings = settings_for(tmp_path)
    ingest_workspace(good_ws, settings)
    meta = query(settings, "SELECT * FROM workspace_meta")
    spans = query(settings, "SELECT * FROM workspace_spans ORDER BY table_name")
    assert spans.table_name.tolist() == ["subscriptions", "usage_events"]
    assert meta.data_start[0] == pd.Timestamp("2024-01-01")
    assert meta.data_end[0] == pd.Timestamp("2024-02-01")


def test_cli_ingest_prints_counts_and_fails_on_missing_required_table(good_ws, tmp_path, monkeypatch):
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path / "cli-out"))
    monkeypatch.setenv("COLUMNS", "160")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(good_ws)])
    assert result.exit_code == 0, result.output
    assert "subscriptions" in result.output and "missing (optional)" in result.output
    (good_ws / "subscriptions.csv").unlink()
    result = runner.invoke(app, ["ingest", str(good_ws)])
    assert result.exit_code == 1
    assert "subscriptions" in result.output and "not found" in result.output
