"""The served model: a LightGBM booster, its calibrator and the contract of its inputs.

`RadarModel.prepare` is the one place that turns records into model input (select and
order the features, numbers as floats, categories as pandas Categoricals with the
training levels — an unseen level becomes missing instead of a crash). Training,
evaluation, explanation and serving all go through it, so they cannot drift apart.

Imbalance. With `balance_classes`, positives are weighted by negatives/positives while
fitting (and in the early-stopping loss, so it measures the same objective). This
shifts the raw margin up by about log(negatives/positives): the scores rank well but
overstate risk. The calibrator is fitted on the *unweighted* calibration period and maps
the margin back to observed frequencies, so `predict_proba` is a probability again;
`raw_margin` and the SHAP contributions stay in the weighted margin space.

Monotone drivers. With `lightgbm.monotone_drivers`, every driver feature with a known
healthy direction (features.registry) is a LightGBM monotone constraint: for a target
whose positive is a churn, more of a healthy-when-higher driver can only lower the
margin; for expansion, only the usage families (`UPSELL_MONOTONE_FAMILIES`) are
constrained, the healthy way up. Context features (contract timing, tenure, MRR, plan)
and neutral or categorical features are free. Reasons then mostly follow the healthy
direction (the few that do not are not shown, see serving.scoring.explain).

High-cardinality categoricals. A categorical feature with few accounts per category (a
region code of 26 values on a few hundred accounts) lets trees memorise categories:
LightGBM then ranks it among the most important features while it only fits noise.
When the training rows hold fewer than `categorical_min_accounts_per_level` distinct
accounts per category (an account's repeated snapshots are not new evidence),
`categorical_overrides` scales LightGBM's categorical parameters to the table: cat_smooth,
cat_l2 and min_data_per_group at least the training rows per category, max_cat_threshold
at most a quarter of the categories; `categorical_warnings` names such a feature when it
still ranks within `categorical_warn_top` by gain ("likely overfitting").

Reference. The model records each numeric feature's median over its training rows
(`RadarModel.reference`, saved with it): the line between a feature's healthy and
unhealthy side that reason strings are checked against (serving.scoring.explain).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.snapshot import feature_registry
from radar.settings import Settings
from training.calibrate import Calibrator, choose_calibrator
from training.dataset import TrainingTable
from training.outcome import TargetSpec
from training.split import Split

BOOSTER_FILE, META_FILE = "booster.txt", "radar_model.json"

# Label columns whose positive is a churn (1 = the account is lost): the renewal model's
# "churned" and the contract-end target's "churned_by_renewal". A target not listed is a
# churn target when its positive says so in words ("churns within the horizon").
CHURN_LABELS = frozenset({"churned", "churned_by_renewal"})
# Indicator families where healthy usage plausibly means more expansion: adoption, usage
# depth, engagement, ROI realization, feature adoption breadth.
UPSELL_MONOTONE_FAMILIES = frozenset({1, 4, 5, 14, 15})


def positive_is_churn(target: TargetSpec) -> bool:
    """Whether a positive label of `target` is a churn (its likelihood shown is 1 - P)."""
    return target.label in CHURN_LABELS or target.positive.strip().lower().startswith("churn")


def healthy_directions(features: list[str], target: TargetSpec, registry, categorical=()) -> list[int]:
    """Per feature, which way its healthy side moves `target`'s margin: +1 (more of it
    raises the margin), -1 (lowers it) or 0 (no healthy direction). Every numeric driver
    with a healthy direction counts: for a churn target the healthy side lowers the churn
    margin; for any other target (expansion: a good outcome) it raises the margin.
    Context, neutral, categorical and unregistered features: 0. Reason strings are checked
    against these (serving.scoring.explain)."""
    churn = positive_is_churn(target)
    out = []
    for f in features:
        spec = registry[f] if f in registry else None
        if spec is None or spec.kind != "driver" or spec.categorical or f in categorical:
            out.append(0)
            continue
        healthy = {"higher": 1, "lower": -1}.get(spec.healthy, 0)
        out.append(-healthy if churn else healthy)
    return out


def monotone_constraints(features: list[str], target: TargetSpec, registry, categorical=()) -> list[int]:
    """LightGBM's `monotone_constraints` for `features` (-1, 0 or +1 each, in order): the
    healthy direction of each driver (`healthy_directions`) for a churn target; for other
    targets (expansion) only the usage families (`UPSELL_MONOTONE_FAMILIES`), where healthy
    usage plausibly means more expansion. Context is never constrained."""
    directions = healthy_directions(features, target, registry, categorical)
    if positive_is_churn(target):
        return directions
    return [
        d if d and f in registry and registry[f].family in UPSELL_MONOTONE_FAMILIES else 0
        for f, d in zip(features, directions)
    ]


def training_reference(X: pd.DataFrame, categorical=()) -> dict[str, float]:
    """Median of each numeric feature over the training rows (missing values left out;
    features never present are left out)."""
    out = {}
    for f in X.columns:
        if f in categorical or isinstance(X[f].dtype, pd.CategoricalDtype):
            continue
        median = X[f].median(skipna=True)
        if pd.notna(median):
            out[f] = float(median)
    return out


def category_labels(values: pd.Series) -> pd.Series:
    """Category values as strings (True -> "True", 3 -> "3"), missing kept missing."""
    s = pd.Series(values, copy=False).astype(object)
    present = s.notna().to_numpy()
    out = np.full(len(s), np.nan, dtype=object)
    out[present] = [str(v) for v in s.to_numpy()[present]]
    return pd.Series(out, index=s.index, name=s.name)


def lightgbm_params(settings: Settings, overrides: dict | None = None, constraints: list[int] | None = None) -> dict:
    """LightGBM's native parameters from the settings (and tuned overrides); with
    `constraints` (any non-zero), LightGBM's monotone constraints and their method."""
    g = settings.training.lightgbm.model_copy(update=overrides or {})
    monotone = (
        {"monotone_constraints": list(constraints), "monotone_constraints_method": g.monotone_method}
        if constraints is not None and any(constraints)
        else {}
    )
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": g.learning_rate,
        "num_leaves": g.num_leaves,
        "max_depth": g.max_depth,
        "min_child_samples": g.min_child_samples,
        "feature_fraction": g.feature_fraction,
        "bagging_fraction": g.bagging_fraction,
        "bagging_freq": g.bagging_freq,
        "lambda_l2": g.lambda_l2,
        "cat_smooth": g.cat_smooth,
        "cat_l2": g.cat_l2,
        "max_cat_threshold": g.max_cat_threshold,
        "min_data_per_group": g.min_data_per_group,
        "seed": settings.training.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": settings.training.threads,
        "feature_pre_filter": False,
        "verbose": -1,
        **monotone,
    }


