"""Row-level problems stay row-level: a bad row is rejected with file, row, column and reason,
the rest of its file loads and the counts reconcile; file-level problems are named as such."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.ingest import IngestError, ingest_workspace
from radar.settings import load_settings

ACCOUNTS = "account_id,name,segment,created_at,csm_owner"
SUBSCRIPTIONS = "subscription_id,account_id,product,start_date,end_date,mrr,seats,billing_period"
GOOD = [f"S{i},A1,base,2024-01-0{i},,100,5,month" for i in (1, 2, 3)]


def workspace(tmp: Path, subscriptions: bytes, accounts: bytes | None = None) -> Path:
    """Accounts A1, A2 and a subscriptions.csv with the given bytes."""
    ws = tmp / "ws"
    ws.mkdir(parents=True)
    default = f"{ACCOUNTS}\nA1,Acme,smb,2024-01-01,Ann\nA2,Beta,smb,2024-01-01,Bob\n".encode()
    (ws / "accounts.csv").write_bytes(accounts if accounts is not None else default)
    (ws / "subscriptions.csv").write_bytes(subscriptions)
    return ws


def lines(*rows: str) -> bytes:
    return ("\n".join((SUBSCRIPTIONS, *rows)) + "\n").encode()


def ingest(ws: Path, tmp: Path, **settings):
    ingest = {"max_rejected_subscription_share": 1.0, **settings.pop("ingest", {})}  # the rows, not that guard
    s = load_settings(output_dir=tmp / "out", ingest=ingest, **settings)
    report = ingest_workspace(ws, s)
    with duckdb.connect(str(s.database_path), read_only=True) as con:
        rejects = con.execute(
            "SELECT table_name, source_file, row_number, column_name, check_name, reason FROM rejects ORDER BY ALL"
        ).fetchall()
        loaded = [r[0] for r in con.execute("SELECT subscription_id FROM subscriptions ORDER BY 1").fetchall()]
    return report, rejects, loaded


def reconciles(report, table: str, rows: int) -> bool:
    t = report.table(table)
    return t.read == rows == t.accepted + t.rejected


def test_a_latin1_byte_rejects_its_row_and_the_rest_loads(tmp_path: Path):
    body = lines(GOOD[0], "S9,A1,base,2024-01-01,,100,5,month", GOOD[1]).replace(b"S9,A1,base", b"S9,A1,b\xe9se")
    report, rejects, loaded = ingest(workspace(tmp_path, body), tmp_path)
    assert rejects == [
        (
            "subscriptions",
            "subscriptions.csv",
            2,
            "product",
            "unreadable",
            "not UTF-8 text: byte 0xe9 at position 2 (set ingest.encoding?)",
        )
    ]
    assert loaded == ["S1", "S2"] and reconciles(report, "subscriptions", 3)


def test_the_encoding_is_a_setting_and_a_utf8_bom_is_ignored(tmp_path: Path):
    body = b"\xef\xbb\xbf" + lines(GOOD[0], "S9,A1,base,2024-01-01,,100,5,month")
    report, rejects, loaded = ingest(workspace(tmp_path, body), tmp_path)
    assert rejects == [] and loaded == ["S1", "S9"]
    latin = lines(GOOD[0]) + "S9,A1,b\xe9se,2024-01-01,,100,5,month\n".encode("latin-1")
    ws = workspace(tmp_path / "latin", latin)
    report, rejects, loaded = ingest(ws, tmp_path / "latin", ingest={"encoding": "latin-1"})
    assert rejects == [] and loaded == ["S1", "S9"]


def test_a_ragged_row_is_rejected_with_its_field_count(tmp_path: Path):
    body = lines(GOOD[0], "S9,A1,base,2024-01-01,,100,5,month,extra", GOOD[1], "S8,A1,base", GOOD[2])
    report, rejects, loaded = ingest(workspace(tmp_path, body), tmp_path)
    assert rejects == [
        (
            "subscriptions",
            "subscriptions.csv",
            2,
            "*",
            "unreadable",
            "9 fields, expected 8: 'S9,A1,base,2024-01-01,,100,5,month,extra'",
        ),
        ("subscriptions", "subscriptions.csv", 4, "*", "unreadable", "3 fields, expected 8: 'S8,A1,base'"),
    ]
    assert loaded == ["S1", "S2", "S3"] and reconciles(report, "subscriptions", 5)


def test_an_unterminated_quote_is_rejected_with_its_reason(tmp_path: Path):
    # the open quote swallows the rest of the file into one value: the rows before it load
    body = lines(GOOD[0], GOOD[1], 'S9,A1,"base,2024-01-01,,100,5,month', GOOD[2])
    report, rejects, loaded = ingest(workspace(tmp_path, body), tmp_path)
    assert len(rejects) == 1
    table, source, row, column, check, reason = rejects[0]
    assert (table, source, row, column, check) == ("subscriptions", "subscriptions.csv", 3, "*", "unreadable")
    assert reason.startswith("unterminated quoted value (3 fields, expected 8): 'S9,A1,\"base,2024-01-01,,100,5,month")
    assert loaded == ["S1", "S2"] and reconciles(report, "subscriptions", 3)


def test_out_of_range_numbers_are_rejected_above_the_plausible_maximum(tmp_path: Path):
    body = lines(GOOD[0], "S8,A1,base,2024-01-01,,100,1e30,month", "S9,A1,base,2024-01-01,,1e300,5,month", GOOD[1])
    report, rejects, loaded = ingest(workspace(tmp_path, body), tmp_path)
    assert rejects == [
        ("subscriptions", "subscriptions.csv", 2, "seats", "max", "'1e30' is above the maximum 1e+06"),
        ("subscriptions", "subscriptions.csv", 3, "mrr", "max", "'1e300' is above the maximum 1e+07"),
    ]
    assert loaded == ["S1", "S2"] and reconciles(report, "subscriptions", 4)


def test_the_plausible_maximum_is_configurable(tmp_path: Path):
    body = lines(GOOD[0], "S9,A1,base,2024-01-01,,20000000,5,month")
    report, rejects, loaded = ingest(
        workspace(tmp_path, body), tmp_path, ingest={"plausible_max": {"subscriptions": {"mrr": 5e7}}}
    )
    assert rejects == [] and loaded == ["S1", "S9"]


def test_a_nul_or_control_character_in_an_id_is_rejected(tmp_path: Path):
    accounts = f"{ACCOUNTS}\nA1,Acme,smb,2024-01-01,Ann\nA\x002,Beta,smb,2024-01-01,Bob\nA\x073,Co,smb,2024-01-01,Bob\n"
    body = lines(GOOD[0], "S\x009,A1,base,2024-01-01,,100,5,month", GOOD[1])
    report, rejects, loaded = ingest(workspace(tmp_path, body, accounts.encode()), tmp_path)
    assert rejects == [
        (
            "accounts",
            "accounts.csv",
            2,
            "account_id",
            "control_character",
            "non-printable control character 0x00 in an id: 'A?2'",
        ),
        (
            "accounts",
            "accounts.csv",
            3,
            "account_id",
            "control_character",
            "non-printable control character 0x07 in an id: 'A?3'",
        ),
        (
            "subscriptions",
            "subscriptions.csv",
            2,
            "subscription_id",
            "control_character",
            "non-printable control character 0x00 in an id: 'S?9'",
        ),
    ]
    assert loaded == ["S1", "S2"] and reconciles(report, "subscriptions", 3) and reconciles(report, "accounts", 3)


def test_a_garbage_parquet_file_is_a_clear_file_level_error(tmp_path: Path):
    ws = workspace(tmp_path, lines(GOOD[0]))
    (ws / "subscriptions.csv").unlink()
    (ws / "subscriptions.parquet").write_bytes(b"this is not a parquet file at all")
    with pytest.raises(IngestError) as err:
        ingest(ws, tmp_path)
    assert "subscriptions.parquet: not a readable Parquet file" in str(err.value)


def test_a_parquet_part_loads_next_to_csv_parts_with_its_rows_numbered(tmp_path: Path):
    ws = workspace(tmp_path, lines(GOOD[0]))
    (ws / "subscriptions").mkdir()
    (ws / "subscriptions.csv").rename(ws / "subscriptions" / "part-0.csv")
    names = SUBSCRIPTIONS.split(",")
    rows = [r.split(",") for r in (GOOD[1], "S9,A1,base,2024-01-01,,1e300,5,month")]
    pq.write_table(
        pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}), ws / "subscriptions" / "part-1.parquet"
    )
    report, rejects, loaded = ingest(ws, tmp_path)
    assert rejects == [
        ("subscriptions", "subscriptions/part-1.parquet", 2, "mrr", "max", "'1e300' is above the maximum 1e+07")
    ]
    assert loaded == ["S1", "S2"] and reconciles(report, "subscriptions", 3)
