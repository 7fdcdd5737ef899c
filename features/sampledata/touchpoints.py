"""CSM touchpoints: onboarding sessions after each start, QBRs (quarterly for enterprise,
half-yearly for mid-market), meetings, emails and calls, with short notes.

CSMs reach out more to accounts that look at risk and around renewals, so touchpoint
volume correlates with risk without causing it.
"""

from __future__ import annotations

import numpy as np

from features.sampledata.accounts import Accounts
from features.sampledata.cues import cues_at, text_languages
from features.sampledata.lifecycle import Trajectories, active_on
from features.sampledata.text import Composer
from features.sampledata.timeline import REGION_HOUR, Window, business_times

KINDS = ("meeting", "qbr", "onboarding_session", "email", "call")
QBR_EVERY_DAYS = (0, 182, 91)  # by segment; 0 = no QBRs
WEEKLY_RATE = {"meeting": (0.012, 0.025, 0.05), "email": (0.035, 0.05, 0.08), "call": (0.015, 0.025, 0.045)}
ONBOARDING_DAYS = (2, 9, 16, 30)


def qbr_schedule(
    rng: np.random.Generator, accounts: Accounts, window: Window, tr: Trajectories, starts: list[tuple[int, int, bool]]
):
    """(account, day) of every QBR held: a cadence from each relationship start."""
    acc, days = [], []
    for a, start, _ in starts:
        every = QBR_EVERY_DAYS[accounts.segment[a]]
        if every:
            k = np.arange(1, (window.end_ord_excl - start) // every + 2)
            acc.append(np.full(len(k), a))
            days.append(start + k * every + rng.integers(-10, 11, len(k)))
    for a in np.flatnonzero(accounts.preexisting):
        every = QBR_EVERY_DAYS[accounts.segment[a]]
        if every:
            first = window.start_ord + int(rng.integers(0, every))
            k = np.arange(0, window.n_days // every + 1)
            acc.append(np.full(len(k), a))
            days.append(first + k * every)
    if not acc:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, d = np.concatenate(acc), np.concatenate(days)
    keep = active_on(tr, window, a, d) & (rng.random(len(a)) < 0.9)
    return a[keep], d[keep]


def touchpoint_rows(
    rng: np.random.Generator,
    accounts: Accounts,
    window: Window,
    tr: Trajectories,
    starts: list[tuple[int, int, bool]],
    qbrs: tuple[np.ndarray, np.ndarray],
    composer: Composer,
) -> dict:
    parts_a, parts_d, parts_k = [qbrs[0]], [qbrs[1]], [np.full(len(qbrs[0]), 1)]
    for a, start, _ in starts:
        held = rng.random(len(ONBOARDING_DAYS)) < 0.8
        d = start + np.array(ONBOARDING_DAYS)[held] + rng.integers(0, 3, int(held.sum()))
        parts_a.append(np.full(len(d), a))
        parts_d.append(d)
        parts_k.append(np.full(len(d), 2))
    wa, ww = np.nonzero(tr.active)
    h = tr.health[wa, ww]
    frac = (tr.d1[wa, ww] - tr.d0[wa, ww]) / 7.0
    for kind, rates in WEEKLY_RATE.items():
        lam = np.array(rates)[accounts.segment[wa]] * frac * (1 + (h < -0.5))
        if kind == "call":
            lam = lam * (1 + 0.8 * (tr.to_renewal[wa, ww] < 90))
        n = rng.poisson(lam)
        idx = np.repeat(np.arange(len(wa)), n)
        parts_a.append(wa[idx])
        parts_d.append(
            window.start_ord
            + 7 * ww[idx]
            + tr.d0[wa[idx], ww[idx]]
            + np.floor(rng.random(len(idx)) * (tr.d1 - tr.d0)[wa[idx], ww[idx]])
        )
        parts_k.append(np.full(len(idx), KINDS.index(kind)))
    a, day, kind = (np.concatenate(p).astype(np.int64) for p in (parts_a, parts_d, parts_k))
    keep = active_on(tr, window, a, day)
    a, day, kind = a[keep], day[keep], kind[keep]
    hours = np.array([REGION_HOUR[r] for r in accounts.region])[a]
    ts = business_times(rng, day, hours)
    w = (day - window.start_ord) // 7
    n = len(a)
    # CSM notes: in the customer's language only part of the time
    langs = text_languages(rng, accounts.language[a], english_share=0.4)
    pools = [
        "neutral.qbr" if k == 1 else "neutral.onboarding_session" if k == 2 else "neutral.touchpoint" for k in kind
    ]
    cues = cues_at(rng, tr, accounts.onboarding_quality, a, w, "touchpoint")
    notes = composer.compose(langs, pools, cues.drivers, cues.weights, 1 + rng.binomial(1, 0.5, n), cues.p_signal)
    order = np.lexsort((kind, ts, a))
    return {
        "account_id": accounts.ids[a][order],
        "occurred_at": ts[order],
        "kind": np.array(KINDS, dtype=object)[kind][order],
        "notes": np.array(notes, dtype=object)[order],
    }
