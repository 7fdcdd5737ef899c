"""Tracking a training run in a real (temporary, sqlite) MLflow store: what lands where."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.snapshot_meta import PARQUET_KEY
from training.model import RadarModel
from training.outcome import TargetSpec
from training.pyfunc import base_rate, load_radar_model
from training.track import (
    CHALLENGER,
    METRICS_TABLE,
    configure,
    experiment_url,
    metric_key,
    tracking_uri,
    train_and_log,
)

TARGET = TargetSpec("track", "churned", "radar-track", "churns within the horizon")
PLOTS = {"roc.png", "pr.png", "calibration.png", "gain.png", "shap_summary.png", "importance.png"}


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db) -> Path:
    """A fresh sqlite tracking store, copied from one migrated per session (creating the
    schema takes MLflow about ten seconds)."""
    path = tmp_path_factory.mktemp("mlflow")
    shutil.copy(empty_mlflow_db, path / "mlflow.db")
    return path


@pytest.fixture(scope="module")
def settings(store, make_settings):
    return make_settings(
        tracking_uri=f"sqlite:///{store}/mlflow.db",
        artifact_location=str(store / "artifacts"),
        bootstrap_samples=20,
        backtest_folds=2,
        lightgbm={"n_estimators": 60, "min_child_samples": 20},
    )


@pytest.fixture(scope="module")
def trained(store, settings, make_snapshots, make_table):
    """Given a small snapshot table on disk, when it is trained and logged once."""
    frame = make_snapshots(n_accounts=120, n_dates=16, seed=1)
    frame["days"] = np.random.default_rng(1).integers(0, 500, len(frame))  # days to the next renewal
    source = store / "snapshots.parquet"
    frame.to_parquet(source)
    table = dataclasses.replace(make_table(frame), target=TARGET, band_col="days")
    outcome, tracked = train_and_log(table, settings, source=source)
    client = configure(settings.training)
    return table, outcome, tracked, client, source


def test_the_run_lands_in_the_targets_experiment_with_params_and_metrics(trained, store):
    table, outcome, tracked, client, _ = trained
    experiment = client.get_experiment_by_name("radar-track")
    run = client.get_run(tracked.run_id)
    assert run.info.experiment_id == experiment.experiment_id
    assert experiment.artifact_location == (store / "artifacts" / "radar-track").as_uri()
    assert run.data.params["split.test"] == outcome.split["test"]
    assert run.data.params["model.learning_rate"] == str(outcome.params["learning_rate"])
    assert run.data.params["label"] == "churned" and run.data.params["time_col"] == "as_of"
    assert run.data.metrics["test.model.pr_auc"] == pytest.approx(outcome.metrics["test.model.pr_auc"])
    assert run.data.metrics["test.health_score.roc_auc"] == pytest.approx(outcome.metrics["test.health_score.roc_auc"])


def test_the_run_is_named_for_what_it_is_with_headline_metrics_flat_and_folds_nested(trained, settings, tmp_path):
    table, outcome, tracked, client, _ = trained
    run = client.get_run(tracked.run_id)
    assert run.info.run_name == tracked.run_name == "track 2023-01..2024-04 lightgbm"
    # headline figures flat, per segment and per fold not: a few dozen, not hundreds
    flat = run.data.metrics
    assert "test.model.pr_auc_ci_low" in flat and "backtest.model.pr_auc_mean" in flat
    assert not any(".segment." in k or k.startswith("fold") for k in flat)
    assert len(flat) < 100 < len(outcome.metrics)
    # every metric, segments included, in one table
    local = mlflow.artifacts.download_artifacts(
        run_id=tracked.run_id, artifact_path=METRICS_TABLE, dst_path=str(tmp_path)
    )
    table_ = pd.read_csv(local, keep_default_na=False, na_values=[""])
    smb = table_[(table_.scope == "test") & (table_.model == "model") & (table_.segment == "smb")]
    row = smb.set_index("metric").loc["roc_auc"]
    assert row.value == pytest.approx(outcome.metrics["test.model.segment.smb.roc_auc"])
    assert row.ci_low == pytest.approx(outcome.metrics["test.model.segment.smb.roc_auc_ci_low"])
    # each backtest fold is a nested run with the model's figures on its test rows
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{tracked.run_id}'", order_by=["tags.`radar.fold`"]
    )
    assert [c.data.tags["radar.fold"] for c in children] == ["1", "2"]
    for child in children:
        i = child.data.tags["radar.fold"]
        assert child.data.metrics["pr_auc"] == pytest.approx(outcome.metrics[f"fold{i}.model.pr_auc"])
        assert child.info.run_name.startswith(f"track 2023-01..2024-04 lightgbm fold {i}/2 test ")
    # the link opens the experiment's runs page, not MLflow 3's traces tab
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment_url(settings.training, tracked.experiment_id) == (
        f"http://127.0.0.1:5000/#/experiments/{tracked.experiment_id}/runs"
    )
    served = settings.model_copy(
        update={"training": settings.training.model_copy(update={"tracking_uri": "http://mlflow.example:5000/"})}
    )
    assert experiment_url(served.training, "7", "abc") == "http://mlflow.example:5000/#/experiments/7/runs/abc"


def test_the_snapshot_builds_own_parameters_are_logged_not_the_config(trained, settings, store):
    """Given a weekly build's table while the config says month: the run logs week."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.track import log_training_run

    table, outcome, _, client, _ = trained
    assert settings.features.freq == "month"
    build = {
        "freq": "week",
        "horizon_days": 60,
        "label_definition": "churned: MRR falls to 0 ...",
        "data_end": "2024-05-01",
        "data_end_source": "the subscriptions' last day",
        "windows": [7, 28],
        "event_types": ["Export, Report", "canvas_opened"],
    }
    arrow = pa.Table.from_pandas(table.frame, preserve_index=False)
    weekly = store / "weekly.parquet"
    pq.write_table(
        arrow.replace_schema_metadata({**arrow.schema.metadata, PARQUET_KEY.encode(): json.dumps(build).encode()}),
        weekly,
    )
    other = TargetSpec("weekly", "churned", "radar-weekly", "churns within the horizon")  # leaves radar-track alone
    logged = log_training_run(
        dataclasses.replace(outcome, target=other), dataclasses.replace(table, target=other), settings, source=weekly
    )
    params = client.get_run(logged.run_id).data.params
    assert params["snapshot.freq"] == params["features.freq"] == "week"
    assert params["snapshot.horizon_days"] == params["domain.horizon_days"] == "60"
    assert (
        params["snapshot.data_end"] == "2024-05-01"
        and params["snapshot.data_end_source"] == "the subscriptions' last day"
    )
    assert params["snapshot.label_definition"].startswith("churned: MRR falls to 0")
    assert params["snapshot.windows"] == params["features.windows"] == "7,28"
    # the per-event types: a JSON list in the run, carried by the registered model (not the caller's)
    assert json.loads(params["snapshot.event_types"]) == ["Export, Report", "canvas_opened"]
    from training.registry_access import load_version

    registered = load_version(settings.training, "radar-weekly", logged.version)
    assert registered.metadata["event_types"] == ["Export, Report", "canvas_opened"]
    assert "event_types" not in outcome.model.metadata
    # a table without a recorded build says so and logs the config
    plain = client.get_run(trained[2].run_id).data.params
    assert plain["features.freq"] == "month" and plain["snapshot.recorded"].startswith("no")


