"""Promotion rules, on real tiny LightGBM models in a temporary sqlite MLflow store.

Two models are trained on the same snapshots: `good` on the true labels and `bad` on
labels shuffled everywhere but in the test period. Both are tested on the same latest
rows, where `good` is far better (better in every paired bootstrap resample), so every
decision below can be worked out by hand.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from radar.cli import app
from training.evaluate import metrics, paired_bootstrap
from training.outcome import TargetSpec
from training.pipeline import train_and_evaluate
from training.promote import PREVIOUS_CHAMPION, PromotionError, promote, promotion_history, roll_back
from training.track import CHALLENGER, CHAMPION, configure, log_training_run

TEST_DATES = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db) -> Path:
    """A fresh sqlite tracking store, copied from one migrated per session."""
    path = tmp_path_factory.mktemp("mlflow")
    shutil.copy(empty_mlflow_db, path / "mlflow.db")
    return path


@pytest.fixture(scope="module")
def settings_for(store, make_settings):
    def settings(**training):
        return make_settings(
            tracking_uri=f"sqlite:///{store}/mlflow.db",
            artifact_location=str(store / "artifacts"),
            bootstrap_samples=0,
            backtest_folds=1,
            test_periods=TEST_DATES,
            lightgbm={"n_estimators": 60, "min_child_samples": 20},
            **training,
        )

    return settings


@pytest.fixture(scope="module")
def models(settings_for, make_snapshots, make_table):
    """(table, outcome) for the good and the bad model, and for a good model trained on
    data that ends two months earlier."""
    settings = settings_for()
    frame = make_snapshots(n_accounts=150, n_dates=16, seed=3, base=-2.0)
    good = make_table(frame)
    test_start = np.sort(frame.as_of.unique())[-TEST_DATES]
    shuffled = frame.copy()
    before = shuffled.as_of < test_start
    shuffled.loc[before, "churned"] = np.random.default_rng(0).permutation(shuffled.loc[before, "churned"].to_numpy())
    bad = make_table(shuffled)
    older = make_table(frame[frame.as_of < np.sort(frame.as_of.unique())[-2]])
    return {
        name: (table, train_and_evaluate(table, settings))
        for name, table in (("good", good), ("bad", bad), ("older", older))
    }


def register(models, kind: str, model_name: str, settings):
    """Log and register the `kind` model as a new version of `model_name`; its version."""
    table, outcome = models[kind]
    target = TargetSpec(model_name, "churned", model_name, "churns within the horizon")
    tracked = log_training_run(
        dataclasses.replace(outcome, target=target),
        dataclasses.replace(table, target=target),
        settings,
        source="snapshots.parquet",
    )
    return tracked.version


def aliases(settings, model_name: str) -> dict[str, str]:
    client = configure(settings.training)
    return {alias: str(v) for alias, v in client.get_registered_model(model_name).aliases.items()}


def version_tags(settings, model_name: str, version: str) -> dict[str, str]:
    return configure(settings.training).get_model_version(model_name, version).tags


@pytest.fixture(scope="module")
def lifecycle(models, settings_for):
    """Given radar-life: v1 good is promoted (first), v2 bad is refused, v3 bad is forced."""
    settings = settings_for()
    decisions = {}
    register(models, "good", "radar-life", settings)
    decisions["first"] = promote("radar-life", settings)
    register(models, "bad", "radar-life", settings)
    decisions["worse"] = promote("radar-life", settings)
    decisions["after_worse"] = aliases(settings, "radar-life")
    register(models, "bad", "radar-life", settings)
    decisions["forced"] = promote("radar-life", settings, force=True, reason="hotfix for the QBR deck")
    return settings, decisions


def test_the_first_version_becomes_champion(lifecycle):
    settings, d = lifecycle
    first = d["first"]
    assert first.promoted and first.champion is None and first.outcome == "promoted"
    assert first.challenger_value > 0.3  # the good model's PR-AUC on its own test rows
    assert "no champion yet" in first.message
    assert version_tags(settings, "radar-life", "1")["promotion.decision"] == "promoted"


def test_a_worse_challenger_is_refused_and_the_champion_stays(lifecycle):
    settings, d = lifecycle
    worse = d["worse"]
    assert not worse.promoted and worse.outcome == "refused"
    assert (worse.challenger, worse.champion) == ("2", "1")
    assert worse.challenger_value + 0.1 < worse.champion_value
    assert d["after_worse"] == {CHAMPION: "1", CHALLENGER: "2"}
    # both figures, the probability, the interval of the gain and the rule are stated
    assert worse.probability == 0.0 and worse.gain_low <= worse.gain <= worse.gain_high < 0
    assert f"{worse.challenger_value:.4f}" in worse.message and f"{worse.champion_value:.4f}" in worse.message
    assert "better in 0% of 1,000 paired bootstrap resamples of accounts" in worse.message
    assert f"[{worse.gain_low:+.4f}, {worse.gain_high:+.4f}]" in worse.message
    assert "needs 90%" in worse.message and "refused, v1 stays champion" in worse.message
    tags = version_tags(settings, "radar-life", "2")
    assert tags["promotion.decision"] == "refused" and tags["promotion.compared_with"] == "1"
    assert float(tags["promotion.champion_value"]) == pytest.approx(worse.champion_value, rel=1e-5)
    assert float(tags["promotion.probability"]) == 0.0 and tags["promotion.samples"] == "1000"
    assert float(tags["promotion.gain_ci_high"]) == pytest.approx(worse.gain_high, rel=1e-5)
    # and on the challenger's training run, beside its own figures
    run = MlflowClient(settings.training.tracking_uri).get_run(
        configure(settings.training).get_model_version("radar-life", "2").run_id
    )
    assert run.data.metrics["promotion.probability"] == 0.0 and run.data.tags["promotion.decision"] == "refused"
    assert run.data.metrics["promotion.gain_ci_low"] == pytest.approx(worse.gain_low)
    assert version_tags(settings, "radar-life", "1")["promotion.challenged_by.v2"].startswith("kept against v2")


def test_the_champion_is_rescored_on_the_challengers_test_rows(lifecycle, models):
    settings, d = lifecycle
    worse = d["worse"]
    good_table, good = models["good"]
    _, bad = models["bad"]
    # the bad model's test rows are the good model's: same dates, same accounts, same labels
    assert worse.test_version == "2" and worse.test_rows == len(bad.test_predictions)
    y = bad.test_predictions["churned"].to_numpy()
    weight = bad.test_predictions["mrr"].to_numpy()
    assert worse.champion_value == pytest.approx(metrics(y, good.test_predictions["p_model"], weight)["pr_auc"])
    assert worse.challenger_value == pytest.approx(metrics(y, bad.test_predictions["p_model"], weight)["pr_auc"])


def test_force_promotes_a_worse_challenger_and_says_so(lifecycle):
    settings, d = lifecycle
    forced = d["forced"]
    assert forced.promoted and forced.forced and forced.outcome == "forced"
    assert forced.challenger_value < forced.champion_value
    assert "FORCED" in forced.message and "hotfix for the QBR deck" in forced.message
    assert aliases(settings, "radar-life") == {CHAMPION: "3", PREVIOUS_CHAMPION: "1"}
    tags = version_tags(settings, "radar-life", "3")
    assert (tags["promotion.decision"], tags["promotion.forced"], tags["promotion.reason"]) == (
        "forced",
        "true",
        "hotfix for the QBR deck",
    )
    assert version_tags(settings, "radar-life", "1")["promotion.challenged_by.v3"].startswith("replaced by v3")


def test_every_decision_is_in_the_promotion_history(lifecycle):
    settings, _ = lifecycle
    history = promotion_history("radar-life", settings)
    assert [h["outcome"] for h in history] == ["forced", "refused", "promoted"]
    assert history[0]["reason"] == "hotfix for the QBR deck" and history[0]["decided_by"]


def test_a_better_challenger_is_promoted(models, settings_for):
    settings = settings_for()
    register(models, "bad", "radar-better", settings)
    promote("radar-better", settings)
    register(models, "good", "radar-better", settings)
    decision = promote("radar-better", settings)
    assert decision.promoted and not decision.forced and decision.champion == "1"
    assert decision.probability == 1.0 and 0 < decision.gain_low <= decision.gain <= decision.gain_high
    assert aliases(settings, "radar-better") == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}


def test_the_probability_is_respected_at_the_boundary(models, settings_for):
    """Given a challenger better in a share q of the resamples (a margin makes q fall
    between 0 and 1): a required probability a hair above q refuses, q itself promotes."""
    settings = settings_for()
    register(models, "bad", "radar-edge", settings)
    promote("radar-edge", settings)
    register(models, "good", "radar-edge", settings)
    probe = promote("radar-edge", settings_for(promotion_margin=1.0))  # refused: no gain above 1
    assert not probe.promoted and probe.probability == 0.0
    margin = probe.gain  # better by more than its own observed gain in about half the resamples
    probe = promote("radar-edge", settings_for(promotion_min_probability=1.0, promotion_margin=margin))
    q = probe.probability
    assert 0.2 < q < 0.8 and not probe.promoted
    assert not promote("radar-edge", settings_for(promotion_margin=margin, promotion_min_probability=q + 1e-9)).promoted
    assert aliases(settings, "radar-edge") == {CHAMPION: "1", CHALLENGER: "2"}
    at_q = promote("radar-edge", settings_for(promotion_margin=margin, promotion_min_probability=q))
    assert at_q.promoted and aliases(settings, "radar-edge")[CHAMPION] == "2"


def test_a_rollback_restores_a_version_and_keeps_the_one_it_replaced(models, settings_for):
    settings = settings_for()
    register(models, "good", "radar-back", settings)
    promote("radar-back", settings)
    register(models, "bad", "radar-back", settings)
    promote("radar-back", settings, force=True, reason="try it")
    assert aliases(settings, "radar-back") == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}

    back = roll_back("radar-back", "1", settings, reason="v2 misfires")
    assert back.outcome == "rolled back" and (back.challenger, back.champion) == ("1", "2")
    assert "v1 is champion again, replacing v2" in back.message
    assert aliases(settings, "radar-back") == {CHAMPION: "1", PREVIOUS_CHAMPION: "2"}
    client = configure(settings.training)
    assert client.get_registered_model("radar-back").tags["radar.previous_champion"] == "2"
    assert version_tags(settings, "radar-back", "1")["promotion.decision"] == "rolled back"
    assert promotion_history("radar-back", settings)[0]["reason"] == "v2 misfires"
    assert roll_back("radar-back", "v1", settings).outcome == "unchanged"
    with pytest.raises(PromotionError, match="radar-back has no version 9; its versions are 1, 2"):
        roll_back("radar-back", "9", settings)


def test_radar_promote_to_rolls_back_and_names_unknown_versions(models, settings_for, monkeypatch, store):
    settings = settings_for()
    register(models, "good", "radar-cliback", settings)
    promote("radar-cliback", settings)
    register(models, "bad", "radar-cliback", settings)
    promote("radar-cliback", settings, force=True, reason="try it")
    monkeypatch.setenv("RADAR_TRAINING__TRACKING_URI", settings.training.tracking_uri)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["promote", "cliback", "--to", "1"])
    assert result.exit_code == 0, result.output
    assert "rolled back: v1 is champion again, replacing v2" in " ".join(result.output.split())
    assert aliases(settings, "radar-cliback") == {CHAMPION: "1", PREVIOUS_CHAMPION: "2"}
    result = CliRunner().invoke(app, ["promote", "cliback", "--to", "7"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "radar-cliback has no version 7; its versions are 1, 2" in " ".join(result.output.split())


def test_a_lower_is_better_metric_refuses_a_higher_value(models, settings_for):
    settings = settings_for(promotion_metric="brier")
    register(models, "good", "radar-brier", settings)
    promote("radar-brier", settings)
    register(models, "bad", "radar-brier", settings)
    decision = promote("radar-brier", settings)
    assert not decision.higher_is_better and decision.challenger_value > decision.champion_value
    assert decision.gain < 0 and decision.probability < 0.5 and not decision.promoted


def test_both_are_scored_on_the_newer_test_set(models, settings_for):
    """Given a champion tested on later dates than the challenger, the comparison uses the
    champion's test rows (neither model trained on them)."""
    settings = settings_for()
    register(models, "good", "radar-newer", settings)
    promote("radar-newer", settings)
    register(models, "older", "radar-newer", settings)
    decision = promote("radar-newer", settings)
    assert decision.test_version == "1" and decision.test_rows == len(models["good"][1].test_predictions)


