"""Forward-looking labels of a snapshot (DOMAIN section 2), from subscription lines only.

One row per (account_id, as_of) for the accounts active at as_of (the snapshot population
of ``features.subscriptions.active_accounts``), with h = ``horizon_days`` and
g = ``max(grace_days, 1)``, and the semantics of ``features.subscriptions``: zero-MRR lines
are ignored, and the state "at t" is the account on day t - 1, the last day a snapshot
taken at t (00:00) has fully observed, so ``MRR_at(t) = MRR(t - 1)``.

The label window is [as_of, as_of + h): what the snapshot at as_of has not seen and the
snapshot at as_of + h has.

* ``churned`` = 1 when a churn event (``churn_events``) falls in [as_of, as_of + h):
  MRR goes to 0 on a day of the window and stays 0 for at least g days.
* ``expanded`` = 1 when ``churned`` = 0 and either
  ``MRR_at(as_of + h) >= MRR_at(as_of) * (1 + expansion_min_pct)``, or an **add-on**
  starts in [as_of, as_of + h): a line of a product not in force at as_of, starting on a
  day when every product in force at as_of still is (whatever its MRR). This is DOMAIN's
  "between d1 and d2" with d1 = as_of - 1 and d2 = as_of + h - 1 (so a line starting on
  as_of belongs to the label, never to the features), with one refinement: a line that
  *replaces* a product (a plan change such as base -> premium, or a downgrade
  premium -> base) is not an add-on and counts only through the MRR rule; otherwise every
  downgrade to a differently named plan would be an "expansion". The MRR comparison
  allows a millionth of a currency unit, so exactly +10% is expansion despite floating
  point (100 * 1.1 > 110).
* Both are NULL (unknown) unless the data confirm every churn the window could hold: a
  churn on the window's last day, as_of + h - 1, needs zero MRR observed through
  as_of + h + g - 2, i.e. the labels are known iff ``as_of + h + g - 1 <= data_end``
  (``data_end`` is the extract date: MRR is known for the days before it). The rule is
  the same for every account, so unknown rows are not a biased subset.
* ``renewal_in_horizon`` (bool, never null) = a line in force at as_of ends in
  [as_of, as_of + h): known at as_of; selects the rows of renewal-window mode.

By the next renewal, with L = ``max_lead_days``:

* ``next_renewal`` (date) = the nearest contract end (``end_date``) of a line in force at
  as_of, i.e. started before as_of (as ``days_to_next_renewal``: known at as_of); NULL when
  every line in force is open-ended.
* ``label_end_by_renewal`` (date, never null) = T = max(as_of + h, next_renewal + g),
  capped at as_of + L; as_of + h when ``next_renewal`` is NULL. Known at as_of.
* ``churned_by_renewal`` = 1 when a churn event falls in [as_of, T): the account is no
  longer a customer after its next renewal (and its grace period). It is 1 whenever
  ``churned`` is, since T >= as_of + h. NULL unless a churn on T - 1 could be confirmed:
  known iff ``T + g - 1 <= data_end``, the rule above with as_of + h replaced by T. Since
  T is known at as_of, which rows are unknown depends on their contract terms, never on
  what happens after as_of.

``next_renewal`` and ``label_end_by_renewal`` say which period the label covers; they
are not model inputs (training takes its features from the registry).

A subscription row ingest rejected is a line missing from the account's history, which
would read as a churn. ``blackouts`` (ingest's ``label_blackouts``: account_id,
blackout_from = the earliest start of its rejected rows, NULL when a start did not parse)
makes the account's labels unknown from there on: every label whose window end + g passes
blackout_from (a churn the missing line would have prevented falls within g before its start).
"""

from __future__ import annotations

from datetime import date

import ibis

from features.exact import exact_sum
from features.subscriptions import (
    KEY,
    churn_events,
    effective_grace,
    lines_at,
    revenue_lines,
)
from radar.settings import DomainSettings

