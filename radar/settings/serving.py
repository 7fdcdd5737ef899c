"""Settings of serving and the CS workflow: tiers and explanations, the HTTP service,
alerts, the digest, the leadership view and the web pages."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from radar.settings.base import Section as _Section

HealthBand = Literal["red", "amber", "green"]
RiskTier = Literal["red", "yellow", "green"]


class ServingSettings(_Section):
    """How scores become risk tiers, opportunities, disagreements and explanations."""

    red_lift: float = Field(
        3.0,
        gt=0,
        description="Red risk tier: 90-day churn risk at least this many times the base rate recorded with the "
        "model (the typical churn risk); chosen with `radar backtest`.",
    )
    yellow_lift: float = Field(
        1.5, gt=0, description="Yellow risk tier: 90-day churn risk at least this many times the base rate (not red)."
    )
    risk_floor: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Absolute floor: an account is red or yellow only with at least this 90-day churn risk, "
        "so a tiny base rate cannot flag the whole book.",
    )
    opportunity_lift: float = Field(
        2.0,
        gt=0,
        description="Expansion opportunity: upsell likelihood at least this many times the expansion base rate.",
    )
    opportunity_floor: float = Field(
        0.10, ge=0, le=1, description="Absolute floor: an opportunity needs at least this upsell likelihood."
    )
    playbooks_file: Path | None = Field(
        None,
        description="Playbooks file (TOML) mapping drivers and feedback buckets to actions and owners; "
        "unset = the one shipped with the code (serving/scoring/playbooks.toml), a template for your own.",
    )
    disagreement: tuple[tuple[HealthBand, RiskTier], ...] = Field(
        (("green", "red"), ("red", "green")),
        description="(health band, risk tier) pairs flagged as a disagreement between the health "
        "score and the model: green health with red risk, and red health with a green tier.",
    )
    max_batch: int = Field(1000, gt=0, description="Most accounts one POST /score request may hold.")
    top_drivers: int = Field(5, gt=0, le=50, description="Drivers (largest SHAP contributions) returned per target.")
    crm_reasons: int = Field(3, gt=0, le=50, description="Reasons written per account to the CRM table.")
    crm_change_points: int = Field(
        5,
        gt=0,
        le=100,
        description="How far (0-100 points) a likelihood integer in crm_accounts must move from its value at the "
        "account's last change to count as changed (smaller moves update the row quietly).",
    )
    explain_threads: int = Field(2, gt=0, description="Threads computing SHAP contributions in batch scoring.")
    explain_chunk_rows: int = Field(
        4096, gt=0, description="Rows per SHAP work unit: bounds memory (rows x features floats per unit)."
    )
    host: str = Field("127.0.0.1", description="Address `radar serve` listens on (0.0.0.0 to accept other machines).")
    port: int = Field(3000, gt=0, lt=65536, description="Port `radar serve` listens on.")
    workers: int = Field(
        2,
        gt=0,
        description="Service worker processes, each with the models and the workspace in memory; one per "
        "core (on 2 cores, 2 workers served 1.4x the requests/s of 1 at 32 connections).",
    )
    request_threads: int = Field(
        1,
        gt=0,
        description="Threads per request for prediction and SHAP: 1 keeps single-account latency low; "
        "concurrent requests use the other cores.",
    )
    request_timeout_s: int = Field(60, gt=0, description="Seconds a request may take before the service gives up.")
    champion_poll_seconds: float = Field(
        60.0,
        ge=0,
        description="How often the running service looks for a new champion in the registry and, when one was "
        "promoted (or rolled back), loads it and switches to it without a restart; 0 = never (restart to switch).",
    )
    max_worker_start_failures: int = Field(
        3,
        ge=1,
        description="`radar serve` stops with exit 1 after this many worker processes failed to start (e.g. the "
        "champion's files vanished after the start-up check) instead of restarting them forever.",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required by scoring and listing requests when set; set it with the "
        "RADAR_SERVING__API_TOKEN environment variable rather than in a file.",
    )

    access_file: Path | None = Field(
        None,
        description="The users, API keys and web sign-in sessions (an SQLite file, written by `radar users`, "
        "`radar keys` and the service's sign-ins); unset = access.sqlite in output_dir.",
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted (bytes, default 10 MB); a larger one answers 413 as soon as "
        "that many bytes arrived, whatever Content-Length said.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a client may take to send a request's headers (from connecting, or from the end of "
        "its previous request) before the connection is closed.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a client may take to send a request's whole body before it answers 408.",
    )
    echo_chars: int = Field(
        100,
        ge=8,
        le=10_000,
        description="Longest client-given id echoed back in a response (e.g. `not_found`); longer ones are cut "
        "with a marker.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ServingSettings:
        if self.red_lift < self.yellow_lift:
            raise ValueError(f"red_lift ({self.red_lift}) must not be below yellow_lift ({self.yellow_lift})")
        return self


AlertRule = Literal["indicator", "risk_rise", "escalation", "risk_tier", "expansion"]
Routing = Literal["meeting", "review", "tag"]


class InsightWeights(_Section):
    """Relative weights of the insight score's parts (DOMAIN 5); they need not sum to 1."""

    severity: float = Field(1.0, ge=0, description="How bad (or, for an opportunity, how likely) the signal is, 0-1.")
    frequency: float = Field(
        1.0, ge=0, description="How persistent: the share of recent snapshots (or the conversations) showing it, 0-1."
    )
    impact: float = Field(
        1.0,
        ge=0,
        description="How much money: the percentile of the account's expected MRR lost (MRR x churn risk) in the "
        "portfolio, 0-1 (for an opportunity: of its expansion potential).",
    )

    @model_validator(mode="after")
    def _positive(self) -> InsightWeights:
        if self.severity + self.frequency + self.impact <= 0:
            raise ValueError("insight weights need a positive sum")
        return self


