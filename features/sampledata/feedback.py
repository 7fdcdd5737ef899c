"""Feedback: NPS and CSAT surveys, chat, call, email, in-app and review notes, and QBR
notes.

NPS campaigns run twice a year (several respondents per larger account), CSAT surveys
follow onboarding and arrive now and then; scores follow health with plenty of noise.
Conversation notes are more frequent when health is low (people chat when things break)
and calls pick up before renewals. Texts are 2-5 sentences in the account's language;
the `language` column carries the ISO code for most rows and is left empty for the rest.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from features.sampledata.accounts import Accounts
from features.sampledata.cues import cues_at, text_languages
from features.sampledata.lifecycle import Trajectories, active_on, sigmoid
from features.sampledata.text import Composer
from features.sampledata.timeline import REGION_HOUR, Window, business_times

CHANNELS = ("nps_survey", "csat_survey", "chat", "call", "email", "in_app", "qbr", "review")
NPS_MONTHS = (3, 9)  # campaign months
NPS_PANEL = (2, 3, 5)  # people asked per account, by segment
NOTE_RATE = {"chat": 0.035, "call": 0.02, "email": 0.03, "in_app": 0.012, "review": 0.003}
SEGMENT_FACTOR = (0.7, 1.0, 1.6)
LANGUAGE_CODE_SHARE = 0.7  # rows whose language column is filled
CONTEXT = {
    "nps_survey": "survey",
    "csat_survey": "survey",
    "in_app": "survey",
    "review": "survey",
    "chat": "conversation",
    "call": "conversation",
    "email": "conversation",
    "qbr": "qbr",
}


def _campaign_days(window: Window) -> list[int]:
    days = []
    for year in range(window.start.year, window.end.year + 1):
        for month in NPS_MONTHS:
            day = dt.date(year, month, 10).toordinal()
            if window.start_ord <= day < window.end_ord_excl:
                days.append(day)
    return days


def _surveys(rng, accounts: Accounts, window: Window, tr: Trajectories):
    parts = []
    for day in _campaign_days(window):
        w = (day - window.start_ord) // 7
        live = np.flatnonzero(tr.active[:, w])
        p = 0.45 + 0.12 * np.tanh(tr.health[live, w])
        n = rng.binomial(np.array(NPS_PANEL)[accounts.segment[live]], p)
        a = np.repeat(live, n)
        parts.append((a, day + np.minimum(rng.exponential(4.0, len(a)), 20).astype(np.int64), 0))
    wa, ww = np.nonzero(tr.active)
    after_onboarding = (tr.tenure_weeks[wa, ww] == 6) & (rng.random(len(wa)) < 0.6)
    csat = (rng.random(len(wa)) < 0.018) | after_onboarding
    parts.append((wa[csat], window.start_ord + 7 * ww[csat] + tr.d0[wa[csat], ww[csat]], 1))
    return parts


def _notes(rng, accounts: Accounts, window: Window, tr: Trajectories):
    wa, ww = np.nonzero(tr.active)
    h = tr.health[wa, ww]
    base = np.array(SEGMENT_FACTOR)[accounts.segment[wa]] * (tr.d1 - tr.d0)[wa, ww] / 7.0
    parts = []
    for channel, rate in NOTE_RATE.items():
        lam = base * rate
        if channel == "chat":
            lam = lam * np.exp(-0.4 * h)
        if channel == "call":
            lam = lam * (1 + 0.8 * (tr.to_renewal[wa, ww] < 90))
        n = rng.poisson(lam)
        idx = np.repeat(np.arange(len(wa)), n)
        span = (tr.d1 - tr.d0)[wa[idx], ww[idx]]
        day = (
            window.start_ord
            + 7 * ww[idx]
            + tr.d0[wa[idx], ww[idx]]
            + np.floor(rng.random(len(idx)) * span).astype(np.int64)
        )
        parts.append((wa[idx], day, CHANNELS.index(channel)))
    return parts


def feedback_rows(
    rng: np.random.Generator,
    accounts: Accounts,
    window: Window,
    tr: Trajectories,
    qbrs: tuple[np.ndarray, np.ndarray],
    composer: Composer,
) -> dict:
    parts = _surveys(rng, accounts, window, tr) + _notes(rng, accounts, window, tr)
    qa, qd = qbrs
    with_notes = rng.random(len(qa)) < 0.85
    parts.append((qa[with_notes], qd[with_notes] + 1, CHANNELS.index("qbr")))
    a = np.concatenate([p[0] for p in parts]).astype(np.int64)
    day = np.concatenate([p[1] for p in parts]).astype(np.int64)
    ch = np.concatenate([np.full(len(p[0]), p[2]) for p in parts])
    keep = active_on(tr, window, a, day)
    a, day, ch = a[keep], day[keep], ch[keep]
    n = len(a)
    w = (day - window.start_ord) // 7
    h = tr.health[a, w].astype(float)
    nps = np.clip(np.round(7.0 + 1.7 * h + 1.5 * rng.standard_normal(n)), 0, 10)
    csat = np.clip(np.round(3.9 + 0.7 * h + 0.8 * rng.standard_normal(n)), 1, 5)
    score = np.where(ch == 0, nps, np.where(ch == 1, csat, np.nan))
    # survey comments are optional (more likely from detractors); notes always have text
    comment_p = np.where(ch == 0, sigmoid(0.2 - 0.25 * (nps - 7)), 0.4)
    has_text = (ch >= 2) | (rng.random(n) < comment_p)

    ti = np.flatnonzero(has_text)
    langs = text_languages(rng, accounts.language[a[ti]], english_share=0.15)
    texts = np.full(n, None, dtype=object)
    for context in ("survey", "conversation", "qbr"):
        sel = np.array([CONTEXT[CHANNELS[c]] == context for c in ch[ti]], dtype=bool)
        rows = ti[sel]
        cues = cues_at(rng, tr, accounts.onboarding_quality, a[rows], w[rows], context)
        pool = "neutral.survey" if context == "survey" else f"neutral.{context}"
        texts[rows] = composer.compose(
            [langs[i] for i in np.flatnonzero(sel)],
            [pool] * len(rows),
            cues.drivers,
            cues.weights,
            2 + rng.binomial(3, 0.35, len(rows)),
            cues.p_signal,
        )
    language = np.full(n, None, dtype=object)
    coded = rng.random(len(ti)) < LANGUAGE_CODE_SHARE
    language[ti[coded]] = np.array(langs, dtype=object)[coded]

    hours = np.array([REGION_HOUR[r] for r in accounts.region])[a]
    ts = business_times(rng, day, hours)
    order = np.lexsort((ch, ts, a))
    order = order[np.argsort(ts[order], kind="stable")]
    return {
        "feedback_id": np.array([f"F{i + 1:06d}" for i in range(n)], dtype=object),
        "account_id": accounts.ids[a][order],
        "submitted_at": ts[order],
        "channel": np.array(CHANNELS, dtype=object)[ch][order],
        "score": score[order],
        "text": texts[order],
        "language": language[order],
    }
