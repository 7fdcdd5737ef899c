"""A whole run: split, fit, calibrate, baselines, backtest, metrics, plots — and bring your own table."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
import pandas as pd
import pytest

from radar.settings import Settings
from training.dataset import DatasetError, from_file, from_snapshots
from training.evaluate import METRICS
from training.model import RadarModel
from training.outcome import TARGETS
from training.pipeline import summary_table, train_and_evaluate
from training.split import stratified_folds, time_split
from training.tune import tune


@pytest.fixture(scope="module")
def outcome(table, settings, tmp_path_factory):
    return train_and_evaluate(table, settings, plot_dir=tmp_path_factory.mktemp("plots"))


def test_a_run_fills_every_part_of_the_outcome(outcome, table):
    m = outcome.metrics
    for model in ("model", "logistic", "health_score"):
        assert m[f"test.{model}.roc_auc_ci_low"] <= m[f"test.{model}.roc_auc"] <= m[f"test.{model}.roc_auc_ci_high"]
    assert {
        "test.model.segment.smb.pr_auc",
        "fold3.model.pr_auc",
        "backtest.model.pr_auc_mean",
        "backtest.model.pr_auc_std",
    } <= set(m)
    assert m["fold1.model.pr_auc"] == m["test.model.pr_auc"]  # fold 1 is the main split
    assert set(outcome.summary.model) == {"lightgbm", "logistic", "health_score"}
    assert len(outcome.summary) == 3 * len(METRICS)
    preds = outcome.test_predictions
    assert {"account_id", "as_of", "churned", "mrr", "p_model", "p_logistic", "p_health_score"} <= set(preds)
    assert preds.as_of.min() > pd.Timestamp(outcome.split["calibration"][12:22])
    assert set(outcome.split) >= {"train", "calibration", "test", "gap"}
    assert len(outcome.dataset_digest) == 64 and outcome.dataset_rows == len(table.frame)
    assert list(outcome.input_example.columns) == table.features and len(outcome.input_example) == 5
    assert isinstance(outcome.model, RadarModel)
    assert outcome.params["seed"] == 42 and outcome.params["calibration"] in ("platt", "isotonic")
    assert sorted(outcome.plots) == ["calibration", "gain", "importance", "pr", "roc", "shap_summary"]
    assert all(p.stat().st_size > 10_000 for p in outcome.plots.values())


def test_the_model_learns_the_known_signal(outcome):
    assert outcome.metrics["test.model.roc_auc"] > 0.75
    assert outcome.metrics["test.model.pr_auc"] > outcome.test_predictions.churned.mean() * 1.8


def test_the_base_rate_is_the_calibration_periods_positive_rate(outcome, table, settings):
    split = time_split(table.times, settings)
    rate = table.y[split.calibration].mean()
    assert outcome.base_rate == pytest.approx(rate)
    assert outcome.model.metadata["base_rate"] == outcome.base_rate == outcome.metrics["base_rate"]
    assert outcome.model.metadata["base_rate_from"] == (
        f"calibration rows: {len(split.calibration):,}, {split.ranges['calibration']}"
    )
    assert outcome.params["base_rate"] == outcome.base_rate  # logged as a parameter too
    assert outcome.bands is None  # no band column in this table
    assert outcome.metrics["split.dates_before_test"] == split.dropped["dates_before_test"]


def test_per_row_label_windows_keep_only_rows_whose_window_ends_before_the_next_part(
    make_snapshots, make_table, settings
):
    # given windows to each account's next renewal (90 to 400 days) and days to renewal
    frame = make_snapshots(150, 24, seed=8)
    rng = np.random.default_rng(8)
    frame["days"] = np.where(rng.random(len(frame)) < 0.1, np.nan, rng.integers(0, 400, len(frame)))
    lead = np.where(frame.days.isna(), 90, np.clip(frame.days.fillna(0) + 30, 90, 400))
    frame["label_end"] = frame.as_of + pd.to_timedelta(lead, unit="D")
    table = dataclasses.replace(make_table(frame), label_end_col="label_end", band_col="days")
    # when
    outcome = train_and_evaluate(table, settings)
    # then the model trained and calibrated on the per-row split, which says what it dropped
    split = time_split(table.times, settings, table.label_ends)
    assert outcome.split == split.ranges and "up to 400 days" in outcome.split["gap"]
    assert outcome.model.metadata["train_rows"] == len(split.train) < len(time_split(table.times, settings).train)
    assert outcome.base_rate == pytest.approx(table.y[split.calibration].mean())
    assert outcome.metrics["split.rows_before_test"] == split.dropped["rows_before_test"] > 0
    # and the test rows are scored per band of days to the renewal
    bands = outcome.bands.set_index("band")
    assert bands.rows.sum() == len(split.test) and (bands.rows > 0).all()
    assert bands.loc["0-90", "roc_auc_ci_low"] <= bands.loc["0-90", "roc_auc"] <= bands.loc["0-90", "roc_auc_ci_high"]
    assert "days" in outcome.test_predictions.columns
    # the calibration period lacks the far renewals (their windows end after the test starts): said plainly
    (warning,) = [w for w in outcome.warnings if "before their next renewal" in w]
    assert "the calibration period has no rows 181-365" in warning and "unvalidated" in warning


def test_summary_table_puts_models_side_by_side(outcome):
    table = summary_table(outcome)
    assert list(table.columns) == ["lightgbm", "logistic", "health_score"]
    assert list(table.index) == list(METRICS)
    assert table.loc["roc_auc", "lightgbm"].startswith(f"{outcome.metrics['test.model.roc_auc']:.3f} [")


def test_same_data_config_and_seed_give_identical_metrics(make_snapshots, make_table, settings):
    table = make_table(make_snapshots(120, 20, seed=3))
    a, b = train_and_evaluate(table, settings), train_and_evaluate(table, settings)
    assert a.metrics == b.metrics and a.dataset_digest == b.dataset_digest
    pd.testing.assert_frame_equal(a.test_predictions, b.test_predictions)


def export(snapshots: pd.DataFrame, unknown_last: bool = True) -> pd.DataFrame:
    """A data scientist's export: other names, a yes/no flag, text and gaps, and (unless
    told otherwise) unknown labels in the last month."""
    out = snapshots.rename(columns={"account_id": "customer", "as_of": "month", "churned": "left"})
    out["partner"] = out.customer.str[-1].isin(list("02468"))
    out["month"] = out.month.dt.strftime("%Y-%m-%d")
    if unknown_last:
        out.loc[out.month == out.month.max(), "left"] = np.nan
    return out.drop(columns=["health_score"])


def test_bring_your_own_csv_with_time_trains_and_evaluates(make_snapshots, settings, tmp_path):
    # given a CSV export with categorical, boolean and missing values, 16 months (too short to backtest)
    path = tmp_path / "export.csv"
    export(make_snapshots(150, 16, seed=5)).to_csv(path, index=False)
    table = from_file(path, label="left", id_col="customer", time_col="month", name="attrition")
    assert table.categorical == ["segment", "region", "partner"] and table.frame.usage.isna().any()
    # when
    outcome = train_and_evaluate(table, settings)
    # then the model is evaluated on the latest labelled months beside the logistic baseline
    assert outcome.metrics["test.model.roc_auc"] > 0.7 and "test.logistic.roc_auc" in outcome.metrics
    assert not any(k.startswith("test.health_score") for k in outcome.metrics)
    assert outcome.split["test"].startswith("2024-01-31..2024-03-31")
    assert any(w.startswith("No rolling-origin backtest") for w in outcome.warnings)
    assert outcome.model.predict_proba(table.frame.head(3)).shape == (3,)


def test_bring_your_own_parquet_without_time_uses_stratified_cross_validation(make_snapshots, settings, tmp_path):
    # given one row per customer and no time column
    path = tmp_path / "export.parquet"
    export(make_snapshots(900, 1, seed=6), unknown_last=False).drop(columns=["month"]).to_parquet(path)
    table = from_file(path, label="left", id_col="customer", time_col=None, name="attrition")
    # when
    outcome = train_and_evaluate(table, settings)
    # then every row is scored once, out of fold, and each fold reports its own figures
    assert len(outcome.test_predictions) == len(table.frame)
    assert outcome.test_predictions.p_model.notna().all()
    assert "stratified 5-fold" in outcome.split["scheme"]
    assert {f"fold{i}.model.roc_auc" for i in range(1, 6)} <= set(outcome.metrics)
    assert outcome.metrics["test.model.roc_auc"] > 0.7
    held = stratified_folds(table.y, settings)[0].test  # the fold that calibrates the served model
    assert outcome.base_rate == pytest.approx(table.y[held].mean())


def test_a_table_too_small_to_split_says_how_many_dates_it_has(make_snapshots, settings, tmp_path):
    path = tmp_path / "small.csv"
    export(make_snapshots(30, 6, seed=1)).to_csv(path, index=False)
    table = from_file(path, label="left", id_col="customer", time_col="month", name="attrition")
    with pytest.raises(DatasetError, match="only 5 distinct labelled dates; a time split needs about 13"):
        train_and_evaluate(table, settings)


def test_a_table_without_time_and_few_positives_says_how_many_it_needs(make_snapshots, settings, tmp_path):
    frame = export(make_snapshots(40, 1, seed=1), unknown_last=False).drop(columns=["month"])
    frame["left"] = (np.arange(len(frame)) < 3).astype(int)
    path = tmp_path / "small.parquet"
    frame.to_parquet(path)
    table = from_file(path, label="left", id_col="customer", time_col=None, name="attrition")
    with pytest.raises(DatasetError, match="40 labelled rows with 3 positive and 37 negative labels; 5-fold"):
        train_and_evaluate(table, settings)


def test_a_period_without_positives_is_named(make_snapshots, make_table, settings):
    frame = make_snapshots(100, 20, seed=2)
    frame.loc[frame.as_of >= frame.as_of.max() - pd.Timedelta(days=70), "churned"] = 0
    with pytest.raises(
        DatasetError, match=r"the test part \(2024-06-30..2024-08-31 \(3 dates\)\) has 300 rows and 0 positive"
    ):
        train_and_evaluate(make_table(frame), settings)


def test_a_small_portfolio_is_warned_in_plain_words(make_snapshots, make_table, settings):
    outcome = train_and_evaluate(make_table(make_snapshots(60, 20, seed=4)), settings)
    assert any(w.startswith("Only 60 accounts in the training data") for w in outcome.warnings)
    assert any("ROC-AUC by about ±" in w for w in outcome.warnings)


def test_tuning_searches_inside_the_training_period(make_snapshots, make_table, settings):
    table = make_table(make_snapshots(80, 30, seed=7))
    best = tune(table, time_split(table.times, settings), settings, trials=2)
    assert set(best) == {
        "learning_rate",
        "num_leaves",
        "max_depth",
        "min_child_samples",
        "feature_fraction",
        "bagging_fraction",
        "lambda_l2",
    }
    outcome = train_and_evaluate(table, settings, tune_trials=2)
    assert outcome.params["learning_rate"] == pytest.approx(best["learning_rate"])
    assert outcome.params["tune_trials"] == 2


@pytest.fixture(scope="module")
def sample_snapshots(tmp_path_factory):
    """Snapshots of a generated sample workspace (600 accounts, 3 years): realistic data."""
    from features.build import build_features
    from features.ingest import ingest_workspace
    from features.sampledata import generate_workspace

    root = tmp_path_factory.mktemp("sample")
    generate_workspace(root / "ws", accounts=600, years=3, seed=7)
    settings = Settings(output_dir=root / "out")
    ingest_workspace(root / "ws", settings)
    gc.collect()  # let ingest's DuckDB connection go before the build opens the database again
    return pd.read_parquet(build_features(settings).parquet)


@pytest.mark.slow
def test_on_the_sample_workspace_lightgbm_beats_both_baselines_for_renewal(sample_snapshots):
    settings = Settings(training={"bootstrap_samples": 50})
    outcome = train_and_evaluate(from_snapshots(sample_snapshots, TARGETS["renewal"], settings), settings)
    m = outcome.metrics
    for metric in ("roc_auc", "pr_auc"):
        assert m[f"test.model.{metric}"] > m[f"test.logistic.{metric}"]
        assert m[f"test.model.{metric}"] > m[f"test.health_score.{metric}"]
