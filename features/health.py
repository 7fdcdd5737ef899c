"""The health score of DOMAIN 5: a transparent 0–100 composite, and its band.

Each component maps one or two snapshot features to [0, 1] (1 = healthy); the score is
the weighted mean of the components an account has (missing ones are skipped and the
weights renormalised), times 100. It is the baseline every model must beat.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis

from features.registry import FeatureSpec
from radar.settings import HealthSettings


def _clip01(v: ibis.Value) -> ibis.Value:
    """Clip to [0, 1], keeping NULL (SQL's GREATEST/LEAST would turn NULL into a bound)."""
    v = v.cast("float64")
    return ibis.ifelse(v.isnull(), ibis.null("float64"), ibis.least(ibis.greatest(v, 0.0), 1.0))


COMPONENTS: dict[str, tuple[str, Callable[[ibis.Table, HealthSettings], ibis.Value]]] = {
    "adoption": ("Active users ÷ seats, last 28 days", lambda t, s: _clip01(t.adoption_rate_28d)),
    "engagement": ("Share of active days, last 28 days", lambda t, s: _clip01(t.active_days_share_28d)),
    "usage_trend": (
        "Product events vs the 90 days before (−100% → 0, flat → 0.5, doubled → 1)",
        lambda t, s: _clip01(0.5 + t.events_trend_90d / 2),
    ),
    "nps": (
        "Account NPS over 365 days, from −100 → 0 to +100 → 1",
        lambda t, s: _clip01((t.account_nps_365d + 100) / 200),
    ),
    "support": (
        "1 − tickets in 90 days ÷ the configured scale",
        lambda t, s: _clip01(1 - t.tickets_90d / s.support_ticket_scale),
    ),
    "sentiment": (
        "Sentiment of chats, calls and tickets, last 90 days, from −1 → 0 to +1 → 1",
        lambda t, s: _clip01((t.interaction_sentiment_90d + 1) / 2),
    ),
    "onboarding": ("Share of the onboarding checklist done", lambda t, s: _clip01(t.onboarding_completion)),
}

SPECS = [
    FeatureSpec("health_score", "Health score (0–100)", "health", "snapshots", "higher", "score"),
    FeatureSpec(
        "health_band", "Health band (red/amber/green)", "health", "snapshots", "neutral", "category", categorical=True
    ),
]


def check_weights(settings: HealthSettings) -> None:
    unknown = sorted(set(settings.weights) - set(COMPONENTS))
    if unknown:
        raise ValueError(
            f"[health.weights] has unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}"
        )


def with_health(snapshots: ibis.Table, settings: HealthSettings) -> ibis.Table:
    """Add `health_score` (0–100, NULL when no component is available) and `health_band`."""
    check_weights(settings)
    num, den = ibis.literal(0.0), ibis.literal(0.0)
    for name, weight in settings.weights.items():
        value = COMPONENTS[name][1](snapshots, settings)
        num = num + (value * weight).fill_null(0.0)
        den = den + ibis.ifelse(value.isnull(), 0.0, weight)
    # to one decimal, half up, spelled out: DuckDB's ROUND rounds the scaled double
    # (61.85 -> 61.9) where Spark's rounds its exact decimal value (61.849999... -> 61.8)
    score = (100.0 * num / den.nullif(0.0) * 10.0 + 0.5).floor().cast("float64") / 10.0
    band = ibis.cases(
        (score < settings.red_below, "red"),
        (score < settings.amber_below, "amber"),
        (score.notnull(), "green"),
        else_=ibis.null("string"),
    )
    return snapshots.mutate(health_score=score, health_band=band)