@pytest.fixture(scope="module")
def flat(settings_for, make_snapshots, make_table):
    """Tables without a time column (one row per account, cross-validated): all 400
    accounts, and the first 200 of them."""
    settings = settings_for()
    frame = make_snapshots(n_accounts=400, n_dates=1, seed=7, base=-1.5)
    whole, half = make_table(frame, time_col=None), make_table(frame.head(200), time_col=None)
    return {"whole": (whole, train_and_evaluate(whole, settings)), "half": (half, train_and_evaluate(half, settings))}


def test_without_time_the_same_table_compares_out_of_fold_predictions(flat, settings_for):
    """Given an identical retrain on the same table: re-scoring the champion on rows it
    trained on would flatter it; comparing both out-of-fold figures gives a tie."""
    settings = settings_for()
    register(flat, "whole", "radar-flat", settings)
    promote("radar-flat", settings)
    register(flat, "whole", "radar-flat", settings)
    decision = promote("radar-flat", settings)
    assert decision.champion_value == pytest.approx(decision.challenger_value)
    assert not decision.promoted and "out-of-fold" in decision.notes[0]


def test_without_time_a_new_table_is_compared_on_rows_the_champion_never_saw(flat, settings_for):
    settings = settings_for()
    register(flat, "half", "radar-grown", settings)
    promote("radar-grown", settings)
    register(flat, "whole", "radar-grown", settings)
    decision = promote("radar-grown", settings)
    assert decision.test_rows == 200 and "200 rows v1 never saw" in decision.notes[0]


