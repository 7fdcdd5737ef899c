"""CRM writers: `crm_score_history` upserted by (account_id, as_of) and `crm_accounts` moved
only when a CSM would see a change, all or nothing, on every target (Parquet, CSV, DuckDB,
SQLite and a real PostgreSQL), with the reverse-ETL incremental query on each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from serving.crm.files import history_path
from serving.crm.read import read_score_history
from serving.crm.table import (
    ACCOUNTS,
    ALWAYS,
    HISTORY,
    NAMES,
    PCT,
    REASON_KEYS,
    REASON_TEXTS,
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
MOVED = ["acc0002", "acc0005", "acc0009", "acc0011"]  # accounts whose scores move in week 2


@pytest.fixture(scope="module")
def scored(models, latest, settings, scored_at) -> pd.DataFrame:
    return score_frame(latest.iloc[:30], models, settings, scored_at=scored_at)


@pytest.fixture(scope="module")
def rows(scored) -> pd.DataFrame:
    return crm_frame(scored)


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

    def drop_columns(self, table, columns: list[str]) -> None:
        """What a table written by an earlier version looks like: without `columns`."""
        if self.kind in ("parquet", "csv"):
            from pathlib import Path

            path = Path(self.where)
            path = history_path(path) if table is HISTORY else path
            if self.kind == "parquet":
                pd.read_parquet(path).drop(columns=columns).to_parquet(path, index=False)
            else:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
                frame.drop(columns=columns).to_csv(path, index=False)
            return
        statements = [f"ALTER TABLE {table.name} DROP COLUMN {c}" for c in columns]
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(self.where) as con:
                for statement in statements:
                    con.execute(statement)
            return
        import sqlalchemy as sa

        engine = sa.create_engine(self.where)
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(sa.text(statement))
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


def other_values(text: str | None) -> str | None:
    """A reason quoting another value of its feature: "… is 0.31 over …" -> "… is 0.31 (was 7) over …"."""
    if text is None:
        return None
    moved = re.sub(r" is (\S+)", r" is \1 (was 7)", text, count=1)
    return moved if moved != text else text.replace(" — ", " (was 7) — ", 1)


def values_moved(rows: pd.DataFrame, days: int = 7) -> pd.DataFrame:
    """The same portfolio `days` later where only the values quoted in the reasons moved
    (and raw scores below what a CSM sees): same features, directions, tiers, integers."""
    week = rows.copy()
    week["as_of"] = [d + timedelta(days=days) for d in week.as_of]
    week["scored_at"] = week.scored_at + timedelta(days=days)
    week["churn_risk"] = week.churn_risk + 1e-6  # below the integer a CSM sees
    for c in REASON_TEXTS:
        week[c] = week[c].map(other_values)
    return week


def flipped(keys: str) -> str:
    """Reason keys whose first reason points the other way."""
    first, _, rest = keys.partition(", ")
    feature, _, way = first.partition(":")
    return ", ".join(filter(None, [f"{feature}:{'lowers' if way == 'raises' else 'raises'}", rest]))


def week_two(rows: pd.DataFrame, *, gone: str = "acc0013") -> pd.DataFrame:
    """Week 1's portfolio a week later: MOVED accounts' scores move (a tier, a likelihood
    integer, a reason naming another feature, a reason pointing the other way), every other
    account's raw scores and the values its reasons quote drift, below what a CSM acts on,
    `gone` left (its subscriptions ended), and acc9999 is new."""
    week = values_moved(rows[rows.account_id != gone])
    week["expected_mrr_loss"] = week.expected_mrr_loss + 1.5
    week["call_rank"] = week.call_rank[::-1].to_numpy()
    i = week.index[week.account_id.isin(MOVED)]
    week.loc[i[0], "risk_tier"] = "red" if week.loc[i[0], "risk_tier"] != "red" else "green"
    week.loc[i[1], "upsell_likelihood_pct"] = (week.loc[i[1], "upsell_likelihood_pct"] + 7) % 100
    week.loc[i[2], "renewal_reason_1"] = "Logins fell by half over the last 28 days — raises churn risk"
    week.loc[i[2], "renewal_reason_keys"] = "logins_halved:raises, " + week.loc[i[2], "renewal_reason_keys"]
    week.loc[i[3], "expansion_reason_keys"] = flipped(week.loc[i[3], "expansion_reason_keys"])
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
    reason_cols = [c for c in NAMES if re.fullmatch(r"(renewal|expansion)_reason_\d", c)]
    assert reason_cols == REASON_TEXTS and all(rows[c].dropna().str.len().max() <= TEXT_LIMIT for c in reason_cols)


def test_each_reason_has_a_key_naming_its_feature_and_direction(rows, scored):
    """`renewal_reason_keys` / `expansion_reason_keys`: per reason column, in order, the
    driver's feature and whether it raises or lowers the likelihood, as the text says."""
    for keys_column, texts, drivers in (
        ("renewal_reason_keys", REASON_TEXTS[:3], scored.renewal_drivers),
        ("expansion_reason_keys", REASON_TEXTS[3:], scored.upsell_drivers),
    ):
        for keys, found, row_texts in zip(rows[keys_column], drivers, rows[texts].itertuples(index=False)):
            shown = [t for t in row_texts if t is not None]
            parsed = [k.split(":") for k in keys.split(", ")]
            assert [f for f, _ in parsed] == [d["feature"] for d in found[: len(shown)]]
            assert len(parsed) == len(shown) and all(way in ("raises", "lowers") for _, way in parsed)
            assert all(f" — {way} " in text for (_, way), text in zip(parsed, shown))  # the text's direction
    ways = {k.split(":")[1] for keys in rows[list(REASON_KEYS)].stack() for k in keys.split(", ")}
    assert ways == {"raises", "lowers"}


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
    latest = week.set_index("account_id")
    for c in [*REASON_TEXTS, *REASON_KEYS]:  # the reasons' latest wording, written quietly
        assert quiet[c].tolist() == latest.loc[quiet.index, c].tolist(), c
    assert (quiet.renewal_reason_1 != first.loc[quiet.index, "renewal_reason_1"]).all()
    moved = accounts.loc[MOVED]
    assert moved.changed.all() and (moved.changed_at == pd.Timestamp(T2)).all()
    assert moved.loc["acc0005", "previous_upsell_likelihood_pct"] == first.loc["acc0005", "upsell_likelihood_pct"]
    assert moved.loc["acc0009", "renewal_reason_1"] == "Logins fell by half over the last 28 days — raises churn risk"
    assert moved.loc["acc0011", "expansion_reason_keys"] == flipped(first.loc["acc0011", "expansion_reason_keys"])
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


