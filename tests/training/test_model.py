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


# --- monotone drivers and the training reference ---


def _registry():
    from features.snapshot import feature_registry
    from radar.settings import Settings

    return feature_registry(Settings())


def test_the_constraint_signs_follow_the_healthy_direction_and_the_target():
    from training.model import healthy_directions, monotone_constraints
    from training.outcome import TARGETS, TargetSpec

    registry = _registry()
    features = [
        "adoption_rate_28d",  # driver, higher is healthy
        "tickets_28d",  # driver, lower is healthy
        "days_since_last_activity",  # driver, lower is healthy (usage family 13)
        "feedback_items_28d",  # driver, neutral
        "days_to_next_renewal",  # context (contract timing)
        "tenure_days",  # context, higher is healthy
        "mrr",  # context
        "segment",  # context, categorical
        "health_band",  # categorical
        "per_event_type_feature",  # unknown to the registry
        "engagement_score_28d",  # driver, usage family 5
    ]
    churn = monotone_constraints(features, TARGETS["renewal"], registry, ["segment", "health_band"])
    # positive = churn: a healthy-when-higher driver can only lower the churn margin
    assert churn == [-1, +1, +1, 0, 0, 0, 0, 0, 0, 0, -1]
    upsell = monotone_constraints(features, TARGETS["upsell"], registry, ["segment", "health_band"])
    # expansion: only usage drivers, healthy usage raising it
    assert upsell == [+1, 0, 0, 0, 0, 0, 0, 0, 0, 0, +1]
    # the sign depends on whether the target's positive is a churn, not on its name
    by_renewal = TargetSpec("next_renewal", "churned_by_renewal", "radar-next-renewal", "churns by its contract end")
    assert monotone_constraints(features, by_renewal, registry) == churn
    own = TargetSpec("lost", "lost", "radar-lost", "churns within the quarter")
    assert monotone_constraints(features, own, registry) == churn
    # reasons are checked against the healthy direction of every driver, for expansion too
    assert healthy_directions(features, TARGETS["upsell"], registry, ["segment", "health_band"]) == [-d for d in churn]


def test_a_monotone_model_never_lets_a_healthier_driver_raise_churn(settings):
    from scipy.special import expit

    from training.dataset import TrainingTable
    from training.model import lightgbm_params
    from training.outcome import TARGETS
    from training.split import Split

    rng = np.random.default_rng(3)
    n = 6000
    adoption = rng.uniform(0, 1, n)
    tickets = rng.poisson(2, n).astype(float)
    tenure = rng.uniform(0, 2000, n)
    # churn is U-shaped in adoption (a pattern a free model follows), falls with tenure
    p = expit(-2.0 + 4.0 * (adoption - 0.5) ** 2 * np.where(adoption > 0.5, 3, 1) + 0.3 * tickets - tenure / 1000)
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "as_of": pd.Timestamp("2026-01-31"),
            "adoption_rate_28d": adoption,
            "tickets_28d": tickets,
            "tenure_days": tenure,
            "churned": rng.binomial(1, p),
        }
    )
    features = ["adoption_rate_28d", "tickets_28d", "tenure_days"]
    table = TrainingTable(frame, TARGETS["renewal"], "account_id", None, features, [], None, None, None, {})
    rows = np.arange(n)
    split = Split(train=rows[rows % 3 != 0], calibration=rows[rows % 3 == 0], test=rows[:0])
    constrained = fit_lightgbm(table, split, settings)
    free_settings = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"lightgbm": settings.training.lightgbm.model_copy(update={"monotone_drivers": False})}
            )
        }
    )
    free = fit_lightgbm(table, split, free_settings)
    assert constrained.metadata["monotone_features"] == 2 and free.metadata["monotone_features"] == 0
    assert constrained.metadata["monotone_method"] == "intermediate" and free.metadata["monotone_method"] == "none"
    assert lightgbm_params(settings, None, [-1, 1, 0])["monotone_constraints"] == [-1, 1, 0]
    assert "monotone_constraints" not in lightgbm_params(settings, None, [0, 0, 0])

    grid = np.linspace(0, 1, 41)
    probe = pd.DataFrame({"adoption_rate_28d": grid, "tickets_28d": 2.0, "tenure_days": 500.0})
    assert np.all(np.diff(constrained.raw_margin(probe)) <= 1e-12)  # more adoption never raises churn
    assert np.any(np.diff(free.raw_margin(probe)) > 1e-6)  # the free model follows the U
    more_tickets = pd.DataFrame({"adoption_rate_28d": 0.5, "tickets_28d": np.arange(0, 10.0), "tenure_days": 500.0})
    assert np.all(np.diff(constrained.raw_margin(more_tickets)) >= -1e-12)


