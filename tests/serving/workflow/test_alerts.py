"""Alert rules of DOMAIN 5 on hand-built accounts, the insight score's routing at its
boundaries, and the alert state (open, snoozed, closed, resolved) across runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from features.snapshot import feature_registry
from radar.settings import AlertSettings, InsightWeights, Settings
from serving.scoring.playbook import load_playbooks
from serving.workflow.alert_rules import (
    AlertError,
    AlertInputs,
    Signal,
    drop_signals,
    escalation_signals,
    evaluate,
    expansion_signals,
    finish,
    indicator_signals,
    previous_date,
    tier_signals,
)
from serving.workflow.alert_state import apply_state, set_status, stored
from serving.workflow.insight import insight_score, route

REGISTRY = feature_registry(Settings())
BOOKS = load_playbooks()
CFG = AlertSettings()
DATES = (date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31))
AS_OF = DATES[-1]
NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)


def tier_of(renewal: float) -> str:
    return "red" if renewal < 0.4 else "yellow" if renewal < 0.7 else "green"


def scores(*accounts: dict) -> pd.DataFrame:
    """Scored accounts at AS_OF: id, mrr, renewal (likelihood), upsell, drivers."""
    rows = []
    for a in accounts:
        renewal, upsell = a.get("renewal", 0.9), a.get("upsell", 0.1)
        rows.append(
            {
                "account_id": a["id"],
                "as_of": AS_OF,
                "name": f"Account {a['id']}",
                "csm_owner": "Ana",
                "mrr": a.get("mrr", 100.0),
                "renewal_likelihood": renewal,
                "upsell_likelihood": upsell,
                "risk_tier": tier_of(renewal),
                "opportunity": upsell > 0.5,
                "renewal_drivers": a.get("renewal_drivers", []),
                "upsell_drivers": a.get("upsell_drivers", []),
            }
        )
    return pd.DataFrame(rows)


def history(current: pd.DataFrame, earlier: dict | None = None) -> pd.DataFrame:
    """The scores at every date: as now, unless `earlier` gives {(account, date): renewal}."""
    rows = []
    for d in DATES:
        for r in current.itertuples():
            renewal = (earlier or {}).get((r.account_id, d), r.renewal_likelihood)
            rows.append(
                {
                    "account_id": r.account_id,
                    "as_of": d,
                    "renewal_likelihood": renewal,
                    "risk_tier": tier_of(renewal),
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
    )


def lowers(feature: str) -> dict:  # a renewal driver: + raises the churn margin, so lowers renewal
    return {"feature": feature, "value": 0.1, "contribution": 0.8, "reason": f"{feature} — lowers renewal likelihood"}


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
    # ten accounts with MRR 100..1000: impact (MRR percentile) of a3 is 0.3, of a6 is 0.6
    current = scores(*({"id": f"a{i}", "mrr": 100.0 * i} for i in range(1, 11)))
    book = BOOKS.named("underused_features")
    signals = [
        Signal("a6", "indicator", "x", "at 0.6", 0.6, 0.6, [], book),
        Signal("a6", "indicator", "y", "above 0.6", 0.62, 0.6, [], book),
        Signal("a3", "indicator", "x", "at 0.3", 0.3, 0.3, [], book),
        Signal("a3", "indicator", "y", "below 0.3", 0.3, 0.29, [], book),
    ]
    got = {a.title: a for a in finish(signals, inputs(current), CFG)}
    assert (got["at 0.6"].impact, got["at 0.6"].insight_score, got["at 0.6"].routing) == (0.6, 0.6, "review")
    assert (got["above 0.6"].routing, got["at 0.3"].routing, got["below 0.3"].routing) == ("meeting", "review", "tag")
    assert got["at 0.3"].insight_score == 0.3
    assert got["at 0.6"].owner == "Product trainer" and not got["at 0.6"].escalated
    assert got["above 0.6"].owner == "CS manager" and got["above 0.6"].escalated  # the playbook's escalation


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


# --- week-over-week renewal drop -----------------------------------------------------------


def test_the_drop_is_measured_against_the_previous_snapshot_in_the_lookback():
    monthly = list(DATES)
    assert previous_date(monthly, AS_OF, CFG) == date(2026, 2, 28)
    weekly = [AS_OF - timedelta(days=d) for d in (21, 14, 7, 0)]
    assert previous_date(weekly, AS_OF, CFG) == AS_OF - timedelta(days=7)
    assert previous_date(
        [AS_OF - timedelta(days=3), AS_OF - timedelta(days=10), AS_OF], AS_OF, CFG
    ) == AS_OF - timedelta(days=10)  # 3 days is not a week
    assert previous_date([AS_OF - timedelta(days=40), AS_OF], AS_OF, CFG) is None  # beyond the 35-day lookback


def test_a_drop_beyond_the_threshold_alerts_and_says_which_dates_were_compared():
    current = scores(
        {"id": "a", "renewal": 0.7, "renewal_drivers": [lowers("onboarding_completion")]},
        {"id": "b", "renewal": 0.75},
        {"id": "c", "renewal": 0.5},
        {"id": "new", "renewal": 0.2},
    )
    hist = history(
        current,
        {
            ("a", DATES[0]): 0.95,
            ("a", DATES[1]): 0.9,  # fell twice, by 0.2 now
            ("b", DATES[1]): 0.85,  # exactly the 0.10 threshold: not beyond it
            ("c", DATES[0]): 0.4,
            ("c", DATES[1]): 0.65,
        },
    )  # rose, then fell 0.15
    hist = hist[~((hist.account_id == "new") & (hist.as_of < AS_OF))]  # no earlier score: no drop
    got = {s.account_id: s for s in drop_signals(inputs(current, hist=hist), CFG, BOOKS, REGISTRY)}
    assert sorted(got) == ["a", "c"]
    a = got["a"]
    assert a.key == "a:renewal_drop" and a.severity == pytest.approx(0.2 / 0.3) and a.frequency == 1.0
    assert a.title == "Renewal likelihood fell 20 points, from 90% on 2026-02-28 to 70% on 2026-03-31"
    assert a.evidence[0].kind == "score" and a.evidence[1].feature == "onboarding_completion"
    assert a.playbook.name == "onboarding_friction"  # the driver that lowers renewal picks the playbook
    assert got["c"].frequency == 0.5 and got["c"].escalated is False
    assert drop_signals(inputs(current, previous=None), CFG, BOOKS, REGISTRY) == []


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
        {"id": "red", "renewal": 0.3, "mrr": 300, "renewal_drivers": [lowers("adoption_rate_28d")]},
        {"id": "yellow", "renewal": 0.6, "upsell": 0.8, "mrr": 200},
        {
            "id": "green",
            "renewal": 0.9,
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
    hist = history(current, {("red", DATES[0]): 0.9})
    ev = [
        quote("red", day(40), "c:1", sentence="Too expensive.", bucket="pricing_perception"),
        quote("green", day(10), "c:2", polarity="green", bucket="upsell_readiness", sentence="We need more seats."),
    ]
    got = {s.key: s for s in tier_signals(inputs(current, hist=hist, evidence=ev), CFG, BOOKS, REGISTRY)}
    assert sorted(got) == ["red:risk_tier:red", "yellow:risk_tier:yellow"]
    red = got["red:risk_tier:red"]
    assert red.severity == pytest.approx(0.7) and red.frequency == pytest.approx(2 / 3) and red.escalated
    assert red.playbook.name == "underused_features"
    assert [e.kind for e in red.evidence] == ["driver", "quote"] and red.evidence[1].text == "Too expensive."
    assert got["yellow:risk_tier:yellow"].playbook.name == "renewal_risk"  # no driver: the fallback
    [expand] = expansion_signals(inputs(current, hist=hist, evidence=ev), CFG, BOOKS)  # not the yellow one
    assert (expand.key, expand.severity, expand.playbook.name) == ("green:expansion", 0.7, "expansion_opportunity")
    assert [e.text for e in expand.evidence] == [
        "Seats under contract is 10 — raises upsell likelihood",
        "We need more seats.",
    ]
    alerts = {a.key: a for a in finish([*got.values(), expand], inputs(current, hist=hist), CFG)}
    assert alerts["red:risk_tier:red"].owner == "CS manager"  # red: the escalation owner of underused features
    assert alerts["green:expansion"].owner == "Growth manager"


def test_evaluate_runs_the_configured_rules_only_and_ranks_by_insight():
    current = scores({"id": "a", "renewal": 0.3, "mrr": 500}, {"id": "b", "renewal": 0.6, "mrr": 100})
    ev = [quote("b", day(1), "c:1"), quote("b", day(2), "c:2")]
    everything = evaluate(inputs(current, evidence=ev), AlertSettings(indicator_levels={}), BOOKS, REGISTRY)
    # a: (0.7 + 1 + 1) / 3; b yellow: (0.4 + 1 + 0.5) / 3; b escalation: (0.8 + 0.5 + 0.5) / 3
    assert [(a.key, a.insight_score) for a in everything] == [
        ("a:risk_tier:red", 0.9),
        ("b:risk_tier:yellow", 0.633333),
        ("b:escalation:renewal_likelihood", 0.6),
    ]
    only = evaluate(inputs(current, evidence=ev), AlertSettings(rules=("escalation",)), BOOKS, REGISTRY)
    assert [a.rule for a in only] == ["escalation"]


# --- state across runs ---------------------------------------------------------------------


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "radar.duckdb"))
    yield connection
    connection.close()


def alerts_for(*accounts: str):
    current = scores(*({"id": a, "renewal": 0.3} for a in accounts))
    return finish(tier_signals(inputs(current), CFG, BOOKS, REGISTRY), inputs(current), CFG)


RULES = ("risk_tier",)


def statuses(alerts) -> dict[str, str]:
    return {a.key: a.status for a in alerts}


def test_an_open_alert_is_not_raised_again(con):
    first = apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)
    assert statuses(first) == {"a:risk_tier:red": "new", "b:risk_tier:red": "new"}
    again = apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)  # the same run twice
    assert statuses(again) == {"a:risk_tier:red": "open", "b:risk_tier:red": "open"}
    later = apply_state(con, alerts_for("a", "b", "c"), AS_OF + timedelta(days=7), RULES, NOW)
    assert statuses(later) == {"a:risk_tier:red": "open", "b:risk_tier:red": "open", "c:risk_tier:red": "new"}
    assert {a.opened_as_of for a in later if a.status == "open"} == {AS_OF}


def test_snooze_and_close_are_respected_by_the_next_runs(con):
    apply_state(con, alerts_for("a", "b"), AS_OF, RULES, NOW)
    until = AS_OF + timedelta(days=14)
    set_status(con, "a:risk_tier:red", "snoozed", until=until, reason="renewal call booked", now=NOW)
    set_status(con, "b:risk_tier:red", "closed", reason="known: budget approved", now=NOW)
    week = apply_state(con, alerts_for("a", "b"), AS_OF + timedelta(days=7), RULES, NOW)
    assert statuses(week) == {"a:risk_tier:red": "snoozed", "b:risk_tier:red": "closed"}
    ended = apply_state(con, alerts_for("a", "b"), until, RULES, NOW)  # the snooze ends on its date
    assert statuses(ended) == {"a:risk_tier:red": "new", "b:risk_tier:red": "closed"}
    kept = stored(con).set_index("key")
    assert kept.loc["b:risk_tier:red", "reason"] == "known: budget approved"
    history_rows = con.execute(
        "SELECT status, reason FROM alert_history WHERE key = 'a:risk_tier:red' ORDER BY changed_at, status"
    ).fetchall()
    assert ("snoozed", "renewal call booked") in history_rows


def test_a_closed_alert_comes_back_only_after_its_condition_cleared(con):
    apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)
    set_status(con, "a:risk_tier:red", "closed", reason="handled", now=NOW)
    assert statuses(apply_state(con, alerts_for("a"), AS_OF + timedelta(days=7), RULES, NOW)) == {
        "a:risk_tier:red": "closed"
    }
    apply_state(con, [], AS_OF + timedelta(days=14), ("indicator",), NOW)  # another rule: no verdict on it
    assert stored(con).set_index("key").loc["a:risk_tier:red", "status"] == "closed"
    apply_state(con, [], AS_OF + timedelta(days=14), RULES, NOW)  # evaluated and clear: resolved
    assert stored(con).set_index("key").loc["a:risk_tier:red", "status"] == "resolved"
    back = apply_state(con, alerts_for("a"), AS_OF + timedelta(days=21), RULES, NOW)
    assert statuses(back) == {"a:risk_tier:red": "new"} and back[0].opened_as_of == AS_OF + timedelta(days=21)


def test_state_changes_need_a_known_key_a_date_and_a_reason(con):
    apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)
    with pytest.raises(AlertError, match="no alert 'zz:risk_tier:red'"):
        set_status(con, "zz:risk_tier:red", "closed", reason="x", now=NOW)
    with pytest.raises(AlertError, match="needs a date"):
        set_status(con, "a:risk_tier:red", "snoozed", reason="x", now=NOW)
    with pytest.raises(AlertError, match="say why"):
        set_status(con, "a:risk_tier:red", "closed", reason=" ", now=NOW)
    set_status(con, "a:risk_tier:red", "closed", reason="done", now=NOW)
    set_status(con, "a:risk_tier:red", "open", reason=None, now=NOW)  # reopened
    assert statuses(apply_state(con, alerts_for("a"), AS_OF, RULES, NOW)) == {"a:risk_tier:red": "open"}
