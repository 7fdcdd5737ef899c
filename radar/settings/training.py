"""Settings of training: LightGBM, the time split, bootstrap, MLflow tracking and promotion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from radar.settings.base import Section as _Section


class LightGBMSettings(_Section):
    """LightGBM defaults: shallow-ish trees, early stopping on the validation period."""

    n_estimators: int = Field(600, gt=0, description="Upper bound on boosting rounds (early stopping picks fewer).")
    learning_rate: float = Field(0.05, gt=0, description="Shrinkage per round.")
    num_leaves: int = Field(31, ge=2, description="Leaves per tree.")
    max_depth: int = Field(6, description="Depth cap per tree (-1 = none); keeps TreeSHAP cheap at serving.")
    min_child_samples: int = Field(40, ge=1, description="Minimum rows per leaf.")
    feature_fraction: float = Field(0.8, gt=0, le=1, description="Share of features tried per tree.")
    bagging_fraction: float = Field(0.8, gt=0, le=1, description="Share of rows per bagging round.")
    bagging_freq: int = Field(1, ge=0, description="Bagging every k rounds (0 = off).")
    lambda_l2: float = Field(1.0, ge=0, description="L2 regularisation.")
    early_stopping_rounds: int = Field(
        50,
        ge=0,
        description="Stop when validation log loss has not improved for this many rounds (0 = off: "
        "fit exactly n_estimators rounds).",
    )
    balance_classes: bool = Field(
        True,
        description="Weight positives by negatives/positives while fitting; calibration on the "
        "unweighted calibration period maps the scores back to probabilities.",
    )
    monotone_drivers: bool = Field(
        True,
        description="Monotone constraints on driver features with a known healthy direction: for a churn target "
        "(renewal) more of a healthy driver can only lower the churn risk; for upsell only usage drivers "
        "(adoption, depth, engagement, ROI, breadth), healthy usage raising expansion. Context features "
        "(contract timing, tenure, MRR, plan) are never constrained. Reasons then follow the healthy direction.",
    )
    cat_smooth: float = Field(
        10.0,
        ge=0,
        description="LightGBM's cat_smooth: pulls each category's estimate towards the overall rate, more so for "
        "rare categories. Raised to the training rows per category for a high-cardinality categorical "
        "(categorical_min_accounts_per_level).",
    )
    cat_l2: float = Field(
        10.0,
        ge=0,
        description="LightGBM's cat_l2: L2 regularisation of categorical splits (raised like cat_smooth).",
    )
    max_cat_threshold: int = Field(
        32,
        gt=0,
        description="LightGBM's max_cat_threshold: at most this many categories on one side of a split; lowered "
        "for tables with few rows per category.",
    )
    min_data_per_group: int = Field(
        100,
        gt=0,
        description="LightGBM's min_data_per_group: minimum rows on each side of a categorical split (raised like "
        "cat_smooth).",
    )
    categorical_min_accounts_per_level: int = Field(
        50,
        gt=0,
        description="Accounts per category (distinct ids in the training rows, as an account's repeated snapshots "
        "are not new evidence) below which a categorical feature counts as high-cardinality: LightGBM's "
        "categorical parameters are then scaled to the table (cat_smooth, cat_l2 and min_data_per_group raised "
        "to the training rows per category, max_cat_threshold at most a quarter of the categories) and the "
        "report flags the feature when it ranks within categorical_warn_top by importance.",
    )
    categorical_warn_top: int = Field(
        5, gt=0, description="Flag a high-cardinality categorical feature ranking within this many by importance."
    )
    monotone_method: Literal["basic", "intermediate", "advanced"] = Field(
        "intermediate",
        description="LightGBM's monotone_constraints_method: basic is fastest but constrains most; intermediate "
        "and advanced constrain less (closer to the free model), advanced being the slowest.",
    )


class TrainingSettings(_Section):
    """Training, evaluation, tracking and promotion (issue: training and evaluation)."""

    seed: int = Field(
        42, description="Seed for LightGBM, bootstrap and tuning: same data + config + seed = same metrics."
    )
    threads: int = Field(2, gt=0, description="LightGBM threads while training (fixed, so runs are reproducible).")
    test_periods: int = Field(3, ge=1, description="Latest labelled as-of dates held out as the test period.")
    calibration_periods: int = Field(
        3, ge=1, description="As-of dates before the test period used for early stopping and calibration."
    )
    backtest_folds: int = Field(
        3, ge=1, description="Rolling-origin backtest folds (each moves the cutoff back by test_periods)."
    )
    cv_folds: int = Field(5, ge=2, description="Stratified folds for tables without a time column.")
    bootstrap_samples: int = Field(300, ge=0, description="Bootstrap resamples for confidence intervals (0 = off).")
    top_k_accounts: int = Field(50, gt=0, description="k of 'share of at-risk MRR captured in the top k accounts'.")
    min_accounts: int = Field(200, gt=0, description="Warn below this many distinct accounts in training.")
    min_positives: int = Field(50, gt=0, description="Warn below this many positive labels in training or test.")
    register_min_test_positives: int = Field(
        20,
        ge=0,
        description="Register a model only when its test period holds at least this many positives: below it "
        "the figures are noise (a ROC-AUC from one churn), so the run is trained, printed and logged, and says "
        "why it was not registered.",
    )
    tracking_uri: str = Field(
        "sqlite:///mlruns/mlflow.db",
        description="MLflow tracking and registry URI: a sqlite file, a tracking server (http://host:5000, "
        "the team setup) or a database MLflow writes to directly (postgresql+psycopg://user@host/mlflow).",
    )
    artifact_location: str = Field(
        "mlruns/artifacts",
        description="Where new experiments store artifacts when tracking_uri is a database (sqlite:///..., "
        "postgresql+psycopg://...): a folder every user reaches, or a URI such as s3://bucket/radar. "
        "A tracking server (http://...) decides for itself (its --artifacts-destination).",
    )
    promotion_metric: str = Field(
        "pr_auc", description="Metric the challenger must beat the champion on (same test rows)."
    )
    promotion_margin: float = Field(
        0.0,
        ge=0,
        description="Smallest gain on promotion_metric that counts as better (0: any gain); the bootstrap "
        "probability is of a gain above it.",
    )
    promotion_bootstrap_samples: int = Field(
        1000,
        gt=0,
        description="Paired bootstrap resamples of accounts for promotion: both versions scored on the same test "
        "rows, accounts drawn with replacement (all their rows together), seeded by `seed`.",
    )
    promotion_min_probability: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Promote only when the challenger is better in at least this share of the paired bootstrap "
        "resamples (the probability that it is better on these accounts).",
    )
    tune_group_folds: int = Field(
        4,
        ge=3,
        description="`--tune` on a history too short for time-aware folds: folds of a cross-validation grouped "
        "by account over the training rows (stratified GroupKFold: an account's rows are never on two sides); "
        "each fold tests on one part, early-stops on the next and trains on the rest.",
    )
    lightgbm: LightGBMSettings = Field(default_factory=LightGBMSettings)
