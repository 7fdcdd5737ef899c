"""The default as-of date of score, drivers, alerts and the digest skips partial as-of
dates (`serving.scoring.batch.snapshot_dates`), reading what build-features recorded."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from features import snapshot_meta
from features.calendar import partial_as_of
from radar.settings import Settings
from serving.scoring.batch import load_snapshots, partial_note, snapshot_dates

DATES = [date(2024, 10, 31), date(2024, 11, 30), date(2024, 12, 31), date(2025, 1, 31)]
ACCOUNTS = [40, 42, 41, 17]  # the last month-end: subscriptions exported before it ended


def _write_workspace(settings: Settings, record: bool = True) -> None:
    frame = pd.DataFrame(
        [(f"A{i:03d}", d, 100.0) for d, n in zip(DATES, ACCOUNTS, strict=True) for i in range(n)],
        columns=["account_id", "as_of", "mrr"],
    )
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.database_path))
    con.register("frame", frame)
    con.execute("CREATE TABLE snapshots AS SELECT account_id, CAST(as_of AS DATE) AS as_of, mrr FROM frame")
    if record:
        counts = list(zip(DATES, ACCOUNTS, strict=True))
        rows = snapshot_meta.as_of_frame(counts, partial_as_of(counts, settings.features.partial_drop_share))
        con.register("rows", rows)
        con.execute(f"CREATE TABLE {snapshot_meta.AS_OF_TABLE} AS SELECT * FROM rows")
    con.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(output_dir=tmp_path / "out")
    _write_workspace(s)
    return s


def test_the_default_as_of_skips_a_partial_last_date_and_says_so(settings):
    frame, day = load_snapshots(settings)
    assert day == date(2024, 12, 31)
    assert len(frame) == 41
    note = partial_note(settings, None)
    assert note is not None
    assert "2025-01-31" in note and "17 active accounts" in note and "41 on 2024-12-31" in note
    assert "using 2024-12-31" in note and "--include-partial" in note


def test_asked_for_explicitly_or_with_include_partial_it_is_used(settings):
    frame, day = load_snapshots(settings, date(2025, 1, 31))
    assert (day, len(frame)) == (date(2025, 1, 31), 17)
    assert load_snapshots(settings, include_partial=True)[1] == date(2025, 1, 31)
    assert partial_note(settings, date(2025, 1, 31)) is None
    assert partial_note(settings, None, include_partial=True) is None
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        assert snapshot_dates(con) == DATES[:3]
        assert snapshot_dates(con, keep=date(2025, 1, 31)) == DATES  # drivers/alerts --as-of on that date
        assert snapshot_dates(con, include_partial=True) == DATES


def test_a_smaller_drop_is_not_partial_and_an_old_build_has_no_record(tmp_path):
    lenient = Settings(output_dir=tmp_path / "lenient", features={"partial_drop_share": 0.7})
    _write_workspace(lenient)
    assert load_snapshots(lenient)[1] == date(2025, 1, 31)
    assert partial_note(lenient, None) is None
    old = Settings(output_dir=tmp_path / "old")
    _write_workspace(old, record=False)  # snapshots built before partial dates were recorded
    assert load_snapshots(old)[1] == date(2025, 1, 31)
    assert partial_note(old, None) is None