def test_reasons_whose_values_alone_moved_are_updated_quietly(rows, target):
    """Week 2 quotes other values in every reason (same features, directions, tiers and
    integers): no account changed, the texts are the new ones. Week 3: one tier, one
    reason's feature and one reason's direction change: exactly those accounts."""
    write_scores(rows, target.where, written_at=T1)
    week2 = values_moved(rows)
    assert (week2.renewal_reason_1 != rows.renewal_reason_1).all()
    report = write_scores(week2, target.where, written_at=T2)
    assert (report.changed, report.accounts_written) == (0, len(rows))
    assert target.changed_since(T1) == set()
    accounts = target.read(ACCOUNTS)
    assert not accounts.changed.any() and (accounts.changed_at == pd.Timestamp(T1)).all()
    shown = [c for c in ACCOUNTS.names if c in NAMES]  # the score columns: week 2's, reason texts included
    want = normalise(week2).sort_values("account_id", ignore_index=True)[shown]
    pd.testing.assert_frame_equal(accounts[shown].reset_index(drop=True), want, check_dtype=False)
    # the same snapshot rescored with other values in the reasons: quiet again
    rescored = week2.assign(renewal_reason_2=week2.renewal_reason_2.map(other_values))
    assert write_scores(rescored, target.where, written_at=T2 + timedelta(hours=1)).changed == 0
    assert target.read(ACCOUNTS).renewal_reason_2.tolist() == rescored.renewal_reason_2.tolist()
    assert target.changed_since(T1) == set()

    week3 = values_moved(rescored)
    t3 = T2 + timedelta(days=7)
    tier, feature, direction = rows.account_id[[4, 7, 12]]
    week3.loc[4, "risk_tier"] = "red" if week3.loc[4, "risk_tier"] != "red" else "green"
    week3.loc[7, "expansion_reason_keys"] = "nps_dropped:lowers"
    week3.loc[7, ["expansion_reason_1", "expansion_reason_2", "expansion_reason_3"]] = ["NPS dropped", None, None]
    week3.loc[12, "renewal_reason_keys"] = flipped(week3.loc[12, "renewal_reason_keys"])
    report = write_scores(week3, target.where, written_at=t3)
    assert (report.changed, report.accounts_written) == (3, len(rows))
    assert target.changed_since(T2) == target.changed_since(T1) == {tier, feature, direction}
    accounts = target.read(ACCOUNTS).set_index("account_id")
    assert accounts.loc[[tier, feature, direction], "changed"].all() and accounts.changed.sum() == 3
    assert accounts.loc[feature, "expansion_reason_2"] is None


