"""Product-usage features (indicators 1–5, 7, 13–15) from `usage_events`.

Events are first reduced to small daily tables (per account-day-event type, per
account-day-user), and only those are paired with the as-of calendar, so the cost is
linear in events. Windowed features compare the last window with the one before it.
"""

from __future__ import annotations

import math

import ibis
from ibis import _

from features import events as per_event
from features.events import EventType
from features.exact import exact_sum
from features.registry import FeatureSpec, feature_names, missing_features
from features.window import day_of, rows_before, trailing
from radar.settings import FeatureSettings

SRC = "usage_events"
SPECS = [
    FeatureSpec("active_users_{w}d", "Active users", 1, SRC, "higher", "count"),
    FeatureSpec("adoption_rate_{w}d", "Active users ÷ seats", 1, SRC, "higher", "ratio"),
    FeatureSpec("active_users_trend_{w}d", "Change in active users vs the window before", 13, SRC, "higher", "pct"),
    FeatureSpec("events_{w}d", "Product events", 4, SRC, "higher", "count"),
    FeatureSpec("events_per_user_{w}d", "Events per active user", 4, SRC, "higher", "ratio"),
    FeatureSpec("event_types_{w}d", "Distinct event types used", 4, SRC, "higher", "count"),
    FeatureSpec("events_trend_{w}d", "Change in product events vs the window before", 13, SRC, "higher", "pct"),
    FeatureSpec("logins_{w}d", "Logins", 5, SRC, "higher", "count"),
    FeatureSpec("logins_trend_{w}d", "Change in logins vs the window before", 13, SRC, "higher", "pct"),
    FeatureSpec("active_days_share_{w}d", "Share of days with any activity", 5, SRC, "higher", "share"),
    FeatureSpec("engagement_score_{w}d", "Recency-weighted share of active days", 5, SRC, "higher", "share"),
    FeatureSpec("value_events_{w}d", "Value events (reports shared, goals reached)", 14, SRC, "higher", "count"),
    FeatureSpec("value_events_per_seat_{w}d", "Value events per seat", 14, SRC, "higher", "ratio"),
    FeatureSpec("feature_breadth_{w}d", "Features used ÷ features available", 15, SRC, "higher", "share"),
    FeatureSpec("days_since_last_activity", "Days since any product activity", 13, SRC, "lower", "days"),
    FeatureSpec("time_to_value_days", "Days from first subscription to first value event", 2, SRC, "lower", "days"),
    FeatureSpec("days_without_value", "Days subscribed without any value event yet", 2, SRC, "lower", "days"),
    FeatureSpec("activation_rate", "Share of users who completed every setup step", 3, SRC, "higher", "share"),
    FeatureSpec("onboarding_completion", "Share of the onboarding checklist done", 7, SRC, "higher", "share"),
]


def _trend(cur: ibis.Value, prev: ibis.Value) -> ibis.Value:
    """Relative change vs the window before; +1 = doubled, -1 = stopped."""
    return (cur - prev) / ibis.greatest(prev, 1).cast("float64")


def _windowed(
    daily: ibis.Table,
    user_days: ibis.Table,
    account_days: ibis.Table,
    calendar: ibis.Table,
    w: int,
    cfg: FeatureSettings,
) -> list[ibis.Table]:
    """Aggregates over the last `w` days and the `w` days before, per (account_id, as_of)."""
    key = ["account_id", "as_of"]
    logins, values = list(cfg.login_events), list(cfg.value_events)
    ev = trailing(daily, calendar, 2 * w).mutate(cur=_.age_days <= w)
    ev_agg = ev.group_by(key).aggregate(
        **{
            f"_events_{w}": _.n.sum(where=_.cur),
            f"_events_prev_{w}": _.n.sum(where=~_.cur),
            f"_logins_{w}": _.n.sum(where=_.cur & _.event_type.isin(logins)),
            f"_logins_prev_{w}": _.n.sum(where=~_.cur & _.event_type.isin(logins)),
            f"_value_{w}": _.n.sum(where=_.cur & _.event_type.isin(values)),
            f"_types_{w}": _.event_type.nunique(where=_.cur),
            f"_features_{w}": _.event_type.nunique(where=_.cur & _.event_type.isin(list(cfg.feature_events))),
        }
    )
    us = trailing(user_days, calendar, 2 * w).mutate(cur=_.age_days <= w)
    us_agg = us.group_by(key).aggregate(
        **{f"_users_{w}": _.user_id.nunique(where=_.cur), f"_users_prev_{w}": _.user_id.nunique(where=~_.cur)}
    )
    half_life = w / 3
    norm = sum(math.exp(-a / half_life) for a in range(1, w + 1))
    ad_agg = (
        trailing(account_days, calendar, w)
        .group_by(key)
        .aggregate(
            **{
                f"_active_days_{w}": _.count(),
                f"_engagement_{w}": exact_sum((-(_.age_days.cast("float64")) / half_life).exp()) / norm,
            }
        )
    )
    return [ev_agg, us_agg, ad_agg]


