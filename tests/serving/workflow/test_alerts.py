"""Alert rules of DOMAIN 5 on hand-built accounts, the insight score's routing at its
boundaries, the grouping per account, the call-list order and the per-owner cap, and the
alert state (open, snoozed, closed, resolved) across runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from features.snapshot import feature_registry
from radar.settings import AlertSettings, InsightWeights, ServingSettings, Settings
from serving.scoring.decisions import expected_loss, opportunity, risk_tier
from serving.scoring.playbook import load_playbooks
from serving.workflow.alert_rules import (
    AlertError,
    AlertInputs,
    Signal,
    escalation_signals,
    evaluate,
    expansion_signals,
    finish,
    impact,
    indicator_signals,
    previous_date,
    rise_signals,
    tier_signals,
)
from serving.workflow.alert_state import apply_state, held_keys, set_status, stored
from serving.workflow.alerts import AlertRun
from serving.workflow.insight import insight_score, route

REGISTRY = feature_registry(Settings())
BOOKS = load_playbooks()
CFG = AlertSettings()
SERVING = ServingSettings()  # red at 3x the base rate, yellow at 1.5x, both from a 2% churn risk
BASE, UPSELL_BASE = 0.04, 0.2  # the churn and expansion base rates recorded with the models
DATES = (date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31))
AS_OF = DATES[-1]
NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
GREEN, YELLOW, RED = 0.02, 0.08, 0.16  # churn risks of 0.5x, 2x and 4x the base rate


def tier_of(risk: float) -> str:
    return str(risk_tier(np.array([risk]), BASE, SERVING)[0])


def scores(*accounts: dict) -> pd.DataFrame:
    """Scored accounts at AS_OF as score_frame gives them: id, risk (90-day churn risk), upsell,
    mrr, owner, days (to the next renewal), drivers; lift, tier and opportunity from the base rates."""
    rows = []
    for a in accounts:
        risk, upsell, mrr = a.get("risk", GREEN), a.get("upsell", 0.1), a.get("mrr", 100.0)
        rows.append(
            {
                "account_id": a["id"],
                "as_of": AS_OF,
                "name": f"Account {a['id']}",
                "csm_owner": a.get("owner", "Ana"),
                "mrr": mrr,
                "days_to_next_renewal": a.get("days", 200),
                "churn_risk": risk,
                "churn_lift": risk / BASE,
                "risk_tier": tier_of(risk),
                "expected_mrr_loss": float(expected_loss(pd.Series([mrr]), np.array([risk]))[0]),
                "upsell_likelihood": upsell,
                "opportunity": bool(opportunity(np.array([upsell]), UPSELL_BASE, SERVING)[0]),
                "renewal_drivers": a.get("renewal_drivers", []),
                "upsell_drivers": a.get("upsell_drivers", []),
            }
        )
    return pd.DataFrame(rows)


def history(current: pd.DataFrame, earlier: dict | None = None) -> pd.DataFrame:
    """The scores at every date: as now, unless `earlier` gives {(account, date): churn risk}."""
    rows = []
    for d in DATES:
        for r in current.itertuples():
            risk = (earlier or {}).get((r.account_id, d), r.churn_risk)
            rows.append(
                {
                    "account_id": r.account_id,
                    "as_of": d,
                    "churn_risk": risk,
                    "churn_lift": risk / BASE,
                    "risk_tier": tier_of(risk),
                    "opportunity": r.opportunity,
                }
            )
    return pd.DataFrame(rows)


def quote(
    account: str,
    when: datetime,
    conversation: str,
    bucket: str = "renewal_likelihood",
    polarity: str = "red",
    sentence: str = "We are looking at other vendors.",
    channel: str = "call",
    sentiment: float = -0.6,
) -> dict:
    return {
        "account_id": account,
        "occurred_at": pd.Timestamp(when),
        "channel": channel,
        "conversation_id": conversation,
        "sentence": sentence,
        "bucket": bucket,
        "polarity": polarity,
        "sentiment": sentiment,
    }


def inputs(
    current: pd.DataFrame,
    *,
    snapshots: pd.DataFrame | None = None,
    hist: pd.DataFrame | None = None,
    evidence: list[dict] | None = None,
    previous: date | None = DATES[1],
    held: frozenset[str] = frozenset(),
) -> AlertInputs:
    return AlertInputs(
        as_of=AS_OF,
        current=AS_OF,
        dates=DATES,
        snapshots=snapshots if snapshots is not None else pd.DataFrame(columns=["account_id", "as_of"]),
        scores=current,
        history=hist if hist is not None else history(current),
        previous=previous,
        evidence=pd.DataFrame(evidence or [], columns=list(quote("a", NOW, "c"))),
        held=held,
    )


def lowers(feature: str) -> dict:  # a renewal-model driver: + raises the churn margin (and the churn risk)
    return {"feature": feature, "value": 0.1, "contribution": 0.8, "reason": f"{feature} — raises churn risk"}


# --- insight score and routing -------------------------------------------------------------


@pytest.mark.parametrize(
    "score, routing",
    [
        (1.0, "meeting"),
        (0.600001, "meeting"),
        (0.6, "review"),
        (0.45, "review"),
        (0.3, "review"),
        (0.299999, "tag"),
        (0.0, "tag"),
    ],
)
def test_routing_meeting_above_0_6_review_from_0_3_to_0_6_inclusive_tag_below(score, routing):
    assert route(score, CFG) == routing


def test_the_insight_score_is_the_weighted_mean_and_lands_exactly_on_the_boundaries():
    assert insight_score(1.0, 0.0, 0.5, InsightWeights()) == 0.5
    assert insight_score(1.0, 0.0, 0.5, InsightWeights(severity=2, frequency=1, impact=1)) == 0.625
    assert insight_score(1.7, -1.0, 0.5, InsightWeights()) == 0.5  # parts are clipped to [0, 1]
    # 0.7 + 0.5 + 0.6 = 1.8 in floats is 0.6000000000000001 / 3: the score is 0.6, and so a review
    for parts, expected in [
        ((0.7, 0.5, 0.6), 0.6),
        ((0.6, 0.6, 0.6), 0.6),
        ((0.1, 0.2, 0.6), 0.3),
        ((0.3, 0.3, 0.3), 0.3),
    ]:
        score = insight_score(*parts, InsightWeights())
        assert score == expected and route(score, CFG) == "review"


def test_alerts_at_exactly_0_3_and_0_6_are_reviewed_and_the_owner_escalates_with_a_meeting():
    # ten accounts whose expected MRR lost is 2, 4, .., 20: impact of a3 is 0.3, of a6 is 0.6;
    # a6 is yellow (tier severity 0.6) with the same expected loss as MRR 600 at 2%
    current = scores(
        *({"id": f"a{i}", "mrr": 100.0 * i} for i in range(1, 11) if i != 6), {"id": "a6", "mrr": 150, "risk": YELLOW}
    )
    book = BOOKS.named("underused_features")

    def alert(account: str, severity: float, frequency: float):
        [one] = finish([Signal(account, "indicator", "x", "t", severity, frequency, [], book)], inputs(current), CFG)
        return one

    at_06, above_06 = alert("a6", 0.6, 0.6), alert("a6", 0.62, 0.6)  # yellow: severity (0.6 + 0.6) / 2
    at_03, below_03 = alert("a3", 0.6, 0.3), alert("a3", 0.6, 0.29)  # green: severity (0.6 + 0) / 2
    assert (at_06.impact, at_06.severity, at_06.insight_score, at_06.routing) == (0.6, 0.6, 0.6, "review")
    assert (above_06.routing, at_03.routing, below_03.routing) == ("meeting", "review", "tag")
    assert (at_03.impact, at_03.severity, at_03.insight_score) == (0.3, 0.3, 0.3)
    assert at_06.owner == "Product trainer" and not at_06.escalated
    assert above_06.owner == "CS manager" and above_06.escalated  # the playbook's escalation


def test_impact_is_the_percentile_of_expected_mrr_lost_not_of_mrr():
    current = scores(
        {"id": "big", "mrr": 10_000, "risk": 0.01, "upsell": 0.0},  # expected loss 100
        {"id": "risky", "mrr": 1_000, "risk": 0.2, "upsell": 0.0},  # 200
        {"id": "small", "mrr": 500, "risk": 0.02, "upsell": 0.0},  # 10
        {"id": "unknown", "mrr": None, "risk": 0.3, "upsell": 0.0},  # no MRR: nothing known at stake
        {"id": "grow", "mrr": 1_000, "upsell": 0.5},  # expansion potential 500
        {"id": "grow2", "mrr": 100, "upsell": 0.9},  # 90
    )
    assert impact(current).round(6).to_dict() == {
        "big": 0.8,
        "risky": 1.0,
        "small": 0.4,
        "unknown": 0.0,
        "grow": 0.6,
        "grow2": 0.2,
    }
    book = BOOKS.named("underused_features")
    signals = [Signal(a, "indicator", "x", a, 0.5, 0.5, [], book) for a in ("big", "risky", "small", "unknown")]
    signals += expansion_signals(inputs(current), CFG, BOOKS)
    got = {a.key: a for a in finish(signals, inputs(current), CFG)}
    assert {k: a.impact for k, a in got.items()} == {
        "risky:risk": 1.0,
        "big:risk": 0.8,
        "small:risk": 0.4,
        "unknown:risk": 0.0,
        "grow:expansion": 1.0,  # expansion: of upsell likelihood x MRR
        "grow2:expansion": 0.5,
    }
    assert (got["risky:risk"].expected_mrr_loss, got["risky:risk"].churn_risk) == (200.0, 0.2)
    assert (got["risky:risk"].churn_lift, got["risky:risk"].risk_tier) == (5.0, "red")


# --- indicator below its expected level ----------------------------------------------------


def test_an_indicator_worse_than_expected_alerts_with_severity_and_persistence():
    current = scores({"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"})
    snaps = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "d"],
            "as_of": [*DATES, *DATES, *DATES, AS_OF],
            "adoption_rate_28d": [0.5, 0.15, 0.1, 0.1, 0.1, 0.2, 0.3, 0.3, None, 0.05],
            "days_since_last_activity": [1, 1, 37, 1, 1, 1, 1, 1, 80, 1],
        }
    )
    cfg = AlertSettings(indicator_levels={"adoption_rate_28d": (0.2, 0.0), "days_since_last_activity": (14, 60)})
    got = {s.key: s for s in indicator_signals(inputs(current, snapshots=snaps), cfg, BOOKS, REGISTRY)}
    # b is exactly at its expected level now: not worse; c's adoption is missing: no alert
    assert sorted(got) == [
        "a:indicator:adoption_rate_28d",
        "a:indicator:days_since_last_activity",
        "c:indicator:days_since_last_activity",
        "d:indicator:adoption_rate_28d",
    ]
    adoption = got["a:indicator:adoption_rate_28d"]
    assert adoption.severity == pytest.approx(0.5) and adoption.frequency == pytest.approx(2 / 3)
    assert adoption.title == "Active users ÷ seats is 0.10 over the last 28 days; expected at least 0.20"
    assert adoption.playbook.name == "underused_features"  # indicator 1, adoption
    assert adoption.evidence[0].kind == "indicator" and adoption.evidence[0].value == pytest.approx(0.1)
    idle = got["a:indicator:days_since_last_activity"]  # lower is healthy: worse means above
    assert idle.severity == pytest.approx((37 - 14) / (60 - 14)) and idle.frequency == pytest.approx(1 / 3)
    assert "expected at most 14" in idle.title and idle.playbook.name == "renewal_risk"  # indicator 13
    assert got["c:indicator:days_since_last_activity"].severity == 1.0  # beyond worst
    assert got["d:indicator:adoption_rate_28d"].frequency == pytest.approx(1 / 3)  # a new account: one snapshot


def test_an_indicator_level_on_an_unknown_feature_is_named():
    cfg = AlertSettings(indicator_levels={"adoption_rate_30d": (0.2, 0.0)})
    with pytest.raises(AlertError, match="'adoption_rate_30d' is not a snapshot feature"):
        indicator_signals(inputs(scores({"id": "a"})), cfg, BOOKS, REGISTRY)
    with pytest.raises(ValueError, match="expected and worst must differ"):
        AlertSettings(indicator_levels={"adoption_rate_28d": (0.2, 0.2)})


# --- a rise in churn risk (lift points) since the previous snapshot ---------------------------


def test_the_rise_is_measured_against_the_previous_snapshot_in_the_lookback():
    monthly = list(DATES)
    assert previous_date(monthly, AS_OF, CFG) == date(2026, 2, 28)
    weekly = [AS_OF - timedelta(days=d) for d in (21, 14, 7, 0)]
    assert previous_date(weekly, AS_OF, CFG) == AS_OF - timedelta(days=7)
    assert previous_date(
        [AS_OF - timedelta(days=3), AS_OF - timedelta(days=10), AS_OF], AS_OF, CFG
    ) == AS_OF - timedelta(days=10)  # 3 days is not a week
    assert previous_date([AS_OF - timedelta(days=40), AS_OF], AS_OF, CFG) is None  # beyond the 35-day lookback


def test_a_lift_rise_beyond_the_threshold_alerts_and_says_which_dates_were_compared():
    current = scores(
        {"id": "a", "risk": 0.14, "renewal_drivers": [lowers("onboarding_completion")]},  # 3.5x now
        {"id": "b", "risk": 0.08},  # 2x now
        {"id": "c", "risk": 0.06},  # 1.5x now
        {"id": "fell", "risk": 0.02},
        {"id": "new", "risk": 0.2},
    )
    hist = history(
        current,
        {
            ("a", DATES[0]): 0.02,
            ("a", DATES[1]): 0.04,  # rose twice, by 2.5 lift points now
            ("b", DATES[1]): 0.04,  # 1x -> 2x: exactly the 1.0 threshold, not beyond it
            ("c", DATES[0]): 0.02,
            ("c", DATES[1]): 0.01,  # fell, then rose 1.25 points
            ("fell", DATES[1]): 0.16,  # a fall is no alert
        },
    )
    hist = hist[~((hist.account_id == "new") & (hist.as_of < AS_OF))]  # no earlier score: no rise
    got = {s.account_id: s for s in rise_signals(inputs(current, hist=hist), CFG, BOOKS, REGISTRY)}
    assert sorted(got) == ["a", "c"]
    a = got["a"]
    assert a.key == "a:risk_rise" and a.severity == pytest.approx(2.5 / 3) and a.frequency == 1.0
    assert a.title == (
        "Churn risk next 90 days rose from 4.0% (1.0x typical) on 2026-02-28 to 14% (3.5x typical) on 2026-03-31"
    )
    assert a.evidence[0].kind == "score" and a.evidence[0].value == pytest.approx(0.10)
    assert a.evidence[1].feature == "onboarding_completion"
    assert a.playbook.name == "onboarding_friction"  # the driver that raises churn risk picks the playbook
    assert a.escalated  # a red account
    assert got["c"].severity == pytest.approx(1.25 / 3) and got["c"].frequency == 0.5
    assert got["c"].escalated is False  # yellow
    assert rise_signals(inputs(current, previous=None), CFG, BOOKS, REGISTRY) == []
    # a lower threshold takes b's exact 1.0-point rise; the rise counts in lift points, not in risk
    lower = AlertSettings(rise_threshold=0.99)
    assert sorted(s.account_id for s in rise_signals(inputs(current, hist=hist), lower, BOOKS, REGISTRY)) == [
        "a",
        "b",
        "c",
    ]


def test_the_rise_rule_joins_the_account_alert_and_is_not_evaluated_without_a_previous_snapshot():
    current = scores({"id": "a", "risk": 0.14})
    hist = history(current, {("a", DATES[1]): 0.04})
    [alert] = evaluate(inputs(current, hist=hist), AlertSettings(indicator_levels={}), BOOKS, REGISTRY)
    assert alert.key == "a:risk" and sorted(alert.rules) == ["risk_rise", "risk_tier"]
    [alone] = evaluate(inputs(current, hist=hist, previous=None), AlertSettings(indicator_levels={}), BOOKS, REGISTRY)
    assert alone.rules == ["risk_tier"]


# --- escalation: red cues in one bucket in two or more distinct conversations ---------------


def day(n: int) -> datetime:
    """n days before as_of (midnight), at 10:00."""
    return datetime.combine(AS_OF, datetime.min.time()) - timedelta(days=n) + timedelta(hours=10)


def test_two_red_cues_in_one_conversation_do_not_escalate():
    ev = [quote("a", day(3), "feedback:1"), quote("a", day(3), "feedback:1", sentence="Budget cut.")]
    assert escalation_signals(inputs(scores({"id": "a"}), evidence=ev), CFG, BOOKS) == []


def test_two_distinct_conversations_within_30_days_escalate_to_the_escalation_owner():
    ev = [
        quote("a", day(2), "feedback:1", sentiment=-0.8, channel="call"),
        quote("a", day(2), "feedback:1", sentence="Budget cut.", sentiment=-0.8),
        quote("a", day(25), "support_tickets:9", sentence="Payroll pressure.", sentiment=0.0, channel="email"),
    ]
    [s] = escalation_signals(inputs(scores({"id": "a"}), evidence=ev), CFG, BOOKS)
    assert (s.key, s.escalated, s.playbook.name) == ("a:escalation:renewal_likelihood", True, "renewal_risk")
    assert s.frequency == 0.5  # 2 of the 4 conversations at which frequency is full
    assert s.severity == pytest.approx((1 + (0.8 + 0.8 + 0.0) / 3) / 2)
    assert [(q.conversation, q.date, q.channel) for q in s.evidence] == [
        ("feedback:1", day(2).date(), "call"),
        ("support_tickets:9", day(25).date(), "email"),
    ]
    [alert] = finish([s], inputs(scores({"id": "a"})), CFG)
    assert alert.key == "a:risk" and alert.rules == ["escalation"] and alert.subject == "renewal_likelihood"
    assert alert.owner == "Retention lead"  # escalation owner, whatever the routing


def test_conversations_31_days_apart_other_buckets_gray_cues_and_today_do_not_escalate():
    as_of_midnight = datetime.combine(AS_OF, datetime.min.time())
    cases = {
        "31 days apart": [quote("a", day(1), "c:1"), quote("a", day(1) - timedelta(days=31), "c:2")],
        "two buckets": [quote("a", day(1), "c:1"), quote("a", day(5), "c:2", bucket="pricing_perception")],
        "negated (gray)": [quote("a", day(1), "c:1"), quote("a", day(5), "c:2", polarity="gray")],
        "on as_of": [quote("a", day(1), "c:1"), quote("a", as_of_midnight, "c:2")],
        "inactive account": [quote("zz", day(1), "c:1"), quote("zz", day(5), "c:2")],
    }
    for case, ev in cases.items():
        assert escalation_signals(inputs(scores({"id": "a"}), evidence=ev), CFG, BOOKS) == [], case
    # the same pair 29 days apart does escalate, in its bucket's playbook
    ev = [
        quote("a", day(1), "c:1", bucket="onboarding_clarity"),
        quote("a", day(29), "c:2", bucket="onboarding_clarity"),
    ]
    [s] = escalation_signals(inputs(scores({"id": "a"}), evidence=ev), CFG, BOOKS)
    assert s.playbook.name == "onboarding_friction" and s.subject == "onboarding_clarity"


# --- risk tiers and expansion opportunities -------------------------------------------------


def test_red_and_yellow_tiers_alert_with_drivers_and_red_quotes_green_opportunities_expand():
    current = scores(
        {"id": "red", "risk": RED, "mrr": 300, "renewal_drivers": [lowers("adoption_rate_28d")]},
        {"id": "yellow", "risk": YELLOW, "upsell": 0.8, "mrr": 200},
        {
            "id": "green",
            "risk": GREEN,
            "upsell": 0.7,
            "mrr": 100,
            "upsell_drivers": [
                {
                    "feature": "seats",
                    "value": 10,
                    "contribution": 0.4,
                    "reason": "Seats under contract is 10 — raises upsell likelihood",
                }
            ],
        },
    )
    hist = history(current, {("red", DATES[0]): GREEN})
    ev = [
        quote("red", day(40), "c:1", sentence="Too expensive.", bucket="pricing_perception"),
        quote("green", day(10), "c:2", polarity="green", bucket="upsell_readiness", sentence="We need more seats."),
    ]
    got = {s.key: s for s in tier_signals(inputs(current, hist=hist, evidence=ev), CFG, BOOKS, REGISTRY)}
    assert sorted(got) == ["red:risk_tier:red", "yellow:risk_tier:yellow"]
    red = got["red:risk_tier:red"]
    assert red.severity == 1.0 and red.frequency == pytest.approx(2 / 3) and red.escalated  # tier_severity.red
    assert red.title == "Red risk tier: churn risk next 90 days 16% (4.0x typical)"
    assert red.playbook.name == "underused_features"
    assert [e.kind for e in red.evidence] == ["driver", "quote"] and red.evidence[1].text == "Too expensive."
    yellow = got["yellow:risk_tier:yellow"]
    assert yellow.severity == 0.6 and yellow.title == "Yellow risk tier: churn risk next 90 days 8.0% (2.0x typical)"
    assert yellow.playbook.name == "renewal_risk"  # no driver: the fallback
    [expand] = expansion_signals(inputs(current, hist=hist, evidence=ev), CFG, BOOKS)  # not the yellow one
    assert (expand.key, expand.severity, expand.playbook.name) == ("green:expansion", 0.7, "expansion_opportunity")
    assert [e.text for e in expand.evidence] == [
        "Seats under contract is 10 — raises upsell likelihood",
        "We need more seats.",
    ]
    alerts = {a.key: a for a in finish([*got.values(), expand], inputs(current, hist=hist), CFG)}
    assert sorted(alerts) == ["green:expansion", "red:risk", "yellow:risk"]
    assert alerts["red:risk"].owner == "CS manager"  # red: the escalation owner of underused features
    assert alerts["red:risk"].severity == 1.0  # mean of the signal's 1.0 and the red tier's 1.0
    assert alerts["yellow:risk"].severity == 0.6
    assert alerts["green:expansion"].owner == "Growth manager"
    assert alerts["green:expansion"].severity == 0.7  # an opportunity: its upsell likelihood, no tier


def test_evaluate_runs_the_configured_rules_only_groups_per_account_and_follows_the_call_list():
    current = scores({"id": "a", "risk": RED, "mrr": 500}, {"id": "b", "risk": YELLOW, "mrr": 100})
    ev = [quote("b", day(1), "c:1"), quote("b", day(2), "c:2")]
    everything = evaluate(inputs(current, evidence=ev), AlertSettings(indicator_levels={}), BOOKS, REGISTRY)
    # a: red (1 + 1) / 2, frequency 1, impact 1; b: yellow 0.6 and escalation (1 + 0.6) / 2 = 0.8, so
    # (0.8 + 0.6) / 2 = 0.7, frequency 1 (the tier's), impact 0.5
    assert [(a.key, a.rules, a.insight_score) for a in everything] == [
        ("a:risk", ["risk_tier"], 1.0),
        ("b:risk", ["risk_tier", "escalation"], 0.733333),
    ]
    b = everything[1]
    assert b.title == "Yellow risk tier: churn risk next 90 days 8.0% (2.0x typical) (+1 more signal)"
    assert b.escalated and b.owner == "Retention lead"  # the escalation escalates the renewal risk playbook
    only = evaluate(inputs(current, evidence=ev), AlertSettings(rules=("escalation",)), BOOKS, REGISTRY)
    assert [(a.key, a.rule, a.rules) for a in only] == [("b:risk", "escalation", ["escalation"])]


# --- one alert per account, meetings only for flagged accounts -------------------------------


def test_an_account_s_signals_become_one_alert_listing_them_all_and_an_opportunity_stays_apart():
    current = scores(
        {"id": "a", "risk": YELLOW, "mrr": 500},
        {"id": "g", "risk": GREEN, "upsell": 0.7, "mrr": 300},
    )
    snaps = pd.DataFrame(
        {
            "account_id": ["a"] * 3 + ["g"] * 3,
            "as_of": [*DATES, *DATES],
            "adoption_rate_28d": [0.05, 0.05, 0.05, 0.3, 0.3, 0.1],
        }
    )
    ev = [
        quote("a", day(1), "c:1", bucket="pricing_perception", sentence="Too expensive."),
        quote("a", day(5), "c:2", bucket="pricing_perception", sentence="The price went up."),
    ]
    cfg = AlertSettings(indicator_levels={"adoption_rate_28d": (0.2, 0.0)})
    alerts = evaluate(inputs(current, snapshots=snaps, evidence=ev), cfg, BOOKS, REGISTRY)
    assert [a.key for a in alerts] == ["a:risk", "g:risk", "g:expansion"]  # risks in call-list order, then growth
    a = alerts[0]
    # strongest first: indicator 0.75 + 1, tier 0.6 + 1, escalation 0.8 + 0.5
    assert a.rules == ["indicator", "risk_tier", "escalation"]
    assert (a.rule, a.subject) == ("indicator", "adoption_rate_28d")
    assert a.signals == [
        "Active users ÷ seats is 0.05 over the last 28 days; expected at least 0.20",
        "Yellow risk tier: churn risk next 90 days 8.0% (2.0x typical)",
        "Red pricing perception cues in 2 distinct conversations in the last 30 days",
    ]
    assert a.title == a.signals[0] + " (+2 more signals)"
    assert a.severity == pytest.approx((0.8 + 0.6) / 2) and a.frequency == 1.0  # strongest severity with the tier
    assert a.escalated and a.playbook == "underused_features" and a.owner == "CS manager"
    texts = [e.text for e in a.evidence]
    assert len(texts) == len(set(texts)) and {"indicator", "quote"} <= {e.kind for e in a.evidence}
    g_risk, g_growth = alerts[1], alerts[2]
    assert (g_risk.rules, g_growth.rules) == (["indicator"], ["expansion"])
    assert g_growth.title == "Expansion opportunity: upsell likelihood 70%"
    assert g_growth.playbook == "expansion_opportunity"


def test_a_green_low_risk_account_with_one_strong_indicator_never_goes_to_a_meeting():
    current = scores({"id": "g", "risk": GREEN, "mrr": 10_000}, {"id": "s", "mrr": 10})  # g: the largest loss
    book = BOOKS.named("underused_features")
    strong = Signal("g", "indicator", "adoption_rate_28d", "Adoption is 0", 1.0, 1.0, [], book)
    [alert] = finish([strong], inputs(current), CFG)
    # severity (1 + green 0) / 2 = 0.5; (0.5 + 1 + 1) / 3 = 0.83 would be a meeting: a review instead
    assert (alert.severity, alert.insight_score, alert.routing) == (0.5, 0.833333, "review")
    assert not alert.escalated and alert.owner == "Product trainer"
    [unflagged] = finish([strong], inputs(current), AlertSettings(meeting_needs_flag=False))
    assert unflagged.routing == "meeting"
    # an escalation of red cues in several conversations is a flag of its own: it can meet
    ev = [quote("g", day(n), f"c:{n}", sentiment=-1.0) for n in (1, 3, 5, 7)]
    [escalation] = escalation_signals(inputs(current, evidence=ev), CFG, BOOKS)
    [met] = finish([escalation], inputs(current), CFG)
    assert (met.severity, met.insight_score, met.routing) == (0.5, 0.833333, "meeting")
    assert met.escalated and met.owner == "Retention lead"


# --- call-list order and the per-owner cap -------------------------------------------------


def test_alerts_come_in_call_list_order_not_by_insight():
    current = scores(
        {"id": "z", "risk": YELLOW, "mrr": 1_000},  # loss 80
        {"id": "x", "risk": YELLOW, "mrr": 625, "days": 100},  # loss 50, renews later
        {"id": "y", "risk": YELLOW, "mrr": 625, "days": 20},  # loss 50, renews sooner
        {"id": "w", "risk": RED, "mrr": 400},  # loss 64, the highest insight (red)
        {"id": "v", "risk": YELLOW, "mrr": 625, "days": 20},  # as y: the account id breaks the tie
        {"id": "o", "upsell": 0.9, "mrr": 10_000},  # an opportunity: after the risks
    )
    alerts = evaluate(inputs(current), AlertSettings(indicator_levels={}), BOOKS, REGISTRY)
    assert [a.account_id for a in alerts] == ["z", "w", "v", "y", "x", "o"]
    assert max(alerts[:-1], key=lambda a: a.insight_score).account_id == "w"  # the highest-insight risk is 2nd
    assert alerts[-1].insight_score > alerts[0].insight_score  # the opportunity comes last all the same


def test_an_owner_with_15_flagged_accounts_gets_10_in_call_list_order_and_5_capped_in_review():
    ana = [{"id": f"a{i:02d}", "risk": RED, "mrr": 100.0 * i} for i in range(1, 16)]
    ben = [{"id": f"b{i}", "risk": RED, "mrr": 50.0 * i, "owner": "Ben"} for i in range(1, 4)]
    current = scores(*ana, *ben)
    cfg = AlertSettings(rules=("risk_tier",))
    alerts = evaluate(inputs(current), cfg, BOOKS, REGISTRY)
    mine = [a for a in alerts if a.csm_owner == "Ana"]
    losses = [a.expected_mrr_loss for a in mine]
    assert len(mine) == 15 and losses == sorted(losses, reverse=True)  # the call list
    assert [a.capped for a in mine] == [False] * 10 + [True] * 5
    assert {a.routing for a in mine[10:]} == {"review"}  # they wait in the review queue
    assert {a.routing for a in mine[:10]} == {"meeting"}
    assert not any(a.capped for a in alerts if a.csm_owner == "Ben")  # each owner has their own cap
    assert {a.account_id for a in mine[10:]} == {"a01", "a02", "a03", "a04", "a05"}  # the smallest losses wait
    run = AlertRun(AS_OF, AS_OF, DATES[1], DATES, alerts, max_per_owner=cfg.max_per_owner)
    assert run.counts()["capped"] == 5
    assert run.per_owner() == {
        "Ana": {"alerts": 10, "opportunities": 0, "capped": 5, "tagged": 0},
        "Ben": {"alerts": 3, "opportunities": 0, "capped": 0, "tagged": 0},
    }
    document = run.document()
    assert document["per_owner"]["Ana"]["capped"] == 5 and document["max_per_owner"] == 10
    assert sum(a["capped"] for a in document["alerts"]) == 5
    # snoozed or closed alerts take no place under the cap: two held back let two more through
    held = frozenset({"a15:risk", "a14:risk"})
    again = [a for a in evaluate(inputs(current, held=held), cfg, BOOKS, REGISTRY) if a.csm_owner == "Ana"]
    assert {a.account_id for a in again if a.capped} == {"a01", "a02", "a03"}
    assert [a.account_id for a in again] == [a.account_id for a in mine]  # the order does not change
    five = evaluate(inputs(current), cfg.model_copy(update={"max_per_owner": 5}), BOOKS, REGISTRY)
    assert sum(a.capped for a in five) == 10


def test_alerts_tagged_for_later_take_no_place_under_the_cap_and_stay_tags():
    current = scores(*({"id": f"g{i:02d}", "mrr": 100.0 * i} for i in range(1, 13)))  # green: severity halved
    book = BOOKS.named("underused_features")
    weak = [Signal(f"g{i:02d}", "indicator", "x", "weak", 0.0, 0.0, [], book) for i in range(1, 13)]
    alerts = finish(weak, inputs(current), CFG.model_copy(update={"max_per_owner": 1}))
    # impact alone: 1 and 11/12 reach the review queue (>= 0.3), the other ten are tags
    assert [(a.account_id, a.routing, a.capped) for a in alerts[:3]] == [
        ("g12", "review", False),
        ("g11", "review", True),
        ("g10", "tag", False),
    ]
    assert {(a.routing, a.capped) for a in alerts[2:]} == {("tag", False)}
    run = AlertRun(AS_OF, AS_OF, DATES[1], DATES, alerts, max_per_owner=1)
    assert (
        run.per_owner() == {"Ana": {"alerts": 1, "opportunities": 0, "capped": 1, "tagged": 10}}
        and run.counts()["capped"] == 1
    )


# --- state across runs ---------------------------------------------------------------------


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "radar.duckdb"))
    yield connection
    connection.close()


def alerts_for(*accounts: str):
    current = scores(*({"id": a, "risk": RED} for a in accounts))
    return finish(tier_signals(inputs(current), CFG, BOOKS, REGISTRY), inputs(current), CFG)


RULES = ("risk_tier",)


def statuses(alerts) -> dict[str, str]:
    return {a.key: a.status for a in alerts}


def test_an_open_alert_is_not_raised_again(con):
    first = apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)
    assert statuses(first) == {"a:risk": "new", "b:risk": "new"}
    again = apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)  # the same run twice
    assert statuses(again) == {"a:risk": "open", "b:risk": "open"}
    later = apply_state(con, alerts_for("a", "b", "c"), AS_OF + timedelta(days=7), RULES, NOW)
    assert statuses(later) == {"a:risk": "open", "b:risk": "open", "c:risk": "new"}
    assert {a.opened_as_of for a in later if a.status == "open"} == {AS_OF}


def test_snooze_and_close_are_respected_by_the_next_runs(con):
    apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)
    until = AS_OF + timedelta(days=14)
    set_status(con, "a:risk", "snoozed", until=until, reason="renewal call booked", now=NOW)
    set_status(con, "b:risk", "closed", reason="known: budget approved", now=NOW)
    week = apply_state(con, alerts_for("a", "b"), AS_OF + timedelta(days=7), RULES, NOW)
    assert statuses(week) == {"a:risk": "snoozed", "b:risk": "closed"}
    ended = apply_state(con, alerts_for("a", "b"), until, RULES, NOW)  # the snooze ends on its date
    assert statuses(ended) == {"a:risk": "new", "b:risk": "closed"}
    kept = stored(con).set_index("key")
    assert kept.loc["b:risk", "reason"] == "known: budget approved"
    history_rows = con.execute(
        "SELECT status, reason FROM alert_history WHERE key = 'a:risk' ORDER BY changed_at, status"
    ).fetchall()
    assert ("snoozed", "renewal call booked") in history_rows


def test_a_closed_alert_comes_back_only_after_its_condition_cleared(con):
    apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)
    set_status(con, "a:risk", "closed", reason="handled", now=NOW)
    assert statuses(apply_state(con, alerts_for("a"), AS_OF + timedelta(days=7), RULES, NOW)) == {"a:risk": "closed"}
    apply_state(con, [], AS_OF + timedelta(days=14), ("indicator",), NOW)  # another rule: no verdict on it
    assert stored(con).set_index("key").loc["a:risk", "status"] == "closed"
    apply_state(con, [], AS_OF + timedelta(days=14), RULES, NOW)  # evaluated and clear: resolved
    assert stored(con).set_index("key").loc["a:risk", "status"] == "resolved"
    back = apply_state(con, alerts_for("a"), AS_OF + timedelta(days=21), RULES, NOW)
    assert statuses(back) == {"a:risk": "new"} and back[0].opened_as_of == AS_OF + timedelta(days=21)


def test_state_changes_need_a_known_key_a_date_and_a_reason(con):
    apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)
    with pytest.raises(AlertError, match="no alert 'zz:risk'"):
        set_status(con, "zz:risk", "closed", reason="x", now=NOW)
    with pytest.raises(AlertError, match="needs a date"):
        set_status(con, "a:risk", "snoozed", reason="x", now=NOW)
    with pytest.raises(AlertError, match="say why"):
        set_status(con, "a:risk", "closed", reason=" ", now=NOW)
    set_status(con, "a:risk", "closed", reason="done", now=NOW)
    set_status(con, "a:risk", "open", reason=None, now=NOW)  # reopened
    assert statuses(apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)) == {"a:risk": "open"}


def test_snoozed_and_closed_alerts_are_held_back_from_the_cap_until_the_snooze_ends(con):
    apply_state(con, alerts_for("a", "b", "c"), AS_OF, RULES, NOW)
    assert held_keys(con, AS_OF) == frozenset()  # open alerts count towards the cap
    until = AS_OF + timedelta(days=14)
    set_status(con, "a:risk", "snoozed", until=until, reason="call booked", now=NOW)
    set_status(con, "b:risk", "closed", reason="handled", now=NOW)
    assert held_keys(con, AS_OF + timedelta(days=7)) == {"a:risk", "b:risk"}
    assert held_keys(con, until) == {"b:risk"}  # the snooze ends on its date: the alert is new again
    current = scores(*({"id": a, "risk": RED} for a in ("a", "b", "c")))
    capped = finish(
        tier_signals(inputs(current), CFG, BOOKS, REGISTRY),
        inputs(current, held=held_keys(con, AS_OF + timedelta(days=7))),
        CFG.model_copy(update={"max_per_owner": 1}),
    )
    assert [(a.key, a.capped) for a in capped] == [("a:risk", False), ("b:risk", False), ("c:risk", False)]