def nudged(rows: pd.DataFrame, moves: dict[str, tuple[str, int]], days: int) -> pd.DataFrame:
    """`values_moved(rows, days)` with, per account, one likelihood integer moved by some points."""
    week = values_moved(rows, days)
    for account, (column, points) in moves.items():
        week.loc[week.account_id == account, column] += points
    return week


def test_likelihood_moves_count_once_they_add_up_from_the_last_change(rows, target):
    """Moves below `crm_change_points` (5) update the row quietly; two 3-point moves the
    same way count on the second, as the move is taken from the value at the last change."""
    first = rows.set_index("account_id")
    low = [a for a in rows.account_id if 10 <= first.at[a, "churn_risk_pct"] <= 90]
    up = [a for a in rows.account_id if first.at[a, "upsell_likelihood_pct"] <= 90]
    churn_up, churn_down, upsell_drift = low[0], low[1], next(a for a in up if a not in low[:2])
    write_scores(rows, target.where, written_at=T1)
    moves = {
        churn_up: ("churn_risk_pct", 4),
        churn_down: ("churn_risk_pct", -4),
        upsell_drift: ("upsell_likelihood_pct", 3),
    }
    week2 = nudged(rows, moves, 7)
    report = write_scores(week2, target.where, written_at=T2)
    assert (report.changed, report.accounts_written) == (0, len(rows))
    assert target.changed_since(T1) == set()
    accounts = target.read(ACCOUNTS).set_index("account_id")
    assert not accounts.changed.any() and (accounts.changed_at == pd.Timestamp(T1)).all()
    assert accounts.at[churn_up, "churn_risk_pct"] == first.at[churn_up, "churn_risk_pct"] + 4  # written quietly
    assert accounts.at[churn_up, "previous_churn_risk_pct"] == first.at[churn_up, "churn_risk_pct"]
    assert accounts.at[churn_up, "synced_churn_risk_pct"] == first.at[churn_up, "churn_risk_pct"]

    t3 = T2 + timedelta(days=7)  # 3 more points the same way: 6 since the last change
    week3 = nudged(rows, {**moves, upsell_drift: ("upsell_likelihood_pct", 6)}, 14)
    report = write_scores(week3, target.where, written_at=t3)
    assert report.changed == 1 and target.changed_since(T2) == target.changed_since(T1) == {upsell_drift}
    accounts = target.read(ACCOUNTS).set_index("account_id")
    drifted = accounts.loc[upsell_drift]
    assert drifted.changed and drifted.changed_at == pd.Timestamp(t3)
    assert (
        drifted.upsell_likelihood_pct
        == drifted.synced_upsell_likelihood_pct
        == first.at[upsell_drift, "upsell_likelihood_pct"] + 6
    )
    assert drifted.previous_upsell_likelihood_pct == first.at[upsell_drift, "upsell_likelihood_pct"] + 3
    assert accounts.changed.sum() == 1 and (accounts.drop(upsell_drift).changed_at == pd.Timestamp(T1)).all()


