"""Metrics against sklearn and against figures worked out by hand; intervals; size warnings."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from radar.settings import Settings
from training.evaluate import band_table, bootstrap_ci, metrics, renewal_band, scorecard, size_warnings
from training.split import time_split


@pytest.mark.parametrize("ties", [False, True])
def test_ranking_and_probability_metrics_match_sklearn(ties):
    # given random labels and scores, with and without tied scores
    rng = np.random.default_rng(3)
    y = rng.binomial(1, 0.2, 500)
    p = np.clip(0.15 + 0.3 * y * rng.random(500) + rng.normal(0, 0.1, 500), 0.01, 0.99)
    p = np.round(p, 1) if ties else p
    # when
    m = metrics(y, p)
    # then
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)


def test_lift_precision_capture_and_ece_on_ten_accounts_by_hand():
    # given 10 accounts ranked by p, 3 of them positive (ranks 1, 3 and 6), MRR 100..1000
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    mrr = np.arange(1, 11) * 100.0
    # when
    m = metrics(y, p, weight=mrr, k=3)
    # then top 10% = 1 account (positive), top 20% = 2 accounts (one positive); base rate 0.3
    assert m["precision_top10"] == pytest.approx(1.0) and m["lift_top10"] == pytest.approx(1 / 0.3)
    assert m["precision_top20"] == pytest.approx(0.5) and m["lift_top20"] == pytest.approx(0.5 / 0.3)
    # the top 3 hold positives worth 100 + 300 of the 100 + 300 + 600 at risk
    assert m["mrr_capture_topk"] == pytest.approx(0.4)
    # ten bins of one account each: ECE = mean |y − p|
    assert m["ece"] == pytest.approx(np.abs(y - p).mean())


def test_tied_scores_count_fractionally_in_the_top_share():
    # given every account with the same score, 3 of 10 positive
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    m = metrics(y, np.full(10, 0.3), k=5)
    # then the top 10% is a random tie-break on average: precision = base rate, lift 1
    assert m["precision_top10"] == pytest.approx(0.3) and m["lift_top10"] == pytest.approx(1.0)
    assert m["mrr_capture_topk"] == pytest.approx(0.5) and m["roc_auc"] == pytest.approx(0.5)
    assert m["ece"] == pytest.approx(0.0)


def test_one_class_leaves_ranking_metrics_undefined():
    m = metrics(np.zeros(20), np.linspace(0, 1, 20))
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"]) and np.isfinite(m["brier"])


def sample(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.2, n)
    return y, np.clip(0.2 + 0.25 * (y - 0.2) + rng.normal(0, 0.15, n), 0.01, 0.99)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_data():
    y, p = sample(300)
    small = bootstrap_ci(y, p, samples=200, seed=1)
    y2, p2 = sample(5000)
    large = bootstrap_ci(y2, p2, samples=200, seed=1)
    for name in ("roc_auc", "pr_auc", "brier", "precision_top10"):
        low, high = small[name]
        assert low <= metrics(y, p)[name] <= high
        assert large[name][1] - large[name][0] < (high - low) / 2


def test_bootstrap_is_seeded_and_resamples_whole_accounts():
    y, p = sample(400)
    assert bootstrap_ci(y, p, samples=100, seed=5) == bootstrap_ci(y, p, samples=100, seed=5)
    # given each account observed 4 times with identical rows (no new evidence)
    y4, p4, ids = np.repeat(y, 4), np.repeat(p, 4), np.repeat(np.arange(400), 4)
    by_row = bootstrap_ci(y4, p4, samples=300, seed=2)["roc_auc"]
    by_account = bootstrap_ci(y4, p4, groups=ids, samples=300, seed=2)["roc_auc"]
    single = bootstrap_ci(y, p, samples=300, seed=2)["roc_auc"]
    # then resampling accounts is as uncertain as one row per account; rows would be overconfident
    width = lambda ci: ci[1] - ci[0]
    assert width(by_account) == pytest.approx(width(single), rel=0.3)
    assert width(by_row) < 0.7 * width(by_account)


def test_scorecard_reports_intervals_overall_and_per_segment(settings):
    y, p = sample(600)
    seg = np.where(np.arange(600) % 3 == 0, "enterprise", "smb")
    card = scorecard(y, p, settings, weight=np.ones(600), groups=np.arange(600), segments=seg)
    assert card["roc_auc_ci_low"] <= card["roc_auc"] <= card["roc_auc_ci_high"]
    assert {"segment.smb.pr_auc", "segment.enterprise.pr_auc", "segment.smb.pr_auc_ci_high"} <= set(card)


def test_size_warnings_speak_for_a_tiny_table_and_stay_quiet_for_a_large_one(make_snapshots, make_table, settings):
    # given a tiny table: 15 accounts, and a large one: 600 accounts
    tiny, large = make_table(make_snapshots(15, 20, seed=1)), make_table(make_snapshots(600, 20, seed=2))

    s = time_split(tiny.times, settings)
    card = scorecard(
        tiny.y[s.test], np.full(len(s.test), 0.2) + 0.1 * tiny.y[s.test], settings, groups=tiny.ids.to_numpy()[s.test]
    )
    warnings = size_warnings(tiny, s, settings, card)
    # then the tiny one hears about accounts, training, calibration and test positives, with a figure
    assert any(w.startswith("Only 15 accounts in the training data") for w in warnings)
    assert any("in the calibration period" in w for w in warnings)
    test_warning = next(w for w in warnings if "in the test data" in w)
    half = (card["roc_auc_ci_high"] - card["roc_auc_ci_low"]) / 2
    assert f"ROC-AUC by about ±{half:.2f}" in test_warning and "not to promise a rate" in test_warning
    assert size_warnings(large, time_split(large.times, settings), settings) == []


def test_renewal_bands_by_days_to_the_next_renewal():
    days = [0, 90, 91, 180, 181, 365, 366, np.nan]
    assert list(renewal_band(days)) == [
        "0-90",
        "0-90",
        "91-180",
        "91-180",
        "181-365",
        "181-365",
        ">365/none",
        ">365/none",  # no renewal: open-ended lines only
    ]


def test_band_table_scores_each_band_on_its_own_rows():
    # given rows renewing soon (well ranked) and in 200 days (ranked at random), none later
    rng = np.random.default_rng(0)
    n = 400
    days = np.r_[rng.integers(0, 91, n), rng.integers(181, 366, n)]
    y = rng.binomial(1, 0.3, 2 * n)
    p = np.r_[np.clip(0.2 + 0.5 * y[:n] + rng.normal(0, 0.1, n), 0.01, 0.99), rng.random(n)]
    groups = np.arange(2 * n) // 2
    # when
    table = band_table(y, p, days, Settings(training={"bootstrap_samples": 50}), groups=groups)
    # then one row per band, in order, with the figures of that band's rows alone
    assert list(table.band) == ["0-90", "91-180", "181-365", ">365/none"]
    soon = table.set_index("band").loc["0-90"]
    assert soon.rows == n and soon.positives == y[:n].sum()
    assert soon.observed_rate == pytest.approx(y[:n].mean()) and soon.predicted_rate == pytest.approx(p[:n].mean())
    assert soon.roc_auc == pytest.approx(metrics(y[:n], p[:n])["roc_auc"]) and soon.roc_auc > 0.9
    assert soon.roc_auc_ci_low <= soon.roc_auc <= soon.roc_auc_ci_high
    assert soon.ece == pytest.approx(metrics(y[:n], p[:n])["ece"])
    late = table.set_index("band").loc["181-365"]
    assert 0.4 < late.roc_auc < 0.6
    # and an empty band is there, with no figures
    empty = table.set_index("band").loc["91-180"]
    assert empty.rows == 0 and np.isnan(empty.roc_auc) and np.isnan(empty.observed_rate)
