"""Batch scoring of a workspace database, and the at-risk / opportunity rankings."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from radar.settings import Settings
from serving.scoring.batch import WorkspaceUnavailable, at_risk, load_snapshots, opportunities, score_workspace


@pytest.fixture(scope="module")
def workspace(snapshots, tmp_path_factory) -> Settings:
    ws = Settings(output_dir=tmp_path_factory.mktemp("ws"))
    con = duckdb.connect(str(ws.database_path))
    con.register("frame", snapshots)
    con.execute("CREATE TABLE snapshots AS SELECT * FROM frame")
    con.close()
    return ws


def test_latest_as_of_by_default_every_account_of_it(workspace, models, snapshots, as_of_dates, scored_at):
    out = score_workspace(workspace, models, scored_at=scored_at, explain=False)
    latest = snapshots[snapshots.as_of == as_of_dates[-1]]
    assert sorted(out.account_id) == sorted(latest.account_id)
    assert set(out.as_of) == {as_of_dates[-1]}


def test_a_chosen_as_of(workspace, models, as_of_dates, scored_at):
    out = score_workspace(workspace, models, as_of_dates[0], scored_at=scored_at, explain=False)
    assert set(out.as_of) == {as_of_dates[0]}
    with pytest.raises(ValueError, match="no snapshots at as_of 1999-12-31"):
        load_snapshots(workspace, pd.Timestamp("1999-12-31").date())


def test_missing_workspace_or_table_is_explained(tmp_path):
    with pytest.raises(WorkspaceUnavailable, match="radar ingest"):
        load_snapshots(Settings(output_dir=tmp_path))
    duckdb.connect(str(Settings(output_dir=tmp_path).database_path)).close()
    with pytest.raises(ValueError, match="build-features"):
        load_snapshots(Settings(output_dir=tmp_path))


SCORED = pd.DataFrame(
    {
        "account_id": ["a", "b", "c", "d", "e"],
        "mrr": [1000.0, 5000.0, 200.0, np.nan, 3000.0],
        "churn_risk": [0.7, 0.4, 0.9, 0.8, 0.1],
        "days_to_next_renewal": [100, 20, 300, 10, 50],
        "risk_tier": ["red", "yellow", "red", "red", "green"],
        "upsell_likelihood": [0.6, 0.2, 0.9, 0.7, 0.55],
        "opportunity": [True, False, True, True, True],
        "segment": ["smb", "enterprise", "smb", "smb", "enterprise"],
        "csm_owner": ["Ana", "Ben", "Ana", "Ben", "Ana"],
        "action_owner": ["Retention lead", "Account manager", "Retention lead", "Retention lead", "Growth manager"],
    }
)


def test_at_risk_is_the_call_list_by_expected_mrr_lost():
    ranked = at_risk(SCORED)
    # expected MRR lost = MRR x churn risk: b 5000 * 0.4 = 2000, a 1000 * 0.7 = 700,
    # c 200 * 0.9 = 180, d no MRR = 0; e is green
    assert ranked.account_id.tolist() == ["b", "a", "c", "d"]
    assert ranked.mrr_at_risk.tolist() == pytest.approx([2000, 700, 180, 0])
    assert at_risk(SCORED, limit=1).account_id.tolist() == ["b"]
    assert at_risk(SCORED, segment="smb").account_id.tolist() == ["a", "c", "d"]
    assert at_risk(SCORED, owner="Ana").account_id.tolist() == ["a", "c"]
    assert at_risk(SCORED, include_green=True).account_id.tolist()[:2] == ["b", "a"]


def test_opportunities_rank_by_expansion_potential():
    ranked = opportunities(SCORED)
    # e: 0.55 * 3000 = 1650, a: 600, c: 180, d: 0; b is not flagged
    assert ranked.account_id.tolist() == ["e", "a", "c", "d"]
    assert ranked.expansion_potential.tolist() == pytest.approx([1650, 600, 180, 0])
    assert opportunities(SCORED, owner="Growth manager").account_id.tolist() == ["e"]
    assert opportunities(SCORED, flagged_only=False, segment="enterprise").account_id.tolist() == ["e", "b"]


def test_equal_expected_losses_are_ordered_by_the_sooner_renewal():
    tied = SCORED.assign(mrr=[1000.0, 1000.0, 1000.0, 1000.0, 1000.0], churn_risk=0.5)
    # all lose 500; renewals in 100, 20, 300, 10 days (e is green)
    assert at_risk(tied).account_id.tolist() == ["d", "b", "a", "c"]
