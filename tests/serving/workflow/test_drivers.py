"""The leadership view: per-family aggregation of SHAP, the low-signal rule, quarter dates,
the advocacy filter, and `radar drivers` end to end on a served project."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.registry import FeatureRegistry, FeatureSpec
from radar.cli import app
from radar.settings import LeadershipSettings
from serving.workflow.drivers import advocates, family_importance, low_signal, quarter_dates

REGISTRY = FeatureRegistry(
    [
        FeatureSpec("adoption_rate_{w}d", "Active users ÷ seats", 1, "usage_events", "higher", "ratio"),
        FeatureSpec("nps_latest", "Latest NPS answer", 11, "feedback", "higher", "score"),
        FeatureSpec("pricing_perception_red_{w}d", "Red pricing cues", "qcf:pricing_perception", "feedback", "lower"),
        FeatureSpec("mrr", "Monthly recurring revenue", "context", "subscriptions", "higher", "currency"),
    ],
    windows=(28, 90),
)
FEATURES = ["adoption_rate_28d", "adoption_rate_90d", "nps_latest", "pricing_perception_red_28d", "mrr"]


# --- aggregation per indicator family ---


def test_a_family_contributes_the_sum_of_its_features_and_importance_is_the_mean_absolute_sum():
    contrib = np.array(
        [
            # adoption 28d, adoption 90d, nps, pricing, mrr
            [0.5, 0.25, -0.5, 0.0, 0.25],  # adoption family +0.75 (churn up: lowers renewal)
            [-0.5, 0.5, 0.25, 0.25, -0.25],  # adoption 0: the two features cancel
            [-0.25, -0.5, 0.25, 0.0, 0.0],  # adoption -0.75
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    found = family_importance(contrib, FEATURES, REGISTRY, inverted=True).set_index("family")
    assert found.loc["1", "features"] == 2 and found.loc["1", "family_name"] == "1. Adoption rate"
    assert found.loc["1", "mean_abs_shap"] == pytest.approx((0.75 + 0 + 0.75 + 0) / 4)
    assert found.loc["11", "mean_abs_shap"] == pytest.approx((0.5 + 0.25 + 0.25) / 4)
    assert found.loc["qcf:pricing_perception", "mean_abs_shap"] == pytest.approx(0.25 / 4)
    total = 0.375 + 0.25 + 0.0625 + 0.125  # context counts in the total
    assert found["share"].to_dict() == pytest.approx(
        {"1": 0.375 / total, "11": 0.25 / total, "qcf:pricing_perception": 0.0625 / total, "context": 0.125 / total}
    )
    # renewal: a positive contribution to churn lowers renewal likelihood
    assert found.loc["1", "lowers_share"] == 0.25 and found.loc["11", "lowers_share"] == 0.5
    assert found["rank"].fillna(0).to_dict() == {"1": 1, "11": 2, "context": 0, "qcf:pricing_perception": 3}
    assert list(found.index) == ["1", "11", "context", "qcf:pricing_perception"]  # largest first
    upsell = family_importance(contrib, FEATURES, REGISTRY, inverted=False).set_index("family")
    assert upsell.loc["1", "lowers_share"] == 0.25 and upsell.loc["11", "lowers_share"] == 0.25  # negative lowers


CONTRACT = FeatureRegistry(
    [
        FeatureSpec("adoption_rate_{w}d", "Active users ÷ seats", 1, "usage_events", "higher", "ratio"),
        FeatureSpec(
            "days_to_next_renewal",
            "Days to the next contract end",
            8,
            "subscriptions",
            "neutral",
            "days",
            kind="context",
        ),
        FeatureSpec("past_renewals", "Renewals so far", 8, "subscriptions", "higher", kind="context"),
        FeatureSpec("days_since_last_qbr", "Days since the last business review", 8, "touchpoints", "lower", "days"),
        FeatureSpec("mrr", "Monthly recurring revenue", "context", "subscriptions", "higher", "currency"),
    ],
    windows=(28,),
)
CONTRACT_FEATURES = ["adoption_rate_28d", "days_to_next_renewal", "past_renewals", "days_since_last_qbr", "mrr"]


def test_context_features_of_any_family_count_as_context_never_as_an_indicator():
    contrib = np.array([[0.2, 1.0, -0.5, 0.1, 0.1], [-0.2, 0.8, 0.3, 0.1, -0.1]])
    found = family_importance(contrib, CONTRACT_FEATURES, CONTRACT, inverted=True).set_index("family")
    # contract timing and past renewals (indicator 8) join MRR in "context": one family, not ranked
    assert found.loc["context", "mean_abs_shap"] == pytest.approx((0.6 + 1.0) / 2)
    assert found.loc["context", "features"] == 3 and not found.loc["context", "indicator"]
    assert found.loc["8", "features"] == 1 and found.loc["8", "mean_abs_shap"] == pytest.approx(0.1)  # the QBR only
    assert found["rank"].dropna().to_dict() == {"1": 1, "8": 2}
    assert found.loc["context", "family_name"].startswith("Context (contract timing")


def test_the_report_ranks_drivers_only_and_says_the_share_of_context():
    from serving.workflow.drivers import DriversReport
    from serving.workflow.drivers_report import drivers_markdown

    day = date(2026, 10, 31)
    parts = []
    for target, contrib in (
        ("renewal", np.array([[0.2, 1.0, -0.5, 0.1, 0.1], [-0.2, 0.8, 0.3, 0.1, -0.1]])),
        ("upsell", np.array([[0.5, 0.1, 0.0, 0.1, 0.2], [-0.5, 0.1, 0.0, 0.1, 0.2]])),
    ):
        imp = family_importance(contrib, CONTRACT_FEATURES, CONTRACT, inverted=target == "renewal")
        parts.append(imp.assign(target=target, as_of=day))
    report = DriversReport(
        as_of=day,
        dates=(day,),
        accounts=2,
        importance=pd.concat(parts, ignore_index=True),
        low_signal=pd.DataFrame(columns=["family", "family_name", "renewal_share", "upsell_share", "read_by_models"]),
        advocates=pd.DataFrame(
            columns=["account_id", "name", "csm_owner", "segment", "mrr", "nps_latest", "health_score"]
            + ["health_band", "renewal_likelihood", "upsell_likelihood"]
        ),
    )
    assert report.top("renewal")["family"].tolist() == ["1", "8"]  # context first by size, yet not ranked
    assert report.context_share("renewal") == pytest.approx(0.8 / (0.8 + 0.2 + 0.1))
    line = report.context_line("renewal")
    assert line == "Context (contract timing, tenure, MRR, plan): 73% of the renewal signal — not shown as drivers"
    assert report.context_line("upsell").startswith(
        "Context (contract timing, tenure, MRR, plan): 33% of the expansion"
    )
    assert report.apart("renewal").empty
    md = drivers_markdown(report, chart=None)
    assert line + "." in md
    ranked = [row for row in md.splitlines() if row.startswith(("| 1 |", "| 2 |", "| 3 |"))]
    assert ranked and not any("Context" in row for row in ranked)


def test_features_outside_the_registry_are_their_own_family():
    found = family_importance(np.array([[1.0, 1.0]]), ["adoption_rate_28d", "mystery"], REGISTRY, True)
    assert set(found["family"]) == {"1", "other"} and not found.set_index("family").loc["other", "indicator"]


# --- low signal ---


def test_an_indicator_is_low_signal_when_its_share_is_under_the_threshold_for_both_targets():
    rows = [
        ("renewal", "1", 0.005),
        ("upsell", "1", 0.2),  # matters for expansion
        ("renewal", "11", 0.005),
        ("upsell", "11", 0.009),  # low for both
        ("renewal", "qcf:pricing_perception", 0.01),
        ("upsell", "qcf:pricing_perception", 0.0),  # at the threshold
        ("renewal", "context", 0.0),
        ("upsell", "context", 0.0),
    ]  # not an indicator
    importance = pd.DataFrame(rows, columns=["target", "family", "share"])
    families = {
        "1": "1. Adoption rate",
        "11": "11. NPS",
        "qcf:pricing_perception": "Feedback: pricing perception",
        "context": "Context",
        "7": "7. Onboarding completion",
    }
    low = low_signal(importance, families, threshold=0.01)
    assert low["family"].tolist() == ["7", "11"]  # lowest first; 7 is read by no model
    assert low.set_index("family")["read_by_models"].to_dict() == {"7": False, "11": True}
    assert low.set_index("family").loc["11", ["renewal_share", "upsell_share"]].tolist() == [0.005, 0.009]
    assert low_signal(importance, families, threshold=0.0).empty


# --- quarters ---


def test_each_quarter_is_its_latest_snapshot_and_the_current_quarter_ends_at_as_of():
    month_ends = list(pd.date_range("2025-01-31", "2026-10-31", freq="ME").date)
    assert quarter_dates(month_ends, date(2026, 10, 31), 4) == [
        date(2026, 3, 31),
        date(2026, 6, 30),
        date(2026, 9, 30),
        date(2026, 10, 31),
    ]
    assert quarter_dates(month_ends, date(2026, 8, 31), 2) == [date(2026, 6, 30), date(2026, 8, 31)]
    gap = [d for d in month_ends if not (date(2026, 4, 1) <= d <= date(2026, 6, 30))]
    assert quarter_dates(gap, date(2026, 9, 30), 3) == [date(2026, 3, 31), date(2026, 9, 30)]  # Q2 has none
    assert quarter_dates(month_ends, date(2026, 10, 31), 1) == [date(2026, 10, 31)]


# --- advocacy ---


def test_advocates_are_promoters_with_green_health_and_a_low_churn_risk():
    scored = pd.DataFrame(
        [
            ("nps8", 8.0, "green", 0.1, 900.0),  # a passive, not a promoter
            ("nps9", 9.0, "green", 0.3, 100.0),
            ("nps10_big", 10.0, "green", 0.2, 5000.0),
            ("amber", 10.0, "amber", 0.1, 800.0),
            ("red_health", 10.0, "red", 0.1, 800.0),
            ("unsure", 10.0, "green", 0.7, 700.0),  # churn risk over half the typical risk
            ("at_level", 9.0, "green", 0.5, None),  # exactly the level counts; no MRR sorts last
            ("no_answer", None, "green", 0.1, 600.0),
            ("no_band", 10.0, None, 0.1, 600.0),
        ],
        columns=["account_id", "nps_latest", "health_band", "churn_lift", "mrr"],
    )
    found = advocates(scored, LeadershipSettings())
    assert found["account_id"].tolist() == ["nps10_big", "nps9", "at_level"]
    stricter = advocates(scored, LeadershipSettings(promoter_min_nps=10, advocate_max_lift=0.8))
    assert stricter["account_id"].tolist() == ["nps10_big", "unsure"]
    nobody = advocates(scored[scored["account_id"] == "nps8"], LeadershipSettings())
    assert nobody.empty and list(nobody.columns) == list(scored.columns)


# --- end to end ---


def test_radar_drivers_reports_top_families_movement_low_signal_and_advocates(served_project, tmp_path):
    root, settings = served_project
    shutil.copytree(root / "out", tmp_path / "out", ignore=shutil.ignore_patterns("digests", "alerts", "reports"))
    with duckdb.connect(str(tmp_path / "out" / "radar.duckdb")) as con:
        latest = pd.Timestamp(con.execute("SELECT max(as_of) FROM snapshots").fetchone()[0])
        # NPS answers 7, 8, 9, 10 in turn (the synthetic snapshots' NPS is noise)
        con.execute(r"UPDATE snapshots SET nps_latest = CAST(regexp_extract(account_id, '\d+') AS INT) % 4 + 7")
        con.execute(
            "CREATE TABLE evidence AS SELECT account_id, ?::TIMESTAMP - INTERVAL 20 DAY AS occurred_at, "
            "'qbr' AS channel, 'touchpoints:' || account_id AS conversation_id, "
            "'We definitely want to renew.' AS sentence, 'renewal_likelihood' AS bucket, "
            "'green' AS polarity, 0.8 AS sentiment FROM snapshots WHERE as_of = ?",
            [latest, latest],
        )
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "200",
        "RADAR_LEADERSHIP__ADVOCATE_MAX_LIFT": "2.0",
    }
    result = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "drivers", "--quarters", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert "Top 5 drivers of renewal" in result.output and "Top 5 drivers of expansion" in result.output
    report = (tmp_path / "out" / "reports" / "drivers.md").read_text()
    png = tmp_path / "out" / "reports" / "drivers_quarters.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](drivers_quarters.png)" in report
    assert report.count("## Top 5 drivers of") == 2 and "## Indicators that carry little signal" in report
    assert "of the renewal signal — not shown as drivers" in report and "of the renewal signal" in result.output
    table = [line for line in report.splitlines() if line.startswith("| 1 |")]
    assert len(table) == 2 and all(line.count("%") >= 2 + 3 for line in table)  # share, direction, 3 quarters
    assert "## Advocates" in report

    from radar.settings import load_settings
    from serving.scoring.champions import load_champions
    from serving.workflow.drivers import drivers_report

    mine = load_settings(root / "radar.toml", output_dir=tmp_path / "out", leadership={"advocate_max_lift": 2.0})
    found = drivers_report(mine, load_champions(mine), quarters=3)
    assert len(found.dates) == 3 and found.dates[-1] == latest.date()
    for target in ("renewal", "upsell"):
        now = found.importance[(found.importance["target"] == target) & (found.importance["as_of"] == found.as_of)]
        assert now["share"].sum() == pytest.approx(1.0)
        assert found.top(target)["rank"].tolist() == [1, 2, 3, 4, 5]
        assert "context" not in found.top(target)["family"].tolist() and 0 < found.context_share(target) < 1
        assert found.movement(target)["family"].tolist() == found.top(target)["family"].tolist()
    adv = found.advocates
    assert len(adv) and (adv["nps_latest"] >= 9).all() and (adv["health_band"] == "green").all()
    assert (adv["churn_lift"] <= 2.0).all()
    first = adv["account_id"].iloc[0]
    assert [q.text for q in found.quotes[first]] == ["We definitely want to renew."]
    assert f"“We definitely want to renew.” (qbr, {(latest - pd.Timedelta(days=20)).date()})" in report
