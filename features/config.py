"""The one typed configuration of Account Radar.

Every default lives here, documented where it is declared. Values come, in order of
precedence, from keyword arguments, environment variables (``RADAR_`` prefix, ``__`` for
nesting, e.g. ``RADAR_DOMAIN__HORIZON_DAYS=60``), then ``radar.toml``, then these defaults.
The settings object is loaded once at the edge (CLI or service start) and passed down.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("radar.toml")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IngestSettings(_Section):
    """How `radar ingest` reads a workspace folder."""

    column_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table, your column name -> contract column name, "
        "e.g. {usage_events = {ts = 'occurred_at'}}.",
    )
    batch_rows: int = Field(
        500_000, gt=0, description="Rows read per batch; bounds ingest memory."
    )
    memory_limit: str = Field(
        "1GB", description="DuckDB memory limit during ingest (it spills to disk beyond)."
    )
    threads: int = Field(2, gt=0, description="DuckDB worker threads.")


class DomainSettings(_Section):
    """The semantics of DOMAIN sections 1 and 2."""

    grace_days: int = Field(
        30, ge=0, description="Gap between subscription lines still counted as one relationship."
    )
    horizon_days: int = Field(90, gt=0, description="How far labels look forward from as_of.")
    expansion_min_pct: float = Field(
        0.10, ge=0, description="MRR growth over the horizon that counts as expansion."
    )
    renewal_window_mode: bool = Field(
        False,
        description="Train only on snapshots with a renewal (end_date) inside the horizon.",
    )


class FeatureSettings(_Section):
    """Snapshot calendar, windows and which event names mean what (DOMAIN 3)."""

    windows: tuple[int, ...] = Field((28, 90), description="Trailing windows in days; trends compare each with the window before.")
    freq: Literal["month", "week"] = Field("month", description="As-of calendar: month-ends or Mondays.")
    login_events: tuple[str, ...] = Field(("login",), description="Events that mean a user logged in.")
    value_events: tuple[str, ...] = Field(
        ("report_shared", "dashboard_viewed_by_exec", "goal_achieved"),
        description="Events that mean the customer got value (time-to-value, ROI).",
    )
    setup_events: tuple[str, ...] = Field(
        ("setup_connect_datasource", "setup_invite_team", "setup_configure_sso"),
        description="Setup steps; a user who did all of them is activated.",
    )
    onboarding_events: tuple[str, ...] = Field(
        ("onboarding_profile", "onboarding_first_project", "onboarding_tutorial", "onboarding_integrations"),
        description="The onboarding checklist items.",
    )
    feature_events: tuple[str, ...] = Field(
        (
            "feature_dashboards", "feature_alerts", "feature_api", "feature_exports",
            "feature_automation", "feature_forecasting", "feature_collaboration",
        ),
        description="One event per product feature: breadth = features used / features available.",
    )
    activity_lookback_days: int = Field(180, gt=0, description="Cap on 'days since last activity'.")
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="What runs the feature expressions: duckdb (one machine) or spark (Apache Spark through "
        "Ibis' PySpark backend; needs the `spark` extra and Java 17, see [spark]).",
    )
    memory_limit: str = Field("2GB", description="DuckDB memory limit while building snapshots (it spills to disk beyond).")
    text_batch_rows: int = Field(20_000, gt=0, description="Texts analysed per batch (bounds memory).")
    taxonomy_dir: Path | None = Field(None, description="Folder of extra taxonomy files (<lang>.toml) that extend the shipped ones.")

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(w <= 0 for w in v) or len(set(v)) != len(v):
            raise ValueError("windows must be distinct positive day counts, e.g. [28, 90]")
        return tuple(sorted(v))


class HealthSettings(_Section):
    """The transparent 0–100 health score (DOMAIN 5): weights of its components."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "adoption": 0.25,
            "engagement": 0.15,
            "usage_trend": 0.15,
            "nps": 0.15,
            "support": 0.10,
            "sentiment": 0.10,
            "onboarding": 0.10,
        },
        description="Component -> weight; components: adoption, engagement, usage_trend, nps, "
        "support, sentiment, onboarding. Missing components are skipped and the rest reweighted.",
    )
    red_below: float = Field(40, ge=0, le=100, description="Health below this is red.")
    amber_below: float = Field(70, ge=0, le=100, description="Health below this (and not red) is amber.")
    support_ticket_scale: float = Field(
        10, gt=0, description="Tickets in 90 days at which the support component reaches 0."
    )

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("health weights must be non-negative with a positive sum")
        return v


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
        50, ge=0, description="Stop when validation log loss has not improved for this many rounds (0 = off: "
        "fit exactly n_estimators rounds)."
    )
    balance_classes: bool = Field(
        True,
        description="Weight positives by negatives/positives while fitting; calibration on the "
        "unweighted calibration period maps the scores back to probabilities.",
    )


