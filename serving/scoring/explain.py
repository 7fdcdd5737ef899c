"""Why a score is what it is: exact TreeSHAP drivers of the served model, in plain language.

Explanations are of the RAW MARGIN: the log-odds of the calibrated model's underlying
LightGBM booster, before calibration (the calibrator is a monotone map on top; with
balanced class weights the margin is also shifted, see training.model). For every row,
contributions + base value == raw margin, exactly (tests check it).

The renewal model predicts churn: a positive contribution raises the churn margin and so
LOWERS renewal likelihood. The upsell model predicts expansion: a positive contribution
RAISES upsell likelihood. `LIKELIHOODS` says which way each target reads.

Contributions come from `serving.scoring.treeshap` (tables built once per model; several times
faster than LightGBM's `pred_contrib`, same values) and fall back to LightGBM's own when
the trees are too deep for tables. Top drivers are picked with numpy for all rows at
once; reason strings are built only for the top k of each row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.registry import FeatureRegistry, FeatureSpec
from training.model import RadarModel

EXPLAINS = "raw margin (log-odds) before calibration"

# target name -> (the likelihood shown to people, whether it is 1 - P(positive))
LIKELIHOODS: dict[str, tuple[str, bool]] = {
    "renewal": ("renewal likelihood", True),  # positive = churned
    "upsell": ("upsell likelihood", False),  # positive = expanded
}
MINUS = "\N{MINUS SIGN}"


def likelihood_of(model: RadarModel) -> tuple[str, bool]:
    """(what the likelihood is called, whether it is 1 - P(positive)) for the model's target."""
    name = model.target.name
    return LIKELIHOODS.get(name, (f"{name} likelihood", False))


