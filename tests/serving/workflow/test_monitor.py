"""`radar monitor`: PSI and calibration by hand, then the served project with stored weekly
scores, once as it is and once with usage dropped on purpose in the latest snapshots."""

from __future__ import annotations

import json
import math
import shutil
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radar.settings import MonitorSettings, Settings
from serving.workflow.drift import (
    MISSING,
    OTHER,
    category_counts,
    feature_drift,
    mover_sentence,
    numeric_counts,
    psi,
    quantile_edges,
)
from serving.workflow.monitor import (
    PLOT,
    REPORT,
    build_report,
    performance_checks,
    read_latest,
    reliability,
    target_figures,
)

# --- by hand ---


def test_psi_by_hand():
    assert psi([50, 50], [50, 50]) == 0.0
    # (0.8 - 0.5) ln(0.8/0.5) + (0.2 - 0.5) ln(0.2/0.5)
    assert psi([1, 1], [8, 2]) == pytest.approx(0.3 * math.log(1.6) + 0.3 * math.log(2.5))
    # an empty bin counts as 0.01%: finite
    assert math.isfinite(psi([10, 0], [5, 5])) and psi([10, 0], [5, 5]) > 3
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])


def test_bins_cut_on_the_training_values_with_missing_apart():
    edges = quantile_edges(np.arange(1, 101), 4)
    assert list(edges) == [25.75, 50.5, 75.25]
    counts = numeric_counts([1, 30, 60, 99, None, np.nan], edges)
    assert list(counts) == [1, 1, 1, 1, 2]  # four bins, then missing
    assert list(quantile_edges([0, 0, 0, 0, 1], 4)) == [0.0]  # repeated values: fewer bins
    names, counts = category_counts(["a", "b", "z", None, "a"], ["a", "b"])
    assert names == ["a", "b", OTHER, MISSING] and list(counts) == [2, 1, 1, 1]


def test_feature_drift_finds_and_names_the_mover():
    from features.snapshot import feature_registry

    rng = np.random.default_rng(3)
    train = pd.DataFrame({"adoption_rate_28d": rng.uniform(0, 1.2, 2000), "segment": rng.choice(["smb", "mid"], 2000)})
    same = pd.DataFrame({"adoption_rate_28d": rng.uniform(0, 1.2, 500), "segment": rng.choice(["smb", "mid"], 500)})
    moved = same.assign(adoption_rate_28d=same["adoption_rate_28d"] * 0.2, segment="enterprise")
    cats = {"segment": ["mid", "smb"]}
    stable = feature_drift(train, same, ["adoption_rate_28d", "segment"], categories=cats)
    assert stable["psi"].max() < 0.1
    found = feature_drift(
        train,
        moved,
        ["adoption_rate_28d", "segment", "not_there"],
        categories=cats,
        train_medians={"adoption_rate_28d": 0.6},
        importance_rank={"adoption_rate_28d": 1},
    )
    assert list(found["feature"]) == ["segment", "adoption_rate_28d"]  # largest first; absent inputs left out
    assert (found["psi"] > 1).all()
    registry = feature_registry(Settings())
    rows = {r["feature"]: r for r in found.to_dict("records")}
    usage = mover_sentence(rows["adoption_rate_28d"], registry)
    label = registry["adoption_rate_28d"].description
    assert usage.startswith(f"'{label}' moved (PSI ")
    assert usage.endswith("median 0.60 -> 0.12")  # the recorded training median, written as the registry writes it
    seg = mover_sentence(rows["segment"], registry)
    assert "'(other)' 0% -> 100% of accounts" in seg
    gone = mover_sentence(
        {
            "feature": "x",
            "psi": 0.5,
            "median_train": 3.0,
            "median_recent": None,
            "missing_train": 0,
            "missing_recent": 1,
        }
    )
    assert gone == "'x' moved (PSI 0.50): median 3.00 -> missing; missing for 0% -> 100% of accounts"
    same_median = {"feature": "x", "psi": 0.3, "median_train": 1.0, "median_recent": 1.0}
    assert mover_sentence(same_median | {"mean_train": 0.8, "mean_recent": 0.45}).endswith(
        "median 1.00 -> 1.00 (mean 0.80 -> 0.45)"
    )