class RadarModel:
    """The calibrated, served model. `categories`: categorical feature -> training levels.
    `reference`: numeric feature -> its median over the training rows (empty for models
    saved before it was recorded)."""

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        features: list[str],
        categories: dict[str, list[str]],
        target: TargetSpec,
        metadata: dict | None = None,
        reference: dict[str, float] | None = None,
    ):
        self.booster = booster
        self.calibrator = calibrator
        self.features = list(features)
        self.categories = {k: list(v) for k, v in categories.items()}
        self.target = target
        self.metadata = dict(metadata or {})
        self.reference = {k: float(v) for k, v in (reference or {}).items()}

    @property
    def categorical(self) -> list[str]:
        return [f for f in self.features if f in self.categories]

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """The model input for `df`: exactly the training features, in order and typed."""
        absent = [f for f in self.features if f not in df.columns]
        if absent:
            raise ValueError(
                f"input lacks {len(absent)} feature column(s) the model needs: "
                f"{', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}"
            )
        out = {}
        for f in self.features:
            if f in self.categories:
                levels = pd.Index(self.categories[f], dtype=object)
                codes = levels.get_indexer(category_labels(df[f]))  # unseen or missing -> -1 (NaN)
                out[f] = pd.Categorical.from_codes(codes, categories=levels)
            else:
                try:
                    out[f] = pd.to_numeric(df[f]).astype("float64").to_numpy()
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"feature '{f}' must be numeric: {exc}") from exc
        return pd.DataFrame(out, index=df.index)

    def raw_margin(self, df: pd.DataFrame) -> np.ndarray:
        """The booster's log-odds score (before calibration)."""
        return self.booster.predict(self.prepare(df), raw_score=True)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated P(positive) per row."""
        return self.calibrator.transform(self.raw_margin(df))

    def contributions(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Exact TreeSHAP of the raw margin: (rows x features, base value per row);
        contributions.sum(1) + base == raw_margin."""
        c = self.booster.predict(self.prepare(df), pred_contrib=True)
        return c[:, :-1], c[:, -1]

    def importance(self, kind: str = "gain") -> pd.Series:
        return pd.Series(
            self.booster.feature_importance(kind), index=self.booster.feature_name(), name=kind
        ).sort_values(ascending=False)

    def save(self, dir: Path) -> Path:
        """Write the booster (LightGBM text format) and the rest (JSON) into `dir`."""
        dir = Path(dir)
        dir.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(dir / BOOSTER_FILE))
        meta = {
            "features": self.features,
            "categories": self.categories,
            "target": asdict(self.target),
            "calibrator": self.calibrator.to_dict(),
            "metadata": self.metadata,
            "reference": self.reference,
        }
        (dir / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return dir

    @classmethod
    def load(cls, dir: Path) -> RadarModel:
        dir = Path(dir)
        meta = json.loads((dir / META_FILE).read_text())
        return cls(
            lgb.Booster(model_file=str(dir / BOOSTER_FILE)),
            Calibrator.from_dict(meta["calibrator"]),
            meta["features"],
            meta["categories"],
            TargetSpec(**meta["target"]),
            meta["metadata"],
            meta.get("reference"),
        )


def levels_of(table: TrainingTable, rows: np.ndarray) -> dict[str, list[str]]:
    """Categorical levels seen in the training rows (sorted, so the order is stable)."""
    return {c: sorted(category_labels(table.frame[c].iloc[rows]).dropna().unique().tolist()) for c in table.categorical}


@dataclass(frozen=True)
class CategoryProfile:
    """How much evidence a categorical feature's categories have in the training rows."""

    feature: str
    levels: int
    rows_per_level: float
    accounts_per_level: float
    dates: int | None  # distinct training dates (None without a time column)


def category_profiles(table: TrainingTable, rows: np.ndarray) -> dict[str, CategoryProfile]:
    """Per categorical feature: its categories in `rows` and the rows and distinct accounts
    per category (missing values are not a category)."""
    frame = table.frame.iloc[rows]
    dates = int(frame[table.time_col].nunique()) if table.time_col else None
    out = {}
    for f in table.categorical:
        labels = category_labels(frame[f])
        present = labels.notna().to_numpy()
        levels = int(labels[present].nunique())
        if not levels:
            continue
        accounts = frame[table.id_col].to_numpy()[present]
        per_level = pd.Series(accounts).groupby(labels[present].to_numpy()).nunique()
        out[f] = CategoryProfile(f, levels, present.sum() / levels, float(per_level.mean()), dates)
    return out


def high_cardinality(profiles: dict[str, CategoryProfile], settings: Settings) -> list[CategoryProfile]:
    """The categorical features with fewer accounts per category than the setting."""
    limit = settings.training.lightgbm.categorical_min_accounts_per_level
    return [p for p in profiles.values() if p.levels > 1 and p.accounts_per_level < limit]


def categorical_overrides(profiles: dict[str, CategoryProfile], settings: Settings) -> dict:
    """LightGBM's categorical parameters scaled to the sparsest high-cardinality categorical
    (overrides of LightGBMSettings; empty when there is none). LightGBM applies them to
    every categorical feature alike, so the sparsest one sets them."""
    sparse = high_cardinality(profiles, settings)
    if not sparse:
        return {}
    g = settings.training.lightgbm
    rows = float(min(p.rows_per_level for p in sparse))
    levels = max(p.levels for p in sparse)
    return {
        "cat_smooth": max(g.cat_smooth, round(rows, 1)),
        "cat_l2": max(g.cat_l2, round(rows, 1)),
        "min_data_per_group": max(g.min_data_per_group, int(np.ceil(rows))),
        "max_cat_threshold": min(g.max_cat_threshold, max(1, levels // 4)),
    }


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def categorical_warnings(
    importance: pd.Series, profiles: dict[str, CategoryProfile], settings: Settings, params: dict | None = None
) -> dict[str, str]:
    """feature -> warning, for each high-cardinality categorical ranking within
    `categorical_warn_top` by `importance` (feature -> gain, any order)."""
    g = settings.training.lightgbm
    ranks = {f: i + 1 for i, f in enumerate(importance.sort_values(ascending=False, kind="mergesort").index)}
    used = ", ".join(f"{k} {v:g}" for k, v in (params or {}).items())
    out = {}
    for p in high_cardinality(profiles, settings):
        rank = ranks.get(p.feature)
        if rank is None or rank > g.categorical_warn_top or not importance.get(p.feature, 0) > 0:
            continue
        on = f" on {p.dates} training dates" if p.dates else ""
        out[p.feature] = (
            f"{p.feature} ranks {_ordinal(rank)} by importance with {p.levels} categories and "
            f"~{p.rows_per_level:.0f} rows per category{on} (~{p.accounts_per_level:.0f} accounts each, fewer than "
            f"lightgbm.categorical_min_accounts_per_level = {g.categorical_min_accounts_per_level}): likely "
            f"overfitting. It was regularised ({used or 'LightGBM defaults'}); if it keeps ranking high, group its "
            "rare categories or leave it out of the model."
        )
    return out


def train_booster(
    X: pd.DataFrame,
    y: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    settings: Settings,
    overrides: dict | None = None,
    constraints: list[int] | None = None,
) -> tuple[lgb.Booster, float]:
    """Fit with early stopping on the validation rows; returns the booster cut at its best
    round, and the positive weight used (1 when classes are not balanced).
    `early_stopping_rounds = 0` fits exactly `n_estimators` rounds. `constraints`: LightGBM
    monotone constraints, one per column of X (`monotone_constraints`)."""
    g = settings.training.lightgbm.model_copy(update=overrides or {})
    positives = max(int(y.sum()), 1)
    pos_weight = (len(y) - positives) / positives if g.balance_classes else 1.0
    weight = lambda labels: np.where(labels == 1, pos_weight, 1.0)
    train = lgb.Dataset(X, y, weight=weight(y), free_raw_data=True)
    valid = lgb.Dataset(X_valid, y_valid, weight=weight(y_valid), reference=train)
    stopping = [lgb.early_stopping(g.early_stopping_rounds, verbose=False)] if g.early_stopping_rounds else []
    booster = lgb.train(
        lightgbm_params(settings, overrides, constraints),
        train,
        num_boost_round=g.n_estimators,
        valid_sets=[valid],
        callbacks=stopping,
    )
    best = (booster.best_iteration if stopping else 0) or booster.current_iteration()
    # keep only the rounds early stopping chose: the in-memory model is then exactly the saved one
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best)), pos_weight


def constraints_for(table: TrainingTable, settings: Settings) -> list[int] | None:
    """The monotone constraints of `table`'s features (None when `monotone_drivers` is off)."""
    if not settings.training.lightgbm.monotone_drivers:
        return None
    return monotone_constraints(table.features, table.target, feature_registry(settings), table.categorical)


def fit_lightgbm(table: TrainingTable, split: Split, settings: Settings, overrides: dict | None = None) -> RadarModel:
    """Train on split.train, early-stop on split.calibration, calibrate on it (unweighted)."""
    frame = table.frame
    categorical = categorical_overrides(category_profiles(table, split.train), settings)
    overrides = {**categorical, **(overrides or {})}
    shell = RadarModel(None, Calibrator("platt"), table.features, levels_of(table, split.train), table.target)
    X, Xc = shell.prepare(frame.iloc[split.train]), shell.prepare(frame.iloc[split.calibration])
    y, yc = table.y[split.train], table.y[split.calibration]
    constraints = constraints_for(table, settings)
    booster, pos_weight = train_booster(X, y, Xc, yc, settings, overrides, constraints)
    margin = booster.predict(Xc, raw_score=True)
    calibrator = choose_calibrator(
        margin,
        yc,
        folds=settings.training.cv_folds,
        seed=settings.training.seed,
        groups=table.ids.to_numpy()[split.calibration],
    )
    metadata = {
        "target": table.target.name,
        "label": table.target.label,
        "trained_on": split.ranges.get("train", ""),
        "calibrated_on": split.ranges.get("calibration", ""),
        "best_iteration": booster.current_iteration(),
        "positive_weight": pos_weight,
        "calibration": calibrator.method,
        "train_rows": len(split.train),
        "monotone_features": sum(1 for c in constraints or () if c),
        "monotone_method": settings.training.lightgbm.monotone_method if constraints and any(constraints) else "none",
        "categorical_params": ", ".join(f"{k}={v:g}" for k, v in categorical.items()) or "defaults",
        # the typical rate the served tiers are relative to ("2.8x the typical churn risk"):
        # the positive share of the calibration period, the most recent labelled rows
        "base_rate": float(np.mean(yc)) if len(yc) and float(np.mean(yc)) > 0 else float(np.mean(y)),
    }
    reference = training_reference(X, table.categorical)
    return RadarModel(booster, calibrator, shell.features, shell.categories, table.target, metadata, reference)
