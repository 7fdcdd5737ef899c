"""Optional hyper-parameter search (`--tune N`): Optuna's TPE sampler, seeded.

The search sees only the training period of the main split: it never peeks at the
calibration or test rows the run is judged on. Within the training period it uses the
same time-aware folds as the backtest (train on earlier dates, early-stop on the next,
score on the latest, with the label-horizon gap) — or stratified folds for a table
without time. The objective is the mean PR-AUC of the raw margin over those folds:
the ranking of the rare positives is what a CS team acts on, and calibration happens
afterwards anyway.

Short histories. Eight monthly training dates cannot hold even one time-aware fold (each
needs train, gap, validation, gap and test dates). Tuning then falls back to a
cross-validation grouped by account over the same training rows (`tune_group_folds`
parts, stratified by label, an account's rows never on two sides: no account is scored
by a model that saw it) and says so: it compares parameter sets across accounts, not
forward in time, which is what a short history allows. When even that is impossible
(too few accounts with a positive label), the error names the flags and settings that
help.
"""

from __future__ import annotations

import numpy as np
import optuna

from radar.settings import Settings
from training.calibrate import Calibrator
from training.dataset import DatasetError, TrainingTable
from training.evaluate import metrics
from training.model import RadarModel, categorical_overrides, category_profiles, levels_of, train_booster
from training.split import Split, grouped_folds, rolling_folds, stratified_folds


def _inner_folds(table: TrainingTable, split: Split, settings: Settings, notes: list[str]) -> list[Split]:
    """Folds inside the training rows, as positions into the whole table; `notes` gets a
    sentence when tuning falls back to folds grouped by account."""
    rows = split.train
    sub = table.frame.iloc[rows]
    if table.time_col:
        for n in range(settings.training.backtest_folds, 0, -1):
            try:
                inner = rolling_folds(sub[table.time_col], settings, folds=n)
                break
            except DatasetError:
                continue
        else:
            inner = _grouped(table, rows, settings, notes)
    else:
        inner = stratified_folds(table.y[rows], settings)[:3]
    return [
        Split(rows[f.train], rows[f.calibration], rows[f.test], f.ranges)
        for f in inner
        if table.y[rows[f.test]].sum() > 0 and table.y[rows[f.train]].sum() > 0
    ]


def _grouped(table: TrainingTable, rows, settings: Settings, notes: list[str]) -> list[Split]:
    """The fallback for a training period too short for one time-aware fold."""
    cfg = settings.training
    dates = table.frame.iloc[rows][table.time_col].nunique()
    try:
        folds = grouped_folds(table.y[rows], table.ids.to_numpy()[rows], cfg.tune_group_folds, cfg.seed)
    except DatasetError as exc:
        raise DatasetError(
            f"cannot tune: the training period ({dates} dates) is too short for time-aware folds (train, gap, "
            f"validation, gap, test), and a cross-validation grouped by account is impossible too ({exc}). "
            "Run without --tune; or build weekly snapshots (`radar build-features --freq week`, or "
            'features.freq = "week") for more dates; or lower training.tune_group_folds (now '
            f"{cfg.tune_group_folds}, at least 3), training.test_periods or training.calibration_periods to "
            "leave more training rows"
        ) from exc
    notes.append(
        f"tuned by a {cfg.tune_group_folds}-fold cross-validation grouped by account over the {len(rows):,} "
        f"training rows: its {dates} dates are too few for time-aware folds (train, gap, validation, gap, test); "
        "an account's rows are never on two sides, but parameters are compared across accounts rather than "
        'forward in time (weekly snapshots, features.freq = "week", would allow time-aware tuning)'
    )
    return folds


def search_space(trial: optuna.Trial) -> dict:
    """Overrides of `LightGBMSettings` (same names)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
        "max_depth": trial.suggest_int("max_depth", 3, 10),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 300, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
    }


def tune(table: TrainingTable, split: Split, settings: Settings, trials: int, notes: list[str] | None = None) -> dict:
    """The best LightGBM parameters found in `trials` trials (overrides of LightGBMSettings).
    `notes` receives how the folds were made when it is not the usual way."""
    folds = _inner_folds(table, split, settings, notes if notes is not None else [])
    if not folds:
        raise DatasetError("no tuning fold inside the training period has positive labels; run without --tune")
    categorical = categorical_overrides(category_profiles(table, split.train), settings)
    shell = RadarModel(None, Calibrator("platt"), table.features, levels_of(table, split.train), table.target)
    data = [
        (
            shell.prepare(table.frame.iloc[f.train]),
            table.y[f.train],
            shell.prepare(table.frame.iloc[f.calibration]),
            table.y[f.calibration],
            shell.prepare(table.frame.iloc[f.test]),
            table.y[f.test],
        )
        for f in folds
    ]

    def objective(trial: optuna.Trial) -> float:
        params = {**categorical, **search_space(trial)}
        scores = []
        for X, y, Xv, yv, Xt, yt in data:
            booster, _ = train_booster(X, y, Xv, yv, settings, params)
            scores.append(metrics(yt, booster.predict(Xt, raw_score=True))["pr_auc"])
        return float(np.nanmean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.training.seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params)
