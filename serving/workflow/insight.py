"""The insight score of a signal and where it goes (DOMAIN 5).

insight = weighted mean of severity, frequency and impact, each clipped to [0, 1]
(weights in `[alerts.weights]`), rounded to 6 decimals so that a score meant to be 0.6
is 0.6. Routing: above `meeting_above` (0.6) a meeting with the product owner and
support; from `review_from` (0.3) up to 0.6, both included, the review queue; below
0.3 a tag for later.
"""

from __future__ import annotations

from radar.settings import AlertSettings, InsightWeights, Routing

ROUTES: dict[str, str] = {
    "meeting": "schedule a meeting with the product owner and support",
    "review": "review queue",
    "tag": "tag for later",
}


def _unit(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def insight_score(severity: float, frequency: float, impact: float, weights: InsightWeights) -> float:
    total = weights.severity + weights.frequency + weights.impact
    mean = (
        weights.severity * _unit(severity) + weights.frequency * _unit(frequency) + weights.impact * _unit(impact)
    ) / total
    return round(mean, 6)


def route(score: float, cfg: AlertSettings) -> Routing:
    if score > cfg.meeting_above:
        return "meeting"
    if score >= cfg.review_from:
        return "review"
    return "tag"
