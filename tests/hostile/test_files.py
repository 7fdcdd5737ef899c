"""File-level problems: a clear message naming the file, exit 1, and the previous workspace untouched."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.hostile.conftest import Case


def parquet_part(case: Case, table: str) -> Path:
    """`table`.csv moved into a folder `table/` as part-0.csv, beside a Parquet part-1 of its first rows
    written with page checksums; returns the Parquet part."""
    folder = case.ws / table
    folder.mkdir()
    (case.ws / f"{table}.csv").rename(folder / "part-0.csv")
    rows = pacsv.read_csv(folder / "part-0.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    part = folder / "part-1.parquet"
    text = pa.table({n: rows[n].cast(pa.string()) for n in rows.column_names})
    pq.write_table(text.slice(0, 500), part, write_page_checksum=True, compression="none")
    return part


def corrupt_data_page(part: Path) -> None:
    """Flip bytes inside the values of the first column's data page (not its header)."""
    meta = pq.ParquetFile(part).metadata.row_group(0).column(0)
    data = bytearray(part.read_bytes())
    middle = meta.data_page_offset + meta.total_compressed_size // 2
    for i in range(middle, middle + 8):
        data[i] ^= 0x5A
    part.write_bytes(bytes(data))


def test_a_good_parquet_part_loads_beside_a_csv_part(case: Case):
    parquet_part(case, "usage_events")
    result = case.ingest(RADAR_INGEST__MAX_SHRINK_SHARE="1")
    assert result.exit_code == 0, result.output
    # its 500 rows repeat rows of part-0: exact duplicates, rejected with where the first copy is
    rejects = case.rejects()
    assert len(rejects) == 500
    assert rejects[0] == (
        "usage_events",
        "usage_events/part-1.parquet",
        1,
        "*",
        "duplicate_row",
        "duplicate of row 1 in usage_events/part-0.csv",
    )
    n = len(case.before["usage_events"])
    assert case.assert_reconciled()["usage_events"] == (n + 500, n, 500)
    assert case.state()["usage_events"] == case.before["usage_events"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b"PAR1" + b"\x00garbage" * 50 + b"PAR1"), "not a readable Parquet file"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a readable Parquet file"),
        (corrupt_data_page, "unreadable after data row 0"),
    ],
    ids=["garbage", "truncated", "corrupt-page"],
)
def test_a_damaged_parquet_part_is_a_clear_error_and_changes_nothing(case: Case, damage, message):
    part = parquet_part(case, "usage_events")
    damage(part)
    result = case.ingest()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"error: usage_events/part-1.parquet: {message}" in text
    assert f"Nothing was changed: {case.database} still holds the previous ingest." in text
    case.assert_untouched()


def test_a_file_that_is_not_its_declared_format_is_a_clear_error(case: Case):
    # a Parquet file named .csv, and a CSV file named .parquet
    (case.ws / "feedback.csv").unlink()
    pq.write_table(pa.table({"feedback_id": ["F1"], "account_id": ["A00001"]}), case.ws / "feedback.csv")
    (case.ws / "touchpoints.csv").rename(case.ws / "touchpoints.parquet")
    result = case.ingest()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "feedback.csv: a Parquet file, not CSV: name it feedback.parquet" in text
    assert "touchpoints.parquet: not a readable Parquet file (" in text
    assert "it looks like CSV text: name it touchpoints.csv" in text
    case.assert_untouched()


def test_a_missing_column_names_the_mapping_section_that_fixes_it(case: Case):
    lines = case.lines("subscriptions.csv")
    case.write_lines("subscriptions.csv", [lines[0].replace(",mrr,", ",[red]monthly_revenue[/red],"), *lines[1:]])
    result = case.ingest()
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert (
        "subscriptions (subscriptions.csv): missing required column(s) mrr; found subscription_id, account_id, "
        "product, start_date, end_date, [red]monthly_revenue[/red], seats, billing_period. Rename them in the file "
        'or map them in radar.toml under [ingest.column_mapping.subscriptions], e.g. your_name = "mrr"'
    ) in text
    case.assert_untouched()
