"""What a model is trained on: a labelled table and the roles of its columns.

A `TrainingTable` comes either from Account Radar's own snapshots (`from_snapshots`,
features from the registry) or from any table a data scientist exports
(`from_file`, CSV or Parquet). Everything downstream — splits, models, baselines,
metrics — reads only the table and its roles, so both kinds train and evaluate alike.

Rows with an unknown label (NULL: the horizon reaches past the end of the data) are
dropped here: they are scored in production but never trained or evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.snapshot import KEY, feature_registry
from radar.settings import Settings
from training.outcome import TargetSpec

# Labels whose window differs per row: the snapshot column holding each row's window end
# (exclusive). The time split keeps a row before a part only when its window ends in time.
LABEL_WINDOW_END = {"churned_by_renewal": "label_end_by_renewal"}
# Churn labels are also evaluated per band of days to the next renewal (this feature).
RENEWAL_BAND_FEATURE = "days_to_next_renewal"
BANDED_LABELS = ("churned", "churned_by_renewal")

# The health score is the baseline the model must beat (DOMAIN 5). It is a fixed formula
# of features the model already sees, so the model gains nothing real from it; leaving it
# (and its band) out keeps the comparison fair: the model has to beat the score, not
# learn to copy it.
BASELINE_FEATURES = ("health_score", "health_band")


class DatasetError(ValueError):
    """A table that cannot be trained on, with what is wrong and where."""


@dataclass
class TrainingTable:
    """A labelled table and the roles of its columns (labels are 0/1, no unknowns).

    weight_col: money at stake per row (MRR), for revenue-weighted metrics, not a sample weight.
    segment_col: metrics are also reported per value of this column.
    baseline_col: the score the model is compared with (the health score).
    label_end_col: each row's label window end (exclusive), when the window differs per row
      (churned_by_renewal); None: as_of + horizon_days for every row.
    band_col: days to the next renewal, when the test metrics are also reported per band of it.
    """

    frame: pd.DataFrame
    target: TargetSpec
    id_col: str
    time_col: str | None
    features: list[str]
    categorical: list[str]
    weight_col: str | None
    segment_col: str | None
    baseline_col: str | None
    descriptions: dict[str, str]
    label_end_col: str | None = None
    band_col: str | None = None

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.target.label].to_numpy(dtype=np.int64)

    @property
    def ids(self) -> pd.Series:
        return self.frame[self.id_col]

    @property
    def times(self) -> pd.Series | None:
        return self.frame[self.time_col] if self.time_col else None

    @property
    def label_ends(self) -> pd.Series | None:
        return self.frame[self.label_end_col] if self.label_end_col else None

    @property
    def weight(self) -> np.ndarray | None:
        if self.weight_col is None:
            return None
        return pd.to_numeric(self.frame[self.weight_col], errors="coerce").fillna(0.0).to_numpy(float)


def _missing(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DatasetError(
            f"{what}: missing column(s) {', '.join(absent)}; the table has {', '.join(map(str, frame.columns))}"
        )


def _show(value) -> str:
    """A value as a person would write it: 2, 0.5, 'yes'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.number)):
        return f"{value:g}"
    return repr(value)


