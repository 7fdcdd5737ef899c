"""Touchpoint features (customer contact, part of engagement and onboarding)."""

from __future__ import annotations

import ibis
from ibis import _

from features.registry import FeatureSpec, feature_names, missing_features
from features.window import day_of, rows_before, trailing
from radar.settings import FeatureSettings

SRC = "touchpoints"
SPECS = [
    FeatureSpec("touchpoints_{w}d", "Meetings, calls and emails with the customer", 5, SRC, "higher", "count"),
    FeatureSpec("days_since_last_touchpoint", "Days since the last contact with the customer", 5, SRC, "lower", "days"),
    FeatureSpec("days_since_last_qbr", "Days since the last business review", 8, SRC, "lower", "days"),
    FeatureSpec("onboarding_sessions", "Onboarding sessions held", 7, SRC, "higher", "count"),
]


def touchpoint_features(
    touchpoints: ibis.Table | None, spine: ibis.Table, calendar: ibis.Table, cfg: FeatureSettings
) -> ibis.Table:
    """Touchpoint features per snapshot; NULL when there is no touchpoints table.

    "Days since" features are capped at the activity lookback when nothing happened.
    """
    names = feature_names(SPECS, cfg.windows)
    key = ["account_id", "as_of"]
    if touchpoints is None:
        return missing_features(spine, names)
    tp = touchpoints.mutate(day=day_of(touchpoints, "occurred_at"))
    cap = cfg.activity_lookback_days
    out = spine.select(*key)
    cols: dict[str, ibis.Value] = {}
    for w in cfg.windows:
        agg = trailing(tp, calendar, w).group_by(key).aggregate(**{f"_n_{w}": _.count()})
        out = out.left_join(agg, key).drop("account_id_right", "as_of_right")
        cols[f"touchpoints_{w}d"] = out[f"_n_{w}"].fill_null(0)
    recent = (
        trailing(tp, calendar, cap)
        .group_by(key)
        .aggregate(_since=_.age_days.min(), _since_qbr=_.age_days.min(where=_.kind == "qbr"))
    )
    onboarding = (
        rows_before(tp.filter(_.kind == "onboarding_session"), calendar).group_by(key).aggregate(_onb=_.count())
    )
    for part in (recent, onboarding):
        out = out.left_join(part, key).drop("account_id_right", "as_of_right")
    cols |= {
        "days_since_last_touchpoint": out._since.fill_null(cap),
        "days_since_last_qbr": out._since_qbr.fill_null(cap),
        "onboarding_sessions": out._onb.fill_null(0),
    }
    return out.select(*key, **{n: cols[n].cast("float64") for n in names})
