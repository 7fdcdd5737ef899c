"""CRM writers: `crm_score_history` upserted by (account_id, as_of) and `crm_accounts` moved
only when a CSM would see a change, all or nothing, on every target (Parquet, CSV, DuckDB,
SQLite and a real PostgreSQL), with the reverse-ETL incremental query on each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from serving.crm.files import history_path
from serving.crm.read import read_score_history
from serving.crm.table import (
    ACCOUNTS,
    HISTORY,
    NAMES,
    TEXT_LIMIT,
    VISIBLE,
    WriteReport,
    crm_frame,
    normalise,
)
from serving.crm.write import write_scores
from serving.scoring.score import score_frame

TARGETS = ["parquet", "csv", "duckdb", "sqlite", "postgres"]
T1 = datetime(2025, 5, 1, 7, 0, tzinfo=UTC)  # when week 1 is written
T2 = T1 + timedelta(days=7)
MOVED = ["acc0002", "acc0005", "acc0009"]  # accounts whose scores move in week 2


@pytest.fixture(scope="module")
def rows(models, latest, settings, scored_at) -> pd.DataFrame:
    return crm_frame(score_frame(latest.iloc[:30], models, settings, scored_at=scored_at))


@dataclass
class Target:
    where: str
    kind: str

    def read(self, table=HISTORY) -> pd.DataFrame | None:
        """The stored table sorted by key, None when it does not exist."""
        if not self._exists(table):
            return None
        return read_score_history(self.where, table=table)

    def _exists(self, table) -> bool:
        if self.kind in ("parquet", "csv"):
            from pathlib import Path

            path = Path(self.where)
            return (history_path(path) if table is HISTORY else path).exists()
        if self.kind == "duckdb":
            from pathlib import Path

            import duckdb

            if not Path(self.where).exists():
                return False
            with duckdb.connect(self.where, read_only=True) as con:
                return bool(
                    con.execute(
                        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table.name]
                    ).fetchone()[0]
                )
        import sqlalchemy as sa

        engine = sa.create_engine(self.where)
        try:
            return sa.inspect(engine).has_table(table.name)
        finally:
            engine.dispose()

    def changed_since(self, last_sync: datetime) -> set[str]:
        """The reverse-ETL incremental query: `SELECT ... FROM crm_accounts WHERE changed_at > :last_sync`."""
        query = "SELECT account_id, status, risk_tier FROM crm_accounts WHERE changed_at > {}"
        if self.kind in ("parquet", "csv", "duckdb"):
            import duckdb

            with duckdb.connect(self.where if self.kind == "duckdb" else ":memory:", read_only=False) as con:
                if self.kind == "parquet":
                    con.execute(f"CREATE VIEW crm_accounts AS SELECT * FROM read_parquet('{self.where}')")
                elif self.kind == "csv":
                    con.execute(
                        f"CREATE VIEW crm_accounts AS SELECT * FROM read_csv('{self.where}', "
                        "types={'changed_at': 'TIMESTAMPTZ'})"
                    )
                found = con.execute(query.format("$last_sync"), {"last_sync": last_sync}).fetchall()
        else:
            import sqlalchemy as sa

            engine = sa.create_engine(self.where)
            try:
                with engine.connect() as conn:
                    found = conn.execute(
                        sa.text(query.format(":last_sync")).bindparams(
                            sa.bindparam("last_sync", type_=sa.DateTime(timezone=True))
                        ),
                        {"last_sync": last_sync},
                    ).fetchall()
            finally:
                engine.dispose()
        return {r[0] for r in found}


@pytest.fixture(params=TARGETS)
def target(request, tmp_path) -> Target:
    kind = request.param
    if kind in ("parquet", "csv"):
        return Target(str(tmp_path / f"crm.{kind}"), kind)
    if kind == "duckdb":
        return Target(str(tmp_path / "workspace.duckdb"), kind)
    if kind == "sqlite":
        return Target(f"sqlite:///{tmp_path / 'crm.sqlite'}", kind)
    import sqlalchemy as sa

    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS crm_accounts, crm_score_history"))
    engine.dispose()
    return Target(url, kind)


def stored_equal(got: pd.DataFrame, want: pd.DataFrame, table=HISTORY) -> None:
    key = list(table.key)
    want = normalise(want, table).sort_values(key).reset_index(drop=True)
    got = got.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[table.names], want[table.names], check_dtype=False)


def week_two(rows: pd.DataFrame, *, gone: str = "acc0013") -> pd.DataFrame:
    """Week 1's portfolio a week later: MOVED accounts' scores move (a tier, a likelihood
    integer, a reason), every other account's raw scores drift below what a CSM sees,
    `gone` left (its subscriptions ended), and acc9999 is new."""
    week = rows[rows.account_id != gone].copy()
    week["as_of"] = [d + timedelta(days=7) for d in week.as_of]
    week["scored_at"] = week.scored_at + timedelta(days=7)
    week["churn_risk"] = week.churn_risk + 1e-6  # below the integer a CSM sees
    week["expected_mrr_loss"] = week.expected_mrr_loss + 1.5
    week["call_rank"] = week.call_rank[::-1].to_numpy()
    i = week.index[week.account_id.isin(MOVED)]
    week.loc[i[0], "risk_tier"] = "red" if week.loc[i[0], "risk_tier"] != "red" else "green"
    week.loc[i[1], "upsell_likelihood_pct"] = (week.loc[i[1], "upsell_likelihood_pct"] + 7) % 100
    week.loc[i[2], "renewal_reason_1"] = "Logins fell by half over the last 28 days"
    new = week.iloc[[0]].assign(account_id="acc9999", name="New Co")
    return pd.concat([week, new], ignore_index=True)


def test_history_rows_have_the_issue_columns(rows):
    import json

    assert list(rows.columns) == NAMES
    first = rows.iloc[0]
    reasons = json.loads(first.top_reasons_json)
    assert 1 <= len(reasons) <= 3 and first.top_reasons == "; ".join(r["reason"] for r in reasons)
    expansion = rows[rows.recommended_action.str.startswith("Expansion")]
    assert all(json.loads(j)[0]["target"] == "upsell" for j in expansion.top_reasons_json)
    for c in ("churn_risk", "upsell_likelihood"):  # 0-100 integers, half up, from the raw likelihood
        assert (rows[f"{c}_pct"] == (rows[c] * 100 + 0.5).astype(int)).all()
        assert rows[f"{c}_pct"].between(0, 100).all()
    assert rows.renewal_reason_1.notna().all() and rows.expansion_reason_1.notna().all()
    reason_cols = [c for c in NAMES if "_reason_" in c]
    assert len(reason_cols) == 6 and all(rows[c].dropna().str.len().max() <= TEXT_LIMIT for c in reason_cols)


def test_first_write_inserts_every_account_and_a_rerun_changes_nothing(rows, target):
    assert write_scores(rows, target.where, written_at=T1) == WriteReport(
        inserted=len(rows), updated=0, unchanged=0, changed=len(rows), churned=0, accounts_written=len(rows)
    )
    history, accounts = target.read(HISTORY), target.read(ACCOUNTS)
    stored_equal(history, rows)
    assert accounts.account_id.tolist() == sorted(rows.account_id)
    assert (accounts.status == "active").all() and accounts.changed.all()
    assert (accounts.changed_at == pd.Timestamp(T1)).all()
    assert accounts.previous_risk_tier.isna().all()
    assert target.changed_since(T1 - timedelta(seconds=1)) == set(rows.account_id)

    # the same scores again, scored and written later: nothing moves, not even scored_at
    later = rows.assign(scored_at=rows.scored_at + timedelta(hours=6))
    assert write_scores(later, target.where, written_at=T1 + timedelta(hours=6)) == WriteReport(
        inserted=0, updated=0, unchanged=len(rows), changed=0, churned=0, accounts_written=0
    )
    pd.testing.assert_frame_equal(target.read(HISTORY), history)
    pd.testing.assert_frame_equal(target.read(ACCOUNTS), accounts)
    assert target.changed_since(T1) == set()


def test_a_second_week_changes_exactly_the_accounts_whose_scores_moved(rows, target):
    write_scores(rows, target.where, written_at=T1)
    week = week_two(rows)
    report = write_scores(week, target.where, written_at=T2)
    assert report.inserted == len(week) and report.changed == len(MOVED) + 2 and report.churned == 1
    assert report.accounts_written == len(rows) + 1  # every account takes the new snapshot, quietly or not

    # the reverse-ETL sync: the rows changed since the last sync, exactly the week's changes
    assert target.changed_since(T1) == {*MOVED, "acc0013", "acc9999"}
    accounts = target.read(ACCOUNTS).set_index("account_id")
    first = rows.set_index("account_id")
    quiet = accounts.drop([*MOVED, "acc0013", "acc9999"])
    assert not quiet.changed.any() and (quiet.changed_at == pd.Timestamp(T1)).all()
    assert (quiet.as_of == week.as_of.iloc[0]).all() and (quiet.scored_at == week.scored_at.iloc[0]).all()
    assert (quiet.previous_as_of == rows.as_of.iloc[0]).all()
    assert (quiet.previous_risk_tier == first.loc[quiet.index, "risk_tier"]).all()
    assert (quiet.previous_churn_risk_pct == first.loc[quiet.index, "churn_risk_pct"]).all()
    moved = accounts.loc[MOVED]
    assert moved.changed.all() and (moved.changed_at == pd.Timestamp(T2)).all()
    assert moved.loc["acc0005", "previous_upsell_likelihood_pct"] == first.loc["acc0005", "upsell_likelihood_pct"]
    assert moved.loc["acc0009", "renewal_reason_1"] == "Logins fell by half over the last 28 days"
    # the lost account says so and keeps its last values
    gone = accounts.loc["acc0013"]
    assert gone.status == "churned" and gone.changed and gone.changed_at == pd.Timestamp(T2)
    assert gone.status_since == week.as_of.iloc[0] and gone.as_of == rows.as_of.iloc[0]
    for c in ("risk_tier", "churn_risk_pct", "renewal_reason_1", "recommended_action", "scored_at"):
        assert gone[c] == first.loc["acc0013", c], c
    assert accounts.loc["acc9999", "status"] == "active" and accounts.loc["acc9999", "changed"]
    assert len(target.read(HISTORY)) == len(rows) + len(week)

    # the week rerun: nothing changes
    again = write_scores(week, target.where, written_at=T2 + timedelta(hours=1))
    assert again.changed == again.accounts_written == again.inserted == again.updated == 0
    assert target.changed_since(T2) == set()


def test_a_churned_account_that_returns_is_active_again(rows, target):
    write_scores(rows, target.where, written_at=T1)
    write_scores(week_two(rows), target.where, written_at=T2)
    week3 = week_two(rows, gone="nobody")
    week3["as_of"] = [d + timedelta(days=7) for d in week3.as_of]
    t3 = T2 + timedelta(days=7)
    report = write_scores(week3, target.where, written_at=t3)
    assert report.churned == 0
    back = target.read(ACCOUNTS).set_index("account_id").loc["acc0013"]
    assert back.status == "active" and back.changed and back.changed_at == pd.Timestamp(t3)
    assert back.status_since == week3.as_of.iloc[0] and back.previous_as_of == rows.as_of.iloc[0]
    assert target.changed_since(T2) == {"acc0013"}


def test_an_earlier_snapshot_fills_the_history_and_leaves_the_accounts(rows, target):
    write_scores(rows, target.where, written_at=T1)
    before = target.read(ACCOUNTS)
    earlier = rows.iloc[:10].assign(as_of=[d - timedelta(days=30) for d in rows.as_of.iloc[:10]], risk_tier="red")
    report = write_scores(earlier, target.where, written_at=T2)
    assert report.inserted == 10 and report.changed == report.accounts_written == 0
    pd.testing.assert_frame_equal(target.read(ACCOUNTS), before)


def test_a_rescoring_of_the_same_snapshot_with_new_values_is_a_change(rows, target):
    write_scores(rows, target.where, written_at=T1)
    rescored = rows.copy()
    rescored.loc[3, "recommended_action"] = "Book an executive sponsor call"
    rescored.loc[4, "expected_mrr_loss"] += 10.0  # not something the sync triggers on
    report = write_scores(rescored, target.where, written_at=T2)
    assert (report.updated, report.changed, report.accounts_written) == (2, 1, 2)
    accounts = target.read(ACCOUNTS).set_index("account_id")
    assert target.changed_since(T1) == {rows.account_id[3]}
    assert accounts.loc[rows.account_id[4], "expected_mrr_loss"] == rescored.loc[4, "expected_mrr_loss"]
    assert accounts.loc[rows.account_id[4], "changed_at"] == pd.Timestamp(T1)


def test_a_failure_halfway_leaves_the_previous_tables(rows, target):
    write_scores(rows.iloc[:20], target.where, written_at=T1)
    before = target.read(HISTORY), target.read(ACCOUNTS)
    broken = rows.copy()
    broken["churn_risk"] = 0.5  # every row would change ...
    broken.loc[len(broken) // 2, "recommended_action"] = None  # ... but one in the middle violates NOT NULL
    with pytest.raises(Exception, match="(?i)recommended_action|not.null|null value|constraint"):
        write_scores(broken, target.where, written_at=T2)
    pd.testing.assert_frame_equal(target.read(HISTORY), before[0])
    pd.testing.assert_frame_equal(target.read(ACCOUNTS), before[1])
    assert write_scores(rows.iloc[:20], target.where).unchanged == 20


def test_a_failed_first_write_creates_nothing(rows, target):
    broken = rows.copy()
    broken.loc[3, "scored_at"] = None
    with pytest.raises(Exception):  # noqa: B017 - each writer's own error (ValueError, IntegrityError, ...)
        write_scores(broken, target.where)
    assert target.read(HISTORY) is None and target.read(ACCOUNTS) is None


def test_changed_at_never_goes_back_when_the_clock_does(rows, tmp_path):
    where = tmp_path / "crm.duckdb"
    write_scores(rows, where, written_at=T2)
    week = week_two(rows)
    write_scores(week, where, written_at=T1)  # a writer whose clock lags
    accounts = read_score_history(where, table=ACCOUNTS).set_index("account_id")
    assert (accounts.loc[MOVED, "changed_at"] > pd.Timestamp(T2)).all()


def test_real_scores_a_month_later_change_the_accounts_whose_visible_values_moved(
    models, snapshots, as_of_dates, settings, tmp_path
):
    """Two real month-ends: the changed accounts are those whose tier, likelihood integers,
    reasons, next step or status differ (computed here with pandas), no more, no less. The
    synthetic months are independent draws, so 10 accounts are made steady: their second
    month shows what the first showed, with other raw scores."""
    ids = sorted(set(snapshots.account_id))[:40]
    month = [
        crm_frame(score_frame(snapshots[(snapshots.as_of == d) & snapshots.account_id.isin(ids)], models, settings))
        for d in as_of_dates[-2:]
    ]
    steady = month[1].account_id.isin(ids[:10])
    first = month[0].set_index("account_id")
    shown = [c for c in VISIBLE if c != "status"]
    month[1].loc[steady, shown] = first.loc[month[1].account_id[steady], shown].to_numpy()
    where = tmp_path / "crm.duckdb"
    write_scores(month[0], where, written_at=T1)
    write_scores(month[1], where, written_at=T2)
    a, b = (m.set_index("account_id").assign(status="active") for m in month)
    both = a.index.intersection(b.index)
    moved = {
        i
        for i in both
        if any(not (pd.isna(a.at[i, c]) and pd.isna(b.at[i, c])) and a.at[i, c] != b.at[i, c] for c in VISIBLE)
    }
    expected = moved | (set(a.index) - set(b.index)) | (set(b.index) - set(a.index))
    accounts = read_score_history(where, table=ACCOUNTS)
    assert set(accounts.loc[accounts.changed_at == pd.Timestamp(T2), "account_id"]) == expected
    assert moved and not moved & set(ids[:10])
    assert (b.loc[ids[:10], "churn_risk"] != a.loc[ids[:10], "churn_risk"]).all()  # raw scores did move


def test_read_score_history_narrows_and_reads_a_former_crm_scores_table(rows, tmp_path):
    import duckdb

    where = tmp_path / "workspace.duckdb"
    assert read_score_history(where).empty and list(read_score_history(where).columns) == NAMES
    write_scores(rows, where, written_at=T1)
    earlier = rows.assign(as_of=[d - timedelta(days=30) for d in rows.as_of])
    write_scores(earlier, where, written_at=T2)
    some = read_score_history(where, account_ids=["acc0001", "acc0002"], since=rows.as_of.iloc[0])
    assert some.account_id.tolist() == ["acc0001", "acc0002"] and set(some.as_of) == {rows.as_of.iloc[0]}
    with duckdb.connect(str(where)) as con:  # an older workspace: only the per-as_of crm_scores table
        con.execute("ALTER TABLE crm_score_history RENAME TO crm_scores")
        con.execute("ALTER TABLE crm_scores DROP COLUMN renewal_reason_1")
        con.execute("ALTER TABLE crm_scores DROP COLUMN churn_risk_pct")
        history = read_score_history(con)
    assert len(history) == 2 * len(rows) and list(history.columns) == NAMES
    latest = history[history.as_of == rows.as_of.iloc[0]].reset_index(drop=True)
    assert (latest.churn_risk_pct == rows.churn_risk_pct).all()  # from the float churn_risk
    renewal_led = ~rows.recommended_action.str.startswith("Expansion")  # their top reasons are renewal drivers
    assert latest.renewal_reason_1.notna().sum() == renewal_led.sum()
