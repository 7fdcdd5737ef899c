"""Calibration: a 0.3 means about 30% on data the model has not seen."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from training.calibrate import Calibrator, choose_calibrator, fit_isotonic, fit_platt
from training.dataset import TrainingTable
from training.evaluate import metrics
from training.model import fit_lightgbm
from training.outcome import TargetSpec
from training.split import Split


def known_probability_table(n: int, seed: int = 0) -> tuple[TrainingTable, np.ndarray]:
    """y ~ Bernoulli(sigmoid(1.5·x1 − x2 − 3)), with two noise features: about 8% positive."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    truth = expit(1.5 * X[:, 0] - X[:, 1] - 3)
    frame = pd.DataFrame(X, columns=["x1", "x2", "noise1", "noise2"]).assign(id=np.arange(n), y=rng.binomial(1, truth))
    table = TrainingTable(
        frame,
        TargetSpec("t", "y", "radar-t", "y = 1"),
        "id",
        None,
        ["x1", "x2", "noise1", "noise2"],
        [],
        None,
        None,
        None,
        {},
    )
    return table, truth


def test_balanced_model_is_reliable_on_held_out_rows_once_calibrated(settings):
    # given a problem whose true probabilities are known; train 6,000, calibrate 3,000, test 6,000
    table, truth = known_probability_table(15_000)
    split = Split(np.arange(6000), np.arange(6000, 9000), np.arange(9000, 15_000))
    assert settings.training.lightgbm.balance_classes
    # when the model is fitted with balanced class weights, then calibrated on unweighted rows
    model = fit_lightgbm(table, split, settings)
    test = table.frame.iloc[split.test]
    calibrated, y = model.predict_proba(test), table.y[split.test]
    uncalibrated = expit(model.raw_margin(test))
    # then the calibrated probabilities match what happens, the balanced scores do not
    assert metrics(y, calibrated)["ece"] < 0.015
    assert metrics(y, uncalibrated)["ece"] > 5 * metrics(y, calibrated)["ece"]
    assert calibrated.mean() == pytest.approx(y.mean(), abs=0.01)
    assert np.abs(calibrated - truth[split.test]).mean() < 0.04


def logistic_margins(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 1.5, n)
    return m, rng.binomial(1, expit(0.8 * m - 1))


def test_platt_wins_on_a_logistic_truth_with_few_rows():
    margin, y = logistic_margins(150, seed=4)
    chosen = choose_calibrator(margin, y, folds=5, seed=0)
    assert chosen.method == "platt"
    assert chosen.scores["platt"] < chosen.scores["isotonic"]
    assert chosen.slope == pytest.approx(0.8, abs=0.35)


def test_isotonic_wins_on_a_step_shaped_truth_with_many_rows():
    # given an outcome that jumps from 5% to 60% at margin 0: no logistic curve fits a step
    rng = np.random.default_rng(1)
    margin = rng.normal(size=5000)
    y = rng.binomial(1, np.where(margin < 0, 0.05, 0.6))
    chosen = choose_calibrator(margin, y, folds=5, seed=0)
    assert chosen.method == "isotonic"
    assert chosen.transform(np.array([-1.0, 1.0])) == pytest.approx([0.05, 0.6], abs=0.05)


def test_isotonic_never_says_never():
    # given a calibration set where every low score is negative
    margin = np.arange(100.0)
    y = (margin > 70).astype(int)
    p = fit_isotonic(margin, y).transform(np.array([-10.0, 50.0, 200.0]))
    assert 0 < p[0] <= 1 / 200 and p[2] < 1


def test_platt_survives_perfectly_separated_rows():
    p = fit_platt(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1])).transform(np.array([-2.0, 2.0]))
    assert 0 < p[0] < 0.5 < p[1] < 1


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_a_calibrator_survives_json(method):
    margin, y = logistic_margins(500, seed=2)
    fitted = (fit_platt if method == "platt" else fit_isotonic)(margin, y)
    again = Calibrator.from_dict(json.loads(json.dumps(fitted.to_dict())))
    grid = np.linspace(-5, 5, 101)
    assert np.array_equal(again.transform(grid), fitted.transform(grid))