def test_reliability_and_figures_by_hand():
    p = np.repeat([0.1, 0.3], 10)
    y = np.r_[np.zeros(9), 1, np.ones(5), np.zeros(5)]
    bins = reliability(y, p, bins=2)
    assert bins == [
        {"bin": 1, "accounts": 10, "predicted": pytest.approx(0.1), "realised": 0.1},
        {"bin": 2, "accounts": 10, "predicted": pytest.approx(0.3), "realised": 0.5},
    ]
    f = target_figures(np.r_[y, np.nan], np.r_[p, 0.9])  # a row without its outcome is left out
    assert (f["accounts"], f["positives"]) == (20, 6)
    assert f["predicted_rate"] == pytest.approx(0.2) and f["realised_rate"] == pytest.approx(0.3)
    assert f["ece"] == pytest.approx(0.1)  # |0.1 - 0.1| / 2 + |0.3 - 0.5| / 2
    assert 0.5 < f["roc_auc"] < 1


def test_performance_checks_fire_with_their_reason():
    cfg = MonitorSettings(max_calibration_error=0.05, max_auc_drop=0.05, min_positives=20)
    good = {"positives": 40, "ece": 0.02, "roc_auc": 0.80, "predicted_rate": 0.1, "realised_rate": 0.11}
    bad = good | {"ece": 0.09, "roc_auc": 0.70}
    ref = {"churn": {"roc_auc": 0.8, "model": "radar-renewal v2"}, "expansion": {"roc_auc": 0.8}}
    checks = performance_checks({"churn": good, "expansion": good}, ref, cfg)
    assert not any(c.fired for c in checks) and all(c.judged for c in checks)
    fired = [c for c in performance_checks({"churn": bad, "expansion": good}, ref, cfg) if c.fired]
    assert [(c.name, c.subject) for c in fired] == [("calibration", "churn"), ("auc_drop", "churn")]
    assert "calibration error 0.090 above monitor.max_calibration_error 0.05" in fired[0].text
    assert "ROC-AUC 0.700 vs 0.800 in the training report of radar-renewal v2 (dropped 0.100" in fired[1].text
    few = performance_checks({"churn": bad | {"positives": 5}, "expansion": good}, ref, cfg)
    assert not any(c.fired for c in few)
    assert "only 5 churners" in few[0].text and not few[0].judged


def test_build_report_without_models_or_outcomes():
    settings = Settings()
    scored = pd.DataFrame(
        {"as_of": [date(2025, 6, 30)] * 2, "account_id": ["a", "b"], "churned": np.nan, "expanded": np.nan}
    )
    report = build_report(
        scored, pd.DataFrame(), pd.DataFrame(), None, settings, latest_snapshot=date(2025, 6, 30), train_window=None
    )
    assert report.dates == [] and not report.retrain
    assert report.awaiting == [{"as_of": "2025-06-30", "accounts": 2, "known_after": "2025-10-28"}]  # 90 + 30 days
    assert any("no scored date has known outcomes yet" in n for n in report.notes)
    assert any(n.startswith("drift not computed") for n in report.notes)


# --- the served project with stored scores ---

SHIFTED = ("adoption_rate_28d", "logins_trend_28d")


