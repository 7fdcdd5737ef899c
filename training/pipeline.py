"""One training run: split, fit, calibrate, compare with the baselines, backtest, report.

`train_and_evaluate` is a pure function of a `TrainingTable` and the settings (it writes
only the plots, and only when asked); `training.track` logs what it returns.

With a time column: the main time split (see `training.split`; for a label whose window
differs per row, such as churned_by_renewal, on each row's own window end) trains the
served model and tests it, beside both baselines, on the latest labelled period; a
rolling-origin backtest refits the model at earlier cutoffs. Without one: `cv_folds`-fold
stratified cross-validation, where "test" means the out-of-fold predictions of every row
(each from a model that did not see it) and the served model is refit on all rows but
one fold, which early-stops and calibrates it.

Every run records the base rate (the positive rate of the calibration rows: the typical
risk tiers compare with) in the outcome, the model's metadata and the metrics. Churn
targets are also scored on the test rows per band of days to the next renewal
(`training.evaluate.band_table`); when per-row label windows leave a band out of the
calibration or test period, a warning says so.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from radar.settings import Settings
from training.baselines import HealthScoreBaseline, LogisticBaseline
from training.dataset import DatasetError, TrainingTable
from training.evaluate import METRICS, RENEWAL_BANDS, band_table, metrics, renewal_band, scorecard, size_warnings
from training.model import (
    RadarModel,
    categorical_overrides,
    categorical_warnings,
    category_profiles,
    fit_lightgbm,
    lightgbm_params,
)
from training.outcome import TrainOutcome
from training.split import Split, rolling_folds, stratified_folds, time_split

MODELS = {"model": "lightgbm", "logistic": "logistic", "health_score": "health_score"}


def dataset_digest(table: TrainingTable) -> str:
    """A stable fingerprint of the rows and columns the run used (sha256 hex)."""
    cols = list(
        dict.fromkeys(
            [
                table.id_col,
                *([table.time_col] if table.time_col else []),
                table.target.label,
                *table.features,
                *([table.baseline_col] if table.baseline_col else []),
                *([table.label_end_col] if table.label_end_col else []),
            ]
        )
    )
    h = hashlib.sha256(repr([(c, str(table.frame[c].dtype)) for c in cols]).encode())
    h.update(pd.util.hash_pandas_object(table.frame[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


def _check_parts(table: TrainingTable, split: Split) -> None:
    y = table.y
    for part in ("train", "calibration", "test"):
        rows = getattr(split, part)
        pos = int(y[rows].sum())
        if pos == 0 or pos == len(rows):
            raise DatasetError(
                f"the {part} part ({split.ranges.get(part, '')}) has {len(rows)} rows and {pos} positive labels; "
                "each part needs both positives and negatives (at least one of each, and a few dozen positives "
                f"for stable figures). The table has {len(y)} labelled rows, {int(y.sum())} positive."
            )


def _fit_all(
    table: TrainingTable, split: Split, settings: Settings, overrides: dict | None, warns: list[str]
) -> tuple[RadarModel, dict[str, np.ndarray]]:
    """Fit the model and the baselines on a split; calibrated probabilities on its test rows."""
    model = fit_lightgbm(table, split, settings, overrides)
    test = table.frame.iloc[split.test]
    preds = {"model": model.predict_proba(test)}
    logistic = LogisticBaseline().fit(table, split, settings)
    preds["logistic"] = logistic.predict_proba(test)
    if not logistic.converged_ and not any(w.startswith("The logistic") for w in warns):
        warns.append(
            "The logistic-regression baseline did not fully converge in 1,000 iterations; "
            "its figures may understate what a linear model can do."
        )
    if table.baseline_col:
        health = HealthScoreBaseline(table.baseline_col).fit(table, split, settings)
        preds["health_score"] = health.predict_proba(test)
    return model, preds


def _summary(scores: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [
        {
            "model": MODELS[name],
            "metric": m,
            "value": s.get(m, np.nan),
            "ci_low": s.get(f"{m}_ci_low", np.nan),
            "ci_high": s.get(f"{m}_ci_high", np.nan),
        }
        for name, s in scores.items()
        for m in METRICS
    ]
    return pd.DataFrame(rows, columns=["model", "metric", "value", "ci_low", "ci_high"])


def summary_table(outcome: TrainOutcome) -> pd.DataFrame:
    """The comparison to print: one row per metric, one column per model,
    "value [ci_low, ci_high]"."""
    s = outcome.summary
    cell = s.apply(
        lambda r: (
            "n/a"
            if pd.isna(r.value)
            else (f"{r.value:.3f}" + ("" if pd.isna(r.ci_low) else f" [{r.ci_low:.3f}, {r.ci_high:.3f}]"))
        ),
        axis=1,
    )
    table = s.assign(cell=cell).pivot(index="metric", columns="model", values="cell")
    order = [m for m in MODELS.values() if m in table.columns]
    return table.reindex(index=list(METRICS), columns=order).rename_axis(
        index=f"{outcome.target.name}: {outcome.split.get('test', '')}", columns=None
    )


def _plan(table: TrainingTable, settings: Settings, warns: list[str]) -> tuple[Split, list[Split]]:
    """The main split and the evaluation folds (backtest folds, or CV folds without time)."""
    n = len(table.frame)
    if table.time_col:
        split = time_split(table.times, settings, table.label_ends)
        _check_parts(table, split)
        try:
            folds = rolling_folds(table.times, settings, label_end=table.label_ends)
            for fold in folds[1:]:
                _check_parts(table, fold)
        except DatasetError as exc:
            warns.append(f"No rolling-origin backtest: {exc}")
            folds = [split]
        return split, folds
    folds = stratified_folds(table.y, settings)
    for fold in folds:
        _check_parts(table, fold)
    held = folds[0].test
    return Split(
        np.setdiff1d(np.arange(n), held),
        held,
        np.arange(n),
        {
            "scheme": folds[0].ranges["scheme"],
            "train": f"{n - len(held)} rows (all but one fold)",
            "calibration": f"{len(held)} rows (one fold)",
            "test": f"{n} rows, out-of-fold",
        },
    ), folds


def _fit_and_predict(
    table: TrainingTable,
    split: Split,
    folds: list[Split],
    settings: Settings,
    overrides: dict,
    warns: list[str],
    say: Callable[[str], None],
) -> tuple[RadarModel, dict[str, np.ndarray], list[dict[str, float]]]:
    """The served model, every model's calibrated test probabilities and the model's metrics per fold."""
    name, k, weight = table.target.name, settings.training.top_k_accounts, table.weight
    w = (lambda rows: None) if weight is None else (lambda rows: weight[rows])
    fold_scores = []
    if table.time_col:
        say(f"{name}: fitting LightGBM on {len(split.train):,} rows ({split.ranges['train']}) and the baselines")
        model, preds = _fit_all(table, split, settings, overrides, warns)
        for i, fold in enumerate(folds):
            if i == 0:  # fold 1 is the main split
                p = preds["model"]
            else:
                say(f"{name}: backtest fold {i + 1}/{len(folds)} (test {fold.ranges['test']})")
                p = fit_lightgbm(table, fold, settings, overrides).predict_proba(table.frame.iloc[fold.test])
            fold_scores.append(metrics(table.y[fold.test], p, w(fold.test), k))
        return model, preds, fold_scores
    preds = {}
    for i, fold in enumerate(folds):
        say(f"{name}: cross-validation fold {i + 1}/{len(folds)}")
        _, fp = _fit_all(table, fold, settings, overrides, warns)
        for key, p in fp.items():
            preds.setdefault(key, np.full(len(table.frame), np.nan))[fold.test] = p
        fold_scores.append(metrics(table.y[fold.test], fp["model"], w(fold.test), k))
    say(f"{name}: fitting the served model on {len(split.train):,} rows")
    return fit_lightgbm(table, split, settings, overrides), preds, fold_scores


def base_rate(table: TrainingTable, split: Split) -> tuple[float, str]:
    """The positive rate of the calibration rows (of the training rows when there are
    none), and where it comes from: the typical risk tiers are read against."""
    for part in ("calibration", "train"):
        rows = getattr(split, part)
        if len(rows):
            span = split.ranges.get(part, "")
            return float(table.y[rows].mean()), f"{part} rows: {len(rows):,}" + (f", {span}" if span else "")
    raise DatasetError("no calibration or training rows to take the base rate from")


def _band_coverage(table: TrainingTable, split: Split) -> list[str]:
    """For labels with per-row windows: a warning naming the days-to-renewal bands that
    the training data hold but the calibration or test period does not (their windows
    reach past the period's end), so those accounts' figures are unvalidated."""
    if not (table.label_end_col and table.band_col):
        return []
    bands = renewal_band(table.frame[table.band_col])
    trained = set(bands[split.train])
    missing = {
        part: [b for b, _, _ in RENEWAL_BANDS if b in trained and b not in set(bands[getattr(split, part)])]
        for part in ("calibration", "test")
    }
    if not any(missing.values()):
        return []
    parts = " and ".join(
        f"the {part} period has no rows {' or '.join(names)} days before their next renewal"
        for part, names in missing.items()
        if names
    )
    return [
        f"{table.target.name}: {parts} (their label windows, to the renewal, end too late for that period): "
        "its figures and calibration rest on accounts renewing sooner; treat predictions for accounts "
        "renewing later as unvalidated until the data cover their renewals."
    ]


def _flat(scores: dict[str, dict[str, float]], fold_scores: list[dict[str, float]]) -> dict[str, float]:
    flat = {f"test.{key}.{m}": v for key, s in scores.items() for m, v in s.items()}
    for i, fs in enumerate(fold_scores):
        flat.update({f"fold{i + 1}.model.{m}": v for m, v in fs.items() if np.isfinite(v)})
    for m in METRICS:
        vals = np.array([fs[m] for fs in fold_scores])
        vals = vals[np.isfinite(vals)]
        if len(vals):
            flat[f"backtest.model.{m}_mean"] = float(vals.mean())
            flat[f"backtest.model.{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return flat


def _params(
    table: TrainingTable, model: RadarModel, settings: Settings, overrides: dict, tune_trials: int, folds: int
) -> dict:
    g = settings.training.lightgbm.model_copy(update=overrides)
    return {
        **{k: v for k, v in lightgbm_params(settings, overrides).items() if k != "verbose"},
        **{k: v for k, v in model.metadata.items() if k not in ("target", "label")},
        "n_estimators": g.n_estimators,
        "early_stopping_rounds": g.early_stopping_rounds,
        "balance_classes": g.balance_classes,
        "tune_trials": tune_trials,
        "tuned": ",".join(sorted(overrides)),
        "n_features": len(table.features),
        "backtest_folds": folds,
        "bootstrap_samples": settings.training.bootstrap_samples,
        "bootstrap_unit": table.id_col,
        **{f"calibration_logloss_{k}": round(v, 6) for k, v in model.calibrator.scores.items()},
    }


def train_and_evaluate(
    table: TrainingTable,
    settings: Settings,
    *,
    tune_trials: int = 0,
    progress: Callable[[str], None] | None = None,
    plot_dir: Path | None = None,
) -> TrainOutcome:
    """Train the served model for `table`'s target and evaluate it against the baselines."""
    say = progress or (lambda _msg: None)
    name, started, warns = table.target.name, time.perf_counter(), []
    split, folds = _plan(table, settings, warns)
    overrides: dict = {}
    tuning = ""
    if tune_trials > 0:
        from training.tune import tune

        say(f"{name}: tuning LightGBM ({tune_trials} trials)")
        notes: list[str] = []
        overrides = tune(table, split, settings, tune_trials, notes)
        tuning = "; ".join(notes) or "time-aware folds inside the training period"
        warns.extend(f"{name}: {n}" for n in notes)
        for note in notes:
            say(f"{name}: {note}")
    model, preds, fold_scores = _fit_and_predict(table, split, folds, settings, overrides, warns, say)
    rate, rate_from = base_rate(table, split)
    model.metadata.update(base_rate=rate, base_rate_from=rate_from)
    profiles = category_profiles(table, split.train)
    flagged = categorical_warnings(
        model.importance("gain"), profiles, settings, categorical_overrides(profiles, settings)
    )
    warns.extend(flagged.values())
    model.metadata["categorical_flagged"] = ",".join(flagged)  # logged as a parameter and a run tag

    say(
        f"{name}: metrics with bootstrap intervals ({settings.training.bootstrap_samples} resamples of "
        f"{table.id_col} values)"
    )
    test = table.frame.iloc[split.test]
    weight = None if table.weight is None else table.weight[split.test]
    segments = test[table.segment_col].to_numpy() if table.segment_col else None
    scores = {
        key: scorecard(
            table.y[split.test], p, settings, weight=weight, groups=test[table.id_col].to_numpy(), segments=segments
        )
        for key, p in preds.items()
    }
    bands = None
    if table.band_col:
        say(f"{name}: metrics per band of days to the next renewal")
        bands = band_table(
            table.y[split.test], preds["model"], test[table.band_col], settings, groups=test[table.id_col].to_numpy()
        )
    keep = [
        c
        for c in dict.fromkeys(
            [table.id_col, table.time_col, table.target.label, table.weight_col, table.segment_col, table.band_col]
        )
        if c
    ]
    flat = _flat(scores, fold_scores) | {"base_rate": rate} | {f"split.{k}": float(v) for k, v in split.dropped.items()}
    outcome = TrainOutcome(
        target=table.target,
        model=model,
        metrics=flat,
        summary=_summary(scores),
        test_predictions=test[keep].reset_index(drop=True).assign(**{f"p_{k}": p for k, p in preds.items()}),
        params=_params(table, model, settings, overrides, tune_trials, len(fold_scores)),
        features=list(table.features),
        categorical=list(table.categorical),
        feature_descriptions=dict(table.descriptions),
        split=dict(split.ranges),
        dataset_digest=dataset_digest(table),
        dataset_rows=len(table.frame),
        warnings=size_warnings(table, split, settings, scores["model"]) + _band_coverage(table, split) + warns,
        input_example=model.prepare(test.head(5)).reset_index(drop=True),
        base_rate=rate,
        bands=bands,
        fold_ranges=[dict(f.ranges) for f in folds],
        tuning=tuning,
    )
    if plot_dir is not None:
        from training.plots import make_plots

        say(f"{name}: plots")
        outcome.plots = make_plots(outcome, test, Path(plot_dir))
    say(f"{name}: done in {time.perf_counter() - started:.0f} s")
    return outcome
