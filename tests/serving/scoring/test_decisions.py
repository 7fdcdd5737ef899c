"""The decision layer: tiers and opportunities relative to the base rates, honest wording,
and the one call-list order."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from radar.settings import ServingSettings
from serving.scoring.decisions import (
    NoBaseRate,
    base_rate_of,
    call_order,
    opportunity,
    pct,
    risk_tier,
    risk_words,
    summary,
    times_typical,
)


def test_tiers_follow_the_lift_over_the_base_rate_not_a_fixed_cut_off():
    cfg = ServingSettings(red_lift=3.0, yellow_lift=1.5, risk_floor=0.02)
    # base rate 3.5% a quarter: 10.5% is red, 5.3% yellow, 5% green, 1% green
    tiers = risk_tier(np.array([0.105, 0.053, 0.05, 0.01]), 0.035, cfg)
    assert tiers.tolist() == ["red", "yellow", "green", "green"]
    # the old fixed cut-offs (renewal below 40% / 70%) would have shown every one of them green
    assert risk_tier(np.array([0.30]), 0.35, cfg).tolist() == ["green"]  # a high base rate raises the bar


def test_the_absolute_floor_keeps_a_tiny_base_rate_from_flagging_everyone():
    cfg = ServingSettings(red_lift=3.0, yellow_lift=1.5, risk_floor=0.02)
    tiers = risk_tier(np.array([0.015, 0.019, 0.021]), 0.001, cfg)  # 15x-21x a 0.1% base rate
    assert tiers.tolist() == ["green", "green", "red"]


def test_opportunity_is_relative_to_the_expansion_base_rate_with_a_floor():
    cfg = ServingSettings(opportunity_lift=2.0, opportunity_floor=0.10)
    flags = opportunity(np.array([0.45, 0.39, 0.12, 0.09]), 0.2, cfg)
    assert flags.tolist() == [True, False, False, False]
    assert opportunity(np.array([0.12, 0.09]), 0.05, cfg).tolist() == [True, False]


def test_red_lift_below_yellow_lift_is_a_config_error():
    with pytest.raises(ValueError, match="red_lift"):
        ServingSettings(red_lift=1.2, yellow_lift=1.5)


def test_wording_is_honest_about_horizon_and_renewal():
    assert times_typical(2.84) == "2.8x" and times_typical(0.12) == "0.1x" and times_typical(14.2) == "14x"
    assert pct(0.004) == "0.4%" and pct(0.084) == "8.4%" and pct(0.86) == "86%" and pct(0.9996) == "99.9%"
    assert risk_words(0.084, 2.4) == "churn risk next 90 days 8.4% (2.4x typical)"
    text = summary(0.004, 0.114, date(2027, 6, 30), 0.86)
    assert text == "churn risk next 90 days 0.4% (0.1x typical) · renews 2027-06-30, 86% likely to renew there"
    assert "likely to renew" not in summary(0.004, 0.1, date(2027, 6, 30), float("nan"))
    assert "open-ended" in summary(0.004, 0.1, None, 0.9)


def test_the_call_list_orders_by_expected_loss_then_the_sooner_renewal():
    scored = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d", "e"],
            "mrr": [1000.0, 5000.0, 2000.0, 2000.0, None],
            "churn_risk": [0.5, 0.05, 0.2, 0.2, 0.9],
            "days_to_next_renewal": [300, 10, 200, 30, 5],
        }
    )
    # expected loss: a 500, b 250, c 400, d 400, e 0 (no MRR); c and d tie, d renews sooner
    assert call_order(scored)["account_id"].tolist() == ["a", "d", "c", "b", "e"]


def test_a_model_without_a_base_rate_says_how_to_fix_it():
    assert base_rate_of(SimpleNamespace(base_rate=0.034), "renewal") == 0.034
    with pytest.raises(NoBaseRate, match="retrain"):
        base_rate_of(SimpleNamespace(), "renewal")
    with pytest.raises(NoBaseRate):
        base_rate_of(SimpleNamespace(base_rate=0.0), "upsell")
