"""The baselines: the health score and a logistic regression, calibrated like the model."""

from __future__ import annotations

import numpy as np
import pytest

from training.baselines import HealthScoreBaseline, LogisticBaseline
from training.evaluate import metrics
from training.split import time_split


@pytest.fixture(scope="module")
def split(table, settings):
    return time_split(table.times, settings)


def test_health_score_baseline_reads_low_health_as_churn_risk(table, split, settings):
    # given churn that rises as usage (and so health) falls
    baseline = HealthScoreBaseline().fit(table, split, settings)
    # when
    p = baseline.predict_proba(table.frame.head(2).assign(health_score=[20.0, 80.0]))
    # then a sick account is likelier to churn than a healthy one; the test ranking beats chance
    assert p[0] > p[1]
    test = table.frame.iloc[split.test]
    assert metrics(table.y[split.test], baseline.predict_proba(test))["roc_auc"] > 0.6


def test_accounts_without_a_health_score_get_the_calibration_base_rate(table, split, settings):
    baseline = HealthScoreBaseline().fit(table, split, settings)
    rows = table.frame.head(3).assign(health_score=np.nan)
    assert baseline.predict_proba(rows) == pytest.approx([table.y[split.calibration].mean()] * 3)


def test_health_score_probabilities_are_calibrated_not_raw_scores(table, split, settings):
    p = HealthScoreBaseline().fit(table, split, settings).predict_proba(table.frame.iloc[split.test])
    assert p.min() > 0 and p.max() < 1
    assert p.mean() == pytest.approx(table.y[split.test].mean(), abs=0.05)


def test_logistic_baseline_handles_categories_gaps_and_unseen_levels(table, split, settings):
    # given a table with categorical columns (one with missing values) and gaps in numbers
    assert table.frame.region.isna().any() and table.frame.usage.isna().any()
    baseline = LogisticBaseline().fit(table, split, settings)
    test = table.frame.iloc[split.test]
    # when scoring test rows, some with a level never seen in training
    p = baseline.predict_proba(test.assign(segment=np.where(np.arange(len(test)) % 5 == 0, "new", test.segment)))
    # then probabilities are finite and calibrated, and the linear truth is learned
    assert np.all((p > 0) & (p < 1))
    assert p.mean() == pytest.approx(table.y[split.test].mean(), abs=0.05)
    assert metrics(table.y[split.test], baseline.predict_proba(test))["roc_auc"] > 0.75
    assert baseline.converged_
