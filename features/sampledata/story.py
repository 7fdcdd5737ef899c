"""The hidden account-health process that every observable table is drawn from.

Health h(t) is a weekly latent score per account (around 0.3, standard deviation about
0.7). It is the sum of
- a persistent account quality `mu` (partly set by onboarding quality),
- a mean-reverting random walk (AR(1), half-life about two months),
- an onboarding transient at the start of each relationship (good or bad onboarding),
- a champion-leaving shock (sudden drop that fades over about half a year),
- product-incident shocks (global dates hitting a share of accounts, fading in weeks),
- price-increase shocks (when an increase is announced before a renewal),
- seasonal budget pressure around the turn of the year (Q4/Q1), stronger for SMBs.
Nothing here knows whether an account will churn: churn, expansion and every signal in
the data are drawn from h, so signals predict churn only as well as h does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.sampledata.accounts import Accounts
from features.sampledata.products import Story
from features.sampledata.timeline import Window

PERSISTENCE = 0.92  # weekly AR(1) coefficient of the idiosyncratic part
INNOVATION_SD = 0.22
CHAMPION_DROP = (0.8, 1.5)
CHAMPION_DECAY = 0.965
INCIDENT_DECAY = 0.70
PRICE_DECAY = 0.92
ONBOARDING_DECAY = 0.90
SEASON_SENSITIVITY = (1.3, 0.9, 0.6)  # by segment
LAG = 0.30  # weight of this week's health in the lagged health that usage follows


@dataclass(frozen=True)
class Incidents:
    """Global product incidents: the week each hits and its severity per account."""

    weeks: np.ndarray
    severity: np.ndarray
    hits: np.ndarray  # (accounts, weeks) severity felt by each account, 0 if spared


def draw_incidents(rng: np.random.Generator, n: int, window: Window, per_year: float = 2.3) -> Incidents:
    years = window.n_days / 365.25
    count = max(1, int(rng.poisson(per_year * years)))
    weeks = np.sort(rng.choice(window.n_weeks, size=min(count, window.n_weeks), replace=False))
    severity = rng.uniform(0.4, 1.2, size=len(weeks))
    reach = rng.uniform(0.25, 0.7, size=len(weeks))
    hits = np.zeros((n, window.n_weeks), dtype=np.float32)
    for w, sev, r in zip(weeks, severity, reach):
        hit = rng.random(n) < r
        hits[hit, w] = sev * rng.uniform(0.6, 1.4, size=int(hit.sum()))
    return Incidents(weeks, severity, hits)


def budget_pressure(window: Window, peak_day: int = 10) -> np.ndarray:
    """Per week, 0..1: budget pressure peaking on day `peak_day` of the year (default early
    January), nil for the six months around its opposite."""
    doy = window.day_of_year()
    return np.clip(np.cos(2 * np.pi * (doy - peak_day) / 365.25), 0, None) ** 2


class HealthProcess:
    """Vectorised weekly update of every account's health."""

    def __init__(
        self,
        rng: np.random.Generator,
        accounts: Accounts,
        window: Window,
        incidents: Incidents,
        story: Story | None = None,
    ):
        n = accounts.n
        self.story = story or Story()
        self._rng = rng
        q = accounts.onboarding_quality
        self.quality = q
        # customers from before the window have survived a while: a little healthier
        self.mu = 0.35 + 0.15 * accounts.preexisting + 0.30 * q + 0.35 * rng.standard_normal(n)
        stationary = INNOVATION_SD / np.sqrt(1 - PERSISTENCE**2)
        self.z = stationary * rng.standard_normal(n)
        self.champion = np.zeros(n)
        self.incident = np.zeros(n)
        self.price = np.zeros(n)
        self.onboarding = np.zeros(n)
        self.sensitivity = np.array(SEASON_SENSITIVITY)[accounts.segment] * rng.uniform(0.5, 1.5, n)
        self.pressure = budget_pressure(window, self.story.season_peak_day)
        self.hits = incidents.hits
        self.h = self.mu + self.z
        self.lagged = self.h.copy()

    def start_relationship(self, idx: np.ndarray, quality: np.ndarray) -> None:
        """A new (or returning) customer: health starts from how onboarding goes."""
        self.onboarding[idx] = 0.9 * quality - 0.35
        self.z[idx] = 0.3 * self._rng.standard_normal(len(idx))
        self.champion[idx] = 0.0
        self.price[idx] = 0.0

    def price_notice(self, idx: int, increase: float) -> None:
        """The customer learns of a price increase at its next renewal."""
        self.price[idx] -= 0.5 * increase / 0.06

    def step(self, w: int) -> np.ndarray:
        rng = self._rng
        n = len(self.mu)
        self.z = PERSISTENCE * self.z + INNOVATION_SD * rng.standard_normal(n)
        left = rng.random(n) < self.story.champion_rate
        drop = rng.uniform(*CHAMPION_DROP, size=n)
        self.champion = CHAMPION_DECAY * self.champion - np.where(left, drop, 0.0)
        self.incident = INCIDENT_DECAY * self.incident - self.hits[:, w]
        self.price = PRICE_DECAY * self.price
        self.onboarding = ONBOARDING_DECAY * self.onboarding
        self.h = (
            self.mu
            + self.z
            + self.champion
            + self.incident
            + self.price
            + self.onboarding
            - self.story.season_amplitude * self.sensitivity * self.pressure[w]
        )
        self.lagged = (1 - LAG) * self.lagged + LAG * self.h
        return self.h