def test_only_the_first_reason_of_either_kind_counts(rows, target):
    """The 2nd/3rd reasons reordered or naming another feature update quietly; the first
    renewal or expansion reason naming another feature or direction is a change."""
    full = rows.index[rows.renewal_reason_keys.str.count(", ") == 2]
    shuffle, second, renewal_first = full[:3]
    expansion_first = next(i for i in rows.index if i not in full[:3] and rows.at[i, "expansion_reason_keys"])
    write_scores(rows, target.where, written_at=T1)
    week = values_moved(rows)
    keys = week.at[shuffle, "renewal_reason_keys"].split(", ")
    week.at[shuffle, "renewal_reason_keys"] = ", ".join([keys[0], keys[2], keys[1]])
    week.loc[shuffle, ["renewal_reason_2", "renewal_reason_3"]] = week.loc[
        shuffle, ["renewal_reason_3", "renewal_reason_2"]
    ].to_numpy()
    keys = week.at[second, "renewal_reason_keys"].split(", ")
    week.at[second, "renewal_reason_keys"] = ", ".join([keys[0], "nps_dropped:raises", keys[2]])
    week.at[second, "renewal_reason_2"] = "NPS dropped — raises churn risk"
    week.at[renewal_first, "renewal_reason_keys"] = flipped(week.at[renewal_first, "renewal_reason_keys"])
    keys = week.at[expansion_first, "expansion_reason_keys"].split(", ")
    week.at[expansion_first, "expansion_reason_keys"] = ", ".join(["seats_added:raises", *keys[1:]])
    report = write_scores(week, target.where, written_at=T2)
    changed = {rows.account_id[renewal_first], rows.account_id[expansion_first]}
    assert report.changed == 2 and target.changed_since(T1) == changed
    accounts = target.read(ACCOUNTS).set_index("account_id")
    assert set(accounts.index[accounts.changed]) == changed
    quiet = accounts.loc[rows.account_id[[shuffle, second]]]
    assert not quiet.changed.any() and (quiet.changed_at == pd.Timestamp(T1)).all()
    assert quiet.renewal_reason_keys.tolist() == week.renewal_reason_keys[[shuffle, second]].tolist()
    assert quiet.renewal_reason_2.tolist() == week.renewal_reason_2[[shuffle, second]].tolist()


def test_a_table_written_before_the_reason_keys_gets_them(rows, target):
    """A target written by an earlier version has no key columns: the next write adds them
    (DuckDB and SQL: ALTER TABLE), compares that once by the reason texts, then by keys."""
    write_scores(rows, target.where, written_at=T1)
    for table in (HISTORY, ACCOUNTS):
        target.drop_columns(table, list(REASON_KEYS))
    old = target.read(ACCOUNTS)
    assert old.renewal_reason_keys.isna().all() and old.expansion_reason_keys.isna().all()
    week2 = values_moved(rows)
    report = write_scores(week2, target.where, written_at=T2)
    assert report.changed == len(rows)  # texts moved, and there were no keys to tell better
    accounts, history = target.read(ACCOUNTS), target.read(HISTORY)
    assert accounts.renewal_reason_keys.tolist() == week2.renewal_reason_keys.tolist()
    assert (
        history[history.as_of == week2.as_of.iloc[0]].renewal_reason_keys.tolist() == week2.renewal_reason_keys.tolist()
    )
    assert write_scores(values_moved(rows, days=14), target.where, written_at=T2 + timedelta(days=7)).changed == 0
    assert target.changed_since(T2) == set()


