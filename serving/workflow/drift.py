"""Input drift: how far the model inputs of the latest snapshots moved from the training window.

The population stability index of one input compares its distribution on the rows the
model was trained on (expected, e) with the latest snapshots (actual, a), over bins:
PSI = sum((a - e) * ln(a / e)). Numeric inputs are cut at the quantiles of the training
rows (`bins` equal-frequency bins, fewer when values repeat); categorical inputs use
their categories (levels the model never saw pool into one bin). Missing values are a
bin of their own in both, so an input that stops being measured drifts too. An empty
bin counts as `FLOOR` (a share of 0.01%) so the index stays finite. Rule of thumb: under
0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a large one.

`feature_drift` gives one row per input with its PSI, medians (or the category whose
share moved most), missing shares and importance rank; `mover_sentence` names a mover in
words with the feature registry's description. Pure functions over frames.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

FLOOR = 1e-4  # share given to an empty bin, so ln(a / e) stays finite
MISSING, OTHER = "(missing)", "(other)"


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population stability index of two distributions over the same bins (counts or
    shares; each is normalised, empty bins count as FLOOR)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.size == 0:
        raise ValueError("psi needs two distributions over the same, non-empty bins")
    if e.sum() <= 0 or a.sum() <= 0:
        return float("nan")
    e = np.maximum(e / e.sum(), FLOOR)
    a = np.maximum(a / a.sum(), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(train: Sequence[float], bins: int) -> np.ndarray:
    """Inner cut points at the training values' quantiles (distinct, so repeated values
    give fewer bins)."""
    values = pd.to_numeric(pd.Series(train), errors="coerce").dropna().to_numpy(float)
    if values.size == 0 or bins < 2:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def numeric_counts(values: Sequence[float], edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0], (e0, e1], ..., (e_last, inf), then missing."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
    present = ~np.isnan(v)
    idx = np.searchsorted(edges, v[present], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float((~present).sum()))


def category_counts(values: Sequence, levels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(bin names, counts): one bin per training level, one for other levels, one for missing."""
    s = pd.Series(values, dtype=object)
    present = s.notna()
    labels = s[present].map(str)
    known = set(map(str, levels))
    names = [*map(str, levels), OTHER, MISSING]
    counts = [float((labels == lv).sum()) for lv in map(str, levels)]
    counts += [float((~labels.isin(known)).sum()), float((~present).sum())]
    return names, np.array(counts)


def _median(values) -> float | None:
    v = pd.to_numeric(pd.Series(values), errors="coerce")
    m = v.median(skipna=True)
    return None if pd.isna(m) else float(m)


def _mean(values) -> float | None:
    m = pd.to_numeric(pd.Series(values), errors="coerce").mean(skipna=True)
    return None if pd.isna(m) else float(m)


def _missing_share(values) -> float:
    s = pd.Series(values)
    return float(s.isna().mean()) if len(s) else float("nan")


def feature_drift(
    train: pd.DataFrame,
    recent: pd.DataFrame,
    features: Sequence[str],
    *,
    categories: Mapping[str, Sequence[str]] | None = None,
    bins: int = 10,
    train_medians: Mapping[str, float] | None = None,
    importance_rank: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per input of `features` present in both frames, largest PSI first:
    feature, categorical, psi, median_train / median_recent (numeric; the recorded
    training median when given), mean_train / mean_recent (numeric), category / share_train / share_recent (categorical: the
    bin whose share moved most), missing_train / missing_recent (shares), rank (importance,
    1 = most important; None when not ranked)."""
    categories = categories or {}
    train_medians = train_medians or {}
    importance_rank = importance_rank or {}
    rows = []
    for f in features:
        if f not in train.columns or f not in recent.columns:
            continue
        row: dict = {
            "feature": f,
            "categorical": f in categories,
            "missing_train": _missing_share(train[f]),
            "missing_recent": _missing_share(recent[f]),
            "rank": importance_rank.get(f),
        }
        if f in categories:
            names, e = category_counts(train[f], categories[f])
            _, a = category_counts(recent[f], categories[f])
            share_e, share_a = e / max(e.sum(), 1), a / max(a.sum(), 1)
            moved = int(np.argmax(np.abs(share_a - share_e)))
            row.update(category=names[moved], share_train=float(share_e[moved]), share_recent=float(share_a[moved]))
        else:
            edges = quantile_edges(train[f], bins)
            e, a = numeric_counts(train[f], edges), numeric_counts(recent[f], edges)
            recorded = train_medians.get(f)
            row.update(
                median_train=float(recorded) if recorded is not None else _median(train[f]),
                median_recent=_median(recent[f]),
                mean_train=_mean(train[f]),
                mean_recent=_mean(recent[f]),
            )
        row["psi"] = psi(e, a)
        rows.append(row)
    columns = [
        "feature",
        "categorical",
        "psi",
        "median_train",
        "median_recent",
        "mean_train",
        "mean_recent",
        "category",
        "share_train",
        "share_recent",
        "missing_train",
        "missing_recent",
        "rank",
    ]
    out = pd.DataFrame(rows, columns=columns)
    out["rank"] = out["rank"].astype("Int64")
    return out.sort_values(["psi", "feature"], ascending=[False, True], na_position="last", ignore_index=True)


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def mover_sentence(row: Mapping, registry=None) -> str:
    """One drift row in words: "'Logins per active user, last 28 days' moved (PSI 0.41): median 12 -> 4.10".
    The description and the value format come from the feature registry when it knows the feature;
    the means are added when the medians read the same."""
    name = str(row["feature"])
    spec = registry[name] if registry is not None and name in registry else None
    label = spec.description if spec is not None else name
    value = spec.format_value if spec is not None else (lambda v: "missing" if v is None else f"{v:,.2f}")
    head = f"'{label}' moved (PSI {row['psi']:.2f})"
    if row.get("categorical"):
        change = f"'{row['category']}' {_pct(row['share_train'])} -> {_pct(row['share_recent'])} of accounts"
    else:
        before, after = value(_num(row.get("median_train"))), value(_num(row.get("median_recent")))
        change = f"median {before} -> {after}"
        if before == after and _num(row.get("mean_train")) is not None and _num(row.get("mean_recent")) is not None:
            change += f" (mean {value(_num(row['mean_train']))} -> {value(_num(row['mean_recent']))})"
    missing_before, missing_after = row.get("missing_train"), row.get("missing_recent")
    if (
        missing_before is not None
        and missing_after is not None
        and math.isfinite(missing_before)
        and math.isfinite(missing_after)
        and abs(missing_after - missing_before) >= 0.05
    ):
        change += f"; missing for {_pct(missing_before)} -> {_pct(missing_after)} of accounts"
    return f"{head}: {change}"


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