def test_the_paired_bootstrap_resamples_accounts_and_cancels_shared_noise():
    """Given accounts of 5 identical rows: resampling accounts widens the interval of the
    gain against resampling rows (the rows are not independent evidence); an identical
    model is never better; the same seed gives the same answer."""
    rng = np.random.default_rng(1)
    n_acc = 120
    y = np.repeat(rng.binomial(1, 0.25, n_acc), 5)
    groups = np.repeat(np.arange(n_acc), 5)
    score = np.repeat(rng.normal(size=n_acc), 5) + 0.8 * y
    a, b = 1 / (1 + np.exp(-score)), 1 / (1 + np.exp(-(score + np.repeat(rng.normal(0, 1.2, n_acc), 5))))
    by_acc = paired_bootstrap(y, a, b, "pr_auc", groups=groups, samples=500, seed=3)
    by_row = paired_bootstrap(y, a, b, "pr_auc", samples=500, seed=3)
    assert by_acc.units == n_acc and by_row.units == len(y)
    assert by_acc.gain == pytest.approx(metrics(y, a)["pr_auc"] - metrics(y, b)["pr_auc"])
    assert (by_acc.gain_high - by_acc.gain_low) > 1.5 * (by_row.gain_high - by_row.gain_low)
    assert paired_bootstrap(y, a, b, "pr_auc", groups=groups, samples=500, seed=3) == by_acc
    same = paired_bootstrap(y, a, a, "pr_auc", groups=groups, samples=200)
    assert same.probability == 0.0 and same.gain_low == same.gain_high == 0.0
    # lower-is-better metrics are oriented: a gain is a lower Brier
    brier = paired_bootstrap(y, a, np.full(len(y), 0.5), "brier", groups=groups, samples=200)
    assert brier.gain == pytest.approx(metrics(y, np.full(len(y), 0.5))["brier"] - metrics(y, a)["brier"])


def test_promotion_needs_a_registered_model_with_a_challenger(models, settings_for):
    settings = settings_for()
    with pytest.raises(PromotionError, match="no registered model 'radar-nothing'"):
        promote("radar-nothing", settings)
    register(models, "good", "radar-once", settings)
    promote("radar-once", settings)  # v1 becomes champion and stops being the challenger
    with pytest.raises(PromotionError, match="no 'challenger' version"):
        promote("radar-once", settings)
    assert promote("radar-once", settings, version="1").outcome == "unchanged"
    with pytest.raises(PromotionError, match="radar-once has no version 5; its versions are 1"):
        promote("radar-once", settings, version="5")
    with pytest.raises(PromotionError, match="unknown promotion_metric"):
        promote("radar-once", settings_for(promotion_metric="accuracy"))
