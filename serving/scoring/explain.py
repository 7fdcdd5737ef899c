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

Reasons are drivers only (DOMAIN 5): a context feature (contract timing, tenure, MRR,
plan; `FeatureSpec.kind`) is left out of the list, not hidden in it; the context line
(serving.scoring.context) says those facts apart. A reason never points against its
feature's healthy direction (`training.model.healthy_directions`; renewal and expansion
are both good outcomes): a value on the unhealthy side of the training median
(`RadarModel.reference`) that raises the likelihood, or one on the healthy side that
lowers it, is not shown; nor is a missing value that raises it (no data is no
reason for confidence). A missing value reads "No <label> recorded".
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.registry import FeatureRegistry, FeatureSpec
from training.model import RadarModel, healthy_directions, positive_is_churn

EXPLAINS = "raw margin (log-odds) before calibration"

# target name -> (the likelihood shown to people, whether it is 1 - P(positive))
LIKELIHOODS: dict[str, tuple[str, bool]] = {
    "renewal": ("renewal likelihood", True),  # positive = churned
    "upsell": ("upsell likelihood", False),  # positive = expanded
}
MINUS = "\N{MINUS SIGN}"


def likelihood_of(model: RadarModel) -> tuple[str, bool]:
    """(what the likelihood is called, whether it is 1 - P(positive)) for the model's target;
    a target not listed whose positive is a churn reads as renewal likelihood."""
    name = model.target.name
    if name in LIKELIHOODS:
        return LIKELIHOODS[name]
    if positive_is_churn(model.target):
        return ("renewal likelihood", True)
    return (f"{name} likelihood", False)


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
    28 days — raises churn risk". `inverted`: the likelihood is 1 - P(positive),
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


@dataclass(frozen=True)
class _Plan:
    """What `drivers` needs of one model and registry, worked out once: the driver columns,
    and those with a healthy direction (its sign on the margin and the training median)."""

    registry: FeatureRegistry
    drivers: np.ndarray  # column indices (into model.features) of driver features
    checked: np.ndarray  # positions in `drivers` of features with a direction and a reference
    sign: np.ndarray  # per checked: +1 if more of it raises the margin, -1 if it lowers it
    reference: np.ndarray  # per checked: the training median


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plan(model: RadarModel, registry: FeatureRegistry) -> _Plan:
    cached = _PLANS.get(model)
    if cached is not None and cached.registry is registry:
        return cached
    features = model.features
    driver_idx = np.array([j for j, f in enumerate(features) if registry.is_driver(f)], dtype=np.int64)
    names = [features[j] for j in driver_idx]
    direction = healthy_directions(names, model.target, registry, model.categorical)
    reference = getattr(model, "reference", None) or {}
    checked = [i for i, (f, d) in enumerate(zip(names, direction)) if d and f in reference]
    plan = _Plan(
        registry,
        driver_idx,
        np.array(checked, dtype=np.int64),
        np.array([direction[i] for i in checked], dtype=float),
        np.array([reference[names[i]] for i in checked], dtype=float),
    )
    _PLANS[model] = plan
    return plan


def _numbers(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The columns as a float block (missing and non-numbers: NaN)."""
    try:
        return frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        return np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64) for c in columns])


def against_direction(
    contributions: np.ndarray, values: np.ndarray, sign: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """Cells whose contribution points against the healthy direction: the value is on one
    side of the reference (training median) and the contribution moves the margin the way
    the other side should (`sign`: +1 where more of the feature should raise the margin).
    At the reference, or with a missing value, nothing is against."""
    with np.errstate(invalid="ignore"):
        expected = np.sign(values - reference) * sign  # NaN where missing
        return expected * np.sign(contributions) < 0


def shown_contributions(
    frame: pd.DataFrame, model: RadarModel, contributions: np.ndarray, registry: FeatureRegistry
) -> np.ndarray:
    """Rows x driver features (in model order): the contributions that may be reasons;
    0 where a reason would point against the healthy direction, or where a missing value
    raises the likelihood (those are not shown)."""
    plan = _plan(model, registry)
    shown = np.array(contributions[:, plan.drivers], dtype=np.float64)
    if not shown.size:
        return shown
    names = [model.features[j] for j in plan.drivers]
    _, inverted = likelihood_of(model)
    raises = shown < 0 if inverted else shown > 0
    shown[frame[names].isna().to_numpy() & raises] = 0.0
    if len(plan.checked):
        block = shown[:, plan.checked]
        values = _numbers(frame, [names[i] for i in plan.checked])
        block[against_direction(block, values, plan.sign, plan.reference)] = 0.0
        shown[:, plan.checked] = block
    return shown


def drivers(
    frame: pd.DataFrame, model: RadarModel, contributions: np.ndarray, registry: FeatureRegistry, k: int
) -> list[list[dict]]:
    """Per row of `frame` (the snapshot records as given), its top k drivers:
    {feature, value, contribution, reason}, largest |contribution| first.

    Only driver features are candidates (context is never a reason, see
    serving.scoring.context), and reasons that would point against the healthy direction,
    or a missing value that raises the likelihood, are left out (`shown_contributions`):
    the k are the largest of the rest. Work is done per feature, not per cell: the values
    and reason strings of every cell where a feature is a driver are gathered and written
    together."""
    plan = _plan(model, registry)
    pos, contrib = top_k(shown_contributions(frame, model, contributions, registry), k)
    idx = plan.drivers[pos]
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
    # a churn model's drivers speak of what it predicts, the churn risk (never of a "renewal
    # likelihood" over a 90-day horizon); `raises` goes with a positive contribution
    raises, lowers = (
        (" — raises churn risk", " — lowers churn risk")
        if inverted
        else (f" — raises {likelihood}", f" — lowers {likelihood}")
    )
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in values]
    if spec is None:
        return [
            (f"No {feature} recorded" if gone else f"{feature} is {v}") + (raises if c > 0 else lowers)
            for v, c, gone in zip(values, contributions, missing)
        ]
    span = f" over the last {spec.window} days" if spec.window else ""
    raises, lowers = span + raises, span + lowers
    plain, head, no_data = spec.formatter(), f"{spec.label} is ", f"No {_lower_first(spec.label)} recorded"

    def shown(value) -> str:
        text = plain(value)
        return text.replace("-", MINUS) if spec.unit == "pct" else text  # a change: a true minus sign

    return [
        (no_data if gone else head + shown(v)) + (raises if c > 0 else lowers)
        for v, c, gone in zip(values, contributions, missing)
    ]


def _lower_first(label: str) -> str:
    """A label inside a sentence: "Active users" -> "active users"; "NPS ..." and "MRR
    change" keep their capitals."""
    if len(label) > 1 and label[0].isupper() and not label[1].isupper():
        return label[0].lower() + label[1:]
    return label