def test_the_dataset_input_records_source_digest_and_as_of_range(trained):
    table, outcome, tracked, client, source = trained
    (inp,) = client.get_run(tracked.run_id).inputs.dataset_inputs
    tags = {t.key: t.value for t in inp.tags}
    assert inp.dataset.digest == outcome.dataset_digest[:36]
    assert tags["digest"] == outcome.dataset_digest
    assert str(source) in inp.dataset.source
    assert tags["as_of_range"] == "2023-01-31..2024-04-30"
    assert tags["mlflow.data.context"] == "training" and tags["rows"] == str(len(table.frame))
    assert "usage" in inp.dataset.schema


def test_artifacts_hold_features_plots_summary_warnings_and_test_rows(trained, tmp_path):
    table, outcome, tracked, client, _ = trained
    local = Path(mlflow.artifacts.download_artifacts(run_id=tracked.run_id, dst_path=str(tmp_path)))
    features = json.loads((local / "features.json").read_text())
    assert [f["name"] for f in features] == outcome.features
    assert {f["name"] for f in features if f["categorical"]} == {"segment", "region"}
    assert "| `usage` |" in (local / "features.md").read_text()
    assert {p.name for p in (local / "plots").iterdir()} == PLOTS
    assert len(pd.read_csv(local / "summary.csv")) == len(outcome.summary)
    assert (local / "warnings.txt").read_text().splitlines() == outcome.warnings
    # the per-band table is one artifact, not a metric per band and figure
    bands = pd.read_csv(local / "evaluation" / "renewal_bands.csv")
    assert list(bands.band) == ["0-90", "91-180", "181-365", ">365/none"]
    assert bands.roc_auc.to_numpy() == pytest.approx(outcome.bands.roc_auc.to_numpy(), nan_ok=True)
    metrics = client.get_run(tracked.run_id).data.metrics
    assert not any("0-90" in k or "181-365" in k for k in metrics)
    test_set = pd.read_parquet(local / "test" / "test_set.parquet")
    preds = pd.read_parquet(local / "test" / "test_predictions.parquet")
    assert len(test_set) == len(preds) == len(outcome.test_predictions)
    assert (test_set["account_id"].to_numpy() == preds["account_id"].to_numpy()).all()
    assert set(outcome.features) <= set(test_set.columns)


