"""Settings of the data stages: ingest, the domain rules (labels), feature building,
the health score and the Spark engine."""

from __future__ import annotations

import codecs
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from radar.settings.base import Section as _Section


class IngestSettings(_Section):
    """How `radar ingest` reads a workspace folder."""

    column_mapping: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table, your column name -> contract column name, e.g. {usage_events = {ts = 'occurred_at'}}.",
    )
    batch_rows: int = Field(500_000, gt=0, description="Rows read per batch; bounds ingest memory.")
    memory_limit: str = Field("1GB", description="DuckDB memory limit during ingest (it spills to disk beyond).")
    threads: int = Field(2, gt=0, description="DuckDB worker threads.")
    max_shrink_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Refuse an ingest in which a table has lost more than this share of its rows against the "
        "previous ingest (a truncated export?); `radar ingest --accept-shrink` accepts it.",
    )
    max_unknown_account_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Refuse an ingest in which more than this share of the rows naming an account_id are "
        "rejected as unknown accounts (a truncated accounts export?); `--accept-shrink` accepts it.",
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of the CSV files (an ASCII-compatible one: utf-8, latin-1, cp1252, ...); "
        "a UTF-8 byte order mark is ignored. A value that is not valid in it rejects its row.",
    )
    plausible_max: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per table, column -> the largest plausible value, overriding the contract's bounds "
        "(subscriptions: mrr 1e7, seats 1e6), e.g. {subscriptions = {mrr = 5e7}}; rows above are rejected.",
    )
    billing_period_words: dict[str, int] = Field(
        default_factory=dict,
        description="More words for subscriptions.billing_period -> months, e.g. {semestral = 6, 'bi-monthly' = 2}, "
        "beyond the built-in ones (month, quarter, half-year, semiannual, year, two years, '3 months', ...).",
    )
    max_rejected_subscription_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Refuse an ingest in which more than this share of the subscription rows is rejected (not "
        "counting unknown accounts and exact duplicates): a rejected line would otherwise read as a churn. "
        "`radar ingest --accept-rejects` loads it anyway, with the labels of those accounts unknown.",
    )
    lock_wait_seconds: float = Field(
        30,
        ge=0,
        description="How long a command that writes the workspace (ingest, build-features) waits for another "
        "one to finish before it gives up with a message naming it.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


class DomainSettings(_Section):
    """The semantics of DOMAIN sections 1 and 2."""

    grace_days: int = Field(30, ge=0, description="Gap between subscription lines still counted as one relationship.")
    horizon_days: int = Field(90, gt=0, description="How far labels look forward from as_of.")
    expansion_min_pct: float = Field(0.10, ge=0, description="MRR growth over the horizon that counts as expansion.")
    renewal_window_mode: bool = Field(
        False,
        description="Train only on snapshots with a renewal (end_date) inside the horizon.",
    )
    max_lead_days: int = Field(
        400,
        gt=0,
        description="Longest label window of `churned_by_renewal` (renewal likelihood at the next renewal): it "
        "looks to the next renewal plus the grace period, at least horizon_days and at most this many days ahead. "
        "Its training rows need this much more history before the test period; lower it for short histories.",
    )

    @model_validator(mode="after")
    def _lead_covers_horizon(self) -> DomainSettings:
        if self.max_lead_days < self.horizon_days:
            raise ValueError(
                f"max_lead_days ({self.max_lead_days}) must be at least horizon_days ({self.horizon_days}): "
                "the label by the next renewal never looks less far ahead than the horizon"
            )
        return self


class FeatureSettings(_Section):
    """Snapshot calendar, windows and which event names mean what (DOMAIN 3)."""

    windows: tuple[int, ...] = Field(
        (28, 90), description="Trailing windows in days; trends compare each with the window before."
    )
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
            "feature_dashboards",
            "feature_alerts",
            "feature_api",
            "feature_exports",
            "feature_automation",
            "feature_forecasting",
            "feature_collaboration",
        ),
        description="One event per product feature: breadth = features used / features available.",
    )
    activity_lookback_days: int = Field(180, gt=0, description="Cap on 'days since last activity'.")
    event_type_cap: int = Field(
        30,
        ge=0,
        description="Per-event-type features (counts, per active user, trend, users, quantity per window) for this "
        "many of the most frequent event types (by count, then name); 0: none.",
    )
    event_types: tuple[str, ...] = Field(
        (),
        description="Pin the per-event-type features to exactly these event types (e.g. those a served model was "
        "trained on) instead of the event_type_cap most frequent; empty: the types the last build recorded "
        "(out/event_features.json), chosen as the most frequent on a first build or with "
        "`radar build-features --refresh-event-types`.",
    )
    event_families: dict[str, int] = Field(
        default_factory=dict,
        description="Event type -> indicator family (1-15) of its per-event features; default: the family of its "
        "role (login 5, value 14, setup 3, onboarding 7, feature 15), else usage depth (4).",
    )
    event_directions: dict[str, Literal["higher", "lower", "neutral"]] = Field(
        default_factory=dict,
        description="Event type -> healthy direction of its per-event features (e.g. {error_shown = 'lower'}); "
        "default: higher is healthier.",
    )
    data_end: date | None = Field(
        None,
        description="The last day the data covers (labels are known only up to it; the default calendar ends "
        "there). Default: the earlier of the last dates of subscriptions (latest start or passed end) and usage_events, "
        "so a table exported earlier than the other never looks like churn (sparse tables: tickets, feedback, "
        "touchpoints are reported, not used).",
    )
    partial_drop_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="An as-of date whose active accounts fall by more than this share against the previous "
        "(non-partial) as-of date is reported as partial; radar score, drivers, alerts and the digest skip it by "
        "default (--as-of or --include-partial use it).",
    )
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="What runs the feature expressions: duckdb (one machine) or spark (Apache Spark through "
        "Ibis' PySpark backend; needs the `spark` extra and Java 17, see [spark]).",
    )
    memory_limit: str = Field(
        "2GB", description="DuckDB memory limit while building snapshots (it spills to disk beyond)."
    )
    text_batch_rows: int = Field(20_000, gt=0, description="Texts analysed per batch (bounds memory).")
    taxonomy_dir: Path | None = Field(
        None, description="Folder of extra taxonomy files (<lang>.toml) that extend the shipped ones."
    )

    @field_validator("event_families")
    @classmethod
    def _families(cls, v: dict[str, int]) -> dict[str, int]:
        bad = {k: f for k, f in v.items() if not 1 <= f <= 15}
        if bad:
            raise ValueError(f"event_families: indicator families are 1-15, got {bad}")
        return v

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


class SparkSettings(_Section):
    """Apache Spark, when `features.engine = "spark"` (`radar build-features --engine spark`)."""

    master: str = Field(
        "local[2]",
        description="Spark master URL: local[N] runs Spark inside this process on N cores; spark://HOST:7077, "
        "yarn or k8s://... use a cluster (whose nodes must read staging_dir and import this package).",
    )
    driver_memory: str = Field("2g", description="Memory of the Spark driver JVM (in local mode: of all of Spark).")
    shuffle_partitions: int = Field(
        8,
        gt=0,
        description="spark.sql.shuffle.partitions: partitions after each join and group-by; "
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
