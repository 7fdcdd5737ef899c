"""A team MLflow setup: `radar` against a tracking server with a PostgreSQL backend store.

The test starts `mlflow server` on 127.0.0.1 with a fresh database of the session's
PostgreSQL server as its backend store and a shared artifact folder, then works as a
team member would: `radar train --target all --promote` (the three targets) and `radar
models` with only `training.tracking_uri` pointing at the server, then loads the
champions as serving does and scores a few accounts with them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from radar.cli import app
from radar.settings import Settings, TrainingSettings
from serving.scoring.champions import load_champions
from serving.scoring.score import score_frame
from training.pyfunc import load_radar_model
from training.track import experiment_location

FAST = {
    "BOOTSTRAP_SAMPLES": "0",
    "BACKTEST_FOLDS": "1",
    "LIGHTGBM__N_ESTIMATORS": "40",
    "LIGHTGBM__MIN_CHILD_SAMPLES": "20",
}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.slow
def test_train_promote_and_serve_through_a_team_server(
    mlflow_server, postgres_database, make_snapshot_frame, tmp_path, monkeypatch
):
    store = postgres_database("mlflow_team")
    url, root = mlflow_server(store)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("RADAR_TRAINING__TRACKING_URI", url)
    for key, value in FAST.items():
        monkeypatch.setenv(f"RADAR_TRAINING__{key}", value)
    (tmp_path / "out").mkdir()
    frame = make_snapshot_frame(n_accounts=60, n_dates=16, seed=5)
    frame.to_parquet(tmp_path / "out" / "snapshots.parquet")

    trained = run("train", "--target", "all", "--promote")
    assert trained.exit_code == 0, trained.output
    for name in ("radar-renewal", "radar-upsell", "radar-next-renewal"):
        assert f"registered {name} v1 as challenger" in trained.output
    assert trained.output.count("becomes champion") == 3
    listed = run("models")
    assert listed.exit_code == 0, listed.output
    assert f"tracking store: {url}" in listed.output and listed.output.count("champion") >= 3

    # the registry lives in PostgreSQL, the artifacts in the server's shared folder, nothing locally
    server = make_url(store)
    with psycopg.connect(host=server.host, port=server.port, user=server.username, dbname=server.database) as db:
        aliases = set(db.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall())
        kinds = db.execute(
            "SELECT t.value, count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'radar.kind' AND r.status = 'FINISHED' GROUP BY t.value"
        ).fetchall()
    assert {
        ("radar-renewal", "champion", 1),
        ("radar-upsell", "champion", 1),
        ("radar-next-renewal", "champion", 1),
    } <= aliases
    assert dict(kinds)["training"] == 3
    assert len(list((root / "artifacts").rglob("booster.txt"))) == 3
    assert not (tmp_path / "mlruns").exists()

    # serving loads the champions from the server, by alias, and scores with them
    settings = Settings()
    models = load_champions(settings)
    assert {
        "renewal_model": "radar-renewal",
        "renewal_model_version": "1",
        "upsell_model": "radar-upsell",
        "upsell_model_version": "1",
    }.items() <= models.lineage.items()
    rows = frame.tail(5)
    by_alias = load_radar_model("models:/radar-renewal@champion")
    np.testing.assert_allclose(by_alias.predict_proba(rows), models.renewal.model.predict_proba(rows))
    scored = score_frame(rows, models, settings, scored_at=datetime(2025, 5, 1, tzinfo=UTC))
    assert len(scored) == 5 and scored.renewal_likelihood.between(0, 1).all()
    assert scored.upsell_likelihood.between(0, 1).all()
    assert all(len(d) == settings.serving.top_drivers for d in scored.renewal_drivers)
    assert (scored.renewal_model_version == "1").all()

    # the same registry read directly from its database (no server), as an admin might
    monkeypatch.setenv("RADAR_TRAINING__TRACKING_URI", store)
    direct = run("models", "upsell")
    assert direct.exit_code == 0, direct.output
    assert "radar-upsell" in direct.output and "champion" in direct.output and "promoted" in direct.output


def test_experiments_put_artifacts_under_the_shared_location_unless_a_server_decides(tmp_path):
    def location(uri: str, artifacts: str) -> str | None:
        return experiment_location("radar-renewal", TrainingSettings(tracking_uri=uri, artifact_location=artifacts))

    assert location("http://mlflow.internal:5000", "s3://bucket/radar") is None
    assert location("postgresql+psycopg://radar@db/mlflow", "s3://bucket/radar/") == "s3://bucket/radar/radar-renewal"
    assert (
        location(f"sqlite:///{tmp_path}/m.db", str(tmp_path / "shared"))
        == (tmp_path / "shared" / "radar-renewal").as_uri()
    )