def test_the_registered_version_is_the_challenger_and_serves_calibrated_probabilities(trained, tmp_path):
    table, outcome, tracked, client, _ = trained
    assert str(client.get_model_version_by_alias("radar-track", CHALLENGER).version) == tracked.version
    assert "champion" not in client.get_registered_model("radar-track").aliases
    tags = client.get_model_version("radar-track", tracked.version).tags
    assert float(tags["test.model.pr_auc"]) == pytest.approx(outcome.metrics["test.model.pr_auc"], rel=1e-5)
    assert tags["radar.run_id"] == tracked.run_id and tags["radar.label"] == "churned"

    # the base rate, everywhere a reader may look: tag, param, metric, MLmodel metadata, the model
    rate = outcome.base_rate
    assert 0 < rate < 1 and float(tags["radar.base_rate"]) == pytest.approx(rate, rel=1e-5)
    run = client.get_run(tracked.run_id)
    assert float(run.data.params["base_rate"]) == pytest.approx(rate)
    assert run.data.metrics["base_rate"] == pytest.approx(rate)
    info = mlflow.models.get_model_info(f"models:/radar-track@{CHALLENGER}")
    assert info.metadata["radar_base_rate"] == pytest.approx(rate) and info.metadata["radar_target"] == "track"
    assert [c.name for c in info.signature.inputs.inputs] == outcome.features
    assert all(c.required for c in info.signature.inputs.inputs)
    assert info.saved_input_example_info is not None

    test_set = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=tracked.run_id, artifact_path="test/test_set.parquet", dst_path=str(tmp_path)
        )
    )
    served = mlflow.pyfunc.load_model(f"models:/radar-track@{CHALLENGER}").predict(test_set)
    assert np.allclose(served["probability"].to_numpy(), outcome.test_predictions["p_model"].to_numpy())
    model = load_radar_model(tracked.model_uri)
    assert isinstance(model, RadarModel) and model.features == outcome.features
    assert base_rate(model) == pytest.approx(rate)
    wrapper = mlflow.pyfunc.load_model(tracked.model_uri).unwrap_python_model()
    assert wrapper.base_rate == pytest.approx(rate)


def test_a_missing_feature_is_refused_at_the_signature(trained):
    table, outcome, tracked, client, _ = trained
    served = mlflow.pyfunc.load_model(tracked.model_uri)
    with pytest.raises(mlflow.exceptions.MlflowException, match="usage"):
        served.predict(table.frame.drop(columns="usage").head(3))


def test_logging_again_moves_the_challenger_to_the_new_version(trained, settings):
    from training.track import log_training_run

    table, outcome, tracked, client, source = trained
    again = log_training_run(outcome, table, settings, source=source)
    assert int(again.version) == int(tracked.version) + 1
    assert str(client.get_model_version_by_alias("radar-track", CHALLENGER).version) == again.version


def test_a_relative_sqlite_uri_is_resolved_against_the_working_directory(tmp_path, monkeypatch, make_settings):
    monkeypatch.chdir(tmp_path)
    cfg = make_settings(tracking_uri="sqlite:///mlruns/mlflow.db").training
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert tracking_uri(make_settings(tracking_uri="http://127.0.0.1:5000").training) == "http://127.0.0.1:5000"


def test_segment_names_become_valid_metric_names():
    assert metric_key("test.model.segment.Enterprise (EU).roc_auc") == "test.model.segment.Enterprise _EU_.roc_auc"


def test_too_few_test_positives_are_logged_but_not_registered(trained, settings):
    """A model whose test period holds fewer positives than register_min_test_positives is
    trained and logged, not registered (its figures are noise), and says why."""
    from training.track import log_training_run, not_registrable

    table, outcome, _, client, source = trained
    positives = int(outcome.test_predictions[TARGET.label].sum())
    assert not_registrable(outcome, positives) is None  # exactly enough: registered
    strict = settings.model_copy(
        update={"training": settings.training.model_copy(update={"register_min_test_positives": positives + 1})}
    )
    versions_before = len(client.search_model_versions(f"name='{TARGET.model_name}'"))
    tracked = log_training_run(outcome, table, strict, source=source)
    assert tracked.version is None and f"has {positives} positive label(s)" in tracked.not_registered
    assert "register_min_test_positives" in tracked.not_registered
    assert len(client.search_model_versions(f"name='{TARGET.model_name}'")) == versions_before
    assert client.get_run(tracked.run_id).data.tags["radar.not_registered"] == tracked.not_registered
