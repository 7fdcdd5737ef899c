"""The table TreeSHAP gives LightGBM's own contributions and margins, on every split rule."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from serving.scoring.treeshap import TableTooLarge, TreeShap, numeric_view


def _booster(params: dict, frame: pd.DataFrame, y: np.ndarray, rounds: int = 40) -> lgb.Booster:
    base = {
        "objective": "binary",
        "verbose": -1,
        "num_threads": 1,
        "seed": 3,
        "min_data_in_leaf": 5,
        "min_data_per_group": 5,
        "cat_smooth": 1,
        "max_cat_to_onehot": 2,
    }
    return lgb.train({**base, **params}, lgb.Dataset(frame, y), num_boost_round=rounds)


def _frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    x[rng.random((n, 4)) < 0.15] = np.nan
    x[rng.random((n, 4)) < 0.1] = 0.0
    cat = pd.Categorical(rng.choice(["a", "b", "c", "d", "e", None], n), categories=list("abcde"))
    frame = pd.DataFrame(x, columns=["u", "v", "w", "z"]).assign(kind=cat)
    logit = np.nan_to_num(x[:, 0]) - np.isnan(x[:, 1]) + 2 * (cat == "b") - (cat == "e")
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 15},
        {"num_leaves": 31, "max_depth": 5, "zero_as_missing": True},
        {"num_leaves": 7, "use_missing": False},
        {"num_leaves": 80, "min_data_in_leaf": 2, "max_depth": 12},  # > 64 nodes per tree, deep paths
    ],
)
def test_contributions_and_margin_equal_lightgbm(params):
    frame, y = _frame()
    booster = _booster(params, frame, y)
    probe, _ = _frame(n=400, seed=1)  # unseen rows, NaN and zeros, a missing category
    probe.loc[:5, "kind"] = None
    shap = TreeShap(booster)
    view = numeric_view(probe, booster)
    native = booster.predict(probe, pred_contrib=True)
    contrib = shap.contributions(view, threads=2, chunk_rows=64)
    np.testing.assert_allclose(contrib, native[:, :-1], atol=1e-9)
    assert shap.base_value == pytest.approx(native[0, -1], abs=1e-9)
    np.testing.assert_allclose(shap.margin(view), booster.predict(probe, raw_score=True), atol=1e-12)
    np.testing.assert_allclose(contrib.sum(1) + shap.base_value, booster.predict(probe, raw_score=True), atol=1e-9)


def test_constant_trees_are_base_value_only():
    frame, _ = _frame()
    booster = _booster({}, frame, np.zeros(len(frame), dtype=int) | (np.arange(len(frame)) == 0), rounds=5)
    shap = TreeShap(booster)
    view = numeric_view(frame, booster)
    np.testing.assert_allclose(shap.contributions(view), booster.predict(frame, pred_contrib=True)[:, :-1], atol=1e-9)
    np.testing.assert_allclose(shap.margin(view), booster.predict(frame, raw_score=True), atol=1e-12)


def test_deep_trees_beyond_the_table_limit_are_refused():
    frame, y = _frame()
    booster = _booster({"num_leaves": 31}, frame, y)
    with pytest.raises(TableTooLarge):
        TreeShap(booster, max_path_features=1)


def test_wrong_width_is_an_error():
    frame, y = _frame()
    shap = TreeShap(_booster({}, frame, y, rounds=3))
    with pytest.raises(ValueError, match="features"):
        shap.contributions(np.zeros((2, 3)))
