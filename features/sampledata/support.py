"""Support tickets: volume, category, priority, response and resolution times,
escalations, reopens, CSAT, subject and body.

Unhealthy accounts open more tickets, escalate and reopen more and rate lower; product
incidents cause bursts of urgent bug and performance tickets and slow the first
response for everyone; new customers ask how-to, integration and access questions; a
pending price increase brings billing tickets.
"""

from __future__ import annotations

import numpy as np

from features.sampledata.accounts import Accounts
from features.sampledata.cues import cues_at, text_languages
from features.sampledata.lifecycle import Trajectories, sigmoid
from features.sampledata.story import Incidents
from features.sampledata.text import Composer
from features.sampledata.timeline import REGION_HOUR, SECONDS_PER_DAY, Window, business_times, weekday_offsets

CATEGORIES = ("billing", "bug", "how_to", "integration", "performance", "access")
CATEGORY_MIX = np.array([0.10, 0.22, 0.26, 0.14, 0.10, 0.18])
PRIORITIES = ("low", "normal", "high", "urgent")
SEGMENT_RATE = (0.075, 0.13, 0.28)  # tickets per active week at health 0
FIRST_RESPONSE_HOURS = np.array([18.0, 7.0, 2.5, 0.7])  # median by priority
RESOLUTION_HOURS = np.array([20.0, 70.0, 10.0, 45.0, 40.0, 6.0])  # median by category
CSAT_SHARE = 0.4  # resolved tickets with a CSAT answer


def _categories(rng, hit, early, price):
    mix = np.tile(CATEGORY_MIX, (len(hit), 1))
    mix[:, 1] *= 1 + 6 * (hit > 0)
    mix[:, 4] *= 1 + 6 * (hit > 0)
    for j in (2, 3, 5):
        mix[:, j] *= np.where(early, 2.5, 1.0)
    mix[:, 0] *= np.where(price, 4.0, 1.0)
    cum = np.cumsum(mix / mix.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((rng.random((len(hit), 1)) > cum).sum(axis=1), len(CATEGORIES) - 1)


def ticket_rows(
    rng: np.random.Generator,
    accounts: Accounts,
    window: Window,
    tr: Trajectories,
    incidents: Incidents,
    composer: Composer,
) -> dict:
    a, w = np.nonzero(tr.active)
    frac = (tr.d1[a, w] - tr.d0[a, w]) / 7.0
    h = tr.health[a, w].astype(float)
    hit = incidents.hits[a, w]
    early = tr.tenure_weeks[a, w] < 8
    lam = (
        np.array(SEGMENT_RATE)[accounts.segment[a]]
        * np.exp(-0.45 * h)
        * (1 + 1.5 * early)
        * (1 + 4 * hit)
        * (1 + 0.5 * tr.price_pending[a, w])
        * frac
    )
    n = rng.poisson(lam)
    idx = np.repeat(np.arange(len(a)), n)
    a, w, h, hit = a[idx], w[idx], h[idx], hit[idx]
    early, price = early[idx], tr.price_pending[a, w]
    m = len(a)
    cat = _categories(rng, hit, early, price)
    day = weekday_offsets(rng, tr.d0[a, w].astype(np.int64), tr.d1[a, w].astype(np.int64), window.weekday_of_start())
    hours = np.array([REGION_HOUR[r] for r in accounts.region])[a]
    opened = business_times(rng, window.start_ord + 7 * w + day, hours)

    score = (
        rng.standard_normal(m)
        + 1.2 * hit
        + 0.5 * (accounts.segment[a] == 2)
        - 0.4 * h
        + np.array([-0.3, 0.4, -0.5, 0.1, 0.4, 0.0])[cat]
    )
    priority = np.searchsorted([-0.6, 1.1, 2.0], score)
    first_h = FIRST_RESPONSE_HOURS[priority] * np.exp(0.8 * rng.standard_normal(m)) * (1 + 2 * hit)
    escalated = rng.random(m) < sigmoid(-3.0 + 1.5 * (priority == 3) + 0.8 * (priority == 2) - 0.6 * h + 0.8 * hit)
    reopened = rng.random(m) < sigmoid(-2.4 - 0.5 * h + 0.4 * (cat == 1))
    resolve_h = (
        RESOLUTION_HOURS[cat]
        * np.exp(0.9 * rng.standard_normal(m))
        * (1 + 1.5 * hit)
        * np.where(escalated, 2.0, 1.0)
        * np.where(reopened, 1.6, 1.0)
    )
    first = opened + (first_h * 3600).astype(np.int64).astype("timedelta64[s]")
    resolved = first + (resolve_h * 3600).astype(np.int64).astype("timedelta64[s]")
    end = np.datetime64(window.end, "s") + np.timedelta64(SECONDS_PER_DAY, "s")
    resolved = np.where(resolved < end, resolved, np.datetime64("NaT"))
    first = np.where(first < end, first, np.datetime64("NaT"))
    csat_mean = (
        4.1
        + 0.5 * h
        - 0.35 * np.log1p(resolve_h / 24)
        - 0.7 * escalated
        - 0.5 * reopened
        + 0.7 * rng.standard_normal(m)
    )
    csat = np.clip(np.round(csat_mean), 1, 5)
    csat = np.where(~np.isnat(resolved) & (rng.random(m) < CSAT_SHARE), csat, np.nan)

    langs = text_languages(rng, accounts.language[a], english_share=0.15)
    cats = [CATEGORIES[c] for c in cat]
    cues = cues_at(rng, tr, accounts.onboarding_quality, a, w, "ticket", friction=0.6 * hit + 0.4 * (priority == 3))
    subjects, openings = composer.ticket_openings(langs, cats)
    bodies = composer.compose(
        langs,
        ["neutral.ticket"] * m,
        cues.drivers,
        cues.weights,
        2 + rng.binomial(2, 0.4, m),
        cues.p_signal,
        opening=openings,
    )

    order = np.argsort(opened, kind="stable")
    pick = lambda values: np.asarray(values, dtype=object)[order]
    return {
        "ticket_id": np.array([f"T{i + 1:06d}" for i in range(m)], dtype=object),
        "account_id": accounts.ids[a][order],
        "opened_at": opened[order],
        "first_response_at": first[order],
        "resolved_at": resolved[order],
        "priority": np.array(PRIORITIES, dtype=object)[priority][order],
        "category": pick(cats),
        "escalated": escalated[order],
        "reopened": reopened[order],
        "csat": csat[order],
        "subject": pick(subjects),
        "body": pick(bodies),
    }
