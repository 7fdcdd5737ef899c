"""What the model must beat, scored on the same test rows: the health score and a
logistic regression on the same features.

Both are turned into probabilities by the same calibration as the model (Platt or
isotonic, chosen on the calibration period), so Brier score, log loss and calibration
error compare like with like, not a 0–100 score with a probability.

- Health score: risk of churn rises as health falls (ranked by 100 − score), the chance
  of expansion rises with health. Rows without a health score get the calibration
  period's base rate: the baseline knows nothing about them.
- Logistic regression: median imputation with missing-value indicators, standard
  scaling, one-hot categories (levels unseen in training ignored), L2 with C = 1. It is
  fitted *unweighted*: its log-odds are already close to probabilities, and the
  calibration step would undo class weights anyway.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from radar.settings import Settings
from training.calibrate import Calibrator, choose_calibrator
from training.dataset import TrainingTable
from training.model import category_labels
from training.split import Split

# Which way the health score points for each label (DOMAIN 5: high health = low risk).
HEALTH_DIRECTION = {"churned": -1.0, "expanded": 1.0}


def _calibrate(score: np.ndarray, table: TrainingTable, rows: np.ndarray, settings: Settings) -> Calibrator:
    return choose_calibrator(
        score,
        table.y[rows],
        folds=settings.training.cv_folds,
        seed=settings.training.seed,
        groups=table.ids.to_numpy()[rows],
    )


class HealthScoreBaseline:
    """P(positive) from the health score alone, calibrated on the calibration period."""

    name = "health_score"

    def __init__(self, column: str = "health_score"):
        self.column = column

    def _score(self, frame: pd.DataFrame) -> np.ndarray:
        return self.direction_ * pd.to_numeric(frame[self.column], errors="coerce").to_numpy(float)

    def fit(self, table: TrainingTable, split: Split, settings: Settings) -> HealthScoreBaseline:
        direction = HEALTH_DIRECTION.get(table.target.label)
        if direction is None:  # a target of unknown meaning: orient the score by the training data
            raw = pd.to_numeric(table.frame[self.column].iloc[split.train], errors="coerce").to_numpy(float)
            known = ~np.isnan(raw)
            y = table.y[split.train][known]
            direction = 1.0 if len(set(y)) < 2 or roc_auc_score(y, raw[known]) >= 0.5 else -1.0
        self.direction_ = direction
        score = self._score(table.frame.iloc[split.calibration])
        known = ~np.isnan(score)
        y = table.y[split.calibration]
        self.base_rate_ = float(y.mean())
        rows = split.calibration[known]
        self.calibrator_ = _calibrate(score[known], table, rows, settings) if known.any() else None
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        score = self._score(frame)
        out = np.full(len(score), self.base_rate_)
        known = ~np.isnan(score)
        if self.calibrator_ is not None and known.any():
            out[known] = self.calibrator_.transform(score[known])
        return out


class LogisticBaseline:
    """Logistic regression on the model's features, calibrated on the calibration period."""

    name = "logistic"

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for f in self.features_:
            if f in self.categorical_:
                out[f] = category_labels(frame[f]).fillna("(missing)").to_numpy()
            else:
                out[f] = pd.to_numeric(frame[f], errors="coerce").astype("float64").to_numpy()
        return pd.DataFrame(out, index=frame.index)

    def fit(self, table: TrainingTable, split: Split, settings: Settings) -> LogisticBaseline:
        self.features_, self.categorical_ = list(table.features), list(table.categorical)
        numeric = [f for f in self.features_ if f not in self.categorical_]
        prep = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), self.categorical_),
            ]
        )
        self.pipeline_ = Pipeline([("prep", prep), ("lr", LogisticRegression(C=1.0, max_iter=1000))])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            warnings.filterwarnings("ignore", message="Skipping features without any observed values")
            self.pipeline_.fit(self._frame(table.frame.iloc[split.train]), table.y[split.train])
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        margin = self.margin(table.frame.iloc[split.calibration])
        self.calibrator_ = _calibrate(margin, table, split.calibration, settings)
        return self

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Skipping features without any observed values")
            return self.pipeline_.decision_function(self._frame(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator_.transform(self.margin(frame))