def _project(served_project, root, *, shift: bool):
    """A copy of the served project's workspace whose last two dates have no outcomes yet,
    and whose CRM table holds the scores of three earlier dates (known outcomes) and of the
    latest one, as `radar score --to workspace` stores them. With `shift`, usage collapsed
    in the last two snapshot dates before they were scored (adoption x 0.2, logins trend
    down by 0.9)."""
    from serving.crm.table import crm_frame
    from serving.crm.write import write_scores
    from serving.scoring.batch import load_snapshots
    from serving.scoring.champions import load_champions
    from serving.scoring.score import score_frame

    source, served = served_project
    out = root / "out"
    out.mkdir(parents=True)
    shutil.copy(served.database_path, out / served.database_path.name)
    settings = served.model_copy(update={"output_dir": out})
    with duckdb.connect(str(settings.database_path)) as con:
        dates = [r[0] for r in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM snapshots ORDER BY 1").fetchall()]
        unknown = dates[-2:]
        con.execute("UPDATE snapshots SET churned = NULL, expanded = NULL WHERE CAST(as_of AS DATE) IN (?, ?)", unknown)
        if shift:
            con.execute(
                "UPDATE snapshots SET adoption_rate_28d = adoption_rate_28d * 0.2, "
                "logins_trend_28d = logins_trend_28d - 0.9 WHERE CAST(as_of AS DATE) IN (?, ?)",
                unknown,
            )
    models = load_champions(settings)
    for day in (*dates[-5:-2], dates[-1]):
        frame, _ = load_snapshots(settings, day)
        write_scores(
            crm_frame(score_frame(frame, models, settings, explain=False), settings.serving), settings.database_path
        )
    return settings, models, dates


@pytest.fixture(scope="module")
def steady(served_project, tmp_path_factory):
    return _project(served_project, tmp_path_factory.mktemp("steady"), shift=False)


@pytest.fixture(scope="module")
def shifted(served_project, tmp_path_factory):
    return _project(served_project, tmp_path_factory.mktemp("shifted"), shift=True)


def test_calibration_per_scored_date(steady):
    from serving.workflow.monitor import run_monitor

    settings, models, dates = steady
    report = run_monitor(settings, models)
    assert [d["as_of"] for d in report.dates] == [str(d) for d in dates[-5:-2]]
    assert report.awaiting == [
        {"as_of": str(dates[-1]), "accounts": 250, "known_after": str(dates[-1] + pd.Timedelta(days=120))}
    ]
    for d in report.dates:
        churn = d["churn"]
        assert churn["accounts"] == 250 and churn["positives"] > 20
        assert 0 < churn["predicted_rate"] < 1 and 0 < churn["realised_rate"] < 1
        assert len(churn["bins"]) == 10 and sum(b["accounts"] for b in churn["bins"]) == 250
        assert churn["roc_auc"] > 0.6 and churn["pr_auc"] > churn["realised_rate"]
        assert d["expansion"]["accounts"] == 250 and d["expansion"]["roc_auc"] > 0.5
        calls = d["call_list"]
        assert calls["churners"] == churn["positives"] and 0 < calls["caught"] <= calls["churners"]
        assert calls["recall"] == pytest.approx(calls["caught"] / calls["churners"])
        assert 0 < calls["top10_share"] <= 1
        assert d["models"]["renewal"] == f"radar-renewal v{models.renewal.version}"
        assert d["sample"] in ("in-sample", "label overlap", "out-of-sample")
    assert report.pooled["dates"] == [d["as_of"] for d in report.dates]
    assert report.pooled["churn"]["accounts"] == 750
    assert report.pooled["churn_reference"]["roc_auc"] > 0.5  # the champion's training report
    assert report.reliability_png.startswith(b"\x89PNG")


def test_no_shift_no_retrain(steady):
    from serving.workflow.monitor import run_monitor

    settings, models, _ = steady
    report = run_monitor(settings, models)
    assert not report.retrain, report.reasons
    assert report.drift["psi"].max() < settings.monitor.psi_retrain
    judged = {(c.name, c.subject) for c in report.checks if c.judged}
    assert {("calibration", "churn"), ("auc_drop", "churn")} <= judged  # judged, and passed
    assert report.drift_window["train_window"] == models.renewal.model.metadata["trained_on"][:22]


def test_planted_drift_is_found_named_and_fires(shifted):
    from features.snapshot import feature_registry
    from serving.workflow.monitor import run_monitor

    settings, models, dates = shifted
    report = run_monitor(settings, models)
    assert report.retrain
    fired = [c for c in report.checks if c.fired]
    assert {c.name for c in fired} == {"drift"}  # the outcomes known so far are not affected
    assert "adoption_rate_28d" in {c.subject for c in fired}
    registry = feature_registry(settings)
    words = registry["adoption_rate_28d"].description
    reason = next(r for r in report.reasons if words in r)
    assert reason.startswith(f"'{words}' moved (PSI ")
    assert "median " in reason and "at or above monitor.psi_retrain 0.25" in reason
    top = [m["feature"] for m in report.movers[:2]]
    assert set(top) == set(SHIFTED)
    assert report.drift_window["recent_dates"] == [str(dates[-1])]


def test_command_logs_saves_and_the_page_shows_it(shifted, served_project):
    from mlflow import MlflowClient

    from radar.cli import app
    from training.track import tracking_uri

    settings, models, _ = shifted
    source, _ = served_project
    env = {"RADAR_CONFIG_FILE": None, "RADAR_OUTPUT_DIR": str(settings.output_dir), "COLUMNS": "200"}
    got = CliRunner().invoke(app, ["--config", str(source / "radar.toml"), "monitor"], env=env)
    assert got.exit_code == 0, got.output
    assert "Retraining recommended" in got.output and "Stored scores against the outcomes" in got.output
    assert "Active users" in got.output or "moved (PSI" in got.output
    saved = read_latest(settings.output_dir)
    assert saved is not None and saved["retrain"]["recommended"]
    assert (settings.output_dir / REPORT).is_file() and (settings.output_dir / PLOT).read_bytes()[:4] == b"\x89PNG"
    client = MlflowClient(tracking_uri(settings.training))
    run = client.get_run(saved["mlflow_run"])
    assert run.info.run_name == f"monitor {saved['latest_snapshot']} renewal v{models.renewal.version}"
    assert run.data.metrics["retrain"] == 1.0 and run.data.metrics["drift.max_psi_important"] >= 0.25
    assert len(run.data.metrics) < 30
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"monitor.json", PLOT.name, "calibration.csv", "drift.csv"} <= artifacts
    assert json.loads(json.dumps(saved))["dates"][0]["churn"]["bins"]