def test_a_table_written_before_the_synced_likelihoods_gets_them(rows, target):
    """Without `synced_*` the stored integers stand in: a 3-point move is quiet, and the
    write fills them in (DuckDB and SQL: ALTER TABLE)."""
    write_scores(rows, target.where, written_at=T1)
    synced = [c for c in ACCOUNTS.names if c.startswith("synced_")]
    target.drop_columns(ACCOUNTS, synced)
    assert target.read(ACCOUNTS)[synced].isna().all(axis=None)
    account = rows.account_id[rows.churn_risk_pct <= 90].iloc[0]
    report = write_scores(nudged(rows, {account: ("churn_risk_pct", 3)}, 7), target.where, written_at=T2)
    assert report.changed == 0 and target.changed_since(T1) == set()
    accounts = target.read(ACCOUNTS).set_index("account_id")
    assert accounts.synced_churn_risk_pct.tolist() == rows.sort_values("account_id").churn_risk_pct.tolist()


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


def test_real_scores_a_month_later_change_the_accounts_whose_values_moved_enough(
    models, snapshots, as_of_dates, settings, tmp_path
):
    """Two real month-ends: the changed accounts are those whose tier, next step or status
    differ, whose first reason of either kind names another feature or direction, or a
    likelihood integer moved by `crm_change_points` (computed here with pandas), no more,
    no less. The synthetic months are independent draws, so 10 accounts
    are made steady: their second month shows what the first showed, with other raw scores
    and other values quoted in their reasons."""
    ids = sorted(set(snapshots.account_id))[:40]
    month = [
        crm_frame(score_frame(snapshots[(snapshots.as_of == d) & snapshots.account_id.isin(ids)], models, settings))
        for d in as_of_dates[-2:]
    ]
    steady = month[1].account_id.isin(ids[:10])
    first = month[0].set_index("account_id")
    shown = [c for c in VISIBLE if c != "status"]
    month[1].loc[steady, shown] = first.loc[month[1].account_id[steady], shown].to_numpy()
    for account, column, points in ((ids[0], "churn_risk_pct", 4), (ids[1], "upsell_likelihood_pct", 3)):
        at = month[1].account_id == account  # moves below crm_change_points: still steady
        month[1].loc[at, column] += points if first.at[account, column] < 50 else -points
    where = tmp_path / "crm.duckdb"
    write_scores(month[0], where, written_at=T1)
    write_scores(month[1], where, written_at=T2)
    a, b = (m.set_index("account_id").assign(status="active") for m in month)
    both = a.index.intersection(b.index)

    def differ(x, y) -> bool:
        return not (pd.isna(x) and pd.isna(y)) and (pd.isna(x) or pd.isna(y) or x != y)

    def lead(keys):
        return keys if pd.isna(keys) else keys.split(", ")[0]

    points = settings.serving.crm_change_points
    moved = {
        i
        for i in both
        if any(differ(a.at[i, c], b.at[i, c]) for c in ALWAYS)
        or any(differ(lead(a.at[i, c]), lead(b.at[i, c])) for c in REASON_KEYS)
        or any(
            differ(a.at[i, c], b.at[i, c])
            and (pd.isna(a.at[i, c]) or pd.isna(b.at[i, c]) or abs(a.at[i, c] - b.at[i, c]) >= points)
            for c in PCT
        )
    }
    visible_moved = {i for i in both if any(differ(a.at[i, c], b.at[i, c]) for c in VISIBLE)}
    assert {ids[0], ids[1]} <= visible_moved - moved  # moved by less than the CRM acts on
    expected = moved | (set(a.index) - set(b.index)) | (set(b.index) - set(a.index))
    accounts = read_score_history(where, table=ACCOUNTS)
    assert set(accounts.loc[accounts.changed_at == pd.Timestamp(T2), "account_id"]) == expected
    assert moved and not moved & set(ids[:10])
    assert (b.loc[ids[:10], "churn_risk"] != a.loc[ids[:10], "churn_risk"]).all()  # raw scores did move
    texts_moved = (b.loc[ids[:10], REASON_TEXTS].fillna("") != a.loc[ids[:10], REASON_TEXTS].fillna("")).any(axis=1)
    assert texts_moved.sum() >= 8  # and so did the values in their reasons, quietly
    steady = accounts.set_index("account_id").loc[ids[:10]]
    assert steady.renewal_reason_1.tolist() == b.loc[ids[:10], "renewal_reason_1"].tolist()


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
