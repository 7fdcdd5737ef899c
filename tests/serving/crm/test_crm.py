"""CRM writers: idempotent upserts by (account_id, as_of), all or nothing, on every target."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from serving.crm.files import read_file
from serving.crm.table import NAMES, WriteReport, crm_frame, normalise
from serving.crm.write import write_scores
from serving.scoring.score import score_frame

TARGETS = ["parquet", "csv", "duckdb", "sqlite", "postgres"]


@pytest.fixture(scope="module")
def rows(models, latest, settings, scored_at) -> pd.DataFrame:
    return crm_frame(score_frame(latest.iloc[:30], models, settings, scored_at=scored_at))


@pytest.fixture(params=TARGETS)
def target(request, tmp_path):
    """(where to write, how to read the stored table back sorted by key)."""
    kind = request.param
    if kind in ("parquet", "csv"):
        path = tmp_path / f"crm.{kind}"
        return str(path), lambda: read_file(path) if path.exists() else None
    if kind == "duckdb":
        path = tmp_path / "workspace.duckdb"

        def read_duckdb():
            import duckdb

            if not path.exists():
                return None
            con = duckdb.connect(str(path), read_only=True)
            try:
                found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'crm_scores'")
                if not found.fetchone()[0]:
                    return None
                stored = con.execute("SELECT * FROM crm_scores ORDER BY account_id, as_of")
                return normalise(stored.to_arrow_table().to_pandas())
            finally:
                con.close()

        return str(path), read_duckdb
    url = request.getfixturevalue("postgres_url") if kind == "postgres" else f"sqlite:///{tmp_path / 'crm.sqlite'}"
    if kind == "postgres":
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS crm_scores"))
        engine.dispose()

    def read_url():
        import sqlalchemy as sa

        from serving.crm.sql import read_sql

        engine = sa.create_engine(url)
        try:
            if not sa.inspect(engine).has_table("crm_scores"):
                return None
        finally:
            engine.dispose()
        return normalise(read_sql(url))

    return url, read_url


def stored_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    want = normalise(want).sort_values(["account_id", "as_of"]).reset_index(drop=True)
    got = got.sort_values(["account_id", "as_of"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[NAMES], want[NAMES], check_dtype=False)


def test_crm_rows_have_the_issue_columns(rows):
    assert list(rows.columns) == NAMES
    first = rows.iloc[0]
    reasons = json.loads(first.top_reasons_json)
    assert 1 <= len(reasons) <= 3 and first.top_reasons == "; ".join(r["reason"] for r in reasons)
    assert {"target", "feature", "value", "contribution", "reason"} <= set(reasons[0])
    expansion = rows[rows.recommended_action.str.startswith("Expansion")]
    assert all(json.loads(j)[0]["target"] == "upsell" for j in expansion.top_reasons_json)


def test_first_write_inserts_and_a_rerun_changes_nothing(rows, target):
    where, read = target
    assert write_scores(rows, where) == WriteReport(inserted=len(rows), updated=0, unchanged=0)
    first = read()
    stored_equal(first, rows)
    assert write_scores(rows, where) == WriteReport(inserted=0, updated=0, unchanged=len(rows))
    pd.testing.assert_frame_equal(read(), first)


def test_a_rerun_with_the_same_scores_keeps_the_first_scoring_time(rows, target):
    where, read = target
    write_scores(rows, where)
    later = rows.assign(scored_at=rows.scored_at + timedelta(hours=6))
    assert write_scores(later, where) == WriteReport(inserted=0, updated=0, unchanged=len(rows))
    stored_equal(read(), rows)


def test_upsert_updates_changed_rows_and_inserts_new_ones(rows, target):
    where, read = target
    write_scores(rows, where)
    changed = rows.copy()
    changed.loc[[2, 5, 9], "renewal_likelihood"] = 0.123
    changed.loc[[2, 5, 9], "scored_at"] = changed.scored_at.iloc[0] + timedelta(days=7)
    later = rows.iloc[:2].copy()
    later["as_of"] = [d + timedelta(days=30) for d in later.as_of]
    report = write_scores(pd.concat([changed, later], ignore_index=True), where)
    assert report == WriteReport(inserted=2, updated=3, unchanged=len(rows) - 3)
    stored_equal(read(), pd.concat([changed, later], ignore_index=True))


def test_a_failure_halfway_leaves_the_previous_table(rows, target):
    where, read = target
    write_scores(rows.iloc[:20], where)
    before = read()
    broken = rows.copy()
    broken["renewal_likelihood"] = 0.5  # every row would change ...
    broken.loc[len(broken) // 2, "recommended_action"] = None  # ... but one in the middle violates NOT NULL
    with pytest.raises(Exception, match="(?i)recommended_action|not.null|null value|constraint"):
        write_scores(broken, where)
    pd.testing.assert_frame_equal(read(), before)
    assert write_scores(rows.iloc[:20], where).unchanged == 20


def test_a_failed_first_write_creates_nothing(rows, target):
    where, read = target
    broken = rows.copy()
    broken.loc[3, "scored_at"] = None
    with pytest.raises(Exception):  # noqa: B017 - each writer's own error (ValueError, IntegrityError, ...)
        write_scores(broken, where)
    assert read() is None


def test_duplicate_keys_and_unknown_targets_are_refused(rows, tmp_path):
    with pytest.raises(ValueError, match="share a key"):
        write_scores(pd.concat([rows, rows.iloc[:1]]), str(tmp_path / "x.parquet"))
    with pytest.raises(ValueError, match="unknown CRM target"):
        write_scores(rows, str(tmp_path / "x.xlsx"))
    assert not list(tmp_path.iterdir())


def test_file_writes_leave_no_temporary_files(rows, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    path = tmp_path / "crm.parquet"
    write_scores(rows.iloc[:5], path)

    def crash(table, where, **kwargs):
        open(where, "wb").write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_scores(rows, path)
    assert [p.name for p in tmp_path.iterdir()] == ["crm.parquet"]
    assert len(read_file(path)) == 5