def test_leadership_page_section(shifted, steady):
    from html import unescape

    from serving.web.app import ENV
    from serving.web.pages import monitor_view
    from serving.workflow.monitor import run_monitor, save_latest

    empty = {"as_of": date(2025, 1, 31), "accounts": 0, "dates": [], "targets": [], "low": [], "threshold": 0.01}
    models = dict.fromkeys(("renewal_model", "renewal_model_version", "upsell_model", "upsell_model_version"), "m")
    context = {"view": empty | {"advocates": [], "found": 0}, "chart": "", "base": "/ui", "models": models}
    context |= {"signed_in": False, "backtest": None, "title": "Leadership"}
    assert monitor_view(None) is None and monitor_view({"kind": "radar-monitor"}) is None

    def section(settings, models) -> str:
        save_latest(run_monitor(settings, models), settings.output_dir)
        view = monitor_view(read_latest(settings.output_dir))
        html = unescape(ENV.get_template("leadership.html").render(monitor=view, **context))
        part = html[html.index("Are the scores still right?") :]
        return part[: part.index("</section>")]

    settings, models, dates = shifted
    shown = section(settings, models)
    assert "Retraining recommended" in shown and "at or above monitor.psi_retrain 0.25" in shown
    assert "'Active users" in shown and shown.count("<li>") == settings.monitor.top_movers
    for day in dates[-5:-2]:
        assert f"{day} <span" in shown  # a row per scored date with known outcomes
    assert f"Outcomes not known yet for the scores of {dates[-1]}" in shown
    assert "No retraining needed" in section(*steady[:2])
    html = ENV.get_template("leadership.html").render(**context)  # no report saved: no section
    assert "Are the scores still right?" not in html


def test_no_workspace_or_no_champion_is_a_clear_error(steady, tmp_path):
    from radar.cli import app
    from serving.workflow.monitor import MonitorError, run_monitor

    settings, models, _ = steady
    with pytest.raises(MonitorError, match="no workspace database at"):
        run_monitor(settings.model_copy(update={"output_dir": tmp_path / "none"}), models)
    (tmp_path / "radar.toml").write_text(
        f'output_dir = "{tmp_path / "out"}"\n[training]\ntracking_uri = "sqlite:///{tmp_path / "empty.db"}"\n'
    )
    got = CliRunner().invoke(
        app, ["--config", str(tmp_path / "radar.toml"), "monitor"], env={"RADAR_CONFIG_FILE": None}
    )
    assert got.exit_code == 1 and "no champion version" in got.output and "Traceback" not in got.output
