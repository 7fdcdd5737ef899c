"""`radar backtest`: the figures on a hand-built portfolio whose answers are worked out by
hand, and the command end to end on the served project."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from typer.testing import CliRunner

from radar.settings import ServingSettings
from serving.workflow.backtest import (
    Backtest,
    alert_counts,
    call_list_capture,
    churns_from_labels,
    contract_kind,
    date_counts,
    figures,
    fixed_tiers,
    health_flags,
    lead_summary,
    lead_times,
    parse_ranges,
    pooled,
    read_latest,
    sample_status,
    save_latest,
    sweep,
)

D1, D2 = date(2025, 1, 31), date(2025, 2, 28)


def portfolio() -> pd.DataFrame:
    """Ten accounts, two CSM owners; churners a1, a3, a4, b1 (churned MRR 1000 + 2000 + 300 + 400 = 3700).

    Model tiers: red a1 a2 b1, yellow a3 b2. Fixed cut-offs (1 - churn risk < 0.4 red,
    < 0.7 yellow): b1 red (0.35), a1 yellow (0.65), the rest green. Health: the 5 lowest
    are a4 10, a1 20, a3 30, b1 40, a6 50. Expected MRR lost (mrr x risk), A: a1 350, a3 200,
    a2 100, a5 8, a4 6, a6 1; B: b1 260, b2 30, b3 2, b4 1."""
    rows = [
        # id, owner, mrr, churn_risk, tier, health, upsell, opportunity, churned, expanded
        ("a1", "Ana", 1000, 0.35, "red", 20, 0.10, False, 1, 0),
        ("a2", "Ana", 500, 0.20, "red", 80, 0.10, False, 0, 0),
        ("a3", "Ana", 2000, 0.10, "yellow", 30, 0.10, False, 1, 0),
        ("a4", "Ana", 300, 0.02, "green", 10, 0.60, True, 1, 0),
        ("a5", "Ana", 800, 0.01, "green", 90, 0.60, True, 0, 1),
        ("a6", "Ana", 100, 0.01, "green", 50, 0.20, True, 0, 1),
        ("b1", "Ben", 400, 0.65, "red", 40, 0.10, False, 1, 0),
        ("b2", "Ben", 600, 0.05, "yellow", 60, 0.10, False, 0, 0),
        ("b3", "Ben", 200, 0.01, "green", 70, 0.10, False, 0, 0),
        ("b4", "Ben", 100, 0.01, "green", 95, 0.10, False, 0, 0),
    ]
    cols = [
        "account_id",
        "csm_owner",
        "mrr",
        "churn_risk",
        "risk_tier",
        "health_score",
        "upsell_likelihood",
        "opportunity",
        "churned",
        "expanded",
    ]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.assign(expected_mrr_loss=frame["mrr"] * frame["churn_risk"], days_to_next_renewal=30.0)


def alerts() -> pd.DataFrame:
    """Risk alerts: meeting a1 b1, review a3 a2, tag a4 b3; expansion: a5 (tag), a6 (review); one capped."""
    rows = [
        ("a1", "meeting", "risk", False),
        ("b1", "meeting", "risk", False),
        ("a3", "review", "risk", False),
        ("a2", "review", "risk", True),
        ("a4", "tag", "risk", False),
        ("b3", "tag", "risk", False),
        ("a5", "tag", "expansion", False),
        ("a6", "review", "expansion", False),
    ]
    return pd.DataFrame(rows, columns=["account_id", "routing", "kind", "capped"])


def test_fixed_cutoffs_and_health_ranking():
    assert list(fixed_tiers([0.65, 0.35, 0.2, 0.61])) == ["red", "yellow", "green", "red"]
    # lowest health first, missing last, ties by account id
    assert list(health_flags([50, None, 10, 50], ["d", "a", "c", "b"], 3)) == [True, False, True, True]
    assert list(health_flags([50, None], ["d", "a"], 0)) == [False, False]
    assert list(contract_kind(["month", "year", 12, "1", None, "quarter"])) == [
        "monthly",
        "annual",
        "annual",
        "monthly",
        "unknown",
        "other",
    ]


def test_one_date_tiers_baselines_and_opportunities():
    f = figures(date_counts(portfolio(), top_n=2))
    assert (f["accounts"], f["churners"], f["churned_mrr"]) == (10, 4, 3700.0)
    m = f["model"]
    assert (m["red"]["accounts"], m["red"]["churned"], m["red"]["share"]) == (3, 2, 0.3)
    assert m["red"]["precision"] == pytest.approx(2 / 3)
    assert (m["yellow"]["accounts"], m["yellow"]["churned"], m["yellow"]["precision"]) == (2, 1, 0.5)
    assert (m["flagged"]["accounts"], m["flagged"]["churned"], m["flagged"]["recall"]) == (5, 3, 0.75)
    assert m["red"]["recall"] == 0.5 and m["yellow"]["recall"] == 0.25
    fixed = f["fixed"]
    assert (fixed["red"]["accounts"], fixed["yellow"]["accounts"], fixed["flagged"]["recall"]) == (1, 1, 0.5)
    health = f["health"]["flagged"]  # as many as red + yellow: a4 a1 a3 b1 a6
    assert (health["accounts"], health["churned"], health["precision"], health["recall"]) == (5, 4, 0.8, 1.0)
    opp = f["opportunities"]
    assert (opp["model"]["accounts"], opp["model"]["expanded"], opp["model"]["recall"]) == (3, 2, 1.0)
    assert opp["model"]["precision"] == pytest.approx(2 / 3)
    assert (opp["fixed"]["accounts"], opp["fixed"]["precision"]) == (2, 0.5)  # upsell > 0.5: a4 a5


def test_top_of_each_call_list():
    owners = call_list_capture(portfolio(), top_n=2)
    # Ana's call list starts a1 (350), a3 (200): 3000 of her 3300 churned; health: a4, a1 = 1300
    assert owners["Ana"] == {"churned_mrr": 3300.0, "model": 3000.0, "health": 1300.0}
    # Ben: b1 (260), b2 (30) by the model; b1 (40), b2 (60) by health: 400 of 400 both
    assert owners["Ben"] == {"churned_mrr": 400.0, "model": 400.0, "health": 400.0}
    top = figures(date_counts(portfolio(), top_n=2))["top10"]
    assert top["model"] == {"captured_mrr": 3400.0, "share": pytest.approx(3400 / 3700)}
    assert top["health"]["share"] == pytest.approx(1700 / 3700)
    # ten per owner covers everyone here
    assert figures(date_counts(portfolio()))["top10"]["model"]["share"] == 1.0
    nobody = call_list_capture(portfolio().assign(csm_owner=None), top_n=1)
    assert nobody == {"(no owner)": {"churned_mrr": 3700.0, "model": 1000.0, "health": 300.0}}


def test_alerts_by_routing():
    a = figures(date_counts(portfolio(), alerts()))["alerts"]
    assert a["meeting"] == {"alerts": 2, "accounts": 2, "churned": 2, "precision": 1.0}
    assert a["review"] == {"alerts": 2, "accounts": 2, "churned": 1, "precision": 0.5}
    assert a["tag"] == {"alerts": 2, "accounts": 2, "churned": 1, "precision": 0.5}
    assert a["review_capped"] == {"alerts": 1, "accounts": 1, "churned": 0, "precision": 0.0}  # a2
    assert (a["any"]["accounts"], a["any"]["churned"]) == (6, 4)
    assert a["any"]["precision"] == pytest.approx(4 / 6)
    assert a["expansion"] == {"accounts": 2, "expanded": 2, "precision": 1.0}
    assert a["capped"] == 1
    # an account with two risk alerts of one routing counts once
    twice = pd.concat([alerts(), alerts().iloc[[0]]], ignore_index=True)
    c = alert_counts(twice, ["a1"], [])
    assert (c["alerts.meeting.alerts"], c["alerts.meeting.accounts"], c["alerts.meeting.churned"]) == (3, 2, 1)


def test_pooled_over_dates():
    second = pd.DataFrame(
        {
            "account_id": ["c1", "c2", "c3", "c4"],
            "csm_owner": "Chloe",
            "mrr": [100.0, 100.0, 100.0, 100.0],
            "churn_risk": [0.5, 0.01, 0.01, 0.01],
            "risk_tier": ["red", "green", "green", "green"],
            "health_score": [90, 10, 50, 60],
            "upsell_likelihood": 0.1,
            "opportunity": False,
            "churned": [1, 0, 0, 0],
            "expanded": 0,
        }
    )
    f = figures(pooled([date_counts(portfolio()), date_counts(second)]))
    assert (f["accounts"], f["churners"]) == (14, 5)
    assert f["model"]["flagged"]["recall"] == pytest.approx(4 / 5)  # 3 of 4, then 1 of 1
    assert f["model"]["red"]["precision"] == pytest.approx(3 / 4)
    assert f["health"]["flagged"]["recall"] == pytest.approx(4 / 5)  # c2 (health 10) flagged on the 2nd date
    assert f["churn_rate"] == pytest.approx(5 / 14)


def lead_panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    flags = [
        # account, as_of, billing, flagged
        ("x1", "2024-08-31", "month", True),  # 196 days before its churn: outside the lookback
        ("x1", "2024-09-30", "month", False),
        ("x1", "2024-10-31", "month", True),  # 135 days before 2025-03-15
        ("x1", "2024-11-30", "month", True),
        ("x2", "2024-12-31", "year", False),
        ("x2", "2025-01-31", "year", True),  # 150 days before 2025-06-30
        ("x2", "2025-05-31", "year", True),
        ("x3", "2025-01-31", "month", False),
        ("y", "2024-12-31", "month", True),  # 10 days before its first churn, not the second
        ("y", "2025-02-28", "month", True),  # 51 days before the second churn (2025-04-20)
        ("z", "2025-04-30", "month", False),
        ("z", "2025-05-31", "month", True),  # the churn day itself: lead 0
    ]
    panel = pd.DataFrame(flags, columns=["account_id", "as_of", "billing_period", "model"])
    panel["as_of"] = pd.to_datetime(panel["as_of"]).dt.date
    churns = pd.DataFrame(
        {
            "account_id": ["x1", "x2", "x3", "y", "y", "z"],
            "churn_date": pd.to_datetime(
                ["2025-03-15", "2025-06-30", "2025-03-01", "2025-01-10", "2025-04-20", "2025-05-31"]
            ).date,
        }
    )
    return panel, churns


def test_lead_times_by_hand():
    panel, churns = lead_panel()
    leads = lead_times(panel, churns).set_index(["account_id", "churn_date"])
    assert leads.loc[("x1", date(2025, 3, 15)), "first_model"] == date(2024, 10, 31)
    assert leads.loc[("x1", date(2025, 3, 15)), "lead_model"] == 135
    assert leads.loc[("x2", date(2025, 6, 30)), "lead_model"] == 150
    assert leads.loc[("x2", date(2025, 6, 30)), "contract"] == "annual"
    assert math.isnan(leads.loc[("x3", date(2025, 3, 1)), "lead_model"])
    assert leads.loc[("y", date(2025, 1, 10)), "lead_model"] == 10
    assert leads.loc[("y", date(2025, 4, 20)), "lead_model"] == 51  # not 110 from the earlier relationship
    assert leads.loc[("z", date(2025, 5, 31)), "lead_model"] == 0
    s = lead_summary(lead_times(panel, churns))
    assert s["all"] == {"churns": 6, "flagged": 5, "median_days": 51.0}  # 0 10 51 135 150
    assert s["monthly"] == {"churns": 5, "flagged": 4, "median_days": 30.5}  # 0 10 51 135
    assert s["annual"] == {"churns": 1, "flagged": 1, "median_days": 150.0}
    shorter = lead_summary(lead_times(panel, churns, lookback_days=120))
    # x1 from 2024-11-30 (105 days), x2 from 2025-05-31 (30 days): leads 0 10 30 51 105
    assert shorter["all"] == {"churns": 6, "flagged": 5, "median_days": 30.0}


def test_sweep_by_hand():
    panel = pd.DataFrame(
        {
            "churn_risk": [0.5, 0.35, 0.25, 0.18, 0.12, 0.05],  # 5x 3.5x 2.5x 1.8x 1.2x 0.5x a base rate of 0.1
            "churned": [1, 0, 1, 1, 0, 0],
            "sample": ["in-sample"] * 3 + ["out-of-sample"] * 3,
        }
    )
    grid = sweep(panel, 0.1, ServingSettings(), red=(1.25, 3.0), yellow=(1.5, 2.0)).set_index(
        ["red_lift", "yellow_lift"]
    )
    assert list(grid.index) == [(3.0, 1.5), (3.0, 2.0)]  # yellow above red is skipped
    r = grid.loc[(3.0, 1.5)]
    assert (r["red_share"], r["flagged_share"], r["recall"], r["precision"]) == (2 / 6, 4 / 6, 1.0, 0.75)
    assert r["red_recall"] == pytest.approx(1 / 3)
    assert (r["oos_flagged_share"], r["oos_recall"]) == (1 / 3, 1.0)  # 1.8x flagged, and it churned
    r = grid.loc[(3.0, 2.0)]
    assert r["flagged_share"] == 0.5 and r["recall"] == pytest.approx(2 / 3) and r["oos_recall"] == 0.0
    floored = sweep(panel, 0.1, ServingSettings(risk_floor=0.3), red=(3.0,), yellow=(1.5,))
    assert floored.loc[0, "flagged_share"] == pytest.approx(2 / 6)


def test_sample_status_from_the_recorded_split():
    ranges = parse_ranges(
        {"split.train": "2024-01-31..2025-01-31 (13 dates)", "split.calibration": "2025-04-30..2025-05-31 (2 dates)"}
    )
    assert ranges == {
        "train": (date(2024, 1, 31), date(2025, 1, 31)),
        "calibration": (date(2025, 4, 30), date(2025, 5, 31)),
    }
    assert sample_status(date(2024, 6, 30), ranges, 90) == "in-sample"
    assert sample_status(date(2025, 3, 31), ranges, 90) == "in-sample"  # the gap before calibration
    assert sample_status(date(2025, 6, 30), ranges, 90) == "label overlap"
    assert sample_status(date(2025, 8, 29), ranges, 90) == "out-of-sample"  # 2025-05-31 + 90 days
    assert sample_status(date(2023, 12, 31), ranges, 90) == "before training"
    assert sample_status(date(2025, 8, 29), {}, 90) == "unknown"


def test_churns_from_labels():
    calendar = [date(2025, m, 1) for m in range(1, 6)]
    labels = pd.DataFrame(
        {
            "account_id": ["p"] * 5 + ["q"] * 2,
            "as_of": calendar + calendar[:2],
            "churned": [0, 1, 1, 0, 1, 0, None],
        }
    )
    found = churns_from_labels(labels, calendar)
    assert found.to_dict("records") == [
        {"account_id": "p", "churn_date": date(2025, 3, 1)},
        {"account_id": "p", "churn_date": date(2025, 5, 1)},
    ]


def backtest_of_two_dates() -> Backtest:
    """D1 in-sample, D2 out-of-sample; x1 churns 2025-03-15, flagged on D1 only; x2 2025-04-30, flagged on D2."""
    counts = [date_counts(portfolio()), date_counts(portfolio().assign(risk_tier="green"))]
    dates = [
        {"as_of": str(d), "sample": s, "counts": c, "figures": figures(c), "owners": call_list_capture(portfolio())}
        for d, s, c in zip((D1, D2), ("in-sample", "out-of-sample"), counts, strict=True)
    ]
    churns = pd.DataFrame(
        {
            "account_id": ["x1", "x2"],
            "churn_date": [date(2025, 3, 15), date(2025, 4, 30)],
            "contract": ["monthly", "annual"],
            **{f"first_{r}": [D1, D2] for r in ("model", "fixed", "health")},
            **{f"lead_{r}": [43.0, 61.0] for r in ("model", "fixed", "health")},
        }
    )
    ranges = {"train": (date(2024, 1, 31), date(2024, 10, 31))}  # out-of-sample from 2025-01-29
    ranges["calibration"] = (date(2024, 11, 30), date(2024, 11, 30))  # ... from 2025-02-28
    model = {"name": "radar-renewal", "version": "3", "base_rate": 0.1, "ranges": {}, "ranges_parsed": ranges}
    return Backtest(
        dates=dates,
        churns=churns,
        panel=pd.DataFrame(),
        models={"renewal": model, "upsell": model | {"name": "radar-upsell"}},
        settings={"horizon_days": 90, "red_lift": 3.0, "yellow_lift": 1.5, "risk_floor": 0.02},
        scored_dates=[D1, D2],
        churn_source="subscriptions",
        created_at=datetime(2025, 6, 1, tzinfo=UTC),
    )


def test_overall_all_dates_and_out_of_sample_apart():
    result = backtest_of_two_dates()
    overall = result.overall()
    assert overall["all"]["churners"] == 8 and overall["all"]["model"]["flagged"]["churned"] == 3
    assert overall["all"]["lead_days"]["model"]["all"] == {"churns": 2, "flagged": 2, "median_days": 52.0}
    oos = overall["out_of_sample"]
    assert oos["dates"] == [str(D2)] and oos["model"]["flagged"]["accounts"] == 0
    # out-of-sample lead times count flags on out-of-sample dates only, for churns in that span
    assert oos["lead_days"]["model"]["all"] == {"churns": 2, "flagged": 1, "median_days": 61.0}
    assert overall["last_quarter"]["dates"] == [str(D1), str(D2)]
    assert result.run_name == "backtest 2025-01-31..2025-02-28 renewal v3"
    head = result.document()["headline"]
    assert head["recall"] == 3 / 8 and head["health"]["recall"] == 4 / 8


def test_saved_atomically_and_read_back(tmp_path):
    document = json.loads(json.dumps(backtest_of_two_dates().document(), default=str))
    path = save_latest(document, tmp_path)
    assert path == tmp_path / "reports" / "backtest.json"
    assert read_latest(tmp_path) == document
    save_latest(document | {"span": "again"}, tmp_path)
    assert read_latest(tmp_path)["span"] == "again"
    assert [p.name for p in path.parent.iterdir()] == ["backtest.json"]  # no temporary file left
    path.write_text("{not json")
    assert read_latest(tmp_path) is None
    assert read_latest(tmp_path / "nowhere") is None


def test_leadership_page_section(tmp_path):
    from html import unescape

    from serving.web.app import ENV
    from serving.web.pages import backtest_view

    assert backtest_view(None) is None and backtest_view({"kind": "radar-backtest", "headline": {}}) is None
    save_latest(json.loads(json.dumps(backtest_of_two_dates().document(), default=str)), tmp_path)
    view = backtest_view(read_latest(tmp_path))
    assert (view["span"], view["n_dates"], view["model"]) == ("2025-01-31 to 2025-02-28", 2, "radar-renewal v3")
    assert view["lead_text"] == "52 days" and view["out_of_sample"] is False
    empty = {"as_of": D2, "accounts": 0, "dates": [D2], "targets": [], "low": [], "threshold": 0.01}
    models = dict.fromkeys(("renewal_model", "renewal_model_version", "upsell_model", "upsell_model_version"), "m")
    context = {"view": empty | {"advocates": [], "found": 0}, "chart": "", "base": "/ui", "models": models}
    context["signed_in"] = False
    html = unescape(ENV.get_template("leadership.html").render(backtest=view, title="Leadership", **context))
    section = html[html.index("How the radar did last quarter") :]
    section = section[: section.index("</section>")]
    assert "3 of 8 (38%)" in section  # churners caught by the radar, and the health score's 50%
    assert '<td class="num">50%</td>' in section
    assert "52 days (monthly 43 days, annual 61 days); 2 of 2 churns flagged" in section
    assert "red at 3x, yellow at 1.5x the typical churn risk" in section
    assert "label overlap" in section or "in-sample" in section  # the dates are not out-of-sample
    html = ENV.get_template("leadership.html").render(backtest=None, title="Leadership", **context)
    assert "How the radar did" not in html


# --- the command on the served project ---


@pytest.fixture
def project(served_project, tmp_path):
    import shutil

    root, settings = served_project
    shutil.copytree(settings.database_path.parent, tmp_path / "out")
    env = {"RADAR_CONFIG_FILE": None, "RADAR_OUTPUT_DIR": str(tmp_path / "out"), "COLUMNS": "200"}
    return root / "radar.toml", env, tmp_path


def test_backtest_command_prints_the_tables(project):
    from mlflow import MlflowClient

    from radar.cli import app
    from radar.settings import load_settings
    from training.track import configure

    config, env, tmp = project
    got = CliRunner().invoke(app, ["--config", str(config), "backtest", "--dates", "3", "--sweep"], env=env)
    assert got.exit_code == 0, got.output
    out = got.output
    assert "Per date" in out and "Overall, all dates" in out and "health score" in out and "fixed cut-offs" in out
    assert "churners caught (recall)" in out and "Sweep over all dates" in out and "meeting" in out
    saved = read_latest(tmp / "out")
    assert saved is not None and len(saved["dates"]) == 3
    assert {d["sample"] for d in saved["dates"]} <= {"in-sample", "label overlap", "out-of-sample"}
    assert saved["dates"][-1]["sample"] == "out-of-sample"  # the fixture models are tested on its last 2 dates
    assert saved["churn_source"].startswith("labels")  # the fixture workspace has no subscriptions
    client = configure(load_settings(config).training)
    run = client.get_run(saved["mlflow_run"])
    assert run.info.run_name == f"backtest {saved['span']} renewal v{saved['models']['renewal']['version']}"
    assert "model.flagged.recall" in run.data.metrics
    assert {a.path for a in MlflowClient(client._tracking_client.tracking_uri).list_artifacts(run.info.run_id)} >= {
        "per_date.csv",
        "backtest.json",
        "churns.csv",
        "sweep.csv",
    }
    got = CliRunner().invoke(app, ["--config", str(config), "backtest", "--dates", "2", "--json", "--no-log"], env=env)
    assert got.exit_code == 0, got.output
    document = json.loads(got.output)
    assert document["mlflow_run"] is None and len(document["dates"]) == 2