class AlertSettings(_Section):
    """Alerts (DOMAIN 5): the rules, the insight score that routes them, and the optional webhook."""

    rules: tuple[AlertRule, ...] = Field(
        ("indicator", "risk_rise", "escalation", "risk_tier", "expansion"),
        description="Rules evaluated by `radar alerts`: indicator below its expected level, a rise in churn risk "
        "since the previous snapshot, red feedback escalation, red/yellow risk tier, expansion opportunity. "
        "An account's signals are grouped into one alert.",
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
        3,
        ge=2,
        description="Snapshots (the current one and those before it) over which an alert's frequency "
        "is measured: the share of them in which its condition held.",
    )
    rise_threshold: float = Field(
        1.0,
        gt=0,
        description="Alert when the churn risk rose by more than this many base rates (lift points, e.g. from "
        "1.2x to 2.4x typical) since the previous snapshot.",
    )
    rise_severe: float = Field(3.0, gt=0, description="A rise this large (in lift points) has severity 1.")
    rise_min_days: int = Field(
        7,
        ge=1,
        description="The previous snapshot compared is at least this many days older (a week)...",
    )
    rise_lookback_days: int = Field(
        35,
        ge=1,
        description="...and at most this many: monthly snapshots compare with the month before.",
    )
    escalation_days: int = Field(30, ge=1, description="Window (days before as_of) of the escalation rule.")
    escalation_conversations: int = Field(
        2,
        ge=2,
        description="Escalate when a bucket has red cues in at least this many distinct conversations "
        "within the window.",
    )
    escalation_full_conversations: int = Field(
        4,
        ge=1,
        description="Distinct red conversations at which an escalation's frequency reaches 1.",
    )
    quote_days: int = Field(
        90,
        ge=1,
        description="How far back quotes are taken as evidence for the model-based alerts.",
    )
    evidence_items: int = Field(3, ge=1, le=20, description="Drivers and quotes kept as evidence per alert.")
    weights: InsightWeights = Field(default_factory=InsightWeights)
    tier_severity: dict[str, float] = Field(
        default_factory=lambda: {"red": 1.0, "yellow": 0.6, "green": 0.0},
        description="The model's risk tier as a severity; an alert's severity is the mean of its strongest "
        "signal's severity and this, so one weak indicator on a low-risk account stays low.",
    )
    meeting_needs_flag: bool = Field(
        True,
        description="Only red or yellow accounts, or an escalation of red cues in several conversations, can "
        "be routed to a meeting: never a green account on one indicator.",
    )
    max_per_owner: int = Field(
        10,
        ge=1,
        description="Most risk alerts (and, apart, most expansion alerts) per CSM owner per run (a week), in "
        "call-list order; the rest wait in the review queue, marked capped and counted, so no CSM gets 100 "
        "alerts at once.",
    )
    meeting_above: float = Field(
        0.6, ge=0, le=1, description="Insight score above this: schedule a meeting with the product owner and support."
    )
    review_from: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Insight score from this up to meeting_above (both included): review queue; below: tag for later.",
    )
    webhook_url: SecretStr | None = Field(
        None,
        description="POST the new alerts as JSON, in batches, to this http(s) URL (or pass --webhook); set it with "
        "RADAR_ALERTS__WEBHOOK_URL when it holds a token.",
    )
    webhook_routing: tuple[Routing, ...] = Field(
        ("meeting", "review", "tag"),
        description="Routings of the alerts sent to the webhook.",
    )
    webhook_attempts: int = Field(4, ge=1, le=10, description="Tries per request before the webhook is given up.")
    webhook_backoff_seconds: float = Field(
        0.5,
        ge=0,
        description="Wait before the second try when the receiver gives no Retry-After; it doubles for each "
        "further try.",
    )
    webhook_batch_size: int = Field(100, ge=1, le=10000, description="Alerts per webhook request.")
    webhook_max_wait_seconds: float = Field(
        60.0,
        ge=0,
        description="Longest wait before one retry: a Retry-After asking for more gives the endpoint up for "
        "this run (the alerts wait for the next run).",
    )
    webhook_max_seconds: float = Field(
        300.0, gt=0, description="Most time spent on one request and its retries, waits included."
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
        if self.rise_min_days > self.rise_lookback_days:
            raise ValueError(
                f"rise_min_days ({self.rise_min_days}) must not exceed rise_lookback_days ({self.rise_lookback_days})"
            )
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
        "sunday",
        description="Last day of a digest week: `--week DATE` picks the latest snapshot on or before "
        "DATE, and the digest is for the week ending on the first such day on or after that snapshot.",
    )
    routings: tuple[Routing, ...] = Field(
        ("meeting", "review"),
        description="An account is in the digest when one of its open alerts has one of "
        "these routings (alerts tagged for later stay in `radar alerts`).",
    )
    max_accounts: int = Field(
        15,
        ge=1,
        description="Flagged at-risk accounts shown per owner, highest insight score first; the rest are counted.",
    )
    max_opportunities: int = Field(5, ge=0, description="Expansion opportunities shown per owner.")
    drivers: int = Field(2, ge=0, le=10, description="Model drivers (largest SHAP contributions) shown per account.")
    quotes: int = Field(
        1,
        ge=0,
        le=10,
        description="Feedback quotes (red for a risk, green for an opportunity) shown per account after its drivers.",
    )
    trend_snapshots: int = Field(6, ge=2, description="Snapshots in each account's churn risk trend.")
    improved_threshold: float = Field(
        1.0,
        gt=0,
        description="An account improved when its churn risk fell by more than this many base rates (lift "
        "points, e.g. from 3.1x to 1.6x typical) since the snapshot the risk rise rule compares with.",
    )
    max_improved: int = Field(10, ge=0, description="Improved accounts shown per owner, largest rise first.")


