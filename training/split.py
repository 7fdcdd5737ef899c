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

Label windows of their own. A label whose window differs per row (`churned_by_renewal`
looks to each account's next renewal: from horizon_days to `domain.max_lead_days` ahead)
passes each row's window end (`label_end`, exclusive) instead: a row trains only when
its window ends by the first calibration date, and calibrates only when it ends by the
first test date. The gap is then up to max_lead_days: rows of a date are dropped one by
one (an account renewing soon keeps its row, one renewing in ten months does not), and
a date is dropped only when none of its rows qualifies. The split's `gap` says how many
dates and rows each boundary dropped; `Split.dropped` holds the counts.

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
    dropped: labelled rows and as-of dates left out by the gaps, e.g.
      {"dates_before_calibration": 3, "rows_before_calibration": 2400, "dates_before_test": ...,
      "rows_before_test": ...}; rows of a date left out one by one (per-row label windows)
      count as rows, the date as dropped only when none of its rows is kept.
    """

    train: np.ndarray
    calibration: np.ndarray
    test: np.ndarray
    ranges: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


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


def _distinct(times: pd.Series) -> list:
    dates = sorted(times.dropna().unique().tolist())
    return [pd.Timestamp(d) for d in dates] if pd.api.types.is_datetime64_any_dtype(times) else dates


def _window_ends(times: pd.Series, settings: Settings, label_end: pd.Series | None) -> np.ndarray | None:
    """Where each row's label window ends (exclusive): its own end when given, else
    as_of + horizon_days; None for numeric periods (no gap)."""
    if not pd.api.types.is_datetime64_any_dtype(times):
        return None
    if label_end is None:
        return (times + pd.Timedelta(days=settings.domain.horizon_days)).to_numpy()
    ends = pd.Series(pd.to_datetime(label_end)).reset_index(drop=True)
    if len(ends) != len(times):
        raise ValueError(f"label_end has {len(ends)} rows, the times {len(times)}")
    if ends.isna().any():
        raise DatasetError(f"the label window end is missing in {int(ends.isna().sum())} labelled rows")
    return ends.to_numpy(dtype=times.to_numpy().dtype)


def _parts(
    values: np.ndarray, ends: np.ndarray | None, dates: list, settings: Settings
) -> tuple[list, dict[str, np.ndarray]] | None:
    """Test dates and the row masks of each part over the sorted distinct `dates` (a row is
    in a part when its date is, and its label window ends by the next part's first date);
    None when a part would be empty."""
    cfg = settings.training
    if len(dates) < cfg.test_periods:
        return None
    test = dates[-cfg.test_periods :]
    dtype = values.dtype
    in_dates = np.isin(values, np.asarray(dates, dtype=dtype))

    def ending_by(boundary) -> np.ndarray:
        before = in_dates & (values < boundary)
        return before if ends is None else before & (ends <= boundary)

    kept_before_test = ending_by(np.asarray(test[0], dtype=dtype))
    rest = _distinct(pd.Series(values[kept_before_test]))
    if len(rest) < cfg.calibration_periods:
        return None
    calibration = rest[-cfg.calibration_periods :]
    cal = kept_before_test & np.isin(values, np.asarray(calibration, dtype=dtype))
    train = ending_by(np.asarray(calibration[0], dtype=dtype))
    if not train.any():
        return None
    return test, {"train": train, "calibration": cal, "test": np.isin(values, np.asarray(test, dtype=dtype))}


def _dropped(values: np.ndarray, masks: dict[str, np.ndarray], dates: list) -> dict[str, int]:
    """Rows and dates between the parts that no part keeps."""
    dtype = values.dtype
    first = {part: values[m].min() for part, m in masks.items()}
    in_dates = np.isin(values, np.asarray(dates, dtype=dtype))
    out = {}
    for name, lo, hi, part in (
        ("calibration", None, first["calibration"], "train"),
        ("test", first["calibration"], first["test"], "calibration"),
    ):
        zone = in_dates & (values < hi) & (True if lo is None else values >= lo)
        left = zone & ~masks[part]
        kept_dates = set(values[zone & masks[part]].tolist())
        zone_dates = set(values[zone].tolist())
        out[f"dates_before_{name}"] = len(zone_dates - kept_dates)
        out[f"partial_dates_before_{name}"] = len(set(values[left].tolist()) & kept_dates)
        out[f"rows_before_{name}"] = int(left.sum())
        out[f"rows_kept_before_{name}"] = int((zone & masks[part]).sum())
    return out


def _gap_text(dropped: dict[str, int], settings: Settings, per_row: bool) -> str:
    d = dropped
    if not per_row:
        return (
            f"{d['dates_before_calibration']} dates ({d['rows_before_calibration']:,} rows) dropped before "
            f"calibration and {d['dates_before_test']} ({d['rows_before_test']:,} rows) before test "
            f"(labels look {settings.domain.horizon_days} days ahead)"
        )

    def side(name: str) -> str:
        rows, kept = d[f"rows_before_{name}"], d[f"rows_kept_before_{name}"]
        return (
            f"{d[f'dates_before_{name}']} dates and {rows:,} of {rows + kept:,} rows dropped before {name}"
            f" ({d[f'partial_dates_before_{name}']} of the kept dates lose some rows)"
        )

    domain = settings.domain
    return (
        f"{side('calibration')}; {side('test')}. Label windows run to each account's next renewal "
        f"+ grace ({domain.horizon_days} to {domain.max_lead_days} days ahead): a row trains only if its "
        "window ends by the first calibration date and calibrates only if it ends by the first test date, "
        f"so the gap between parts is up to {domain.max_lead_days} days"
    )


def _needed(dates: list, settings: Settings, per_row: bool = False) -> int:
    """How many distinct dates one split needs (one training date at least); with per-row
    label windows, enough for the longest window (max_lead_days) before each part."""
    cfg = settings.training
    if not dates or not isinstance(dates[0], pd.Timestamp):
        return cfg.test_periods + cfg.calibration_periods + 1
    step = pd.Series(dates).diff().median() if len(dates) > 1 else pd.Timedelta(days=30)
    reach = settings.domain.max_lead_days if per_row else settings.domain.horizon_days
    gap = int(np.ceil(reach / max(step.days, 1)))
    return cfg.test_periods + cfg.calibration_periods + 1 + 2 * gap


def _split_for(
    times: pd.Series, ends: np.ndarray | None, dates: list, settings: Settings, per_row: bool
) -> Split | None:
    values = times.to_numpy()
    found = _parts(values, ends, dates, settings)
    if found is None:
        return None
    test, masks = found
    pos = {part: np.flatnonzero(m) for part, m in masks.items()}
    span = {part: _distinct(pd.Series(values[m])) for part, m in masks.items()}
    dropped = _dropped(values, masks, dates)
    ranges = {
        "train": _span(span["train"]),
        "calibration": _span(span["calibration"]),
        "test": _span(test),
        "gap": _gap_text(dropped, settings, per_row) if ends is not None else "none (the time column is not a date)",
    }
    return Split(pos["train"], pos["calibration"], pos["test"], ranges, dropped)


def _too_few(dates: list, settings: Settings, folds: int = 1, per_row: bool = False) -> DatasetError:
    cfg = settings.training
    need = _needed(dates, settings, per_row) + (folds - 1) * cfg.test_periods
    what = "a time split" if folds == 1 else f"a {folds}-fold rolling backtest"
    moved = "" if folds == 1 else f", with the cutoff moved back {folds - 1} times by {cfg.test_periods}"
    if per_row:
        domain = settings.domain
        return DatasetError(
            f"only {len(dates)} distinct labelled dates, too few to keep any training row whose label window "
            f"(to the next renewal, up to {domain.max_lead_days} days ahead) ends before the calibration period; "
            f"{what} needs up to about {need}: {cfg.test_periods} test + {cfg.calibration_periods} calibration "
            f"dates, a gap of up to {domain.max_lead_days} days (domain.max_lead_days) before each, and training "
            f"dates{moved}. Add history, lower domain.max_lead_days (shorter windows need less history; "
            f"at least horizon_days = {domain.horizon_days}), or lower training.test_periods / "
            "training.calibration_periods."
        )
    return DatasetError(
        f"only {len(dates)} distinct labelled dates; {what} needs about {need}: "
        f"{cfg.test_periods} test + {cfg.calibration_periods} calibration dates, a gap of "
        f"{settings.domain.horizon_days} days (the label horizon) before each, and at least "
        f"one training date{moved}. "
        "Add history, or lower training.test_periods / training.calibration_periods."
    )


def time_split(times: pd.Series, settings: Settings, label_end: pd.Series | None = None) -> Split:
    """Train / calibration / test over the distinct dates of `times` (labelled rows only).

    label_end: each row's label window end (exclusive), when windows differ per row;
    default as_of + horizon_days.
    """
    times = _as_times(times)
    dates = _distinct(times)
    per_row = label_end is not None
    split = _split_for(times, _window_ends(times, settings, label_end), dates, settings, per_row)
    if split is None:
        raise _too_few(dates, settings, per_row=per_row)
    return split


def rolling_folds(
    times: pd.Series, settings: Settings, folds: int | None = None, label_end: pd.Series | None = None
) -> list[Split]:
    """Rolling-origin backtest: fold 1 is the main split, each next fold moves the cutoff
    back by `test_periods` dates (and trains on less history). `folds` defaults to
    `settings.training.backtest_folds`; `label_end` as in `time_split`."""
    times = _as_times(times)
    dates = _distinct(times)
    ends = _window_ends(times, settings, label_end)
    per_row = label_end is not None
    n = folds or settings.training.backtest_folds
    out = []
    for i in range(n):
        split = _split_for(times, ends, dates[: len(dates) - i * settings.training.test_periods], settings, per_row)
        if split is None:
            raise _too_few(dates, settings, n, per_row)
        out.append(
            Split(split.train, split.calibration, split.test, {**split.ranges, "fold": str(i + 1)}, split.dropped)
        )
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
    return _rotating_splits(parts, f"stratified {k}-fold cross-validation (no time column)")


def grouped_folds(y: pd.Series | np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[Split]:
    """`k` folds over whole groups (accounts): fold i tests on part i, early-stops on part
    i+1 and trains on the others, so an account's rows are never on two sides. Parts keep
    the positive share about even (StratifiedGroupKFold, shuffled with `seed`). Raises
    DatasetError when there are fewer than `k` accounts with a positive label, or with none."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    positive_groups = len(np.unique(groups[y == 1]))
    negative_groups = len(np.unique(groups[y == 0]))
    if min(positive_groups, negative_groups) < k:
        raise DatasetError(
            f"{k} folds grouped by account need at least {k} accounts with a positive label and {k} with a "
            f"negative one; the rows hold {positive_groups} and {negative_groups}"
        )
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    parts = [test for _, test in cv.split(np.zeros(len(y)), y, groups)]
    return _rotating_splits(parts, f"{k}-fold cross-validation grouped by account")


def _rotating_splits(parts: list[np.ndarray], scheme: str) -> list[Split]:
    """One split per part: fold i tests on part i, calibrates (early-stops) on part i+1 and
    trains on the others."""
    k = len(parts)
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
                    "scheme": scheme,
                    "train": f"{len(train)} rows",
                    "calibration": f"{len(cal)} rows",
                    "test": f"{len(parts[i])} rows",
                    "fold": str(i + 1),
                },
            )
        )
    return out
