"""What a customer is inclined to say at a given moment: per text, which DOMAIN 4
buckets it is likely to touch and how each leans (the driver of its polarity).

Everything comes from the hidden state of that week (health, seat pressure, tenure, a
pending price increase, renewal proximity) and never from a future outcome: an account
that will churn only sounds unhappy in as far as its health is low, and a healthy
account can still churn without having said a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.sampledata.accounts import LANGUAGES
from features.sampledata.lifecycle import Trajectories
from features.sampledata.text import BUCKETS

# Base bucket mix per context, in BUCKETS order: renewal, upsell, onboarding, value,
# support, pricing.
CONTEXT_WEIGHTS = {
    "ticket": (0.05, 0.04, 0.12, 0.04, 0.65, 0.10),
    "survey": (0.15, 0.10, 0.10, 0.30, 0.15, 0.20),
    "conversation": (0.22, 0.18, 0.12, 0.16, 0.14, 0.18),
    "qbr": (0.30, 0.22, 0.05, 0.28, 0.05, 0.10),
    "touchpoint": (0.25, 0.20, 0.15, 0.15, 0.10, 0.15),
}
# Probability that a sentence carries a cue rather than neutral content.
SIGNAL_SHARE = {"ticket": 0.30, "survey": 0.45, "conversation": 0.38, "qbr": 0.42, "touchpoint": 0.28}
ONBOARDING_WEEKS = 16
_B = {name: i for i, name in enumerate(BUCKETS)}


@dataclass(frozen=True)
class Cues:
    drivers: np.ndarray  # (rows, 6) polarity driver per bucket, > 0 leans green
    weights: np.ndarray  # (rows, 6) relative chance of each bucket
    p_signal: np.ndarray  # (rows,) chance that a sentence is a cue


def cues_at(
    rng: np.random.Generator,
    tr: Trajectories,
    quality: np.ndarray,
    account: np.ndarray,
    week: np.ndarray,
    context: str,
    friction: np.ndarray | None = None,
) -> Cues:
    """Cues for texts written by `account` in `week` (arrays of equal length)."""
    a, w = account, week
    h = tr.health[a, w].astype(float)
    lagged = tr.lagged[a, w].astype(float)
    util = tr.demand[a, w] / np.maximum(tr.seats[a, w], 1)
    early = tr.tenure_weeks[a, w] < ONBOARDING_WEEKS
    price = tr.price_pending[a, w]
    mood = 0.35 * rng.standard_normal(len(a))  # one text is in one mood
    drivers = np.empty((len(a), len(BUCKETS)))
    drivers[:, _B["renewal_likelihood"]] = h
    drivers[:, _B["upsell_readiness"]] = 2.5 * (util - 0.9) + 0.4 * h
    drivers[:, _B["onboarding_clarity"]] = np.where(early, 0.9 * quality[a] + 0.3 * h, 0.4 * h + 0.4)
    drivers[:, _B["value_realization"]] = 0.5 * h + 0.5 * lagged + 0.2
    drivers[:, _B["support_friction"]] = h + 0.3 - (0 if friction is None else friction)
    drivers[:, _B["pricing_perception"]] = h + 0.2 - 1.2 * price
    drivers += mood[:, None]

    weights = np.tile(np.array(CONTEXT_WEIGHTS[context]), (len(a), 1))
    weights[:, _B["onboarding_clarity"]] *= np.where(early, 4.0, 0.5)
    weights[:, _B["pricing_perception"]] *= np.where(price, 3.0, 1.0)
    weights[:, _B["renewal_likelihood"]] *= np.where(tr.to_renewal[a, w] < 120, 2.5, 1.0)
    weights[:, _B["upsell_readiness"]] *= np.where((util > 0.95) | (util < 0.7), 2.5, 1.0)
    p_signal = SIGNAL_SHARE[context] * (1 + 0.25 * np.clip(-h, 0, 2))
    return Cues(drivers, weights, p_signal)


def text_languages(rng: np.random.Generator, account_language: np.ndarray, english_share: float) -> list[str]:
    """The language each text is written in: the account's, except that French and
    Italian speakers write some texts in English."""
    lang = np.where(rng.random(len(account_language)) < english_share, 0, account_language)
    return [LANGUAGES[i] for i in lang]