def test_the_training_medians_are_recorded_and_saved(fitted, table, settings, tmp_path):
    model, _ = fitted
    split = time_split(table.times, settings)
    train = table.frame.iloc[split.train]
    assert set(model.reference) == {"usage", "tickets", "nps", "mrr"}  # numeric features only
    assert model.reference["usage"] == pytest.approx(train["usage"].median())
    again = RadarModel.load(model.save(tmp_path / "with_reference"))
    assert again.reference == model.reference


@pytest.fixture(scope="module")
def zoned(make_snapshots, make_table):
    """The fixture's accounts with `zone`: 30 random codes, one per account (~5 accounts
    per code), that says nothing about churn."""
    import dataclasses

    frame = make_snapshots(n_accounts=150, n_dates=16, seed=2, base=-2.0)
    codes = np.random.default_rng(0).choice([f"z{i:02d}" for i in range(30)], 150)
    frame["zone"] = codes[frame.account_id.str[1:].astype(int)]
    table = make_table(frame)
    return dataclasses.replace(
        table,
        features=[*table.features, "zone"],
        categorical=[*table.categorical, "zone"],
        descriptions={**table.descriptions, "zone": "zone code"},
    )


def _gain_share(model: RadarModel, feature: str) -> float:
    gain = model.importance("gain")
    return float(gain[feature] / gain.sum())


def test_a_random_high_cardinality_categorical_is_regularised_and_flagged(zoned, make_settings):
    """Given a random 30-level categorical: left alone, LightGBM ranks it among the top 5
    features; scaled to ~5 accounts per category, its gain all but vanishes, the parameters
    say so, and the report flags it while it ranks high."""
    from training.model import categorical_warnings, category_profiles, high_cardinality

    fast = {"bootstrap_samples": 0, "backtest_folds": 1}
    free = make_settings(
        **fast, lightgbm={"n_estimators": 150, "min_child_samples": 20, "categorical_min_accounts_per_level": 1}
    )
    scaled = make_settings(**fast, lightgbm={"n_estimators": 150, "min_child_samples": 20})
    split = time_split(zoned.times, scaled)
    loose, tight = fit_lightgbm(zoned, split, free), fit_lightgbm(zoned, split, scaled)

    profiles = category_profiles(zoned, split.train)
    zone = profiles["zone"]
    assert zone.levels == 30 and zone.accounts_per_level == pytest.approx(5, abs=1) and zone.dates == 6
    sparse = high_cardinality(profiles, scaled)
    assert min(sparse, key=lambda p: p.accounts_per_level).feature == "zone"  # it sets the parameters
    assert not high_cardinality(profiles, make_settings(lightgbm={"categorical_min_accounts_per_level": 10}))[1:]
    assert loose.metadata["categorical_params"] == "defaults"
    params = dict(kv.split("=") for kv in tight.metadata["categorical_params"].split(", "))
    assert float(params["cat_smooth"]) >= zone.rows_per_level and int(params["max_cat_threshold"]) <= 30 // 4

    rank = list(loose.importance("gain").index).index("zone") + 1
    assert rank <= 5 and _gain_share(loose, "zone") > 0.02
    assert _gain_share(tight, "zone") < _gain_share(loose, "zone") / 3

    (warning,) = categorical_warnings(loose.importance("gain"), profiles, scaled).values()
    assert warning.startswith(f"zone ranks {rank}th by importance with 30 categories and ~")
    assert "rows per category on 6 training dates" in warning and "likely overfitting" in warning
    # a categorical with enough accounts per category is never flagged, whatever its rank
    few = make_settings(lightgbm={"categorical_min_accounts_per_level": 10})
    assert not categorical_warnings(pd.Series({"segment": 10.0, "region": 5.0, "zone": 0.0}), profiles, few)


def test_the_training_report_flags_a_high_cardinality_categorical_that_ranks_high(zoned, make_settings):
    import dataclasses

    from training.pipeline import train_and_evaluate

    settings = make_settings(
        bootstrap_samples=0, backtest_folds=1, lightgbm={"n_estimators": 80, "min_child_samples": 20}
    )
    small = dataclasses.replace(zoned, features=["usage", "mrr", "zone"], categorical=["zone"])
    outcome = train_and_evaluate(small, settings)
    flagged = [w for w in outcome.warnings if w.startswith("zone ranks")]
    assert len(flagged) == 1 and "30 categories" in flagged[0] and "likely overfitting" in flagged[0]
    assert outcome.params["categorical_params"].startswith("cat_smooth=")
    assert outcome.params["categorical_flagged"] == "zone"
