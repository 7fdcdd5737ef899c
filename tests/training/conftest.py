"""Seeded synthetic tables for the training tests, small enough to reason about.

`synthetic_snapshots` draws monthly snapshots of accounts whose churn follows a known
logistic model of a few features (with categorical and missing values), so a model
that learns anything must beat chance and the answers can be checked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from scipy.special import expit

from features.snapshot import feature_registry
from radar.settings import Settings
from training.dataset import TrainingTable
from training.outcome import TargetSpec

CHURN = TargetSpec("churn", "churned", "radar-churn", "churns within the horizon")
FEATURES = ["segment", "region", "usage", "tickets", "nps", "mrr"]
CATEGORICAL = ["segment", "region"]


def synthetic_snapshots(n_accounts: int = 200, n_dates: int = 20, seed: int = 0, base: float = -3.0) -> pd.DataFrame:
    """One row per (account, month-end): churn ~ Bernoulli(sigmoid(base − 1.5·usage
    + 0.4·tickets + 0.8·[smb])); health_score tracks usage loosely."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-31", periods=n_dates, freq="ME")
    acc = np.repeat(np.arange(n_accounts), n_dates)
    latent = rng.normal(size=n_accounts)[acc]
    segment = rng.choice(np.array(["smb", "mid_market", "enterprise"]), n_accounts, p=[0.6, 0.3, 0.1])[acc]
    region = rng.choice(np.array(["emea", "amer", "apac", None], dtype=object), n_accounts)[acc]
    n = len(acc)
    usage = latent + rng.normal(0, 0.5, n)
    tickets = rng.poisson(np.exp(0.3 - 0.5 * latent)).astype(float)
    nps = np.where(rng.random(n) < 0.3, np.nan, 20 * latent + rng.normal(0, 20, n))
    p = expit(base - 1.5 * usage + 0.4 * tickets + 0.8 * (segment == "smb"))
    observed_usage = np.where(rng.random(n) < 0.1, np.nan, usage)
    return pd.DataFrame(
        {
            "account_id": [f"a{i:04d}" for i in acc],
            "as_of": np.tile(dates, n_accounts),
            "segment": segment,
            "region": region,
            "usage": observed_usage,
            "tickets": tickets,
            "nps": nps,
            "mrr": np.round(np.exp(rng.normal(6, 1, n_accounts))[acc], 2),
            "health_score": np.clip(50 + 12 * usage + rng.normal(0, 15, n), 0, 100).round(1),
            "churned": rng.binomial(1, p),
        }
    )


def table_of(frame: pd.DataFrame, time_col: str | None = "as_of") -> TrainingTable:
    return TrainingTable(
        frame=frame.reset_index(drop=True),
        target=CHURN,
        id_col="account_id",
        time_col=time_col,
        features=list(FEATURES),
        categorical=list(CATEGORICAL),
        weight_col="mrr",
        segment_col="segment",
        baseline_col="health_score",
        descriptions={f: f for f in FEATURES},
    )


def fast_settings(**training) -> Settings:
    """Default settings with fewer bootstrap resamples and boosting rounds (fast tests)."""
    cfg = {"bootstrap_samples": 60, "lightgbm": {"n_estimators": 150, "min_child_samples": 20}}
    cfg.update(training)
    return Settings(training=cfg)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return fast_settings()


@pytest.fixture(scope="session")
def snapshots() -> pd.DataFrame:
    return synthetic_snapshots()


@pytest.fixture(scope="session")
def table(snapshots) -> TrainingTable:
    return table_of(snapshots)


def snapshot_frame(n_accounts: int = 30, n_dates: int = 4, seed: int = 0) -> pd.DataFrame:
    """A frame shaped like `radar build-features` output: every registry column."""
    rng = np.random.default_rng(seed)
    settings = Settings()
    dates = pd.date_range("2025-01-31", periods=n_dates, freq="ME").date
    n = n_accounts * n_dates
    columns = {
        "account_id": np.repeat([f"acc{i}" for i in range(n_accounts)], n_dates),
        "as_of": np.tile(dates, n_accounts),
        "name": "x",
        "csm_owner": "y",
    }
    for spec in feature_registry(settings):
        columns[spec.name] = (
            rng.choice(np.array(["a", "b", None], dtype=object), n) if spec.categorical else rng.normal(size=n)
        )
    days = np.where(rng.random(n) < 0.15, np.nan, rng.integers(0, 500, n))
    columns["days_to_next_renewal"] = days
    columns["churned"] = np.where(rng.random(n) < 0.2, np.nan, rng.binomial(1, 0.3, n))
    columns["expanded"] = rng.binomial(1, 0.2, n).astype(float)
    columns["churned_by_renewal"] = np.where(rng.random(n) < 0.25, np.nan, rng.binomial(1, 0.4, n))
    columns["renewal_in_horizon"] = rng.random(n) < 0.4
    as_of = pd.to_datetime(pd.Series(columns["as_of"]))
    renewal = as_of + pd.to_timedelta(days, unit="D")
    # T = max(as_of + 90, renewal + 30) capped at as_of + 400; as_of + 90 without a renewal
    lead = np.where(np.isnan(days), 90, np.clip(np.nan_to_num(days) + 30, 90, 400))
    columns["next_renewal"] = renewal.dt.date.to_numpy()
    columns["label_end_by_renewal"] = (as_of + pd.to_timedelta(lead, unit="D")).dt.date.to_numpy()
    frame = pd.DataFrame(columns)
    return frame


# Factories as fixtures (test modules cannot import conftest under --import-mode=importlib).
@pytest.fixture(scope="session")
def make_snapshots():
    return synthetic_snapshots


@pytest.fixture(scope="session")
def make_table():
    return table_of


@pytest.fixture(scope="session")
def make_settings():
    return fast_settings


@pytest.fixture(scope="session")
def make_snapshot_frame():
    return snapshot_frame


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """A migrated, empty sqlite tracking store for tests to copy (creating the schema
    takes MLflow about ten seconds, so it is done once per session)."""
    template = tmp_path_factory.getbasetemp() / "mlflow-template.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()
    return template


MLFLOW_STARTUP_SECONDS = 180  # migrating a new store and importing the server take a while on a busy machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the group we started
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:  # a graceful shutdown waits for idle keep-alive clients
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A factory: `mlflow_server(backend_store_uri=None)` starts a real `mlflow server` on
    127.0.0.1 (default backend: a sqlite file in its folder; artifacts proxied through the
    server into `<root>/artifacts`), waits until it is healthy and returns (url, root).
    Every server started is stopped when the module's tests are done."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(backend_store_uri: str | None = None) -> tuple[str, Path]:
        root = tmp_path_factory.mktemp("mlflow-server")
        port = _free_port()
        log = (root / "server.log").open("w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                backend_store_uri or f"sqlite:///{root}/mlflow.db",
                "--serve-artifacts",
                "--artifacts-destination",
                str(root / "artifacts"),
            ],
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + MLFLOW_STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {proc.returncode}:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return url, root
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server not healthy after {MLFLOW_STARTUP_SECONDS}s:\n"
                    f"{(root / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)

    yield start
    for proc, log in started:
        _stop(proc)
        log.close()
