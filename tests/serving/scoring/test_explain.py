"""Drivers: exact TreeSHAP of the raw margin, largest first, worded the right way round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.registry import FeatureRegistry, FeatureSpec
from features.snapshot import feature_registry
from radar.settings import Settings
from serving.scoring.explain import (
    EXPLAINS,
    Explainer,
    drivers,
    likelihood_of,
    reason,
    shown_contributions,
    top_k,
)
from training.calibrate import Calibrator
from training.model import RadarModel, healthy_directions
from training.outcome import TARGETS, TargetSpec


@pytest.fixture(scope="module")
def thousand(snapshots) -> pd.DataFrame:
    return snapshots.iloc[:1200].reset_index(drop=True)


@pytest.mark.parametrize("target", ["renewal", "upsell"])
def test_contributions_plus_base_equal_the_raw_margin_for_every_row(models, thousand, target):
    model = getattr(models, target).model
    explainer = models.explainer(target)
    inputs = explainer.inputs(model.prepare(thousand))
    contrib, base = explainer.contributions(inputs, threads=2)
    assert len(thousand) >= 1000 and contrib.shape == (len(thousand), len(model.features))
    np.testing.assert_allclose(contrib.sum(1) + base, model.raw_margin(thousand), atol=1e-6)
    np.testing.assert_allclose(explainer.margin(inputs), model.raw_margin(thousand), atol=1e-9)
    # the same numbers as LightGBM's own TreeSHAP (training.model's contributions)
    native, native_base = model.contributions(thousand)
    np.testing.assert_allclose(contrib, native, atol=1e-9)
    np.testing.assert_allclose(base, native_base, atol=1e-9)


@pytest.mark.parametrize("target", ["renewal", "upsell"])
def test_the_fast_input_path_equals_prepare(models, thousand, target):
    model = getattr(models, target).model
    explainer = models.explainer(target)
    frame = thousand.copy()
    cat = model.categorical[0]
    frame.loc[:5, cat] = "a level never seen in training"
    frame.loc[6:9, cat] = None
    slow = explainer.inputs(model.prepare(frame))
    np.testing.assert_array_equal(explainer.rows(frame), slow)  # NaN == NaN here
    # numbers given as text and integer columns take the general path, same answer
    numeric = [f for f in model.features if f not in model.categories][:2]
    odd = frame.assign(
        **{
            numeric[0]: frame[numeric[0]].map(lambda v: None if pd.isna(v) else str(v)),
            numeric[1]: frame[numeric[1]].fillna(0).round().astype("int64"),
        }
    )
    np.testing.assert_array_equal(explainer.rows(odd), explainer.inputs(model.prepare(odd)))
    with pytest.raises(ValueError, match="input lacks 1 feature column"):
        explainer.rows(frame.drop(columns=[numeric[0]]))


def test_lightgbm_fallback_gives_the_same_contributions(models, thousand):
    model = models.renewal.model
    fallback = Explainer(model)
    fallback._tables, fallback.method = None, "lightgbm pred_contrib"  # as without numba or for deep trees
    prepared = model.prepare(thousand)
    contrib, base = fallback.contributions(fallback.inputs(prepared), chunk_rows=500)
    np.testing.assert_allclose(contrib.sum(1) + base, model.raw_margin(thousand), atol=1e-6)
    np.testing.assert_allclose(
        contrib, models.explainer("renewal").contributions(models.explainer("renewal").inputs(prepared))[0], atol=1e-9
    )


def test_top_k_is_sorted_by_absolute_contribution():
    c = np.array([[0.1, -0.5, 0.3, 0.0, -0.2], [0.0, 0.0, 0.0, 0.4, -0.9]])
    idx, vals = top_k(c, 3)
    assert idx[0].tolist() == [1, 2, 4] and idx[1, :2].tolist() == [4, 3]
    assert vals.tolist() == [[-0.5, 0.3, -0.2], [-0.9, 0.4, 0.0]]  # a zero is no driver: callers drop it
    assert top_k(c, 10)[0].shape == (2, 5)


def test_drivers_are_the_largest_contributions_with_values_and_reasons(models, thousand, settings):
    model = models.renewal.model
    explainer = models.explainer("renewal")
    contrib, _ = explainer.contributions(explainer.inputs(model.prepare(thousand)))
    registry = feature_registry(settings)
    found = drivers(thousand, model, contrib, registry, 5)
    shown = shown_contributions(thousand, model, contrib, registry)
    assert len(found) == len(thousand)
    for r in (0, 17, 999):
        row = found[r]
        assert 1 <= len(row) <= 5
        sizes = [abs(d["contribution"]) for d in row]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] == pytest.approx(np.abs(shown[r]).max())  # the largest driver that may be shown
        for d in row:
            j = model.features.index(d["feature"])
            assert d["contribution"] == contrib[r, j]
            raw = thousand.loc[r, d["feature"]]
            assert (d["value"] is None and pd.isna(raw)) or d["value"] == raw


LOW = FeatureSpec("adoption_rate_{w}", "Active users ÷ seats", 1, "usage", "higher", "ratio").expand((28,))[0]
TREND = FeatureSpec("logins_trend_{w}", "Change in logins vs the window before", 13, "usage", "higher", "pct").expand(
    (28,)
)[0]


def test_renewal_reasons_invert_the_churn_margin():
    # renewal models predict churn: a positive contribution lowers renewal likelihood
    assert (
        reason(LOW, LOW.name, 0.31, +0.8, "renewal likelihood", inverted=True)
        == "Active users ÷ seats is 0.31 over the last 28 days — raises churn risk"
    )
    assert reason(LOW, LOW.name, 0.9, -0.8, "renewal likelihood", inverted=True).endswith("— lowers churn risk")


def test_upsell_reasons_follow_the_expansion_margin():
    up = reason(LOW, LOW.name, 0.9, +0.4, "upsell likelihood", inverted=False)
    down = reason(LOW, LOW.name, 0.1, -0.4, "upsell likelihood", inverted=False)
    assert up.endswith("— raises upsell likelihood") and down.endswith("— lowers upsell likelihood")


def test_trends_read_as_changes_and_missing_values_as_not_recorded():
    assert (
        reason(TREND, TREND.name, -0.4, 0.5, "renewal likelihood", True)
        == "Change in logins vs the window before is \u221240% over the last 28 days — raises churn risk"
    )
    assert (
        reason(LOW, LOW.name, None, 0.5, "renewal likelihood", True)
        == "No active users ÷ seats recorded over the last 28 days — raises churn risk"
    )
    nps = FeatureSpec("nps_latest", "NPS answer (0–10)", 11, "feedback", "higher", "score")
    assert reason(nps, nps.name, float("nan"), 0.5, "renewal likelihood", True).startswith(
        "No NPS answer (0–10) recorded"
    )
    unregistered = reason(None, "custom_col", 3, 0.5, "upsell likelihood", False)
    assert unregistered == "custom_col is 3 — raises upsell likelihood"


def test_score_output_says_what_is_explained(models, latest, settings, scored_at):
    from serving.scoring.score import score_frame

    out = score_frame(latest.iloc[:20], models, settings, scored_at=scored_at)
    assert set(out.explains) == {EXPLAINS} and "raw margin" in EXPLAINS and "before calibration" in EXPLAINS
    np.testing.assert_allclose(out.renewal_margin, models.renewal.model.raw_margin(latest.iloc[:20]), atol=1e-9)
    for row in out.itertuples():
        for d in row.renewal_drivers:
            assert d["reason"].endswith("churn risk")  # the 90-day model's reasons never claim a renewal likelihood
            assert ("raises" in d["reason"]) == (d["contribution"] > 0)
        for d in row.upsell_drivers:
            assert ("raises" in d["reason"]) == (d["contribution"] > 0)


def test_registry_wording_is_used(settings):
    registry = feature_registry(Settings())
    spec = registry["adoption_rate_28d"]
    assert reason(spec, spec.name, 0.31, 1.0, "renewal likelihood", True).startswith(spec.label)


@pytest.mark.parametrize("unit", ["count", "days", "share", "pct", "currency", "ratio", "category", "flag"])
def test_reasons_written_per_feature_equal_the_reason_of_each_value(unit):
    from serving.scoring.explain import _reasons

    spec = FeatureSpec("x_{w}", "Some measure", 1, "usage", "higher", unit).expand((28,))[0]
    values = ["smb", "enterprise", None] if unit == "category" else [0.31, 3.0, 1234.5, -0.4, None, 7]
    contributions = [0.5, -0.2, 0.1, -1.0, 0.3, -0.01][: len(values)]
    for likelihood, inverted in (("renewal likelihood", True), ("upsell likelihood", False)):
        assert _reasons(spec, spec.name, values, contributions, likelihood, inverted) == [
            reason(spec, spec.name, v, c, likelihood, inverted) for v, c in zip(values, contributions)
        ]


# --- drivers, not context; never against the healthy direction ---

HAND = FeatureRegistry(
    [
        FeatureSpec("adoption_rate_{w}d", "Active users ÷ seats", 1, "usage_events", "higher", "ratio"),
        FeatureSpec("tickets_{w}d", "Support tickets opened", 12, "support_tickets", "lower", "count"),
        FeatureSpec("nps_latest", "NPS answer (0–10)", 11, "feedback", "higher", "score"),
        FeatureSpec(
            "days_to_next_renewal",
            "Days to the next contract end",
            8,
            "subscriptions",
            "neutral",
            "days",
            kind="context",
        ),
        FeatureSpec("tenure_days", "Days since the first subscription", 8, "subscriptions", "higher", kind="context"),
        FeatureSpec("mrr", "Monthly recurring revenue", "context", "subscriptions", "higher", "currency"),
    ],
    windows=(28,),
)
HAND_FEATURES = ["adoption_rate_28d", "tickets_28d", "nps_latest", "days_to_next_renewal", "tenure_days", "mrr"]
REFERENCE = {"adoption_rate_28d": 0.5, "tickets_28d": 3.0, "nps_latest": 8.0, "tenure_days": 700.0, "mrr": 1000.0}


def hand_model(target: str = "renewal", reference: dict | None = REFERENCE) -> RadarModel:
    """A model shell: drivers() reads its features, target and training medians, never its trees."""
    return RadarModel(None, Calibrator("platt"), HAND_FEATURES, {}, TARGETS[target], reference=reference)


HAND_ROWS = pd.DataFrame(
    [
        # adoption, tickets, nps, days to renewal, tenure, mrr
        [0.2, 10.0, 9.0, 30.0, 100.0, 50.0],
        [None, 1.0, None, None, 2000.0, 5000.0],
        [0.5, 3.0, 8.0, 400.0, 700.0, 1000.0],
    ],
    columns=HAND_FEATURES,
)
HAND_CONTRIB = np.array(
    [
        # + raises the churn margin = lowers renewal likelihood
        [-0.9, 0.5, 0.4, 3.0, 1.0, -2.0],  # low adoption "raises renewal": wrong way; NPS 9 "lowers": wrong way
        [-0.8, -0.2, 0.3, 2.5, -1.0, 0.7],  # missing adoption raising renewal: no reason; missing NPS lowering: shown
        [-0.6, 0.1, -0.05, 1.0, 0.0, 0.0],  # at the median: on neither side, shown either way
    ]
)


def test_context_never_appears_among_the_drivers():
    found = drivers(HAND_ROWS, hand_model(), HAND_CONTRIB, HAND, 5)
    context = {"days_to_next_renewal", "tenure_days", "mrr"}
    assert all(d["feature"] not in context for row in found for d in row)
    # left out, not hidden: the top k are the largest driver contributions
    assert [d["feature"] for d in found[2]] == ["adoption_rate_28d", "tickets_28d", "nps_latest"]


def test_context_is_never_a_driver_of_the_served_models(models, thousand, settings):
    registry = feature_registry(settings)
    for target in ("renewal", "upsell"):
        model = getattr(models, target).model
        explainer = models.explainer(target)
        contrib, _ = explainer.contributions(explainer.inputs(model.prepare(thousand)))
        found = drivers(thousand, model, contrib, registry, 8)
        features = {d["feature"] for row in found for d in row}
        assert features and all(registry.kind(f) == "driver" for f in features)
        assert not features & {"days_to_next_renewal", "tenure_days", "past_renewals", "mrr", "segment"}


def test_no_reason_points_against_the_healthy_direction():
    found = drivers(HAND_ROWS, hand_model(), HAND_CONTRIB, HAND, 5)
    assert [d["feature"] for d in found[0]] == ["tickets_28d"]  # 10 tickets (median 3) lowers renewal: right way
    assert found[0][0]["reason"] == "Support tickets opened is 10 over the last 28 days — raises churn risk"
    assert [d["feature"] for d in found[1]] == ["nps_latest", "tickets_28d"]
    assert found[1][1]["reason"].endswith("— lowers churn risk")  # 1 ticket, healthy side: right way
    for row in found:
        for d in row:
            assert "— lowers churn risk" not in d["reason"] or d["value"] is not None  # missing never reassures
            assert "no data" not in d["reason"]


def test_missing_values_read_not_recorded_and_never_raise_the_likelihood():
    found = drivers(HAND_ROWS, hand_model(), HAND_CONTRIB, HAND, 5)
    nps = found[1][0]
    assert nps["value"] is None and nps["reason"] == "No NPS answer (0–10) recorded — raises churn risk"
    assert "adoption_rate_28d" not in [d["feature"] for d in found[1]]  # missing, raising renewal: not shown


def test_upsell_reasons_follow_the_healthy_direction_too():
    # expansion is a good outcome: an unhealthy value never raises it, a healthy one never lowers it
    contrib = np.array([[-0.9, 0.5, 0.2, 0.0, 0.0, 0.0], [0.9, -0.5, 0.2, 0.0, 0.0, 0.0]])
    rows = pd.DataFrame([[0.9, 10.0, 9.0, 30.0, 10.0, 10.0], [0.1, 1.0, 9.0, 30.0, 10.0, 10.0]], columns=HAND_FEATURES)
    found = drivers(rows, hand_model("upsell"), contrib, HAND, 5)
    # row 0: high adoption lowering upsell, 10 tickets (median 3) raising it: both against; NPS 9 raising it: shown
    assert [d["feature"] for d in found[0]] == ["nps_latest"]
    assert found[0][0]["reason"] == "NPS answer (0–10) is 9.00 — raises upsell likelihood"
    # row 1: low adoption raising upsell: against; 1 ticket lowering upsell: against
    assert [d["feature"] for d in found[1]] == ["nps_latest"]


def test_a_model_without_training_medians_still_drops_context():
    found = drivers(HAND_ROWS, hand_model(reference=None), HAND_CONTRIB, HAND, 5)
    assert [d["feature"] for d in found[0]] == ["adoption_rate_28d", "tickets_28d", "nps_latest"]


def test_served_reasons_never_point_against_the_healthy_direction(models, thousand, settings):
    registry = feature_registry(settings)
    for target in ("renewal", "upsell"):
        model = getattr(models, target).model
        assert model.reference  # recorded at training
        explainer = models.explainer(target)
        contrib, _ = explainer.contributions(explainer.inputs(model.prepare(thousand)))
        sign = dict(zip(model.features, healthy_directions(model.features, model.target, registry)))
        inverted = likelihood_of(model)[1]
        for row in drivers(thousand, model, contrib, registry, 5):
            for d in row:
                raises = d["contribution"] < 0 if inverted else d["contribution"] > 0
                if d["value"] is None:
                    assert not raises
                    continue
                side = np.sign(float(d["value"]) - model.reference.get(d["feature"], float(d["value"])))
                assert side * sign[d["feature"]] * np.sign(d["contribution"]) >= 0, d["reason"]


def test_a_target_whose_positive_is_a_churn_reads_as_renewal_likelihood():
    by_renewal = TargetSpec("next_renewal", "churned_by_renewal", "radar-next-renewal", "churns by its contract end")
    shell = RadarModel(None, Calibrator("platt"), HAND_FEATURES, {}, by_renewal)
    assert likelihood_of(shell) == ("renewal likelihood", True)
    assert likelihood_of(hand_model("upsell")) == ("upsell likelihood", False)
