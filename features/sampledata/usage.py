"""Product usage events, drawn in bulk from the weekly trajectories.

Per active account-week: weekly active users ~ Binomial(named users, p(lagged health)),
then per event type a Poisson count whose rate follows lagged health, adopted features
and (for value events) time-to-value; counts are expanded to timestamps in one go, with
fewer events on weekends and business hours by region. Each user's setup steps and
onboarding checklist items are drawn once, when the user first gets a seat; how many
get done and how fast depends on onboarding quality.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from features.sampledata import catalog
from features.sampledata.accounts import Accounts
from features.sampledata.lifecycle import Trajectories, active_on, sigmoid
from features.sampledata.products import RADAR, Product
from features.sampledata.timeline import EPOCH_ORD, REGION_HOUR, Window, business_times, weekday_offsets

EVENT_KINDS = catalog.EVENT_KINDS
EVENT_TYPES = catalog.EVENT_TYPES
_T = {name: i for i, name in enumerate(EVENT_TYPES)}
# Weekly events per active user at health 0, and the health slope of their log rate.
PER_USER = {"login": (0.65, 0.25), "report_shared": (0.04, 0.7), "export": (0.05, 0.2)}
PER_FEATURE_USER = (0.14, 0.35)
# Weekly events per account (not per user).
PER_ACCOUNT = {"dashboard_viewed_by_exec": (0.5, 0.8), "goal_achieved": (0.15, 0.9), "api_call": (3.0, 0.3)}


def _weekly_counts(rng, accounts: Accounts, tr: Trajectories, lo: int, hi: int):
    a, w = np.nonzero(tr.active[lo:hi])
    a += lo
    frac = (tr.d1[a, w] - tr.d0[a, w]) / 7.0
    s = tr.lagged[a, w].astype(float)
    pool = np.clip(np.floor(tr.demand[a, w]), 1, tr.seats[a, w]).astype(np.int64)
    users = rng.binomial(pool, 0.78 * sigmoid(0.3 + 1.4 * s))
    # time-to-value: no value events until some weeks into a relationship
    q = accounts.onboarding_quality[lo:hi]
    ttv = np.exp(1.1 - 0.5 * q + 0.4 * rng.standard_normal(hi - lo))
    ramp = np.clip((tr.tenure_weeks[a, w] - ttv[a - lo] + 1) / 3.0, 0, 1)
    lam = np.zeros((len(a), len(EVENT_TYPES)))
    for name, (rate, slope) in PER_USER.items():
        lam[:, _T[name]] = users * rate * np.exp(slope * s)
    lam[:, _T["report_shared"]] *= ramp
    feats = tr.features[a, w]
    for j, f in enumerate(catalog.FEATURES):
        rate, slope = PER_FEATURE_USER
        lam[:, _T[f"feature_{f}"]] = users * rate * np.exp(slope * s) * feats[:, j]
    has_api = tr.addons[a, w, catalog.ADDONS.index("addon_api")]
    for name, (rate, slope) in PER_ACCOUNT.items():
        team = np.sqrt(np.maximum(users, 1) / 5)
        lam[:, _T[name]] = (users > 0) * rate * np.exp(slope * s) * team
    lam[:, _T["dashboard_viewed_by_exec"]] *= ramp * feats[:, 0]
    lam[:, _T["goal_achieved"]] *= ramp
    lam[:, _T["api_call"]] *= has_api
    counts = rng.poisson(lam * frac[:, None])
    return a, w, pool, users, counts


def _recurring(rng, accounts: Accounts, window: Window, tr: Trajectories, lo: int, hi: int):
    a, w, pool, users, counts = _weekly_counts(rng, accounts, tr, lo, hi)
    k = counts.shape[1]
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    row, etype = flat // k, flat % k
    acct = a[row]
    day = weekday_offsets(
        rng, tr.d0[acct, w[row]].astype(np.int64), tr.d1[acct, w[row]].astype(np.int64), window.weekday_of_start()
    )
    day_ord = window.start_ord + 7 * w[row] + day
    offset = rng.integers(0, 1 << 30, size=len(a))[row] % pool[row]
    # this week's active users are a rotating window over the account's named users
    pick = np.floor(rng.random(len(row)) * np.maximum(users[row], 1)).astype(np.int64)
    user = 1 + (offset + pick) % pool[row]
    user = np.where(etype == _T["api_call"], 1, user)
    qty = np.ones(len(row))
    exports = etype == _T["export"]
    qty[exports] += rng.poisson(2.5, int(exports.sum()))
    calls = etype == _T["api_call"]
    qty[calls] = np.round(np.exp(4.0 + 1.0 * rng.standard_normal(int(calls.sum())))) + 1
    return acct, day_ord, etype, user, qty


def _first_steps(rng, accounts: Accounts, window: Window, tr: Trajectories, lo: int, hi: int):
    """Setup and onboarding events of each user, when the user first gets a seat."""
    joins_a, joins_u, joins_day = [], [], []
    seats = np.clip(np.floor(tr.demand[lo:hi]), 1, tr.seats[lo:hi])
    pool = np.where(tr.active[lo:hi], seats, 0).astype(np.int64)
    for a in range(lo, hi):
        cum = np.maximum.accumulate(pool[a - lo])
        if cum[-1] == 0:
            continue
        known = cum[0] if accounts.preexisting[a] else 0  # onboarded before the window
        users = np.arange(known + 1, cum[-1] + 1)
        weeks = np.searchsorted(cum, users, side="left")
        joins_a.append(np.full(len(users), a))
        joins_u.append(users)
        d0, d1 = tr.d0[a, weeks].astype(np.int64), tr.d1[a, weeks].astype(np.int64)
        joins_day.append(
            window.start_ord + 7 * weeks + d0 + np.floor(rng.random(len(users)) * (d1 - d0)).astype(np.int64)
        )
    if not joins_a:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, np.zeros(0)
    ja, ju, jd = map(np.concatenate, (joins_a, joins_u, joins_day))
    q = accounts.onboarding_quality[ja]
    wk = np.clip((jd - window.start_ord) // 7, 0, window.n_weeks - 1)
    h = tr.health[ja, wk]
    out_a, out_u, out_day, out_t = [], [], [], []
    for kind, base, pace in (("setup", 0.8, 3.0), ("onboarding", 1.0, 5.0)):
        p = sigmoid(base + 1.0 * q + 0.6 * h + (ju == 1) * 1.0)
        elapsed = np.zeros(len(ja))
        for name in EVENT_KINDS[kind]:
            elapsed += rng.exponential(pace * np.exp(-0.4 * q))
            done = rng.random(len(ja)) < p
            out_a.append(ja[done])
            out_u.append(ju[done])
            out_day.append(jd[done] + np.floor(elapsed[done]).astype(np.int64))
            out_t.append(np.full(int(done.sum()), _T[name]))
    acct, user, day_ord, etype = map(np.concatenate, (out_a, out_u, out_day, out_t))
    return acct, day_ord, etype, user, np.ones(len(acct))


def usage_chunks(
    rng: np.random.Generator,
    accounts: Accounts,
    window: Window,
    tr: Trajectories,
    chunk_accounts: int = 100,
    product: Product = RADAR,
) -> Iterator[dict]:
    """The usage_events table in blocks of accounts (bounded memory at any size), each
    sorted by account and time, in account order; event names and money values are the
    `product`'s."""
    bounds = range(0, accounts.n, chunk_accounts)
    for lo, stream in zip(bounds, rng.spawn(len(bounds))):
        yield _chunk(stream, accounts, window, tr, lo, min(lo + chunk_accounts, accounts.n), product)