def _binary_label(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Drop unknown labels and return the frame with the label as int 0/1 (or raise)."""
    known = frame[frame[label].notna()].reset_index(drop=True)
    values = known[label]
    distinct = pd.unique(values)
    # 0/1 as numbers or booleans (True == 1); "1" or "yes" are not binary labels
    ok = all(not isinstance(v, (str, bytes)) and v in (0, 1) for v in distinct)
    if not ok:
        shown = ", ".join(_show(v) for v in sorted(distinct, key=str)[:10])
        more = f" and {len(distinct) - 10} more" if len(distinct) > 10 else ""
        raise DatasetError(
            f"label column '{label}' is not binary: its values are {shown}{more}; "
            "use 1 for a positive, 0 for a negative and leave unknown labels empty"
        )
    if len(distinct) == 0:
        raise DatasetError(f"label column '{label}' is empty in all {len(frame)} rows: there is nothing to learn from")
    if len(distinct) < 2:
        raise DatasetError(
            f"label column '{label}' has only the value {_show(distinct[0])} in {len(known)} labelled rows "
            f"({len(frame) - len(known)} unknown); a model needs both positive and negative examples"
        )
    return known.assign(**{label: values.astype(float).astype(np.int64)})


def _check_unique(frame: pd.DataFrame, id_col: str, time_col: str | None) -> None:
    keys = [id_col] + ([time_col] if time_col else [])
    dupes = frame[frame.duplicated(keys, keep=False)]
    if len(dupes):
        first = dupes.iloc[0]
        where = f"id {first[id_col]!r}" + (f" at {time_col} {first[time_col]}" if time_col else "")
        per = f" per {time_col}" if time_col else " (and no time column was given)"
        raise DatasetError(
            f"id column '{id_col}' has duplicates{per}: {len(dupes)} rows share a key, e.g. {where} "
            f"appears {int((frame[keys] == first[keys]).all(axis=1).sum())} times"
        )


def from_snapshots(frame: pd.DataFrame, target: TargetSpec, settings: Settings) -> TrainingTable:
    """A training table from the snapshot table (`radar build-features`).

    Features are the registry's minus the health score and band (see BASELINE_FEATURES);
    nothing else of the snapshot is a feature: not the labels, nor the columns that say
    which period a label covers (renewal_in_horizon, next_renewal, label_end_by_renewal).
    In renewal-window mode only snapshots with a renewal inside the horizon are kept,
    for every target: the mode says which moments the team wants predictions for.
    """
    registry = feature_registry(settings)
    features = [f.name for f in registry if f.name not in BASELINE_FEATURES]
    label_end = LABEL_WINDOW_END.get(target.label)
    extra = ["renewal_in_horizon"] if settings.domain.renewal_window_mode else []
    _missing(frame, [*KEY, *features, *extra], "not a snapshot table")
    absent = [c for c in (target.label, label_end) if c is not None and c not in frame.columns]
    if absent:
        raise DatasetError(
            f"the snapshot table has no {' or '.join(absent)} column (the {target.name} target's label): "
            "it was built before that label existed; run `radar build-features` again"
        )
    rows = frame
    if settings.domain.renewal_window_mode:
        rows = rows[rows["renewal_in_horizon"].fillna(False).astype(bool)]
    keep = [*KEY, *features, target.label] + [c for c in BASELINE_FEATURES if c in frame.columns]
    keep += [label_end] if label_end else []
    rows = _binary_label(rows[keep], target.label)
    rows["as_of"] = pd.to_datetime(rows["as_of"])
    if label_end:
        rows[label_end] = pd.to_datetime(rows[label_end])
    _check_unique(rows, "account_id", "as_of")
    banded = target.label in BANDED_LABELS and RENEWAL_BAND_FEATURE in features
    return TrainingTable(
        frame=rows,
        target=target,
        id_col="account_id",
        time_col="as_of",
        features=features,
        categorical=[f for f in features if registry[f].categorical],
        weight_col="mrr",
        segment_col="segment",
        baseline_col="health_score" if "health_score" in rows.columns else None,
        descriptions={f: registry[f].description for f in features},
        label_end_col=label_end,
        band_col=RENEWAL_BAND_FEATURE if banded else None,
    )


def _is_datetime(col: pd.Series) -> bool:
    """Date-time typed, or text that is entirely ISO dates (how CSV stores them)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return True
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or col.notna().sum() == 0:
        return False
    try:
        pd.to_datetime(col.dropna().astype(str), format="ISO8601")
    except (ValueError, TypeError):
        return False
    return True


def _read(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq") or path.is_dir():
        return pd.read_parquet(path)
    raise DatasetError(f"{path.name}: unknown format; use a .csv or .parquet file")


def from_file(path: Path, label: str, id_col: str | None, time_col: str | None, name: str) -> TrainingTable:
    """A training table from any exported feature table (CSV or Parquet).

    Features are every column but the label, id and time; object, string, bool and
    category columns are categorical; date-time columns other than the time column are
    left out (a raw timestamp is a trend proxy, not a feature). Without an id column each
    row is its own id. A column named `mrr` is used for revenue-weighted metrics and one
    named `segment` for per-segment metrics (both stay features). No baseline score.
    """
    frame = _read(path)
    if label not in frame.columns:
        raise DatasetError(
            f"label column '{label}' not found in {Path(path).name}; available columns: "
            f"{', '.join(map(str, frame.columns))}"
        )
    for role, col in (("id", id_col), ("time", time_col)):
        if col is not None and col not in frame.columns:
            raise DatasetError(
                f"{role} column '{col}' not found in {Path(path).name}; "
                f"available columns: {', '.join(map(str, frame.columns))}"
            )
    frame = _binary_label(frame, label)
    if id_col is None:
        id_col = "_row" if "_row" not in frame.columns else "_row_id"
        frame[id_col] = np.arange(len(frame))
    if time_col is not None and not pd.api.types.is_numeric_dtype(frame[time_col]):
        try:
            frame[time_col] = pd.to_datetime(frame[time_col])
        except (ValueError, TypeError) as exc:
            raise DatasetError(
                f"time column '{time_col}' cannot be read as dates (e.g. {frame[time_col].iloc[0]!r}): {exc}"
            ) from exc
        if frame[time_col].isna().any():
            bad = frame.index[frame[time_col].isna()][0]
            raise DatasetError(
                f"time column '{time_col}' is empty in {int(frame[time_col].isna().sum())} rows, e.g. row {bad + 1}"
            )
    _check_unique(frame, id_col, time_col)
    roles = {label, id_col, time_col}
    features = [c for c in frame.columns if c not in roles and not _is_datetime(frame[c])]
    categorical = [
        c for c in features if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    ]
    if not features:
        raise DatasetError(f"{Path(path).name} has no feature columns besides the label, id and time")
    return TrainingTable(
        frame=frame,
        target=TargetSpec(name, label, f"radar-{name}", f"{label} = 1"),
        id_col=id_col,
        time_col=time_col,
        features=features,
        categorical=categorical,
        weight_col="mrr" if "mrr" in features and "mrr" not in categorical else None,
        segment_col="segment" if "segment" in features else None,
        baseline_col=None,
        descriptions={c: f"{c} (column of {Path(path).name})" for c in features},
    )
