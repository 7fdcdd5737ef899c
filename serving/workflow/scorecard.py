"""The account scorecard: the 15 indicators of DOMAIN 3 as red/amber/green, with trends.

Each indicator shows its measures: the features of its family that have an expected
level in `[alerts] indicator_levels` (the levels the alerts use), or else one headline
feature. A measure with a configured (expected, worst) level is green when it is not
worse than expected, amber when it is worse but less than halfway to worst, red from
halfway on. A measure without one is compared with the active portfolio: amber in the
worst quarter of accounts, red in the worst tenth (by its healthy direction); a measure
with no healthy direction gets no colour. The trend compares the previous snapshot, as
shown (an unchanged displayed value is "flat"). The indicator takes its worst measure's
status. Pure functions of snapshot rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from features.registry import INDICATORS, FeatureRegistry, FeatureSpec

# the feature that stands for an indicator when no level is configured for its family
HEADLINE: dict[int, str] = {
    1: "adoption_rate_28d",
    2: "time_to_value_days",
    3: "activation_rate",
    4: "events_per_user_28d",
    5: "engagement_score_28d",
    6: "interaction_sentiment_90d",
    7: "onboarding_completion",
    8: "past_renewals",
    9: "mrr_change_pct_90d",
    10: "new_products_90d",
    11: "nps_latest",
    12: "ticket_csat_90d",
    13: "logins_trend_28d",
    14: "value_events_per_seat_28d",
    15: "feature_breadth_28d",
}
RANK = {"red": 3, "amber": 2, "green": 1, None: 0}
STATUS_TEXT = {"red": "Red: below expected", "amber": "Amber: watch", "green": "Green: as expected", None: "No level"}


@dataclass(frozen=True)
class Measure:
    feature: str
    label: str
    value: str
    expected: str  # what it is compared with, in words
    status: str | None  # red / amber / green, None: no data or no level
    trend: str | None  # up / down / flat, None: no previous value
    better: bool | None  # whether the trend is an improvement (None: flat or no direction)
    previous: str | None


@dataclass(frozen=True)
class Indicator:
    number: int
    name: str
    owner: str
    status: str | None
    measures: tuple[Measure, ...]

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]


def _number(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def measures_of(registry: FeatureRegistry, levels: dict[str, tuple[float, float]]) -> dict[int, list[str]]:
    """Per indicator 1-15, the features shown for it."""
    out: dict[int, list[str]] = {}
    for number in INDICATORS:
        configured = [f for f in levels if f in registry and registry[f].family == number]
        if configured:
            out[number] = configured
            continue
        headline = HEADLINE.get(number)
        if headline not in registry:  # e.g. other windows configured: the family's first directed feature
            headline = next(
                (s.name for s in registry if s.family == number and not s.categorical and s.healthy != "neutral"), None
            )
        out[number] = [headline] if headline else []
    return out


def portfolio_levels(latest: pd.DataFrame, features: list[str], registry: FeatureRegistry) -> dict[str, tuple]:
    """(amber, red) cut-offs per feature: the worst quarter and tenth of the portfolio."""
    out = {}
    for f in features:
        if f not in latest.columns or f not in registry or registry[f].healthy == "neutral":
            continue
        values = pd.to_numeric(latest[f], errors="coerce").dropna()
        if values.empty:
            continue
        if registry[f].healthy == "higher":
            out[f] = (float(values.quantile(0.25)), float(values.quantile(0.10)), float(values.median()))
        else:
            out[f] = (float(values.quantile(0.75)), float(values.quantile(0.90)), float(values.median()))
    return out


def _status(spec: FeatureSpec, value: float, level: tuple | None, reference: tuple | None) -> tuple[str | None, str]:
    if level is not None:
        expected, worst = level
        lower_is_worse = worst < expected
        bound = "at least" if lower_is_worse else "at most"
        text = f"expected {bound} {spec.format_value(expected)}"
        worse = value < expected if lower_is_worse else value > expected
        if not worse:
            return "green", text
        severity = (expected - value) / (expected - worst)
        return ("red" if severity >= 0.5 else "amber"), text
    if reference is not None:
        amber, red, median = reference
        text = f"portfolio median {spec.format_value(median)}"
        higher = spec.healthy == "higher"
        if (value < red) if higher else (value > red):  # strictly: ties at a cut-off (many zeros) stay green
            return "red", text
        if (value < amber) if higher else (value > amber):
            return "amber", text
        return "green", text
    return None, "no expected level"


def _trend(spec: FeatureSpec, value: float, previous: float | None, level: tuple | None):
    if previous is None:
        return None, None
    if spec.format_value(value) == spec.format_value(previous):
        return "flat", None
    up = value > previous
    if level is not None:
        healthy_up = level[1] < level[0]
    elif spec.healthy != "neutral":
        healthy_up = spec.healthy == "higher"
    else:
        return ("up" if up else "down"), None
    return ("up" if up else "down"), up == healthy_up


def scorecard(
    current: pd.Series,
    previous: pd.Series | None,
    registry: FeatureRegistry,
    levels: dict[str, tuple[float, float]],
    reference: dict[str, tuple],
) -> list[Indicator]:
    """The 15 indicators for one account's snapshot row (`previous`: the snapshot before)."""
    out = []
    for number, features in measures_of(registry, levels).items():
        measures = []
        for f in features:
            spec = registry[f]
            value = _number(current.get(f))
            before = _number(previous.get(f)) if previous is not None else None
            level = tuple(levels[f]) if f in levels else None
            if value is None:
                status, expected = None, "no data"
                trend, better = None, None
            else:
                status, expected = _status(spec, value, level, reference.get(f))
                trend, better = _trend(spec, value, before, level)
            label = f"{spec.label}, last {spec.window} days" if spec.window else spec.label
            measures.append(
                Measure(
                    f,
                    label,
                    spec.format_value(value),
                    expected,
                    status,
                    trend,
                    better,
                    None if before is None else spec.format_value(before),
                )
            )
        status = max((m.status for m in measures), key=RANK.__getitem__, default=None)
        name, owner = INDICATORS[number]
        out.append(Indicator(number, name, owner, status, tuple(measures)))
    return out