class TrainingSettings(_Section):
    """Training, evaluation, tracking and promotion (issue: training and evaluation)."""

    seed: int = Field(42, description="Seed for LightGBM, bootstrap and tuning: same data + config + seed = same metrics.")
    threads: int = Field(2, gt=0, description="LightGBM threads while training (fixed, so runs are reproducible).")
    test_periods: int = Field(3, ge=1, description="Latest labelled as-of dates held out as the test period.")
    calibration_periods: int = Field(3, ge=1, description="As-of dates before the test period used for early stopping and calibration.")
    backtest_folds: int = Field(3, ge=1, description="Rolling-origin backtest folds (each moves the cutoff back by test_periods).")
    cv_folds: int = Field(5, ge=2, description="Stratified folds for tables without a time column.")
    bootstrap_samples: int = Field(300, ge=0, description="Bootstrap resamples for confidence intervals (0 = off).")
    top_k_accounts: int = Field(50, gt=0, description="k of 'share of at-risk MRR captured in the top k accounts'.")
    min_accounts: int = Field(200, gt=0, description="Warn below this many distinct accounts in training.")
    min_positives: int = Field(50, gt=0, description="Warn below this many positive labels in training or test.")
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
    promotion_metric: str = Field("pr_auc", description="Metric the challenger must beat the champion on (same test data).")
    promotion_margin: float = Field(0.005, ge=0, description="By how much the challenger must beat the champion.")
    lightgbm: LightGBMSettings = Field(default_factory=LightGBMSettings)


HealthBand = Literal["red", "amber", "green"]
RiskTier = Literal["red", "yellow", "green"]