def _money(rng, accounts: Accounts, window: Window, tr: Trajectories, product: Product, acct, ts, etype, qty):
    """`quantity` as an amount for the product's money events: a median by segment, moved
    by the account's (lagged) health that week, with noise."""
    qty = qty.copy()
    week = np.clip((ts.astype("datetime64[D]").astype(np.int64) + EPOCH_ORD - window.start_ord) // 7, 0, None)
    week = np.minimum(week, window.n_weeks - 1)
    for name, (medians, slope) in product.money_events.items():
        rows = np.flatnonzero(etype == product.event_types.index(name))
        median = np.asarray(medians)[accounts.segment[acct[rows]]]
        health = tr.lagged[acct[rows], week[rows]].astype(float)
        qty[rows] = np.round(median * np.exp(slope * health + 0.6 * rng.standard_normal(len(rows))), 2)
    return qty


def _chunk(
    rng, accounts: Accounts, window: Window, tr: Trajectories, lo: int, hi: int, product: Product = RADAR
) -> dict:
    r1, r2 = rng.spawn(2)
    parts = [_recurring(r1, accounts, window, tr, lo, hi), _first_steps(r2, accounts, window, tr, lo, hi)]
    acct, day_ord, etype, user, qty = (np.concatenate(cols) for cols in zip(*parts))
    keep = active_on(tr, window, acct, day_ord)
    acct, day_ord, etype, user, qty = acct[keep], day_ord[keep], etype[keep], user[keep], qty[keep]
    hours = np.array([REGION_HOUR[r] for r in accounts.region])[acct]
    ts = business_times(r1, day_ord, hours)
    secs = (ts - ts.min()).astype(np.int64) if len(ts) else np.zeros(0, np.int64)
    order = np.argsort((acct << 37) | (secs << 5) | etype, kind="stable")
    acct, ts, etype, user, qty = acct[order], ts[order], etype[order], user[order], qty[order]
    if product.money_events:
        qty = _money(rng.spawn(1)[0], accounts, window, tr, product, acct, ts, etype, qty)
    code = acct * 100_000 + user
    uniq, inverse = np.unique(code, return_inverse=True)
    names = [f"U{c // 100_000 + 1:05d}-{c % 100_000:03d}" for c in uniq]
    # categoricals keep millions of repeated strings as codes until they are written
    return {
        "account_id": pd.Categorical.from_codes(acct, accounts.ids),
        "occurred_at": ts,
        "event_type": pd.Categorical.from_codes(etype, product.event_types),
        "user_id": pd.Categorical.from_codes(inverse.ravel(), names),
        "quantity": qty,
    }