class LeadershipSettings(_Section):
    """The leadership view (`radar drivers`): portfolio drivers, low-signal indicators, advocates."""

    top_families: int = Field(5, ge=1, description="Drivers (indicator families) reported per target.")
    quarters: int = Field(
        4,
        ge=1,
        le=20,
        description="Quarters over which the drivers' movement is shown "
        "(the latest snapshot of each quarter, the current quarter's being as_of).",
    )
    low_signal_share: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="An indicator family whose share of the total mean |SHAP| is below this "
        "for both renewal and upsell carries little signal: a candidate to stop tracking.",
    )
    promoter_min_nps: int = Field(
        9, ge=0, le=10, description="Latest NPS answer from which an account is a promoter (9-10)."
    )
    advocate_max_lift: float = Field(
        0.5,
        gt=0,
        description="Churn risk (next 90 days) at most this many times the typical risk for a promoter with a "
        "green health band to be a referral and reference candidate.",
    )
    advocate_quotes: int = Field(2, ge=0, le=10, description="Latest positive (green) quotes shown per advocate.")
    advocate_quote_days: int = Field(365, ge=1, description="How far back advocates' quotes are taken.")
    max_advocates: int = Field(25, ge=1, description="Advocates listed, largest MRR first.")


class MonitorSettings(_Section):
    """Model monitoring (`radar monitor`): past scores against known outcomes, input drift, the retrain signal."""

    check_dates: int = Field(
        3,
        ge=1,
        le=60,
        description="The retrain checks on calibration and AUC pool the last this many scored as-of dates whose "
        "outcomes are known.",
    )
    min_positives: int = Field(
        20,
        ge=1,
        description="Churners (or expansions) the pooled dates need before their calibration error and AUC are "
        "judged; fewer and the check says so instead of firing on noise.",
    )
    max_calibration_error: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Recommend retraining when the expected calibration error (10 equal-frequency bins, as in the "
        "training report) of the pooled dates exceeds this.",
    )
    max_auc_drop: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Recommend retraining when the pooled dates' ROC-AUC is more than this below the scoring "
        "model's test ROC-AUC in its training report.",
    )
    psi_retrain: float = Field(
        0.25,
        gt=0,
        description="Recommend retraining when a model input among the `important_features` has a population "
        "stability index at least this high between the training window and the latest snapshots "
        "(0.1: a moderate shift, 0.25: a large one).",
    )
    important_features: int = Field(
        10,
        ge=1,
        description="How many of each champion model's most important inputs (LightGBM gain) the PSI check watches.",
    )
    psi_bins: int = Field(
        10,
        ge=2,
        le=100,
        description="Quantile bins of a numeric input, cut on the training window (missing values: a bin of their own).",
    )
    drift_dates: int = Field(
        1, ge=1, le=60, description="The latest this many snapshot dates are compared with the training window."
    )
    top_movers: int = Field(5, ge=1, le=100, description="Inputs with the largest PSI named in the report.")


class UiSettings(_Section):
    """The web pages served at /ui by `radar serve` (portfolio and account scorecard)."""

    page_size: int = Field(50, ge=5, le=1000, description="Accounts (or alerts) per page of the portfolio.")
    quotes_per_bucket: int = Field(
        5,
        ge=0,
        le=50,
        description="Latest feedback quotes shown per signal bucket on an account page.",
    )
    login_hours: int = Field(
        12,
        ge=1,
        description="How long a /ui/login sign-in lasts (a server-side session; signing out ends it at once).",
    )


def serving_settings(settings=None, serving: ServingSettings | None = None) -> ServingSettings:
    """The serving section: `serving` if given, else `settings.serving`, else the defaults."""
    if serving is not None:
        return serving
    return settings.serving if settings is not None else ServingSettings()
