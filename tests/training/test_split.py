"""Splits follow time: no period on both sides, and a label-horizon gap between parts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from radar.settings import Settings
from training.dataset import DatasetError
from training.split import rolling_folds, stratified_folds, time_split


def month_ends(n: int, per_date: int = 3) -> pd.Series:
    return pd.Series(np.repeat(pd.date_range("2024-01-31", periods=n, freq="ME"), per_date))


def dates_of(times: pd.Series, rows: np.ndarray) -> list[pd.Timestamp]:
    return sorted(set(times.iloc[rows]))


def test_time_split_tests_on_the_latest_dates_and_leaves_a_horizon_gap():
    # given 20 month-ends, 3 test and 3 calibration dates, a 90-day label horizon
    times, settings = month_ends(20), Settings()
    # when
    split = time_split(times, settings)
    # then test = the last 3 dates; April and May 2025 are dropped (their 90-day labels reach
    # past 30 June), as are November and December 2024 before calibration
    test, cal, train = (dates_of(times, r) for r in (split.test, split.calibration, split.train))
    assert [d.date().isoformat() for d in test] == ["2025-06-30", "2025-07-31", "2025-08-31"]
    assert [d.date().isoformat() for d in cal] == ["2025-01-31", "2025-02-28", "2025-03-31"]
    assert train[-1].date().isoformat() == "2024-10-31"
    horizon = pd.Timedelta(days=settings.domain.horizon_days)
    assert train[-1] + horizon <= cal[0] and cal[-1] + horizon <= test[0]
    assert split.ranges["test"] == "2025-06-30..2025-08-31 (3 dates)"
    assert "dropped" in split.ranges["gap"]


@hyp_settings(max_examples=40, deadline=None)
@given(
    n_dates=st.integers(14, 40),
    weekly=st.booleans(),
    horizon=st.integers(1, 120),
    test_periods=st.integers(1, 4),
    calibration_periods=st.integers(1, 4),
)
def test_no_part_shares_a_date_and_every_label_is_known_before_the_next_part(
    n_dates, weekly, horizon, test_periods, calibration_periods
):
    freq = "W-MON" if weekly else "ME"
    times = pd.Series(np.repeat(pd.date_range("2023-01-02", periods=n_dates, freq=freq), 2))
    settings = Settings(
        domain={"horizon_days": horizon},
        training={"test_periods": test_periods, "calibration_periods": calibration_periods},
    )
    try:
        split = time_split(times, settings)
    except DatasetError:
        return  # too few dates for this horizon: a clear error is the right answer
    parts = [set(times.iloc[r]) for r in (split.train, split.calibration, split.test)]
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2]) and not (parts[0] & parts[2])
    gap = pd.Timedelta(days=horizon)
    assert max(parts[0]) + gap <= min(parts[1]) and max(parts[1]) + gap <= min(parts[2])
    assert len(parts[2]) == test_periods and len(parts[1]) == calibration_periods
    assert max(parts[2]) == times.max()


def test_rolling_folds_move_the_cutoff_back_by_the_test_period():
    # given 26 month-ends and 3 backtest folds
    times, settings = month_ends(26), Settings()
    # when
    folds = rolling_folds(times, settings)
    # then fold 1 is the main split, and each next one tests 3 dates earlier on less history
    assert len(folds) == settings.training.backtest_folds
    assert np.array_equal(folds[0].test, time_split(times, settings).test)
    last_test = [max(dates_of(times, f.test)) for f in folds]
    assert [d.date().isoformat() for d in last_test] == ["2026-02-28", "2025-11-30", "2025-08-31"]
    assert [len(f.train) for f in folds] == sorted((len(f.train) for f in folds), reverse=True)
    assert all(max(dates_of(times, f.train)) < min(dates_of(times, f.test)) for f in folds)


def test_too_few_dates_is_a_clear_error():
    with pytest.raises(DatasetError, match=r"only 8 distinct labelled dates; a time split needs about 13"):
        time_split(month_ends(8), Settings())
    with pytest.raises(DatasetError, match="3-fold rolling backtest"):
        rolling_folds(month_ends(15), Settings())


def test_numeric_periods_split_without_a_gap():
    # given period numbers (unit unknown), 8 of them
    times = pd.Series(np.repeat(np.arange(1, 9), 2))
    split = time_split(times, Settings())
    # then the parts are consecutive: train 1–2, calibration 3–5, test 6–8
    assert sorted(set(times.iloc[split.train])) == [1, 2]
    assert sorted(set(times.iloc[split.calibration])) == [3, 4, 5]
    assert sorted(set(times.iloc[split.test])) == [6, 7, 8]


def test_stratified_folds_partition_rows_and_keep_the_positive_share():
    y = np.r_[np.ones(40), np.zeros(160)].astype(int)
    folds = stratified_folds(y, Settings())
    assert len(folds) == 5
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests) == list(range(200))  # each row is tested exactly once
    for f in folds:
        assert not set(f.train) & set(f.test) and not set(f.train) & set(f.calibration)
        assert not set(f.calibration) & set(f.test)
        assert y[f.test].sum() == 8  # 20% positives in every fold


def test_stratified_folds_need_enough_of_each_class():
    with pytest.raises(DatasetError, match="3 positive and 97 negative labels; 5-fold"):
        stratified_folds(np.r_[np.ones(3), np.zeros(97)], Settings())


# --- label windows of their own (churned_by_renewal: to each account's next renewal) ---


def windows(times: pd.Series, leads: list[int]) -> pd.Series:
    """Each row's label window end: as_of + the lead of its position within its date."""
    per_date = len(leads)
    return times + pd.to_timedelta(np.tile(leads, len(times) // per_date), unit="D")


def test_per_row_windows_drop_rows_one_by_one_and_each_ends_before_the_next_part():
    # given 20 month-ends, 3 accounts each: windows of 90, 200 and 400 days
    times = month_ends(20)
    ends = windows(times, [90, 200, 400])
    settings = Settings()
    # when
    split = time_split(times, settings, ends)
    # then the parts are the horizon split's dates: the 90-day rows keep them
    plain = time_split(times, settings)
    assert split.ranges["test"] == plain.ranges["test"] and split.ranges["calibration"] == plain.ranges["calibration"]
    assert np.array_equal(split.test, plain.test)
    # and every kept row's window ends by the first date of the next part
    first_cal, first_test = times.iloc[split.calibration].min(), times.iloc[split.test].min()
    assert (ends.iloc[split.train] <= first_cal).all() and (ends.iloc[split.calibration] <= first_test).all()
    # the longer windows are dropped one by one: fewer rows, not fewer dates, near each part
    assert len(split.train) < len(plain.train) and len(split.calibration) < len(plain.calibration)
    assert dates_of(times, split.calibration) == dates_of(times, plain.calibration)
    assert len(split.calibration) == 3  # only the 90-day rows end by the first test date
    # and the split says what the gaps cost, in dates and rows
    d = split.dropped
    assert d["rows_kept_before_calibration"] == len(split.train)
    assert d["rows_before_calibration"] + len(split.train) == (times < first_cal).sum()
    assert d["rows_before_test"] == len(times[(times >= first_cal) & (times < first_test)]) - 3
    assert d["dates_before_test"] == plain.dropped["dates_before_test"]
    assert d["partial_dates_before_test"] == 3  # the calibration dates lose their 200- and 400-day rows
    assert "up to 400 days" in split.ranges["gap"] and "rows dropped before test" in split.ranges["gap"]


def test_windows_of_exactly_the_horizon_split_as_the_horizon_does():
    times, settings = month_ends(20), Settings()
    same = time_split(times, settings, windows(times, [90, 90, 90]))
    plain = time_split(times, settings)
    for part in ("train", "calibration", "test"):
        assert np.array_equal(getattr(same, part), getattr(plain, part))
    assert same.dropped == plain.dropped
    folds = rolling_folds(times, settings, label_end=windows(times, [90, 90, 90]))
    assert [f.ranges["test"] for f in folds] == [f.ranges["test"] for f in rolling_folds(times, settings)]


def test_too_little_history_for_the_longest_windows_suggests_a_shorter_lead():
    # given every account's window 400 days long: no training row ends before calibration
    times = month_ends(20)
    with pytest.raises(DatasetError, match=r"lower domain\.max_lead_days") as err:
        time_split(times, Settings(), windows(times, [400, 400, 400]))
    assert "up to 400 days" in str(err.value)
    # with shorter windows the same history is enough
    settings = Settings(domain={"max_lead_days": 200})
    split = time_split(times, settings, windows(times, [200, 200, 200]))
    assert len(split.train) > 0


def test_plain_gap_counts_rows_too():
    split = time_split(month_ends(20, per_date=4), Settings())
    assert split.dropped["dates_before_test"] == 2 and split.dropped["rows_before_test"] == 8
    assert split.ranges["gap"].startswith("2 dates (8 rows) dropped before calibration and 2 (8 rows) before test")