class ServingSettings(_Section):
    """How scores become risk tiers, opportunities, disagreements and explanations."""

    red_below: float = Field(0.4, ge=0, le=1, description="Renewal likelihood below this is the red risk tier.")
    yellow_below: float = Field(
        0.7, ge=0, le=1, description="Renewal likelihood below this (and not red) is yellow; the rest is green."
    )
    opportunity_above: float = Field(
        0.5, ge=0, le=1, description="Upsell likelihood above this marks an expansion opportunity."
    )
    playbooks_file: Path | None = Field(
        None, description="Playbooks file (TOML) mapping drivers and feedback buckets to actions and owners; "
        "unset = the one shipped with the code (serving/playbooks.toml), a template for your own."
    )
    disagreement: tuple[tuple[HealthBand, RiskTier], ...] = Field(
        (("green", "red"), ("red", "green")),
        description="(health band, risk tier) pairs flagged as a disagreement between the health "
        "score and the model: green health with red risk, and red health with a green tier.",
    )
    max_batch: int = Field(1000, gt=0, description="Most accounts one POST /score request may hold.")
    top_drivers: int = Field(5, gt=0, le=50, description="Drivers (largest SHAP contributions) returned per target.")
    crm_reasons: int = Field(3, gt=0, le=50, description="Reasons written per account to the CRM table.")
    explain_threads: int = Field(2, gt=0, description="Threads computing SHAP contributions in batch scoring.")
    explain_chunk_rows: int = Field(
        4096, gt=0, description="Rows per SHAP work unit: bounds memory (rows x features floats per unit)."
    )
    host: str = Field("127.0.0.1", description="Address `radar serve` listens on (0.0.0.0 to accept other machines).")
    port: int = Field(3000, gt=0, lt=65536, description="Port `radar serve` listens on.")
    workers: int = Field(
        2, gt=0, description="Service worker processes, each with the models and the workspace in memory; one per "
        "core (on 2 cores, 2 workers served 1.4x the requests/s of 1 at 32 connections)."
    )
    request_threads: int = Field(
        1, gt=0, description="Threads per request for prediction and SHAP: 1 keeps single-account latency low; "
        "concurrent requests use the other cores."
    )
    request_timeout_s: int = Field(60, gt=0, description="Seconds a request may take before the service gives up.")
    api_token: SecretStr | None = Field(
        None, description="Bearer token required by scoring and listing requests when set; set it with the "
        "RADAR_SERVING__API_TOKEN environment variable rather than in a file."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ServingSettings:
        if self.red_below > self.yellow_below:
            raise ValueError(
                f"red_below ({self.red_below}) must not exceed yellow_below ({self.yellow_below})"
            )
        return self


AlertRule = Literal["indicator", "renewal_drop", "escalation", "risk_tier", "expansion"]
Routing = Literal["meeting", "review", "tag"]


class InsightWeights(_Section):
    """Relative weights of the insight score's parts (DOMAIN 5); they need not sum to 1."""

    severity: float = Field(1.0, ge=0, description="How bad (or, for an opportunity, how likely) the signal is, 0-1.")
    frequency: float = Field(1.0, ge=0, description="How persistent: the share of recent snapshots (or the "
                             "conversations) showing it, 0-1.")
    impact: float = Field(1.0, ge=0, description="How much money: the account's MRR percentile in the portfolio, 0-1.")

    @model_validator(mode="after")
    def _positive(self) -> InsightWeights:
        if self.severity + self.frequency + self.impact <= 0:
            raise ValueError("insight weights need a positive sum")
        return self


class AlertSettings(_Section):
    """Alerts (DOMAIN 5): the rules, the insight score that routes them, and the optional webhook."""

    rules: tuple[AlertRule, ...] = Field(
        ("indicator", "renewal_drop", "escalation", "risk_tier", "expansion"),
        description="Rules evaluated by `radar alerts`: indicator below its expected level, week-over-week "
        "renewal drop, red feedback escalation, red/yellow risk tier, expansion opportunity.",
    )
    indicator_levels: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "adoption_rate_28d": (0.2, 0.0),
            "engagement_score_28d": (0.1, 0.0),
            "feature_breadth_28d": (0.1, 0.0),
            "logins_trend_28d": (-0.5, -1.0),
            "days_since_last_activity": (14.0, 60.0),
            "days_without_value": (60.0, 180.0),
            "nps_latest": (5.0, 0.0),
            "ticket_csat_90d": (3.0, 1.0),
            "first_response_hours_28d": (24.0, 72.0),
            "interaction_sentiment_90d": (-0.25, -1.0),
        },
        description="Feature -> [expected, worst]: alert when the indicator is worse than expected; at worst "
        "(or beyond) the severity is 1. Worse means lower when worst < expected, higher when worst > expected. "
        "Names are snapshot features (`radar features`).",
    )
    history_snapshots: int = Field(
        3, ge=2, description="Snapshots (the current one and those before it) over which an alert's frequency "
        "is measured: the share of them in which its condition held.",
    )
    drop_threshold: float = Field(
        0.10, gt=0, le=1, description="Alert when renewal likelihood fell by more than this (absolute) since "
        "the previous snapshot.",
    )
    drop_severe: float = Field(0.30, gt=0, le=1, description="A renewal drop this large has severity 1.")
    drop_min_days: int = Field(
        7, ge=1, description="The previous snapshot compared is at least this many days older (a week)...",
    )
    drop_lookback_days: int = Field(
        35, ge=1, description="...and at most this many: monthly snapshots compare with the month before.",
    )
    escalation_days: int = Field(30, ge=1, description="Window (days before as_of) of the escalation rule.")
    escalation_conversations: int = Field(
        2, ge=2, description="Escalate when a bucket has red cues in at least this many distinct conversations "
        "within the window.",
    )
    escalation_full_conversations: int = Field(
        4, ge=1, description="Distinct red conversations at which an escalation's frequency reaches 1.",
    )
    quote_days: int = Field(
        90, ge=1, description="How far back quotes are taken as evidence for the model-based alerts.",
    )
    evidence_items: int = Field(3, ge=1, le=20, description="Drivers and quotes kept as evidence per alert.")
    weights: InsightWeights = Field(default_factory=InsightWeights)
    meeting_above: float = Field(
        0.6, ge=0, le=1, description="Insight score above this: schedule a meeting with the product owner and support."
    )
    review_from: float = Field(
        0.3, ge=0, le=1, description="Insight score from this up to meeting_above (both included): review queue; "
        "below: tag for later.",
    )
    webhook_url: SecretStr | None = Field(
        None, description="POST each new alert as JSON to this http(s) URL (or pass --webhook); set it with "
        "RADAR_ALERTS__WEBHOOK_URL when it holds a token.",
    )
    webhook_routing: tuple[Routing, ...] = Field(
        ("meeting", "review", "tag"), description="Routings of the alerts sent to the webhook.",
    )
    webhook_attempts: int = Field(4, ge=1, le=10, description="Tries per alert before the webhook is given up.")
    webhook_backoff_seconds: float = Field(
        0.5, ge=0, description="Wait before the second try; it doubles for each further try.",
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook request.")

    @field_validator("indicator_levels")
    @classmethod
    def _levels(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (expected, worst) in v.items():
            if expected == worst:
                raise ValueError(f"indicator_levels.{name}: expected and worst must differ (got {expected} twice)")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> AlertSettings:
        if self.drop_min_days > self.drop_lookback_days:
            raise ValueError(f"drop_min_days ({self.drop_min_days}) must not exceed drop_lookback_days "
                             f"({self.drop_lookback_days})")
        if self.review_from > self.meeting_above:
            raise ValueError(f"review_from ({self.review_from}) must not exceed meeting_above ({self.meeting_above})")
        url = self.webhook_url.get_secret_value() if self.webhook_url else None
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        return self


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class DigestSettings(_Section):
    """The weekly digest per CSM owner (`radar digest`, DOMAIN 5)."""

    week_ends: Weekday = Field(
        "sunday", description="Last day of a digest week: `--week DATE` picks the latest snapshot on or before "
        "DATE, and the digest is for the week ending on the first such day on or after that snapshot.",
    )
    routings: tuple[Routing, ...] = Field(
        ("meeting", "review"), description="An account is in the digest when one of its open alerts has one of "
        "these routings (alerts tagged for later stay in `radar alerts`).",
    )
    max_accounts: int = Field(15, ge=1, description="Flagged at-risk accounts shown per owner, highest insight "
                              "score first; the rest are counted.")
    max_opportunities: int = Field(5, ge=0, description="Expansion opportunities shown per owner.")
    drivers: int = Field(2, ge=0, le=10, description="Model drivers (largest SHAP contributions) shown per account.")
    quotes: int = Field(1, ge=0, le=10, description="Feedback quotes (red for a risk, green for an opportunity) "
                        "shown per account after its drivers.")
    trend_snapshots: int = Field(6, ge=2, description="Snapshots in each account's renewal likelihood trend.")
    improved_threshold: float = Field(
        0.10, gt=0, le=1, description="An account improved when its renewal likelihood rose by more than this "
        "(absolute) since the snapshot the renewal drop compares with (alerts.drop_min_days..drop_lookback_days).",
    )
    max_improved: int = Field(10, ge=0, description="Improved accounts shown per owner, largest rise first.")


class LeadershipSettings(_Section):
    """The leadership view (`radar drivers`): portfolio drivers, low-signal indicators, advocates."""

    top_families: int = Field(5, ge=1, description="Drivers (indicator families) reported per target.")
    quarters: int = Field(4, ge=1, le=20, description="Quarters over which the drivers' movement is shown "
                          "(the latest snapshot of each quarter, the current quarter's being as_of).")
    low_signal_share: float = Field(
        0.01, ge=0, lt=1, description="An indicator family whose share of the total mean |SHAP| is below this "
        "for both renewal and upsell carries little signal: a candidate to stop tracking.",
    )
    promoter_min_nps: int = Field(9, ge=0, le=10, description="Latest NPS answer from which an account is a "
                                  "promoter (9-10).")
    advocate_min_renewal: float = Field(
        0.9, ge=0, le=1, description="Renewal likelihood from which a promoter with a green health band is a "
        "referral and reference candidate.",
    )
    advocate_quotes: int = Field(2, ge=0, le=10, description="Latest positive (green) quotes shown per advocate.")
    advocate_quote_days: int = Field(365, ge=1, description="How far back advocates' quotes are taken.")
    max_advocates: int = Field(25, ge=1, description="Advocates listed, largest MRR first.")


class UiSettings(_Section):
    """The web pages served at /ui by `radar serve` (portfolio and account scorecard)."""

    page_size: int = Field(50, ge=5, le=1000, description="Accounts (or alerts) per page of the portfolio.")
    quotes_per_bucket: int = Field(
        5, ge=0, le=50, description="Latest feedback quotes shown per signal bucket on an account page.",
    )
    login_hours: int = Field(
        12, ge=1, description="With serving.api_token set, how long a /ui/login sign-in lasts (a cookie).",
    )


class SparkSettings(_Section):
    """Apache Spark, when `features.engine = "spark"` (`radar build-features --engine spark`)."""

    master: str = Field(
        "local[2]",
        description="Spark master URL: local[N] runs Spark inside this process on N cores; spark://HOST:7077, "
        "yarn or k8s://... use a cluster (whose nodes must read staging_dir and import this package).",
    )
    driver_memory: str = Field("2g", description="Memory of the Spark driver JVM (in local mode: of all of Spark).")
    shuffle_partitions: int = Field(
        8, gt=0, description="spark.sql.shuffle.partitions: partitions after each join and group-by; "
        "about 2-4 per core of the cluster.",
    )
    staging_dir: Path | None = Field(
        None,
        description="Where the contract tables are exported as Parquet for Spark and Spark writes the snapshots "
        "and evidence before they are loaded into the workspace database (default: <output_dir>/spark); "
        "on a cluster, a folder every node reads. Each build works in a subfolder of its own and removes it.",
    )
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="Further Spark settings, e.g. {'spark.executor.memory' = '8g'}; they win over the above.",
    )


class Settings(BaseSettings):
    """All of Account Radar's settings."""

    model_config = SettingsConfigDict(
        env_prefix="RADAR_",
        env_nested_delimiter="__",
        toml_file=DEFAULT_CONFIG_FILE,
        frozen=True,
        extra="forbid",
    )

    output_dir: Path = Field(
        Path("out"),
        description="Where the workspace database, rejects and reports are written.",
    )
    database_name: str = Field("radar.duckdb", description="Workspace database file name.")
    workspace_url: str | None = Field(
        None,
        description="Read the contract tables from this database instead of the local workspace database: an "
        "Ibis or SQLAlchemy connection URL, e.g. postgres://user@host:5432/db/schema; outputs stay local. "
        "Keep passwords out of it (PGPASSWORD, ~/.pgpass, or RADAR_WORKSPACE_URL in the environment).",
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    domain: DomainSettings = Field(default_factory=DomainSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    leadership: LeadershipSettings = Field(default_factory=LeadershipSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("database_name")
    @classmethod
    def _plain_file_name(cls, v: str) -> str:
        if "/" in v or not v:
            raise ValueError("database_name is a file name inside output_dir, not a path")
        return v

    @property
    def database_path(self) -> Path:
        return self.output_dir / self.database_name

    @property
    def rejects_dir(self) -> Path:
        return self.output_dir / "rejects"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


CONFIG_FILE_ENV = "RADAR_CONFIG_FILE"


class ConfigError(ValueError):
    """A configuration file or override that cannot be used, with what to fix."""


def load_settings(config_file: Path | None = None, **overrides) -> Settings:
    """Load settings from ``config_file`` (default ``./radar.toml`` if present) and env.

    An explicitly named file that does not exist is an error; the default file is optional.
    Without ``config_file``, the file named by RADAR_CONFIG_FILE is used if set (how
    `radar --config FILE` reaches the processes it starts, such as the service).
    """
    if config_file is None and os.environ.get(CONFIG_FILE_ENV):
        config_file = Path(os.environ[CONFIG_FILE_ENV])
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file not found: {config_file}")
    target = Path(config_file) if config_file is not None else DEFAULT_CONFIG_FILE
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": target}})
    try:
        return bound(**overrides)
    except Exception as exc:  # pydantic ValidationError or TOML decode error
        raise ConfigError(f"invalid configuration ({target}): {exc}") from exc


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings_toml(settings: BaseModel, section: str = "") -> str:
    """The settings as a commented radar.toml: every key, its value and what it means."""
    lines: list[str] = []
    nested: list[tuple[str, BaseModel]] = []
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            nested.append((f"{section}.{name}" if section else name, value))
            continue
        if info.description:
            lines.append(f"# {info.description}")
        lines.append(f"# {name} = (not set)" if value is None else f"{name} = {_toml_value(value)}")
    out = ([f"[{section}]"] if section else []) + lines
    for sub, model in nested:
        out += ["", settings_toml(model, sub)]
    return "\n".join(out)