class Explainer:
    """Exact TreeSHAP (and the raw margin) of one model; build once per model (tables, JIT).

    `inputs(prepared)` turns rows already through `model.prepare` into what the other
    methods read, so several calls on the same rows convert them once.
    """

    def __init__(self, model: RadarModel):
        self.model = model
        self._tables = None
        self.method = "lightgbm pred_contrib"
        try:
            from serving.scoring.treeshap import TableTooLarge, TreeShap
        except ImportError:  # numba missing: LightGBM's own TreeSHAP, same values, slower
            return
        try:
            self._tables = TreeShap(model.booster)
            self.method = "treeshap tables (exact; equal to lightgbm pred_contrib)"
        except TableTooLarge:
            pass

    def inputs(self, prepared: pd.DataFrame):
        if self._tables is None:
            return prepared
        from serving.scoring.treeshap import numeric_view

        return numeric_view(prepared, self.model.booster)

    def rows(self, frame: pd.DataFrame):
        """`inputs(model.prepare(frame))`, built straight from the snapshot columns when
        they are already numbers: one conversion of the numeric block instead of one
        pandas operation per feature, which dominated single-account requests."""
        if self._tables is None or not self._fast_categories:
            return self.inputs(self.model.prepare(frame))
        model = self.model
        numeric = [f for f in model.features if f not in model.categories]
        try:
            block = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
        except KeyError:
            return self.inputs(model.prepare(frame))  # prepare names the missing columns
        except (ValueError, TypeError):  # numbers given as text etc.: the general path
            return self.inputs(model.prepare(frame))
        out = np.empty((len(frame), len(model.features)))
        out[:, self._numeric_idx] = block
        levels = self._levels
        assert levels is not None  # _fast_categories is true
        for j, f in zip(self._categorical_idx, model.categorical):
            values = frame[f].to_numpy(dtype=object)
            code = levels[f]
            out[:, j] = [
                code.get(v if isinstance(v, str) else (None if pd.isna(v) else str(v)), np.nan) for v in values
            ]  # unseen or missing: NaN
        return out

    @property
    def _fast_categories(self) -> bool:
        """The booster's stored levels are the model's categories (so codes agree)."""
        if not hasattr(self, "_levels"):
            model = self.model
            stored = list(model.booster.pandas_categorical or [])
            ours = [model.categories[f] for f in model.categorical]
            same = len(stored) == len(ours) and all(list(a) == list(b) for a, b in zip(stored, ours))
            self._levels: dict[str, dict[str | None, float]] | None = (
                {f: {label: float(code) for code, label in enumerate(model.categories[f])} for f in model.categorical}
                if same
                else None
            )  # label -> the booster's code
            self._numeric_idx = [i for i, f in enumerate(model.features) if f not in model.categories]
            self._categorical_idx = [i for i, f in enumerate(model.features) if f in model.categories]
        return self._levels is not None

    def margin(self, inputs, *, threads: int = 2) -> np.ndarray:
        """The raw margin, equal to `model.raw_margin` of the same rows."""
        if self._tables is not None:
            return self._tables.margin(inputs, threads=threads)
        return np.asarray(self.model.booster.predict(inputs, raw_score=True, num_threads=threads))

    def contributions(self, inputs, *, threads: int = 2, chunk_rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """(rows x features contributions, base value per row) of the raw margin."""
        if self._tables is not None:
            out = self._tables.contributions(inputs, threads=threads, chunk_rows=min(chunk_rows, 256))
            return out, np.full(len(out), self._tables.base_value)
        parts = [
            self.model.booster.predict(inputs.iloc[i : i + chunk_rows], pred_contrib=True, num_threads=threads)
            for i in range(0, len(inputs), chunk_rows)
        ]
        full = np.vstack(parts) if parts else np.zeros((0, len(self.model.features) + 1))
        return full[:, :-1], full[:, -1]


def top_k(contributions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the k largest |contributions|, largest first, and
    their contributions (zero contributions are not drivers: callers drop them)."""
    n, m = contributions.shape
    k = min(k, m)
    if k == 0 or n == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0))
    size = np.abs(contributions)
    part = np.argpartition(-size, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    order = np.argsort(-np.take_along_axis(size, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(contributions, idx, axis=1)


def reason(spec: FeatureSpec | None, feature: str, value, contribution: float, likelihood: str, inverted: bool) -> str:
    """A sentence a CS manager can read, e.g. "Active users ÷ seats is 0.31 over the last
    28 days — lowers renewal likelihood". `inverted`: the likelihood is 1 - P(positive),
    so a positive contribution lowers it."""
    return _reasons(spec, feature, [value], [contribution], likelihood, inverted)[0]


def _plain(value):
    """A JSON-ready scalar: numpy numbers as Python ones, NaN as None."""
    if value is None:
        return None
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def drivers(
    frame: pd.DataFrame, model: RadarModel, contributions: np.ndarray, registry: FeatureRegistry, k: int
) -> list[list[dict]]:
    """Per row of `frame` (the snapshot records as given), its top k drivers:
    {feature, value, contribution, reason}, largest |contribution| first.

    Work is done per feature, not per cell: the values and reason strings of every cell
    where a feature is a driver are gathered and written together."""
    idx, contrib = top_k(contributions, k)
    n = len(frame)
    values = np.empty(idx.shape, dtype=object)
    reasons = np.empty(idx.shape, dtype=object)
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    likelihood, inverted = likelihood_of(model)
    for j in np.unique(idx).tolist():  # only the cells that are drivers, one column at a time
        sel = idx == j
        feature = model.features[j]
        column = frame[feature].to_numpy()
        picked = [_plain(v) for v in column[rows[sel]].tolist()]
        values[sel] = picked
        reasons[sel] = _reasons(
            registry[feature] if feature in registry else None,
            feature,
            picked,
            contrib[sel].tolist(),
            likelihood,
            inverted,
        )
    out = []
    features = model.features
    for r_idx, r_contrib, r_values, r_reasons in zip(idx.tolist(), contrib.tolist(), values.tolist(), reasons.tolist()):
        out.append(
            [
                {"feature": features[j], "value": v, "contribution": c, "reason": why}
                for j, c, v, why in zip(r_idx, r_contrib, r_values, r_reasons)
                if c != 0.0
            ]
        )
    return out


def _reasons(
    spec: FeatureSpec | None, feature: str, values: list, contributions: list[float], likelihood: str, inverted: bool
) -> list[str]:
    """`reason` for many values of one feature, with the label, window, wording and
    number format worked out once."""
    raises, lowers = f" — raises {likelihood}", f" — lowers {likelihood}"
    if inverted:
        raises, lowers = lowers, raises
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
    if spec is None:
        return [
            f"{feature} is {'missing' if gone else v}{raises if c > 0 else lowers}"
            for v, c, gone in zip(values, contributions, missing)
        ]
    span = f" over the last {spec.window} days" if spec.window else ""
    raises, lowers = span + raises, span + lowers
    plain, head, no_data = spec.formatter(), f"{spec.label} is ", f"{spec.label}: no data"

    def shown(value) -> str:
        text = plain(value)
        return text.replace("-", MINUS) if spec.unit == "pct" else text  # a change: a true minus sign

    return [
        (no_data if gone else head + shown(v)) + (raises if c > 0 else lowers)
        for v, c, gone in zip(values, contributions, missing)
    ]
