"""A damaged registry gives one short message naming what is broken and how to repair it.

Two damages seen in the field: a version's model folder deleted (the champion's
artifacts gone) and `mlflow.db` overwritten with random bytes. Real sqlite stores in
tmp_path, real tiny models.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from radar.cli import app
from training.pipeline import train_and_evaluate
from training.promote import promote
from training.registry_access import RegistryBroken, load_version, open_registry
from training.track import log_training_run


@pytest.fixture(scope="module")
def trained(make_snapshots, make_table, make_settings):
    """A tiny trained outcome (and its table), registered afresh by each test."""
    settings = make_settings(bootstrap_samples=0, backtest_folds=1, lightgbm={"n_estimators": 30})
    table = make_table(make_snapshots(n_accounts=80, n_dates=16, seed=5, base=-2.0))
    return table, train_and_evaluate(table, settings)


@pytest.fixture
def store(tmp_path, empty_mlflow_db, make_settings, monkeypatch):
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_db, tmp_path / "mlruns" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    settings = make_settings(
        tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db",
        artifact_location=str(tmp_path / "mlruns" / "artifacts"),
        register_min_test_positives=0,
        promotion_bootstrap_samples=50,
    )
    for key, value in {
        "TRACKING_URI": settings.training.tracking_uri,
        "ARTIFACT_LOCATION": settings.training.artifact_location,
        "REGISTER_MIN_TEST_POSITIVES": "0",
        "PROMOTION_BOOTSTRAP_SAMPLES": "50",
    }.items():
        monkeypatch.setenv(f"RADAR_TRAINING__{key}", value)
    return tmp_path, settings


def _model_folder(settings, version: str) -> Path:
    client = MlflowClient(settings.training.tracking_uri)
    mv = client.get_model_version("radar-churn", version)
    logged = client.get_logged_model(mv.source.removeprefix("models:/"))
    return Path(urlparse(logged.artifact_location).path)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_champion_whose_model_folder_was_deleted_is_named_with_the_repair(store, trained):
    _, settings = store
    table, outcome = trained
    log_training_run(outcome, table, settings, source="snapshots.parquet")
    promote("radar-churn", settings)
    log_training_run(outcome, table, settings, source="snapshots.parquet")
    shutil.rmtree(_model_folder(settings, "1"))

    with pytest.raises(RegistryBroken) as err:
        load_version(settings.training, "radar-churn", "1", "champion")
    message = str(err.value)
    assert "radar-churn v1 (the champion)" in message and "radar promote churn --to VERSION" in message
    assert "radar train --snapshots FILE --label COL --name churn --promote" in message
    assert np.isfinite(load_version(settings.training, "radar-churn", "2").predict_proba(table.frame.head(3))).all()

    result = run("promote", "churn")  # v2 against the broken champion v1
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "radar-churn v1 (the champion) cannot be read" in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) <= 8


def test_radar_score_names_a_champion_whose_files_are_gone(store, trained):
    """`radar score` loads the champions through the same door (serving's champions use
    `load_version`): exit 1, the broken version and the repair, no traceback."""
    import dataclasses

    from training.outcome import TARGETS

    root, settings = store
    table, outcome = trained
    for target in ("renewal", "upsell"):  # the same tiny churn model under both served names
        spec = dataclasses.replace(TARGETS[target], label="churned")
        log_training_run(
            dataclasses.replace(outcome, target=spec),
            dataclasses.replace(table, target=spec),
            settings,
            source="snapshots.parquet",
        )
        promote(spec.model_name, settings)
    client = MlflowClient(settings.training.tracking_uri)
    mv = client.get_model_version("radar-renewal", "1")
    shutil.rmtree(Path(urlparse(client.get_logged_model(mv.source.removeprefix("models:/")).artifact_location).path))

    result = run("score", "--to", str(root / "scores.csv"))
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "radar-renewal v1 (the champion) cannot be read" in text and "radar promote renewal --to VERSION" in text
    assert len(result.output.strip().splitlines()) <= 8


def test_a_store_of_random_bytes_is_named_with_the_repair(store, make_snapshots):
    root, settings = store
    (root / "mlruns" / "mlflow.db").write_bytes(np.random.default_rng(0).bytes(64_000))
    with pytest.raises(RegistryBroken, match="cannot be read .*file is not a database.*restore that store"):
        open_registry(settings.training)

    make_snapshots(n_accounts=40, n_dates=16).to_parquet(root / "mine.parquet")
    for args in (
        ("train", "--snapshots", "mine.parquet", "--label", "churned", "--name", "mine"),
        ("promote", "renewal"),
        ("promote", "renewal", "--to", "1"),
        ("models",),
        ("score", "--to", str(root / "scores.csv")),
    ):
        result = run(*args)
        assert result.exit_code == 1, args
        text = " ".join(result.output.split())
        assert "Traceback" not in result.output and "cannot be read" in text and "restore that store" in text, args
        assert len(result.output.strip().splitlines()) <= 6, result.output
