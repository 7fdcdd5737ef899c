"""Synthetic snapshot records: every registry column, churn and expansion that follow a few
features, missing values and categories — for benchmarks and tests of training and
serving at any size, without building a workspace first.

Churn follows adoption, the login trend, onboarding and segment; expansion follows NPS
and adoption. Labels are the snapshot's (`churned`, `expanded`), mrr and segment are per
account, ~10% of feature values are missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.snapshot import feature_registry
from radar.settings import Settings


def synthetic_snapshots(
    n_accounts: int = 400, n_dates: int = 4, seed: int = 7, settings: Settings | None = None
) -> pd.DataFrame:
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    n = n_accounts * n_dates
    dates = pd.date_range("2025-01-31", periods=n_dates, freq="ME").date
    columns = {
        "account_id": np.repeat(
            [f"acc{i:05d}" if n_accounts > 9999 else f"acc{i:04d}" for i in range(n_accounts)], n_dates
        ),
        "as_of": np.tile(dates, n_accounts),
        "name": np.repeat([f"Account {i}" for i in range(n_accounts)], n_dates),
        "csm_owner": np.repeat(rng.choice(["Ana", "Ben", "Chloe"], n_accounts), n_dates),
    }
    for spec in feature_registry(settings or Settings()):
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
    churn = expit(
        -1.0
        - 3.0 * (frame.adoption_rate_28d - 0.5)
        - 1.5 * frame.logins_trend_28d
        - 1.0 * frame.onboarding_completion.fillna(0)
        + 0.8 * (frame.segment == "smb")
    )
    grow = expit(-1.2 + 2.0 * frame.account_nps_365d.fillna(0) + 1.5 * (frame.adoption_rate_28d - 0.5))
    frame["churned"] = rng.binomial(1, churn).astype(float)
    frame["expanded"] = np.where(frame.churned == 1, 0, rng.binomial(1, grow)).astype(float)
    frame["renewal_in_horizon"] = True
    return frame
