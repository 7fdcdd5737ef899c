"""The one scoring function: tiers, flags, disagreement, lineage, and no skew between paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from radar.settings import ServingSettings, load_settings, serving_settings
from serving.scoring.decisions import risk_tier
from serving.scoring.schemas import records_frame, request_models, response_from_frame
from serving.scoring.score import disagreement, health_band, score_frame

DEFAULTS = ServingSettings()


def test_tiers_are_exact_multiples_of_the_base_rate():
    # base rate 4%: red from 12% (3x), yellow from 6% (1.5x), both above the 2% floor
    tiers = risk_tier(np.array([0.0, 0.0599999, 0.06, 0.1199999, 0.12, 1.0]), 0.04, DEFAULTS)
    assert tiers.tolist() == ["green", "green", "yellow", "yellow", "red", "red"]


def test_tiers_and_opportunity_come_from_the_settings_and_the_models_base_rates(models, latest, settings, scored_at):
    strict = ServingSettings(
        red_lift=1.0, yellow_lift=0.5, risk_floor=0.0, opportunity_lift=1e-9, opportunity_floor=0.0
    )
    out = score_frame(latest.iloc[:30], models, settings, serving=strict, explain=False, scored_at=scored_at)
    base = models.base_rates["renewal"]
    np.testing.assert_allclose(out.churn_lift, out.churn_risk / base)
    assert ((out.risk_tier == "red") == (out.churn_risk >= base - 1e-12)).all()
    assert ((out.risk_tier == "green") == (out.churn_risk < 0.5 * base - 1e-12)).all()
    assert out.opportunity.all()
    default = score_frame(latest, models, settings, explain=False, scored_at=scored_at)
    up = models.base_rates["upsell"]
    expected = (default.upsell_likelihood >= 2.0 * up - 1e-9) & (default.upsell_likelihood >= 0.1 - 1e-9)
    assert (default.opportunity == expected).all()
    assert 0 < (default.risk_tier != "green").mean() < 0.6  # relative tiers flag some accounts, not all


def test_the_risk_is_worded_with_its_horizon_and_never_as_a_renewal_likelihood(models, latest, settings, scored_at):
    out = score_frame(latest.iloc[:20], models, settings, explain=False, scored_at=scored_at)
    assert out.risk_summary.str.startswith("churn risk next 90 days ").all()
    assert out.risk_summary.str.contains("x typical").all()
    # the served test models have no next-renewal model: no renewal likelihood is claimed
    assert out.renewal_likelihood.isna().all() and not out.risk_summary.str.contains("likely to renew").any()
    np.testing.assert_allclose(out.expected_mrr_loss, latest.mrr.iloc[:20].fillna(0) * out.churn_risk)


def test_disagreement_flags_both_directions():
    band = np.array(["green", "red", "green", "amber", None], dtype=object)
    tier = np.array(["red", "green", "green", "red", "red"], dtype=object)
    flag, why = disagreement(band, tier, DEFAULTS)
    assert flag.tolist() == [True, True, False, False, False]
    assert why[0] == "health score is green but the model's risk tier is red"
    assert why[1] == "health score is red but the model's risk tier is green"
    only = ServingSettings(disagreement=(("amber", "red"),))
    assert disagreement(band, tier, only)[0].tolist() == [False, False, False, True, False]


def test_health_band_uses_the_health_settings_and_falls_back_to_the_given_band(settings):
    band = health_band(pd.Series([39.9, 40.0, 69.9, 70.0, np.nan]), pd.Series(["x", "x", "x", "x", "amber"]), settings)
    assert band.tolist() == ["red", "amber", "amber", "green", "amber"]


def test_threshold_settings_are_validated():
    with pytest.raises(ValidationError, match="red_lift"):
        ServingSettings(red_lift=1.2, yellow_lift=1.5)
    with pytest.raises(ValidationError):
        ServingSettings(unknown=1)
    assert serving_settings(None) == ServingSettings()
    assert serving_settings(load_settings(serving={"red_lift": 4.0})).red_lift == 4.0


def test_scores_carry_everything_the_issue_lists(models, latest, settings, scored_at):
    out = score_frame(latest.iloc[:25], models, settings, scored_at=scored_at)
    model = models.renewal.model
    np.testing.assert_allclose(out.churn_risk, model.predict_proba(latest.iloc[:25]), atol=1e-12)
    np.testing.assert_allclose(out.upsell_likelihood, models.upsell.model.predict_proba(latest.iloc[:25]), atol=1e-12)
    assert out.account_id.tolist() == latest.account_id.iloc[:25].tolist()
    assert (out.renewal_model == "radar-renewal").all() and (out.renewal_model_version == "7").all()
    assert (out.upsell_model == "radar-upsell").all() and (out.upsell_model_version == "3").all()
    assert out.renewal_drivers.map(len).between(1, 5).all() and out.upsell_drivers.map(len).between(1, 5).all()
    assert out.recommended_action.notna().all() and out.action_owner.notna().all()
    assert (out.scored_at == pd.Timestamp(scored_at)).all()
    assert out.health_score.tolist() == latest.health_score.iloc[:25].tolist()


def test_probabilities_only_skips_drivers(models, latest, settings, scored_at):
    out = score_frame(latest, models, settings, explain=False, scored_at=scored_at)
    assert out.renewal_drivers.isna().all() and out.explains.isna().all()
    full = score_frame(latest, models, settings, scored_at=scored_at)
    np.testing.assert_array_equal(out.churn_risk, full.churn_risk)


def test_missing_as_of_is_the_scoring_date(models, latest, settings, scored_at):
    out = score_frame(latest.iloc[:2].drop(columns=["as_of"]), models, settings, scored_at=scored_at)
    assert out.as_of.tolist() == [scored_at.date()] * 2


def test_api_and_batch_paths_give_identical_scores(models, latest, settings, scored_at, tmp_path):
    """POST /score (records validated by the request schema) and batch scoring (snapshots
    read from the workspace database) give the same scores, drivers and actions."""
    import duckdb

    from radar.settings import Settings
    from serving.scoring.batch import score_workspace

    ws = Settings(output_dir=tmp_path)
    con = duckdb.connect(str(ws.database_path))
    con.register("frame", latest)
    con.execute("CREATE TABLE snapshots AS SELECT * FROM frame")
    con.close()
    batch = score_workspace(ws, models, scored_at=scored_at)

    schemas = request_models(settings)
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items() if k in schemas.record.model_fields}
        for row in latest.iloc[:40].to_dict("records")
    ]
    request = schemas.request.model_validate({"accounts": records})
    api = score_frame(records_frame(request.accounts, schemas.registry), models, settings, scored_at=scored_at)
    response = response_from_frame(api)

    same = batch.set_index("account_id").loc[api.account_id]
    for col in ("churn_risk", "churn_lift", "upsell_likelihood", "renewal_margin", "upsell_margin", "health_score"):
        np.testing.assert_array_equal(api[col].to_numpy(), same[col].to_numpy())
    for col in (
        "risk_tier",
        "opportunity",
        "disagreement",
        "playbook",
        "recommended_action",
        "action_owner",
        "renewal_drivers",
        "upsell_drivers",
        "as_of",
    ):
        assert api[col].tolist() == same[col].tolist(), col
    assert [a.account_id for a in response.accounts] == api.account_id.tolist()
    assert response.accounts[0].renewal_model.version == "7"
