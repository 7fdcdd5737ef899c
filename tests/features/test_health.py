"""Health score: a transparent weighted mean of components, with bands."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from features.health import COMPONENTS, check_weights, with_health
from radar.settings import HealthSettings

COLUMNS = [
    "adoption_rate_28d",
    "active_days_share_28d",
    "events_trend_90d",
    "account_nps_365d",
    "tickets_90d",
    "interaction_sentiment_90d",
    "onboarding_completion",
]


def score(rows: list[dict], **settings) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], dtype="float64")
    return with_health(ibis.memtable(frame), HealthSettings(**settings)).execute()


def test_weighted_mean_worked_by_hand():
    weights = {"adoption": 3, "nps": 1}
    out = score([{"adoption_rate_28d": 0.5, "account_nps_365d": 20}], weights=weights)
    # adoption 0.5, nps (20 + 100) / 200 = 0.6 -> (3*0.5 + 1*0.6) / 4 = 0.525
    assert out.health_score[0] == pytest.approx(52.5)
    assert out.health_band[0] == "amber"


def test_missing_components_are_skipped_and_the_rest_reweighted():
    weights = {"adoption": 1, "nps": 1}
    out = score([{"adoption_rate_28d": 0.9}, {}], weights=weights)
    assert out.health_score[0] == pytest.approx(90.0)
    assert out.health_band[0] == "green"
    assert pd.isna(out.health_score[1]) and pd.isna(out.health_band[1])


def test_components_are_clipped_to_0_1():
    out = score([{"adoption_rate_28d": 3.0, "tickets_90d": 50}], weights={"adoption": 1, "support": 1})
    assert out.health_score[0] == pytest.approx(50.0)


@pytest.mark.parametrize("value,band", [(39.9, "red"), (40.0, "amber"), (69.9, "amber"), (70.0, "green")])
def test_band_boundaries(value, band):
    out = score([{"adoption_rate_28d": value / 100}], weights={"adoption": 1})
    assert out.health_band[0] == band


def test_unknown_component_is_a_clear_error():
    with pytest.raises(ValueError, match="logins.*known: adoption"):
        check_weights(HealthSettings(weights={"logins": 1.0}))
    assert set(HealthSettings().weights) <= set(COMPONENTS)
