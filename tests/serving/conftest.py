"""Real, small served models for the serving tests.

`serving_snapshots` (features.sampledata.snapshots) draws snapshot rows with every registry column, whose churn and
expansion follow a few features (adoption, login trend, onboarding, NPS, segment) with
missing values and categories; `scoring_models` trains the renewal and upsell models on
them with the training package's own `fit_lightgbm` (booster + calibrator), as served.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from features.config import Settings
from features.sampledata.snapshots import synthetic_snapshots
from serving.score import ScoringModels, ServedModel
from training.dataset import from_snapshots
from training.model import fit_lightgbm
from training.outcome import TARGETS
from training.split import Split


def serving_snapshots(n_accounts: int = 400, n_dates: int = 4, seed: int = 7) -> pd.DataFrame:
    return synthetic_snapshots(n_accounts, n_dates, seed)


def train_models(frame: pd.DataFrame, settings: Settings) -> ScoringModels:
    served = {}
    for target in ("renewal", "upsell"):
        table = from_snapshots(frame, TARGETS[target], settings)
        rows = np.arange(len(table.frame))
        split = Split(train=rows[rows % 4 != 0], calibration=rows[rows % 4 == 0], test=rows[:0])
        model = fit_lightgbm(table, split, settings)
        served[target] = ServedModel(model, TARGETS[target].model_name, "7" if target == "renewal" else "3")
    return ScoringModels(served["renewal"], served["upsell"])


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(training={"bootstrap_samples": 0, "lightgbm": {"n_estimators": 80, "min_child_samples": 10,
                                                                   "early_stopping_rounds": 80}})


@pytest.fixture(scope="session")
def snapshots() -> pd.DataFrame:
    return serving_snapshots()


@pytest.fixture(scope="session")
def models(snapshots, settings) -> ScoringModels:
    return train_models(snapshots, settings)


@pytest.fixture(scope="session")
def latest(snapshots) -> pd.DataFrame:
    """The accounts of the latest as_of, as batch scoring would see them."""
    last = max(snapshots.as_of)
    return snapshots[snapshots.as_of == last].reset_index(drop=True)


@pytest.fixture(scope="session")
def scored_at():
    from datetime import datetime, timezone

    return datetime(2025, 5, 1, 6, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def as_of_dates(snapshots) -> list[date]:
    return sorted(set(snapshots.as_of))


# --- a served project: champion models in a real MLflow store, a workspace, a real server ---

SERVED_TOKEN = "test-token-7f3a"


@pytest.fixture(scope="session")
def served_project(tmp_path_factory):
    """A project directory as `radar` leaves it after `build-features` and `train --promote`:
    radar.toml, out/radar.duckdb with a `snapshots` table (16 month-ends, 250 accounts) and a
    sqlite MLflow store whose radar-renewal and radar-upsell champions were trained on them
    by the training pipeline. Returns (directory, settings)."""
    import duckdb

    from features.config import load_settings
    from training.dataset import from_snapshots
    from training.promote import promote
    from training.track import train_and_log

    root = tmp_path_factory.mktemp("served")
    (root / "radar.toml").write_text(
        f'output_dir = "{root / "out"}"\n\n'
        "[training]\n"
        f'tracking_uri = "sqlite:///{root / "mlruns" / "mlflow.db"}"\n'
        f'artifact_location = "{root / "mlruns" / "artifacts"}"\n'
        "bootstrap_samples = 0\ntest_periods = 2\ncalibration_periods = 2\nbacktest_folds = 1\n"
        "min_accounts = 10\nmin_positives = 5\n"
        "[training.lightgbm]\nn_estimators = 60\nmin_child_samples = 10\n\n"
        "[serving]\nmax_batch = 50\n")
    settings = load_settings(root / "radar.toml")
    frame = serving_snapshots(n_accounts=250, n_dates=16, seed=11)
    (root / "out").mkdir()
    source = root / "out" / "snapshots.parquet"
    frame.to_parquet(source)
    con = duckdb.connect(str(settings.database_path))
    con.execute("CREATE TABLE snapshots AS SELECT * FROM frame")
    con.close()
    for target in ("renewal", "upsell"):
        _, tracked = train_and_log(from_snapshots(frame, TARGETS[target], settings), settings, source=source)
        promote(tracked.model_name, settings)
    return root, settings


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def radar_command() -> list[str]:
    """The `radar` entry point of this environment."""
    import shutil
    import sys
    from pathlib import Path

    found = Path(sys.executable).with_name("radar")
    return [str(found)] if found.exists() else [shutil.which("radar") or "radar"]


@pytest.fixture(scope="session")
def radar_cli() -> list[str]:
    return radar_command()


@pytest.fixture(scope="session")
def server(served_project):
    """`radar serve` on 127.0.0.1 for the served project, with a bearer token set.
    Yields .base (URL), .log (the server's output file) and .headers (with the token)."""
    import os
    import signal
    import subprocess
    import time

    import httpx

    root, _ = served_project
    port = free_port()
    log_path = root / "server.log"
    env = dict(os.environ, RADAR_SERVING__API_TOKEN=SERVED_TOKEN)
    env.pop("RADAR_CONFIG_FILE", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*radar_command(), "--config", str(root / "radar.toml"), "serve", "--port", str(port)],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"radar serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"radar serve not ready after 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        from types import SimpleNamespace

        yield SimpleNamespace(base=base, log=log_path, headers={"Authorization": f"Bearer {SERVED_TOKEN}"})
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
