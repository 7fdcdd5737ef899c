"""What a training run produces: the contract between modelling and tracking.

`training.pipeline` fills a `TrainOutcome`; `training.track` logs it to MLflow and
registers its model; `training.promote` compares outcomes on the same test data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class TargetSpec:
    """A prediction target: which label, what a positive means, its registered model name."""

    name: str  # "renewal", "upsell", "next_renewal", or a bring-your-own name
    label: str  # label column, 1 = positive
    model_name: str  # registered model name, e.g. "radar-renewal"
    positive: str  # what a positive label means, in words ("churns within the horizon")


TARGETS: dict[str, TargetSpec] = {
    "renewal": TargetSpec("renewal", "churned", "radar-renewal", "churns within the horizon"),
    "upsell": TargetSpec("upsell", "expanded", "radar-upsell", "expands within the horizon"),
    "next_renewal": TargetSpec(
        "next_renewal", "churned_by_renewal", "radar-next-renewal", "churns by its next renewal"
    ),
}


@dataclass
class TrainOutcome:
    """Everything a run has to log, register and compare.

    metrics: flat name -> value, e.g. "test.model.roc_auc", "test.model.roc_auc_ci_low",
      "test.health_score.pr_auc", "test.logistic.brier", "fold2.model.pr_auc",
      "backtest.model.pr_auc_mean", "test.model.segment.smb.roc_auc"; also "base_rate" and
      what the split's gaps dropped, "split.rows_before_test" (see `training.split.Split.dropped`).
    summary: one row per (model, metric) for the printed comparison table, columns
      model ("lightgbm", "logistic", "health_score"), metric, value, ci_low, ci_high.
    test_predictions: the test rows' ids, time, label, weight and the calibrated
      probability of each model ("p_model", "p_logistic", "p_health_score").
    model: the fitted, calibrated model object that is served (training.model.RadarModel).
    base_rate: the positive rate of the labelled calibration rows (the training rows when
      there are none): the typical risk that tiers compare with ("2.8x the typical churn
      risk"). Also in `model.metadata["base_rate"]`.
    bands: for churn targets, the model's test metrics per band of days to the next renewal
      (`training.evaluate.band_table`); None otherwise.
    """

    target: TargetSpec
    model: Any
    metrics: dict[str, float]
    summary: pd.DataFrame
    test_predictions: pd.DataFrame
    params: dict[str, Any]
    features: list[str]
    categorical: list[str]
    feature_descriptions: dict[str, str]
    split: dict[str, str]  # e.g. {"train": "2024-01-31..2025-06-30", "calibration": ..., "test": ...}
    dataset_digest: str
    dataset_rows: int
    warnings: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)  # artifact name -> PNG file
    input_example: pd.DataFrame | None = None
    base_rate: float | None = None
    bands: pd.DataFrame | None = None
    fold_ranges: list[dict[str, str]] = field(default_factory=list)  # per backtest/CV fold: part -> span
    tuning: str = ""  # how `--tune` searched (time-aware folds, or grouped CV over accounts); "" without tuning