def _windowed_features(t: ibis.Table, w: int, n_features: int) -> dict[str, ibis.Value]:
    def z(name: str) -> ibis.Value:
        return t[f"_{name}_{w}"].fill_null(0)

    seats = t["seats"].cast("float64").nullif(0)
    return {
        f"active_users_{w}d": z("users"),
        f"adoption_rate_{w}d": z("users") / seats,
        f"active_users_trend_{w}d": _trend(z("users"), z("users_prev")),
        f"events_{w}d": z("events"),
        f"events_per_user_{w}d": z("events") / ibis.greatest(z("users"), 1),
        f"event_types_{w}d": z("types"),
        f"events_trend_{w}d": _trend(z("events"), z("events_prev")),
        f"logins_{w}d": z("logins"),
        f"logins_trend_{w}d": _trend(z("logins"), z("logins_prev")),
        f"active_days_share_{w}d": z("active_days") / w,
        f"engagement_score_{w}d": z("engagement"),
        f"value_events_{w}d": z("value"),
        f"value_events_per_seat_{w}d": z("value") / seats,
        f"feature_breadth_{w}d": z("features") / n_features,
    }


def _first_days(events: ibis.Table, names: tuple[str, ...], by: list[str]) -> ibis.Table:
    """The first day each `by` group did one of the `names` events."""
    return events.filter(events.event_type.isin(list(names))).group_by(by).aggregate(day=_.day.min())


def _history(events: ibis.Table, spine: ibis.Table, calendar: ibis.Table, cfg: FeatureSettings) -> list[ibis.Table]:
    """All-history features: time to value, activation, onboarding, days since activity."""
    key = ["account_id", "as_of"]
    first_value = _first_days(events, cfg.value_events, ["account_id"])
    ttv = spine.join(first_value, "account_id", how="left").select(
        *key,
        _value_day=ibis.ifelse(_.day < _.as_of, _.day, ibis.null("date")),
    )
    onboarding = (
        rows_before(_first_days(events, cfg.onboarding_events, ["account_id", "event_type"]), calendar)
        .group_by(key)
        .aggregate(_onboarding_done=_.event_type.nunique())
    )
    per_user_step = _first_days(
        events.filter(_.user_id.notnull()), cfg.setup_events, ["account_id", "user_id", "event_type"]
    )
    activated = (
        per_user_step.group_by(["account_id", "user_id"])
        .aggregate(steps=_.event_type.nunique(), day=_.day.max())
        .filter(_.steps == len(set(cfg.setup_events)))
    )
    activation = rows_before(activated, calendar).group_by(key).aggregate(_activated=_.user_id.nunique())
    seen = events.filter(_.user_id.notnull()).group_by(["account_id", "user_id"]).aggregate(day=_.day.min())
    users_seen = rows_before(seen, calendar).group_by(key).aggregate(_users_seen=_.user_id.nunique())
    lookback = cfg.activity_lookback_days
    last = (
        trailing(events.select("account_id", "day").distinct(), calendar, lookback)
        .group_by(key)
        .aggregate(_since=_.age_days.min())
    )
    return [ttv, onboarding, activation, users_seen, last]


def usage_features(
    events: ibis.Table | None,
    spine: ibis.Table,
    calendar: ibis.Table,
    cfg: FeatureSettings,
    chosen: list[EventType] | None = None,
) -> ibis.Table:
    """Usage features per snapshot of `spine` (account_id, as_of, seats, tenure_days),
    then the per-event-type features of the `chosen` types (`features.events`).

    With no usage table every usage feature is NULL (missing, not zero); with a table,
    an account without events in a window gets zero counts for it.
    """
    chosen = list(chosen or [])
    names = feature_names(SPECS, cfg.windows) + feature_names(per_event.event_specs(chosen, cfg), cfg.windows)
    key = ["account_id", "as_of"]
    if events is None:
        return missing_features(spine, names)
    events = events.mutate(day=day_of(events, "occurred_at"))
    # small daily tables, each read several times below: materialise them once
    daily = events.group_by(["account_id", "day", "event_type"]).aggregate(n=_.count()).cache()
    user_days = events.filter(_.user_id.notnull()).select("account_id", "day", "user_id").distinct().cache()
    account_days = daily.select("account_id", "day").distinct().cache()

    parts = [a for w in cfg.windows for a in _windowed(daily, user_days, account_days, calendar, w, cfg)]
    parts += per_event.event_parts(events, calendar, cfg.windows, chosen)
    parts += _history(events, spine, calendar, cfg)
    t = spine
    for part in parts:
        t = t.left_join(part, key).drop("account_id_right", "as_of_right")

    lookback = cfg.activity_lookback_days
    n_features = max(len(cfg.feature_events), 1)
    columns: dict[str, ibis.Value] = {}
    for w in cfg.windows:
        columns |= _windowed_features(t, w, n_features)
        columns |= per_event.event_columns(t, chosen, w, t[f"_users_{w}"].fill_null(0), _trend)
    columns |= {
        "days_since_last_activity": t._since.fill_null(lookback).cast("float64"),
        "time_to_value_days": t.tenure_days - t.as_of.delta(t._value_day, unit="day"),
        "days_without_value": ibis.ifelse(t._value_day.isnull(), t.tenure_days, ibis.null("int64")),
        "activation_rate": t._activated.fill_null(0) / t._users_seen.cast("float64").nullif(0),
        "onboarding_completion": t._onboarding_done.fill_null(0) / max(len(set(cfg.onboarding_events)), 1),
    }
    return t.select(*key, **{n: columns[n].cast("float64") for n in names})
