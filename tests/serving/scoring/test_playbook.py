"""Playbooks: the first renewal driver that lowers renewal picks the action; tiers pick the owner."""

from __future__ import annotations

import pytest

from features.registry import INDICATORS
from features.snapshot import feature_registry
from radar.settings import Settings
from serving.scoring.playbook import recommend

REGISTRY = feature_registry(Settings())


def lowers(feature: str, size: float = 0.5) -> dict:
    return {"feature": feature, "value": 0.1, "contribution": size, "reason": "..."}  # + = more churn


def raises(feature: str) -> dict:
    return {"feature": feature, "value": 0.9, "contribution": -0.7, "reason": "..."}


@pytest.mark.parametrize(
    "feature, playbook, yellow_owner, red_owner",
    [
        ("onboarding_completion", "onboarding_friction", INDICATORS[7][1], INDICATORS[1][1]),
        ("time_to_value_days", "onboarding_friction", INDICATORS[7][1], INDICATORS[1][1]),
        ("activation_rate", "onboarding_friction", INDICATORS[7][1], INDICATORS[1][1]),
        ("adoption_rate_28d", "underused_features", INDICATORS[15][1], INDICATORS[5][1]),
        ("logins_trend_28d", "renewal_risk", INDICATORS[8][1], INDICATORS[13][1]),
        ("days_since_last_qbr", "renewal_risk", INDICATORS[8][1], INDICATORS[13][1]),
        ("mrr_change_pct_90d", "renewal_risk", INDICATORS[8][1], INDICATORS[13][1]),
    ],
)
def test_the_driver_family_picks_the_playbook_and_the_tier_the_owner(feature, playbook, yellow_owner, red_owner):
    yellow = recommend("yellow", False, [lowers(feature)], REGISTRY)
    red = recommend("red", False, [lowers(feature)], REGISTRY)
    assert (yellow.playbook, yellow.owner, yellow.because) == (playbook, yellow_owner, feature)
    assert (red.playbook, red.owner) == (playbook, red_owner)


def test_qcf_buckets_route_like_their_indicators():
    onboarding = next(s.name for s in REGISTRY if s.family == "qcf:onboarding_clarity")
    pricing = next(s.name for s in REGISTRY if s.family == "qcf:pricing_perception")
    assert recommend("red", False, [lowers(onboarding)], REGISTRY).playbook == "onboarding_friction"
    assert recommend("red", False, [lowers(pricing)], REGISTRY).playbook == "renewal_risk"


def test_drivers_that_raise_renewal_or_have_no_playbook_are_skipped():
    chosen = recommend(
        "yellow", True, [raises("onboarding_completion"), lowers("mrr"), lowers("adoption_rate_28d")], REGISTRY
    )
    assert (chosen.playbook, chosen.because) == ("underused_features", "adoption_rate_28d")


def test_context_never_picks_a_playbook_nor_its_because():
    # contract timing, tenure, past renewals are context: even passed in as drivers they are skipped
    context = [lowers("days_to_next_renewal", 2.0), lowers("tenure_days", 1.5), lowers("past_renewals", 1.0)]
    chosen = recommend("red", False, context, REGISTRY)
    assert (chosen.playbook, chosen.because) == ("renewal_risk", None)
    chosen = recommend("yellow", False, [*context, lowers("onboarding_completion")], REGISTRY)
    assert (chosen.playbook, chosen.because) == ("onboarding_friction", "onboarding_completion")


def test_at_risk_without_a_matching_driver_gets_the_renewal_review():
    chosen = recommend("red", False, [], REGISTRY)
    assert (chosen.playbook, chosen.owner, chosen.because) == ("renewal_risk", "Retention lead", None)


def test_green_accounts_expand_or_keep_their_cadence():
    assert recommend("green", True, [lowers("onboarding_completion")], REGISTRY).owner == "Growth manager"
    assert recommend("green", False, [], REGISTRY).playbook == "keep_cadence"
    # risk comes first: a yellow opportunity is worked as a risk
    assert recommend("yellow", True, [], REGISTRY).playbook == "renewal_risk"


def test_upsell_style_models_read_negative_contributions_as_lowering():
    chosen = recommend("red", False, [raises("adoption_rate_28d")], REGISTRY, inverted=False)
    assert chosen.playbook == "underused_features"
