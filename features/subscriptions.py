"""Relationships, MRR and churn from subscription lines (DOMAIN sections 1-3), in Ibis.

Every function takes the ``subscriptions`` table (and an as-of calendar) and returns an
Ibis expression built from portable, set-based operations (filters, joins, group-bys and
window functions), so the same code runs on DuckDB and on Spark or a warehouse.

Semantics decided here, used by the features below and by ``features.labels``:

* **Revenue lines.** A line with ``mrr = 0`` (free tier, pilot, credit) carries no
  revenue: churn is MRR reaching 0, so such a line neither makes an account active, nor
  keeps a relationship alive across a gap, nor counts as a product the account has. Lines
  with ``end_date <= start_date`` are never in force. Both are dropped first.
* **MRR(d)** = sum of ``mrr`` over revenue lines with ``start_date <= d < end_date`` (or no
  end_date); the account is active on d when MRR(d) > 0.
* **State at as_of.** A snapshot at ``as_of`` (00:00) sees the lines that started before
  it, and the account as it was on its last fully observed day, ``as_of - 1``: the lines in
  force are those with ``start_date < as_of`` and ``end_date`` null or ``>= as_of``, and
  the snapshot ``mrr`` is MRR(as_of - 1). A line starting on ``as_of`` is information
  dated ``as_of`` and is not seen; a line ending on ``as_of`` is still seen (the account
  is up for renewal that day, ``days_to_next_renewal = 0``). This way an account renewing
  exactly on ``as_of`` never drops out of the snapshot. Contract end dates of lines in
  force are known contract terms and may be used.
* **Relationship.** Lines sorted by start merge into one relationship while each starts
  less than ``grace`` days after the running maximum end of the earlier lines
  (``grace = max(grace_days, 1)``: lines that touch are always continuous).
* **Churn** on d = the end of a relationship (MRR goes to 0 on d and stays 0 for at least
  ``grace`` days: the gap to the next relationship is >= grace). An open-ended
  relationship never churns. The end of the last relationship is a churn only once the
  grace period is observed: ``churn_date + grace <= data_end``, where ``data_end`` is the
  extract date (MRR is known for the days before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis

from features.exact import exact_sum
from features.registry import FeatureSpec
from radar.settings import DomainSettings

KEY = ("account_id", "as_of")
# Stands in for "open-ended" so running maxima and minima need no null handling.
# Never add days to it: compare with shifted real dates instead.
OPEN_END = date(9999, 12, 31)
_DEFAULT_GRACE_DAYS = DomainSettings().grace_days
SRC = "subscriptions"
WINDOWS = (90, 180)  # DOMAIN indicator 9: MRR change over 90/180 days


def specs(windows: Sequence[int] = WINDOWS) -> list[FeatureSpec]:
    """The features ``subscription_features(..., windows)`` returns, declared in order.

    Windowed names are spelled out (not ``{w}``): these windows are the subscription
    builder's own, not the trailing activity windows of the feature settings.
    """
    fixed = [
        FeatureSpec("mrr", "Monthly recurring revenue", "context", SRC, "higher", "currency"),
        FeatureSpec("seats", "Seats under contract", "context", SRC, "higher", "count"),
        FeatureSpec("n_products", "Products in force", 10, SRC, "higher", "count", kind="context"),
        FeatureSpec("main_product", "Main plan (largest line)", "context", SRC, unit="category", categorical=True),
        FeatureSpec(
            "billing_period",
            "Billing period of the main plan, months",
            "context",
            SRC,
            unit="category",
            categorical=True,
        ),
        # contract facts of indicator 8: context, not drivers (a CSM cannot change them)
        FeatureSpec("days_to_next_renewal", "Days to the next contract end", 8, SRC, "neutral", "days", kind="context"),
        FeatureSpec("tenure_days", "Days since the first subscription", 8, SRC, "higher", "days", kind="context"),
        FeatureSpec(
            "relationship_tenure_days",
            "Days since the current relationship began",
            8,
            SRC,
            "higher",
            "days",
            kind="context",
        ),
        FeatureSpec("past_renewals", "Renewals so far", 8, SRC, "higher", "count", kind="context"),
        FeatureSpec(
            "reactivations", "Earlier churns (returns after a lapse)", 8, SRC, "lower", "count", kind="context"
        ),
    ]
    per_window = [
        spec
        for w in windows
        for spec in (
            FeatureSpec(f"mrr_change_pct_{w}d", "MRR change", 9, SRC, "higher", "pct", window=w),
            FeatureSpec(f"seats_change_{w}d", "Change in seats", 9, SRC, "higher", "count", window=w),
            FeatureSpec(f"new_products_{w}d", "New products or add-ons started", 10, SRC, "higher", "count", window=w),
        )
    ]
    return [*fixed, *per_window]


SPECS = specs()


def feature_columns(windows: Sequence[int] = WINDOWS) -> list[str]:
    """The feature columns ``subscription_features`` returns, in order (key excluded)."""
    return [spec.name for spec in specs(windows)]


def _days(n: int) -> ibis.Value:
    return ibis.interval(days=n)


def effective_grace(grace_days: int) -> int:
    """Minimum zero-MRR gap (days) that is a churn: at least one day."""
    return max(int(grace_days), 1)


def revenue_lines(subs: ibis.Table) -> ibis.Table:
    """Lines that carry revenue, with ``end_or_max`` (end_date, OPEN_END when open)."""
    lines = subs.filter(subs.mrr > 0, subs.end_date.isnull() | (subs.end_date > subs.start_date))
    return lines.mutate(end_or_max=ibis.coalesce(lines.end_date, ibis.date(OPEN_END)))


def lines_at(lines: ibis.Table, calendar: ibis.Table, offset_days: int = 0) -> ibis.Table:
    """Lines in force at ``as_of + offset_days`` (00:00), one row per (line, as_of).

    In force at instant t: ``start_date < t <= end_or_max``, i.e. active on day t - 1.
    """
    cal = calendar.select("as_of").mutate(_t=calendar.as_of + _days(offset_days))
    joined = lines.join(cal, [lines.start_date < cal._t, lines.end_or_max >= cal._t])
    return joined.drop("_t")


def with_relationships(lines: ibis.Table, grace_days: int) -> ibis.Table:
    """Revenue lines with ``relationship`` (1, 2, ... per account), its start and end."""
    grace = effective_grace(grace_days)
    order = [lines.start_date, lines.end_or_max, lines.subscription_id]
    running = ibis.cumulative_window(group_by=lines.account_id, order_by=order)
    ordered = ibis.window(group_by=lines.account_id, order_by=order)
    t = lines.mutate(_run_max=lines.end_or_max.max().over(running))
    t = t.mutate(_prev_max=t._run_max.lag().over(ordered))
    t = t.mutate(_new=ibis.ifelse(t._prev_max.isnull() | (t.start_date - _days(grace) >= t._prev_max), 1, 0))
    t = t.mutate(relationship=t._new.sum().over(running))
    per_rel = ibis.window(group_by=[t.account_id, t.relationship])
    t = t.mutate(
        relationship_start=t.start_date.min().over(per_rel),
        relationship_end=t.end_or_max.max().over(per_rel),
    )
    return t.drop("_run_max", "_prev_max", "_new")


def _relationship_ends(subs: ibis.Table, grace_days: int) -> ibis.Table:
    """One row per ended relationship: account_id, relationship, churn_date, is_last."""
    rels = with_relationships(revenue_lines(subs), grace_days)
    rels = rels.group_by(["account_id", "relationship"]).agg(churn_date=rels.relationship_end.max())
    last = ibis.window(group_by=rels.account_id)
    rels = rels.mutate(is_last=rels.relationship == rels.relationship.max().over(last))
    return rels.filter(rels.churn_date != ibis.date(OPEN_END))


def churn_events(subs: ibis.Table, grace_days: int, data_end: date) -> ibis.Table:
    """Churn events (account_id, churn_date) confirmed by the data up to ``data_end``."""
    grace = effective_grace(grace_days)
    ends = _relationship_ends(subs, grace_days)
    confirmed = ~ends.is_last | (ends.churn_date <= ibis.date(data_end) - _days(grace))
    return ends.filter(confirmed).select("account_id", "churn_date")


def active_accounts(subs: ibis.Table, calendar: ibis.Table) -> ibis.Table:
    """Snapshot population: (account_id, as_of, mrr, seats) for accounts with mrr > 0."""
    cur = lines_at(revenue_lines(subs), calendar)
    return cur.group_by(list(KEY)).agg(mrr=exact_sum(cur.mrr), seats=cur.seats.sum())


def subscription_features(
    subs: ibis.Table,
    calendar: ibis.Table,
    windows: Sequence[int] = WINDOWS,
    *,
    grace_days: int = _DEFAULT_GRACE_DAYS,
) -> ibis.Table:
    """Subscription features per (account_id, as_of), one row per active account.

    Point in time: only lines with ``start_date < as_of`` influence a row (a line
    starting on or after as_of changes nothing; a property test proves it). "In force"
    means in force at as_of (see the module docstring).

    - mrr, seats: sums over the lines in force (seats null when no line has seats).
    - n_products: distinct products in force.
    - main_product, billing_period: of the largest line in force (by mrr, then latest).
    - days_to_next_renewal: to the earliest end_date of the lines in force (0 when one
      ends on as_of); null when they are all open-ended.
    - tenure_days: since the account's first start_date; relationship_tenure_days: since
      the current relationship began (after the last churn).
    - past_renewals: lines started before as_of that continue the same product, starting
      on or after the end of that product's earlier lines and less than the grace period
      after it (monthly renewals count each month, late renewals within grace count).
    - reactivations: churns known at as_of, i.e. with ``churn_date + grace <= as_of``.
    - per window w: mrr_change_pct_{w}d = mrr / mrr at (as_of - w) - 1 and
      seats_change_{w}d = seats - seats at (as_of - w), both null when the account had
      no revenue at as_of - w; new_products_{w}d = products whose first line started in
      [as_of - w, as_of), not counting the account's first purchase.
    """
    grace = effective_grace(grace_days)
    rev = with_relationships(revenue_lines(subs), grace_days)
    cur = lines_at(rev, calendar)
    keys = list(KEY)

    feats = cur.group_by(keys).agg(
        mrr=exact_sum(cur.mrr),
        seats=cur.seats.sum(),
        n_products=cur.product.nunique(),
        _next_end=cur.end_date.min(),
        _rel_start=cur.relationship_start.min(),
    )

    largest = ibis.window(
        group_by=[cur.account_id, cur.as_of],
        order_by=[cur.mrr.desc(), cur.start_date.desc(), cur.subscription_id],
    )
    main = cur.mutate(_rank=ibis.row_number().over(largest))
    main = main.filter(main._rank == 0).select(*keys, main_product=main.product, billing_period=main.billing_period)

    # Global minima are point-in-time safe: a row exists only if some line started
    # before as_of, so the minimum is then dated before as_of too.
    firsts = rev.group_by(["account_id", "product"]).agg(first_start=rev.start_date.min())
    account_start = firsts.group_by("account_id").agg(_account_start=firsts.first_start.min())

    renewals = _renewal_lines(rev, grace)
    ends = _relationship_ends(subs, grace_days)
    parts = [
        main,
        _count_before(renewals, calendar, renewals.start_date, "past_renewals"),
        # a churn is known at as_of once its grace period has passed before as_of
        _count_before(ends, calendar, ends.churn_date + _days(grace - 1), "reactivations"),
    ]
    counts = ["past_renewals", "reactivations"]
    cross_sell = firsts.join(account_start, "account_id")
    cross_sell = cross_sell.filter(cross_sell.first_start > cross_sell._account_start)
    for w in windows:
        past = lines_at(rev, calendar, -w)
        parts.append(past.group_by(keys).agg(**{f"_mrr_{w}": exact_sum(past.mrr), f"_seats_{w}": past.seats.sum()}))
        started = cross_sell.join(
            calendar,
            [
                cross_sell.first_start >= calendar.as_of - _days(w),
                cross_sell.first_start < calendar.as_of,
            ],
        )
        counts.append(f"new_products_{w}d")
        parts.append(started.group_by(keys).agg(**{counts[-1]: started.product.nunique()}))

    for part in parts:
        feats = feats.left_join(part, keys).drop("account_id_right", "as_of_right")
    feats = feats.left_join(account_start, "account_id").drop("account_id_right")

    derived = {
        "days_to_next_renewal": feats._next_end.delta(feats.as_of, unit="day"),
        "tenure_days": feats.as_of.delta(feats._account_start, unit="day"),
        "relationship_tenure_days": feats.as_of.delta(feats._rel_start, unit="day"),
        **{c: feats[c].fill_null(0) for c in counts},
    }
    for w in windows:
        derived[f"mrr_change_pct_{w}d"] = (feats.mrr - feats[f"_mrr_{w}"]) / feats[f"_mrr_{w}"]
        derived[f"seats_change_{w}d"] = feats.seats - feats[f"_seats_{w}"]
    feats = feats.mutate(**derived)
    return feats.select(*keys, *feature_columns(windows))


def _renewal_lines(rev: ibis.Table, grace: int) -> ibis.Table:
    """Lines that renew the same product: start on or after the end of the earlier lines
    of that product, less than ``grace`` days after it (within one relationship)."""
    order = [rev.start_date, rev.end_or_max, rev.subscription_id]
    running = ibis.cumulative_window(group_by=[rev.account_id, rev.product], order_by=order)
    ordered = ibis.window(group_by=[rev.account_id, rev.product], order_by=order)
    t = rev.mutate(_run_max=rev.end_or_max.max().over(running))
    t = t.mutate(_prev_max=t._run_max.lag().over(ordered))
    return t.filter(t.start_date >= t._prev_max, t.start_date - _days(grace) < t._prev_max)


def _count_before(events: ibis.Table, calendar: ibis.Table, known_on: ibis.Value, name: str) -> ibis.Table:
    """Per (account_id, as_of): number of events whose ``known_on`` date is < as_of."""
    joined = events.join(calendar, known_on < calendar.as_of)
    return joined.group_by(list(KEY)).agg(**{name: joined.count()})
