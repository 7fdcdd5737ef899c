"""The score step of `radar run` on a small workspace (no registry: the test's models are
handed to the step): the CRM rows it writes carry the accounts' CRM record ids, as
`radar score` does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb

from radar.settings import Settings
from serving.crm.read import read_accounts, read_score_history
from serving.workflow.weekly import STEP_RUNNERS, run_week

WEEK = date(2026, 10, 26)  # a Monday


def test_the_weekly_score_step_writes_the_accounts_crm_ids(models, latest, tmp_path):
    settings = Settings(output_dir=tmp_path)
    frame = latest.iloc[:12].assign(as_of=WEEK)
    crm_ids = {a: f"001Kx{i:05d}" for i, a in enumerate(frame.account_id) if i != 3}  # one account has none
    accounts = frame[["account_id"]].assign(crm_id=frame.account_id.map(crm_ids))
    with duckdb.connect(str(settings.database_path)) as con:
        con.register("snapshot_rows", frame)
        con.register("account_rows", accounts)
        con.execute("CREATE TABLE snapshots AS SELECT * FROM snapshot_rows")
        con.execute("CREATE TABLE accounts AS SELECT * FROM account_rows")

    def score(w):
        w._models = models  # the champions, as `radar run` would load them from the registry
        return STEP_RUNNERS["score"](w)

    now = datetime(2026, 10, 27, 6, 0, tzinfo=UTC)
    report = run_week(settings, WEEK + timedelta(days=2), now=now, steps={"score": score})
    assert [s.status for s in report.steps] == ["done"]
    stored = read_accounts(settings.database_path).set_index("account_id")
    assert stored.crm_id.to_dict() == {a: crm_ids.get(a) for a in frame.account_id}
    history = read_score_history(settings.database_path).set_index("account_id")
    assert history.crm_id.to_dict() == stored.crm_id.to_dict()
    assert (stored.changed_at == now).all()
