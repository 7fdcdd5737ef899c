"""Which rows train, calibrate and test a model: splits that follow time.

Snapshots of one account on consecutive as-of dates are nearly identical, so a random
split would put the same period on both sides and flatter every metric. A time split
trains on the earliest labelled as-of dates, early-stops and calibrates on the next
`calibration_periods` dates and tests on the latest `test_periods` dates.

The purge gap. A label looks forward: the label of as_of t is only known at
t + horizon_days. Training on an as_of whose label window reaches into the calibration
(or test) period would let the model see outcomes that, at the time it is meant to
score, have not happened yet — and the same churn event would label both a training row
and a calibration row of that account. So a date t belongs to a part only when
t + horizon_days <= the first date of the next part; the dates in between are dropped
(with month-end snapshots and a 90-day horizon: 2 or 3 dates before each part, depending
on the lengths of the months). This mirrors serving: on the day the model scores, its
newest training label is already known. The gap comes from `settings.domain.horizon_days`;
a time column that is not a date (period numbers of a bring-your-own table) gets no gap,
since its unit is unknown.

Tables without a time column are split by stratified k-fold (`stratified_folds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from radar.settings import Settings
from training.dataset import DatasetError


@dataclass(frozen=True)
class Split:
    """Row positions (into the table's frame) of each part, and what each part spans.

    ranges: part -> human-readable span, e.g. {"train": "2024-01-31..2025-09-30 (21 dates)",
      "calibration": ..., "test": ..., "gap": "3 dates dropped before calibration, ..."}.
    """

    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    ranges: dict[str, str] = field(default_factory=dict)


def _as_times(times: pd.Series) -> pd.Series:
    """Dates as datetime64; numeric period numbers stay numeric (no gap for them)."""
    if pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        return times.reset_index(drop=True)
    return pd.Series(pd.to_datetime(times), name=times.name).reset_index(drop=True)


def _fmt(value) -> str:
    return value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value)


def _span(dates: list) -> str:
    if not dates:
        return "none"
    return f"{_fmt(dates[0])}..{_fmt(dates[-1])} ({len(dates)} dates)"


def _before(dates: list, boundary, horizon: pd.Timedelta | None) -> list:
    """Dates whose label is already known at `boundary`."""
    if horizon is None:
        return [d for d in dates if d < boundary]
    return [d for d in dates if d + horizon <= boundary]


def _parts(dates: list, settings: Settings) -> tuple[list, list, list, int, int]:
    """(train, calibration, test) dates over sorted distinct `dates`, and the gap sizes."""
    cfg = settings.training
    dated = bool(dates) and isinstance(dates[0], pd.Timestamp)
    horizon = pd.Timedelta(days=settings.domain.horizon_days) if dated else None
    test = dates[-cfg.test_periods :] if len(dates) >= cfg.test_periods else []
    rest = _before(dates, test[0], horizon) if test else []
    calibration = rest[-cfg.calibration_periods :] if len(rest) >= cfg.calibration_periods else []
    train = _before(rest, calibration[0], horizon) if calibration else []
    gap_cal = len(rest) - len(calibration) - len(train) if calibration else 0
    gap_test = len(dates) - len(test) - len(rest)
    return train, calibration, test, gap_cal, gap_test


def _needed(dates: list, settings: Settings) -> int:
    """How many distinct dates one split needs (one training date at least)."""
    cfg = settings.training
    if not dates or not isinstance(dates[0], pd.Timestamp):
        return cfg.test_periods + cfg.calibration_periods + 1
    step = pd.Series(dates).diff().median() if len(dates) > 1 else pd.Timedelta(days=30)
    gap = int(np.ceil(settings.domain.horizon_days / max(step.days, 1)))
    return cfg.test_periods + cfg.calibration_periods + 1 + 2 * gap


def _split_for(times: pd.Series, dates: list, settings: Settings) -> Split | None:
    train, calibration, test, gap_cal, gap_test = _parts(dates, settings)
    if not train:
        return None
    values = times.to_numpy()
    pos = {
        part: np.flatnonzero(np.isin(values, np.asarray(ds, dtype=values.dtype)))
        for part, ds in (("train", train), ("calibration", calibration), ("test", test))
    }
    ranges = {
        "train": _span(train),
        "calibration": _span(calibration),
        "test": _span(test),
        "gap": f"{gap_cal} dates dropped before calibration and {gap_test} before test "
        f"(labels look {settings.domain.horizon_days} days ahead)",
    }
    return Split(pos["train"], pos["calibration"], pos["test"], ranges)


def _too_few(dates: list, settings: Settings, folds: int = 1) -> DatasetError:
    cfg = settings.training
    need = _needed(dates, settings) + (folds - 1) * cfg.test_periods
    what = "a time split" if folds == 1 else f"a {folds}-fold rolling backtest"
    return DatasetError(
        f"only {len(dates)} distinct labelled dates; {what} needs about {need}: "
        f"{cfg.test_periods} test + {cfg.calibration_periods} calibration dates, a gap of "
        f"{settings.domain.horizon_days} days (the label horizon) before each, and at least "
        f"one training date{'' if folds == 1 else f', with the cutoff moved back {folds - 1} times by {cfg.test_periods}'}. "
        "Add history, or lower training.test_periods / training.calibration_periods."
    )


def time_split(times: pd.Series, settings: Settings) -> Split:
    """Train / calibration / test over the distinct dates of `times` (labelled rows only)."""
    times = _as_times(times)
    dates = sorted(times.dropna().unique().tolist())
    dates = [pd.Timestamp(d) for d in dates] if pd.api.types.is_datetime64_any_dtype(times) else dates
    split = _split_for(times, dates, settings)
    if split is None:
        raise _too_few(dates, settings)
    return split


def rolling_folds(times: pd.Series, settings: Settings, folds: int | None = None) -> list[Split]:
    """Rolling-origin backtest: fold 1 is the main split, each next fold moves the cutoff
    back by `test_periods` dates (and trains on less history). `folds` defaults to
    `settings.training.backtest_folds`."""
    times = _as_times(times)
    dates = sorted(times.dropna().unique().tolist())
    dates = [pd.Timestamp(d) for d in dates] if pd.api.types.is_datetime64_any_dtype(times) else dates
    n = folds or settings.training.backtest_folds
    out = []
    for i in range(n):
        split = _split_for(times, dates[: len(dates) - i * settings.training.test_periods], settings)
        if split is None:
            raise _too_few(dates, settings, n)
        out.append(Split(split.train, split.calibration, split.test, {**split.ranges, "fold": str(i + 1)}))
    return out


def stratified_folds(y: pd.Series | np.ndarray, settings: Settings) -> list[Split]:
    """`cv_folds` stratified folds for tables without time: fold k tests on part k,
    calibrates on part k+1 and trains on the others (shuffled with the seed)."""
    y = np.asarray(y).astype(int)
    k = settings.training.cv_folds
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if min(positives, negatives) < k:
        raise DatasetError(
            f"the table has {len(y)} labelled rows with {positives} positive and {negatives} negative "
            f"labels; {k}-fold stratified cross-validation needs at least {k} of each "
            f"(and enough to train on: a few dozen of each is a sensible minimum)"
        )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=settings.training.seed)
    parts = [test for _, test in cv.split(np.zeros(len(y)), y)]
    out = []
    for i in range(k):
        cal = parts[(i + 1) % k]
        train = np.sort(np.concatenate([parts[j] for j in range(k) if j not in (i, (i + 1) % k)]))
        out.append(
            Split(
                train,
                np.sort(cal),
                np.sort(parts[i]),
                {
                    "scheme": f"stratified {k}-fold cross-validation (no time column)",
                    "train": f"{len(train)} rows",
                    "calibration": f"{len(cal)} rows",
                    "test": f"{len(parts[i])} rows",
                    "fold": str(i + 1),
                },
            )
        )
    return out
