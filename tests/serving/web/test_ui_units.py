"""The web pages' pure parts on hand-built rows: scorecard colours and trends, the chart
and its summary, portfolio filters and pages, quotes by bucket, the sign-in cookie and redirects."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl

import pandas as pd
import pytest

from features.registry import INDICATORS, QCF_BUCKETS
from features.snapshot import feature_registry
from radar.settings import Settings
from serving.render.charts import Series, likelihood_png, scale_top, summary
from serving.web.app import _safe_next
from serving.web.pages import PortfolioQuery, portfolio_view, query_from, quote_groups
from serving.workflow.scorecard import measures_of, portfolio_levels, scorecard


@pytest.fixture(scope="module")
def registry():
    return feature_registry(Settings())


LEVELS = {"adoption_rate_28d": (0.2, 0.0), "days_since_last_activity": (14.0, 60.0)}


def _measure(cards, feature):
    return next(m for card in cards for m in card.measures if m.feature == feature)


def test_every_indicator_has_a_row_with_its_owner(registry):
    cards = scorecard(pd.Series({}, dtype=object), None, registry, LEVELS, {})
    assert [c.number for c in cards] == list(range(1, 16))
    assert [c.owner for c in cards] == [INDICATORS[n][1] for n in range(1, 16)]
    assert measures_of(registry, LEVELS)[1] == ["adoption_rate_28d"]  # configured level wins over the headline
    assert measures_of(registry, LEVELS)[3] == ["activation_rate"]  # headline when none is configured
    assert all(c.status is None for c in cards)  # no values: no colour, "no data"
    assert _measure(cards, "activation_rate").expected == "no data"


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0.25, "green"),
        (0.2, "green"),  # at expected: not worse
        (0.19, "amber"),
        (0.1001, "amber"),  # worse, less than halfway to worst
        (0.1, "red"),
        (0.0, "red"),
        (-1.0, "red"),  # halfway and beyond
    ],
)
def test_configured_level_higher_is_better(registry, value, status):
    cards = scorecard(pd.Series({"adoption_rate_28d": value}), None, registry, LEVELS, {})
    m = _measure(cards, "adoption_rate_28d")
    assert m.status == status and m.expected == "expected at least 0.20"
    assert cards[0].status == status


@pytest.mark.parametrize(("value", "status"), [(14.0, "green"), (30.0, "amber"), (37.0, "red"), (90.0, "red")])
def test_configured_level_lower_is_better(registry, value, status):
    cards = scorecard(pd.Series({"days_since_last_activity": value}), None, registry, LEVELS, {})
    m = _measure(cards, "days_since_last_activity")
    assert m.status == status and m.expected == "expected at most 14"


def test_portfolio_reference_quarter_and_tenth_with_ties_green(registry):
    latest = pd.DataFrame(
        {"activation_rate": [i / 100 for i in range(100)], "new_products_90d": [0.0] * 95 + [1.0] * 5}
    )
    ref = portfolio_levels(latest, ["activation_rate", "new_products_90d"], registry)
    card = lambda v, f: _measure(scorecard(pd.Series({f: v}), None, registry, {}, ref), f)
    assert card(0.5, "activation_rate").status == "green"
    assert card(0.2, "activation_rate").status == "amber"  # worst quarter
    assert card(0.05, "activation_rate").status == "red"  # worst tenth
    assert card(0.5, "activation_rate").expected.startswith("portfolio median")
    assert card(0.0, "new_products_90d").status == "green"  # most accounts add nothing: not a red flag


def test_trends_say_up_or_down_and_whether_that_is_better(registry):
    now = pd.Series({"adoption_rate_28d": 0.5, "days_since_last_activity": 20.0, "activation_rate": 0.4})
    before = pd.Series({"adoption_rate_28d": 0.3, "days_since_last_activity": 10.0, "activation_rate": 0.4})
    cards = scorecard(now, before, registry, LEVELS, {})
    up = _measure(cards, "adoption_rate_28d")
    assert (up.trend, up.better, up.previous) == ("up", True, "0.30")
    worse = _measure(cards, "days_since_last_activity")
    assert (worse.trend, worse.better) == ("up", False)  # more idle days is worse
    assert (_measure(cards, "activation_rate").trend, _measure(cards, "activation_rate").better) == ("flat", None)
    assert _measure(scorecard(now, None, registry, LEVELS, {}), "adoption_rate_28d").trend is None


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_chart_is_a_png_with_a_text_summary():
    dates = [date(2025, m, 28) for m in range(1, 7)]
    lines = [
        Series("Renewal likelihood", [0.9, 0.8, 0.7, 0.6, 0.5, 0.35], "#1d4ed8"),
        Series("Upsell likelihood", [0.1, None, 0.2, 0.3, 0.4, 0.6], "#7e22ce", (7, 4)),
    ]
    png = likelihood_png(dates, lines, bands=[(0, 0.4, "#fde2e1", "red tier")], size=(6.4, 2.6), dpi=100)
    assert _png_size(png) == (640, 260)
    assert summary(dates, lines) == (
        "Renewal likelihood 90% on 2025-01-28 and 35% on 2025-06-28; Upsell likelihood 10% on 2025-01-28 and 60% on 2025-06-28"
    )


def test_summary_gives_small_risks_their_precision_and_skips_missing_values():
    dates = [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]
    lines = [
        Series("Churn risk next 90 days", [0.004, 0.2, 0.084], "#000"),
        Series("Upsell", [None, 0.3, float("nan")], "#111"),
    ]
    assert (
        summary(dates, lines)
        == "Churn risk next 90 days 0.4% on 2025-01-31 and 8.4% on 2025-03-31; Upsell 30% on 2025-02-28"
    )


def test_the_scale_rises_a_little_above_the_largest_value():
    assert scale_top([0.02, 0.05]) == 0.06 and scale_top([0.02], at_least=0.08) == 0.1  # 1% steps to 10%, then 5%
    assert scale_top([0.3, None, float("nan")]) == 0.35 and scale_top([0.95]) == 1.0 and scale_top([]) == 1.0


def test_chart_and_summary_of_one_snapshot_or_none():
    one = [date(2025, 1, 31)]
    lines = [Series("Renewal likelihood", [0.5], "#000"), Series("Upsell likelihood", [None], "#111", (2, 2))]
    assert summary(one, lines) == "Renewal likelihood 50% on 2025-01-31"
    assert summary([], [Series("Renewal likelihood", [], "#000")]) == "no scores"
    assert _png_size(likelihood_png(one, lines, dpi=100)) == (640, 280)
    assert _png_size(likelihood_png([], [], dpi=100)) == (640, 280)


def _scored(n: int = 12) -> pd.DataFrame:
    owners = ["Ana", "Ben", "Chloe"]
    risk = [0.7 if i % 4 == 0 else 0.4 if i % 4 == 1 else 0.1 for i in range(n)]
    return pd.DataFrame(
        {
            "account_id": [f"a{i:02d}" for i in range(n)],
            "name": [f"Shop {i}" for i in range(n)],
            "segment": ["smb" if i % 2 else "enterprise" for i in range(n)],
            "csm_owner": [owners[i % 3] for i in range(n)],
            "mrr": [100.0 * (i + 1) for i in range(n)],
            "churn_risk": risk,
            "churn_lift": [r / 0.1 for r in risk],
            "expected_mrr_loss": [100.0 * (i + 1) * risk[i] for i in range(n)],
            "days_to_next_renewal": [30 + i for i in range(n)],
            "next_renewal": [None] * n,
            "renewal_likelihood": [float("nan")] * n,
            "risk_summary": [f"churn risk next 90 days {r:.0%}" for r in risk],
            "risk_tier": ["red" if i % 4 == 0 else "yellow" if i % 4 == 1 else "green" for i in range(n)],
            "upsell_likelihood": [0.7 if i % 3 == 0 else 0.1 for i in range(n)],
            "opportunity": [i % 3 == 0 for i in range(n)],
            "health_score": [50.0] * n,
            "health_band": ["amber"] * n,
            "renewal_drivers": [
                [
                    {
                        "feature": "adoption_rate_28d",
                        "value": 0.1,
                        "contribution": 0.4,
                        "reason": "Active users ÷ seats is 0.10 — raises churn risk",
                    }
                ]
            ]
            * n,
            "upsell_drivers": [[]] * n,
            "recommended_action": ["Call them"] * n,
            "action_owner": ["Account manager"] * n,
        }
    )


def test_portfolio_ranks_everyone_by_expected_mrr_lost_and_pages():
    scored = _scored()
    view = portfolio_view(scored, date(2025, 5, 31), None, PortfolioQuery(), page_size=5, inverted=True)
    risk = [r["mrr"] * r["churn_risk"] for r in view.rows]
    assert risk == sorted(risk, reverse=True) and view.total == 12 and view.pages == 3 and len(view.rows) == 5
    assert {"green", "red"} <= {r["tier"] for r in view.rows}
    assert view.rows[0]["driver"].startswith("Active users")
    last = portfolio_view(scored, date(2025, 5, 31), None, PortfolioQuery(page=99), page_size=5, inverted=True)
    assert last.page == 3 and len(last.rows) == 2 and (last.first, last.last) == (11, 12)
    s = view.summary
    assert (s["accounts"], s["red"], s["yellow"], s["green"], s["opportunities"], s["alerts"]) == (12, 3, 3, 6, 4, None)


def test_portfolio_filters():
    scored = _scored()
    view = lambda **q: portfolio_view(scored, date(2025, 5, 31), None, PortfolioQuery(**q), 50, True)
    assert {r["csm_owner"] for r in view(owner="Ben").rows} == {"Ben"} and view(owner="Ben").total == 4
    assert view(owner="Account manager").total == 12  # the role the action goes to
    assert {r["segment"] for r in view(segment="smb").rows} == {"smb"}
    assert {r["tier"] for r in view(tier="at_risk").rows} == {"red", "yellow"}
    assert [r["name"] for r in view(q="shop 11").rows] == ["Shop 11"] and view(q="A03").total == 1
    assert view(owner="Ben").summary["accounts"] == 4  # the summary follows owner and segment
    opp = view(tab="opportunities")
    assert opp.total == 4 and all(r["opportunity"] for r in opp.rows)


def test_alert_queue_joins_accounts_and_filters_by_either_owner():
    alerts = pd.DataFrame(
        {
            "key": ["k1", "k2", "k3"],
            "account_id": ["a01", "a02", "a03"],
            "rule": ["risk_tier", "indicator", "expansion"],
            "subject": [None, "x", None],
            "status": ["open"] * 3,
            "opened_as_of": [date(2025, 5, 31)] * 3,
            "last_seen_as_of": [date(2025, 5, 31)] * 3,
            "insight_score": [0.7, 0.45, 0.2],
            "routing": ["meeting", "review", "tag"],
            "owner": ["Retention lead", "Ben", "Growth manager"],
            "title": ["t1", "t2", "t3"],
        }
    )
    view = portfolio_view(_scored(), date(2025, 5, 31), alerts, PortfolioQuery(tab="alerts"), 50, True)
    assert [r["key"] for r in view.rows] == ["k1", "k2", "k3"] and view.rows[0]["name"] == "Shop 1"
    assert view.summary["alerts"] == 3 and view.summary["meetings"] == 1
    ben = portfolio_view(_scored(), date(2025, 5, 31), alerts, PortfolioQuery(tab="alerts", owner="Ben"), 50, True)
    assert [r["key"] for r in ben.rows] == ["k1", "k2"]  # a01 is Ben's account; k2 is routed to Ben


def test_query_string_round_trip_and_untrusted_back_links():
    q = PortfolioQuery(tab="alerts", owner="Ana Lee", segment="smb", tier=None, q="a&b", page=3)
    assert query_from(dict(parse_qsl(q.params()))) == q
    assert PortfolioQuery().params() == "" and PortfolioQuery(page=2).params(page=1) == ""
    junk = query_from({"tab": "<script>", "tier": "purple", "page": "-4", "owner": "x" * 500, "evil": "1"})
    assert junk == PortfolioQuery(owner="x" * 200)


def test_quotes_grouped_by_bucket_newest_first():
    evidence = pd.DataFrame(
        {
            "occurred_at": pd.to_datetime(["2025-05-02", "2025-04-01", "2025-05-01", "2025-03-01"]),
            "channel": ["chat", "call", "email", "qbr"],
            "conversation_id": ["c1", "c2", "c3", "c4"],
            "sentence": ["We may leave.", "Happy to renew.", "Too expensive.", "Not sure."],
            "bucket": ["renewal_likelihood", "renewal_likelihood", "pricing_perception", "renewal_likelihood"],
            "polarity": ["red", "green", "red", "gray"],
            "negated": [False, False, False, True],
            "expression": ["leave", "happy to renew", "too expensive", "sure"],
            "sentiment": [-0.5, 0.6, -0.4, 0.0],
        }
    )
    evidence = evidence.sort_values("occurred_at", ascending=False)
    groups = quote_groups(evidence, per_bucket=2)
    assert [g["bucket"] for g in groups] == list(QCF_BUCKETS)
    renewal = groups[0]
    assert (renewal["red"], renewal["green"], renewal["gray"], renewal["total"]) == (1, 1, 1, 3)
    assert [q["sentence"] for q in renewal["quotes"]] == ["We may leave.", "Happy to renew."]
    assert renewal["quotes"][0]["polarity_text"] == "Risk"
    assert quote_groups(None, 3) is None


def test_a_csm_views_their_own_book_and_a_leader_everything():
    from serving.web.users import User, viewer_of

    frame = pd.DataFrame({"account_id": ["a", "b", "c"], "csm_owner": ["Ana", "Bo", None]})
    ana = viewer_of(User("ana", "csm", "Ana"))
    assert list(ana.visible(frame)["account_id"]) == ["a"] and ana.sees("Ana") and not ana.sees("Bo")
    assert not ana.sees(None) and not ana.sees_all
    assert list(viewer_of(User("kim", "csm", None)).visible(frame)["account_id"]) == []  # owner = their name
    lea = viewer_of(User("lea", "leader", None))
    assert lea.visible(frame) is frame and lea.sees(None) and lea.sees_all


def test_session_store_reads_hostile_ids_as_no_session(tmp_path):
    import asyncio

    from serving.web.sessions import SqliteSessionStore

    store = SqliteSessionStore(tmp_path / "access.sqlite")
    sid = "ab" * 16

    async def run():
        assert await store.read(sid, 60) == b""  # no file yet
        await store.write(sid, b'{"user": "ana"}', 60, 60)
        assert await store.read(sid, 60) == b'{"user": "ana"}'
        for hostile in ("9" * 5000 + ".sig", "", "AB" * 16, "' OR 1=1 --", "\x00" * 40):
            assert await store.read(hostile, 60) == b""
        await store.remove(sid)
        assert await store.read(sid, 60) == b""

    asyncio.run(run())


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/ui/account/a1?back=x", "/ui/account/a1?back=x"),
        ("https://evil.example/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/ui/\\evil", "/ui/"),
        (None, "/ui/"),
        ("/accounts/at-risk", "/ui/"),
    ],
)
def test_login_only_returns_to_these_pages(target, safe):
    assert _safe_next(target) == safe
