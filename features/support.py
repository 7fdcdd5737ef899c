"""Support features (indicators 6 and 12) from `support_tickets`.

A ticket is visible to a snapshot when it was opened before as_of. Its response and
resolution times count only when they too happened before as_of; a ticket not resolved
by as_of is open at as_of (its later resolution is not known yet and is not used).
"""

from __future__ import annotations

import ibis
from ibis import _

from features.exact import exact_mean
from features.registry import FeatureSpec, feature_names, missing_features
from features.window import day_of, rows_before, trailing
from radar.settings import FeatureSettings

SRC = "support_tickets"
SPECS = [
    FeatureSpec("tickets_{w}d", "Support tickets opened", 12, SRC, "lower", "count"),
    FeatureSpec("tickets_trend_{w}d", "Change in tickets opened vs the window before", 12, SRC, "lower", "pct"),
    FeatureSpec("urgent_ticket_share_{w}d", "Share of tickets with high or urgent priority", 12, SRC, "lower", "share"),
    FeatureSpec("escalated_tickets_{w}d", "Escalated tickets", 12, SRC, "lower", "count"),
    FeatureSpec("reopened_tickets_{w}d", "Reopened tickets", 12, SRC, "lower", "count"),
    FeatureSpec("first_response_hours_{w}d", "Mean hours to first response", 6, SRC, "lower", "hours"),
    FeatureSpec("resolution_hours_{w}d", "Mean hours to resolve a ticket", 6, SRC, "lower", "hours"),
    FeatureSpec("ticket_csat_{w}d", "Mean ticket CSAT (1–5)", 12, SRC, "higher", "score"),
    FeatureSpec("open_tickets", "Tickets still open", 12, SRC, "lower", "count"),
]


def _hours(later: ibis.Value, earlier: ibis.Value) -> ibis.Value:
    return later.delta(earlier, unit="second").cast("float64") / 3600.0


def support_features(
    tickets: ibis.Table | None, spine: ibis.Table, calendar: ibis.Table, cfg: FeatureSettings
) -> ibis.Table:
    """Support features per snapshot of `spine`; all NULL when there is no ticket table."""
    names = feature_names(SPECS, cfg.windows)
    key = ["account_id", "as_of"]
    if tickets is None:
        return missing_features(spine, names)
    t = tickets.mutate(day=day_of(tickets, "opened_at"))
    t = t.mutate(
        _urgent=t.priority.isin(["high", "urgent"]).fill_null(False),
        _escalated=t.escalated.fill_null(False),
        _reopened=t.reopened.fill_null(False),
    )
    out = spine.select(*key)
    for w in sorted(set(cfg.windows)):
        win = trailing(t, calendar, 2 * w).mutate(cur=_.age_days <= w)
        as_of_ts = win.as_of.cast("timestamp")
        responded = win.cur & win.first_response_at.notnull() & (win.first_response_at < as_of_ts)
        resolved = win.cur & win.resolved_at.notnull() & (win.resolved_at < as_of_ts)
        agg = win.group_by(key).aggregate(
            n=_.count(where=_.cur),
            n_prev=_.count(where=~_.cur),
            urgent=_.count(where=_.cur & _._urgent),
            escalated=_.count(where=_.cur & _._escalated),
            reopened=_.count(where=_.cur & _._reopened),
            frt=exact_mean(_hours(win.first_response_at, win.opened_at), where=responded),
            res=exact_mean(_hours(win.resolved_at, win.opened_at), where=resolved),
            csat=exact_mean(win.csat, where=resolved),
        )
        joined = out.left_join(agg, key).drop("account_id_right", "as_of_right")
        n = joined.n.fill_null(0)
        out = joined.select(
            *[c for c in out.columns],
            **{
                f"tickets_{w}d": n,
                f"tickets_trend_{w}d": (n - joined.n_prev.fill_null(0)) / ibis.greatest(joined.n_prev.fill_null(0), 1),
                f"urgent_ticket_share_{w}d": joined.urgent.fill_null(0) / n.cast("float64").nullif(0),
                f"escalated_tickets_{w}d": joined.escalated.fill_null(0),
                f"reopened_tickets_{w}d": joined.reopened.fill_null(0),
                f"first_response_hours_{w}d": joined.frt,
                f"resolution_hours_{w}d": joined.res,
                f"ticket_csat_{w}d": joined.csat,
            },
        )
    opened = rows_before(t, calendar)
    still_open = opened.filter(opened.resolved_at.isnull() | (opened.resolved_at >= opened.as_of.cast("timestamp")))
    open_agg = still_open.group_by(key).aggregate(open_n=_.count())
    out = out.left_join(open_agg, key).drop("account_id_right", "as_of_right")
    out = out.mutate(open_tickets=out.open_n.fill_null(0)).drop("open_n")
    return out.select(*key, **{n: out[n].cast("float64") for n in names})
