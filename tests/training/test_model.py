"""The served model: one input contract, exact explanations, a faithful saved copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.model import RadarModel, fit_lightgbm
from training.split import time_split


@pytest.fixture(scope="module")
def fitted(table, settings):
    split = time_split(table.times, settings)
    return fit_lightgbm(table, split, settings), table.frame.iloc[split.test]


def test_contributions_add_up_to_the_raw_margin_for_every_row(fitted):
    model, test = fitted
    contrib, base = model.contributions(test)
    assert contrib.shape == (len(test), len(model.features))
    np.testing.assert_allclose(contrib.sum(1) + base, model.raw_margin(test), atol=1e-9)
    assert np.ptp(base) == 0  # one expected value for the whole model


def test_save_and_load_give_identical_predictions(fitted, tmp_path):
    model, test = fitted
    again = RadarModel.load(model.save(tmp_path / "model"))
    assert np.array_equal(again.predict_proba(test), model.predict_proba(test))
    assert np.array_equal(again.contributions(test)[0], model.contributions(test)[0])
    assert again.features == model.features and again.categories == model.categories
    assert again.target == model.target and again.metadata == model.metadata


def test_prepare_orders_and_types_the_features_whatever_the_input(fitted):
    model, test = fitted
    shuffled = test[list(reversed(test.columns))].assign(extra="ignored")
    shuffled["tickets"] = shuffled["tickets"].astype("Int64")  # nullable ints, as some readers give
    prepared = model.prepare(shuffled)
    assert list(prepared.columns) == model.features
    assert isinstance(prepared["segment"].dtype, pd.CategoricalDtype)
    assert list(prepared["segment"].cat.categories) == model.categories["segment"]
    assert prepared["tickets"].dtype == np.float64
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(test))


def test_a_missing_feature_column_is_named(fitted):
    model, test = fitted
    with pytest.raises(ValueError, match="lacks 1 feature column.*usage"):
        model.prepare(test.drop(columns=["usage"]))


def test_unseen_categories_score_like_missing_ones(fitted):
    # given accounts in a segment and region the model never saw
    model, test = fitted
    rows = test.head(20)
    unseen = rows.assign(segment="public_sector", region="antarctica")
    missing = rows.assign(segment=None, region=None)
    # when / then: no crash, and the unknown level is treated as missing
    p = model.predict_proba(unseen)
    assert np.all((p > 0) & (p < 1))
    np.testing.assert_array_equal(p, model.predict_proba(missing))


def test_the_same_seed_grows_the_same_trees(table, settings):
    split = time_split(table.times, settings)
    a, b = fit_lightgbm(table, split, settings), fit_lightgbm(table, split, settings)
    assert a.booster.model_to_string() == b.booster.model_to_string()
    assert a.metadata["best_iteration"] >= 1 and a.metadata["positive_weight"] > 1


def test_early_stopping_off_fits_exactly_n_estimators_rounds(table, settings):
    split = time_split(table.times, settings)
    stopped = fit_lightgbm(table, split, settings)
    rounds = stopped.booster.num_trees() + 40
    lightgbm = settings.training.lightgbm.model_copy(update={"n_estimators": rounds, "early_stopping_rounds": 0})
    fixed_settings = settings.model_copy(
        update={"training": settings.training.model_copy(update={"lightgbm": lightgbm})}
    )
    fixed = fit_lightgbm(table, split, fixed_settings)
    assert fixed.booster.num_trees() == rounds and fixed.metadata["best_iteration"] == rounds
