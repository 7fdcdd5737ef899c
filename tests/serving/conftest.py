"""Real, small served models for the serving tests.

`serving_snapshots` draws snapshot rows with every registry column, whose churn and
expansion follow a few features (adoption, login trend, onboarding, NPS, segment) with
missing values and categories; `scoring_models` trains the renewal and upsell models on
them with the training package's own `fit_lightgbm` (booster + calibrator), as served.
"""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from features.config import Settings
from features.snapshot import feature_registry
from serving.score import ScoringModels, ServedModel
from training.dataset import from_snapshots
from training.model import fit_lightgbm
from training.outcome import TARGETS
from training.split import Split


def serving_snapshots(n_accounts: int = 400, n_dates: int = 4, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_accounts * n_dates
    dates = pd.date_range("2025-01-31", periods=n_dates, freq="ME").date
    columns = {"account_id": np.repeat([f"acc{i:04d}" for i in range(n_accounts)], n_dates),
               "as_of": np.tile(dates, n_accounts),
               "name": np.repeat([f"Account {i}" for i in range(n_accounts)], n_dates),
               "csm_owner": np.repeat(rng.choice(["Ana", "Ben", "Chloe"], n_accounts), n_dates)}
    for spec in feature_registry(Settings()):
        if spec.categorical:
            columns[spec.name] = rng.choice(np.array(["a", "b", "c", None], dtype=object), n)
        else:
            values = rng.normal(size=n)
            columns[spec.name] = np.where(rng.random(n) < 0.1, np.nan, values)
    frame = pd.DataFrame(columns)
    frame["segment"] = np.repeat(rng.choice(np.array(["smb", "mid_market", "enterprise"]), n_accounts), n_dates)
    frame["mrr"] = np.repeat(np.round(np.exp(rng.normal(6, 1, n_accounts)), 2), n_dates)
    frame["adoption_rate_28d"] = rng.uniform(0, 1.2, n)
    frame["onboarding_completion"] = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1, n))
    frame["logins_trend_28d"] = rng.uniform(-1, 1, n)
    frame["health_score"] = np.clip(40 + 50 * frame["adoption_rate_28d"] + rng.normal(0, 10, n), 0, 100).round(1)
    frame["health_band"] = np.select([frame.health_score < 40, frame.health_score < 70], ["red", "amber"], "green")
    churn = expit(-1.0 - 3.0 * (frame.adoption_rate_28d - 0.5) - 1.5 * frame.logins_trend_28d
                  - 1.0 * frame.onboarding_completion.fillna(0) + 0.8 * (frame.segment == "smb"))
    grow = expit(-1.2 + 2.0 * frame.account_nps_365d.fillna(0) + 1.5 * (frame.adoption_rate_28d - 0.5))
    frame["churned"] = rng.binomial(1, churn).astype(float)
    frame["expanded"] = np.where(frame.churned == 1, 0, rng.binomial(1, grow)).astype(float)
    frame["renewal_in_horizon"] = True
    return frame


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