LABEL_COLUMNS = (
    "churned",
    "expanded",
    "churned_by_renewal",
    "renewal_in_horizon",
    "next_renewal",
    "label_end_by_renewal",
)
MONEY_TOLERANCE = 1e-6  # currency units; exactly +10% must count although 100 * 1.1 > 110


def label_known(as_of: ibis.Value, settings: DomainSettings, data_end: date) -> ibis.Value:
    """Whether the labels of a snapshot at ``as_of`` are observable by ``data_end``."""
    return window_known(as_of + ibis.interval(days=settings.horizon_days), settings, data_end)


def window_known(end: ibis.Value, settings: DomainSettings, data_end: date) -> ibis.Value:
    """Whether a label window ending at ``end`` (exclusive) is observable by ``data_end``:
    a churn on ``end - 1`` needs zero MRR through ``end + g - 2``."""
    lag = effective_grace(settings.grace_days) - 1
    return end + ibis.interval(days=lag) <= ibis.date(data_end)


def label_end_by_renewal(as_of: ibis.Value, next_renewal: ibis.Value, settings: DomainSettings) -> ibis.Value:
    """T = max(as_of + h, next_renewal + g) capped at as_of + max_lead_days; as_of + h
    when there is no next renewal (open-ended lines only)."""
    horizon_end = as_of + ibis.interval(days=settings.horizon_days)
    cap = as_of + ibis.interval(days=settings.max_lead_days)
    after_grace = next_renewal + ibis.interval(days=effective_grace(settings.grace_days))
    # comparisons rather than greatest/least: portable, and NULL handled explicitly
    later = ibis.ifelse(after_grace > horizon_end, after_grace, horizon_end)
    capped = ibis.ifelse(later > cap, cap, later)
    return ibis.ifelse(next_renewal.isnull(), horizon_end, capped)


BLACKOUTS_TABLE = "label_blackouts"  # written by ingest


def workspace_blackouts(backend: ibis.BaseBackend) -> ibis.Table | None:
    """Ingest's `label_blackouts` table in `backend`, or None (a workspace without one)."""
    return backend.table(BLACKOUTS_TABLE) if BLACKOUTS_TABLE in backend.list_tables() else None


def blacked_out(t: ibis.Table, end: ibis.Value, settings: DomainSettings) -> ibis.Value:
    """Whether a label window ending at ``end`` (exclusive) reaches the account's first rejected
    subscription row (``t._blackout`` set, ``t._blackout_from`` its start or NULL for any)."""
    g = ibis.interval(days=effective_grace(settings.grace_days))
    reaches = t._blackout_from.isnull() | (end + g > t._blackout_from)
    return (t._blackout.notnull() & reaches).fill_null(False)


