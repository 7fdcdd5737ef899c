"""Tracking, registry and promotion against a real `mlflow server` on 127.0.0.1.

The server is started by the test (sqlite backend and artifact store in a temp dir,
artifacts proxied through the server) and stopped in teardown.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.promote import promote
from training.registry_view import model_versions
from training.track import CHAMPION, train_and_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(mlflow_server):
    return mlflow_server()


def test_train_register_and_promote_through_a_tracking_server(
    server, tmp_path, make_settings, make_snapshots, make_table
):
    url, root = server
    settings = make_settings(
        tracking_uri=url, bootstrap_samples=20, backtest_folds=1, lightgbm={"n_estimators": 60, "min_child_samples": 20}
    )
    frame = make_snapshots(n_accounts=120, n_dates=16, seed=6)
    frame.to_parquet(tmp_path / "snapshots.parquet")
    table = make_table(frame)
    outcome, first = train_and_log(table, settings, source=tmp_path / "snapshots.parquet")
    assert promote(first.model_name, settings).promoted

    # an identical retrain does not beat the champion by the margin: refused
    _, second = train_and_log(table, settings, source=tmp_path / "snapshots.parquet")
    refused = promote(second.model_name, settings)
    assert not refused.promoted and refused.champion == first.version
    assert refused.challenger_value == pytest.approx(refused.champion_value)

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.get_experiment_by_name("radar-churn")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server chose it
    assert str(client.get_model_version_by_alias("radar-churn", CHAMPION).version) == first.version
    run = client.get_run(second.run_id)
    assert run.data.metrics["test.model.pr_auc"] == pytest.approx(outcome.metrics["test.model.pr_auc"])
    assert run.inputs.dataset_inputs[0].dataset.digest == outcome.dataset_digest[:36]
    names = {f.path for f in client.list_artifacts(second.run_id, "plots")}
    assert "plots/calibration.png" in names and "plots/shap_summary.png" in names

    # artifacts went through the server to its store, not to a local mlruns/
    assert any((root / "artifacts").rglob("booster.txt")) and any((root / "artifacts").rglob("test_set.parquet"))
    assert not (tmp_path / "mlruns").exists() and not Path("mlruns", "artifacts", "radar-churn").exists()

    mlflow.set_tracking_uri(url)
    served = mlflow.pyfunc.load_model(f"models:/radar-churn@{CHAMPION}")
    p = served.predict(table.frame.tail(20))["probability"].to_numpy()
    assert np.all((p > 0) & (p < 1))

    listed = model_versions(settings, ["radar-churn"])
    assert list(listed.version) == [2, 1] and list(listed.aliases) == ["challenger", "champion"]
    assert list(listed.promotion) == ["refused", "promoted"]
    assert pd.notna(listed.pr_auc).all()