def build_labels(
    subs: ibis.Table,
    calendar: ibis.Table,
    settings: DomainSettings,
    data_end: date,
    blackouts: ibis.Table | None = None,
) -> ibis.Table:
    """(account_id, as_of, churned, expanded, churned_by_renewal, renewal_in_horizon,
    next_renewal, label_end_by_renewal) for active accounts; unknown labels where
    ``blackouts`` (rejected subscription rows) say so."""
    h = ibis.interval(days=settings.horizon_days)
    keys = list(KEY)
    rev = revenue_lines(subs)

    now = lines_at(rev, calendar)
    # the same rows as active_accounts(subs, calendar), plus what the labels need
    base = now.group_by(keys).agg(
        mrr=exact_sum(now.mrr),
        _renewal=(now.end_or_max < now.as_of + h).any(),
        next_renewal=now.end_date.min(),  # NULL end dates (open-ended lines) are skipped
    )
    base = base.mutate(label_end_by_renewal=label_end_by_renewal(base.as_of, base.next_renewal, settings))

    later = lines_at(rev, calendar, settings.horizon_days)
    mrr_end = later.group_by(keys).agg(_mrr_end=exact_sum(later.mrr))

    events = churn_events(subs, settings.grace_days, data_end)
    hit = events.join(calendar, [events.churn_date >= calendar.as_of, events.churn_date < calendar.as_of + h])
    churns = hit.group_by(keys).agg(_churn=hit.count())

    windows = base.select(*keys, _end=base.label_end_by_renewal)
    by_renewal = events.join(
        windows,
        [
            events.account_id == windows.account_id,
            events.churn_date >= windows.as_of,
            events.churn_date < windows._end,
        ],
    )
    churns_by_renewal = by_renewal.group_by(keys).agg(_churn_by_renewal=by_renewal.count())

    new_products = _add_ons(rev, now, calendar, h)

    t = base
    for part in (mrr_end, churns, churns_by_renewal, new_products):
        t = t.left_join(part, keys).drop("account_id_right", "as_of_right")
    if blackouts is not None:
        b = blackouts.select("account_id", _blackout_from=blackouts.blackout_from, _blackout=ibis.literal(1))
        t = t.left_join(b, "account_id").drop("account_id_right")

    churned = t._churn.fill_null(0) > 0
    churned_by_renewal = t._churn_by_renewal.fill_null(0) > 0
    # growth >= mrr * pct rather than mrr_end >= mrr * (1 + pct): see MONEY_TOLERANCE
    growth = t._mrr_end.fill_null(0) - t.mrr
    grew = growth >= t.mrr * settings.expansion_min_pct - MONEY_TOLERANCE
    expanded = ~churned & (grew | (t._new_products.fill_null(0) > 0))
    known = label_known(t.as_of, settings, data_end)
    known_by_renewal = window_known(t.label_end_by_renewal, settings, data_end)
    if blackouts is not None:
        known = known & ~blacked_out(t, t.as_of + h, settings)
        known_by_renewal = known_by_renewal & ~blacked_out(t, t.label_end_by_renewal, settings)
    unknown = ibis.null("int8")
    # ifelse rather than a boolean cast, which PostgreSQL refuses for small integers
    return t.select(
        *keys,
        churned=ibis.ifelse(known, churned.ifelse(1, 0).cast("int8"), unknown),
        expanded=ibis.ifelse(known, expanded.ifelse(1, 0).cast("int8"), unknown),
        churned_by_renewal=ibis.ifelse(known_by_renewal, churned_by_renewal.ifelse(1, 0).cast("int8"), unknown),
        renewal_in_horizon=t._renewal,
        next_renewal=t.next_renewal,
        label_end_by_renewal=t.label_end_by_renewal,
    )


def _add_ons(rev: ibis.Table, now: ibis.Table, calendar: ibis.Table, h: ibis.Value) -> ibis.Table:
    """Per (account_id, as_of): lines of products not in force at as_of that start in
    [as_of, as_of + h) while every product in force at as_of is still in force."""
    keys = list(KEY)
    had = now.select("account_id", "as_of", "product").distinct()
    n_had = had.group_by(keys).agg(_n_had=had.count())
    started = rev.join(calendar, [rev.start_date >= calendar.as_of, rev.start_date < calendar.as_of + h]).select(
        "account_id", "as_of", "product", _day=rev.start_date
    )
    fresh = started.anti_join(had, ["account_id", "as_of", "product"])

    # which of the as_of products are still in force on the day the new line starts
    pairs = fresh.join(had.rename(_had="product"), keys)
    held = rev.select("account_id", _had="product", _from="start_date", _to="end_or_max")
    kept = (
        pairs.join(
            held,
            [
                pairs.account_id == held.account_id,
                pairs._had == held._had,
                held._from <= pairs._day,
                held._to > pairs._day,
            ],
        )
        .select(*keys, "product", "_day", "_had")
        .distinct()
    )
    kept = kept.group_by([*keys, "product", "_day"]).agg(_n_kept=kept.count())
    kept = kept.join(n_had, keys)
    add_ons = kept.filter(kept._n_kept == kept._n_had)
    return add_ons.group_by(keys).agg(_new_products=add_ons.count())
