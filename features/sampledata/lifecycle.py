"""The commercial life of every account, simulated week by week from its health and its
seat demand: starts, renewals, churn, price increases, seat growth, upgrades, add-ons,
downgrades and reactivations. The result is a list of subscription segments (stretches
during which one product line is unchanged) and per-week trajectories that the usage,
support and feedback generators read.

Churn is decided only at renewal points (contract anniversaries, or each month for
monthly billing) from the health of that week, plus a small health-independent hazard
(closures, acquisitions) that no signal can foresee.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from features.sampledata import catalog
from features.sampledata.accounts import SEGMENT_PROFILES, Accounts
from features.sampledata.story import HealthProcess
from features.sampledata.subscriptions import LineBook, Segment
from features.sampledata.timeline import Window, anniversary

BIG = 10**9
CHURN_BASE = {True: -2.55, False: -4.75}  # logit at renewal, annual vs monthly
# by months per term: quarterly and semiannual renewals lie between monthly and annual ones
CHURN_BASE_BY_MONTHS = {1: CHURN_BASE[False], 3: -3.6, 6: -3.05, 12: CHURN_BASE[True]}
CHURN_SLOPE = -1.6  # per unit of health
CLOSURE_RATE = 0.018 / 52  # weekly, independent of health
REACTIVATION_SHARE = 0.10
PRICE_INCREASE = {True: (0.35, 60), False: (0.035, 30)}  # (probability per renewal, notice days)


@dataclass(frozen=True)
class Trajectories:
    """Per (account, week) state; inactive weeks have d0 == d1."""

    d0: np.ndarray  # first active day offset in the week
    d1: np.ndarray  # exclusive end offset
    health: np.ndarray
    lagged: np.ndarray  # health as usage reflects it (a few weeks behind)
    seats: np.ndarray
    demand: np.ndarray  # people who would like a seat
    premium: np.ndarray
    addons: np.ndarray  # (accounts, weeks, len(ADDONS))
    features: np.ndarray  # (accounts, weeks, len(FEATURES)) adopted features
    tenure_weeks: np.ndarray  # weeks since the relationship started
    to_renewal: np.ndarray  # days from week start to the next renewal
    price_pending: np.ndarray  # a price increase has been announced

    @property
    def active(self) -> np.ndarray:
        return self.d1 > self.d0


@dataclass(frozen=True)
class Lifecycle:
    segments: list[Segment]
    trajectories: Trajectories
    starts: list[tuple[int, int, bool]]  # (account, day, returning customer)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def active_on(tr: Trajectories, window: Window, account: np.ndarray, day_ord: np.ndarray) -> np.ndarray:
    """Whether each account had a live subscription on each day (inside the window)."""
    rel = day_ord - window.start_ord
    ok = (rel >= 0) & (rel < window.n_days)
    w = np.clip(rel // 7, 0, window.n_weeks - 1)
    off = rel - 7 * w
    return ok & (tr.d0[account, w] <= off) & (off < tr.d1[account, w])


class _Simulation:
    def __init__(self, rng: np.random.Generator, accounts: Accounts, window: Window, health: HealthProcess):
        self.rng, self.acc, self.win, self.health = rng, accounts, window, health
        n, w = accounts.n, window.n_weeks
        self.status = np.zeros(n, np.int8)  # 0 not yet customer, 1 active, 2 churned
        self.annual = accounts.annual.copy()
        self.anchor = np.zeros(n, np.int64)
        self.term = np.zeros(n, np.int64)
        self.next_renew = np.full(n, BIG, np.int64)
        self.seats = accounts.seats0.astype(np.int64).copy()
        self.premium = np.zeros(n, bool)
        self.addons = np.zeros((n, len(catalog.ADDONS)), bool)
        self.features = np.zeros((n, len(catalog.FEATURES)), bool)
        self.price_factor = np.ones(n)
        self.pending = np.zeros(n)
        self.announce = np.full(n, BIG, np.int64)
        self.last_increase = np.full(n, -BIG, np.int64)
        self.demand = accounts.seats0.astype(float).copy()
        self.react = np.full(n, BIG, np.int64)
        self.rel_start = np.full(n, BIG, np.int64)
        self.active_to = np.full(n, BIG, np.int64)
        self.book = LineBook(n)
        self.starts: list[tuple[int, int, bool]] = []
        shape = (n, w)
        self.t = {k: np.zeros(shape, np.int8) for k in ("d0", "d1")}
        self.t.update({k: np.zeros(shape, np.float32) for k in ("health", "lagged", "demand")})
        self.t.update(
            seats=np.zeros(shape, np.int32),
            tenure_weeks=np.zeros(shape, np.int16),
            to_renewal=np.zeros(shape, np.int32),
            premium=np.zeros(shape, bool),
            price_pending=np.zeros(shape, bool),
            addons=np.zeros((*shape, len(catalog.ADDONS)), bool),
            features=np.zeros((*shape, len(catalog.FEATURES)), bool),
        )

    # -- subscription lines -------------------------------------------------------
    def _held(self, a: int) -> list[str]:
        plan = "premium" if self.premium[a] else "base"
        return [plan] + [p for p, held in zip(catalog.ADDONS, self.addons[a]) if held]

    def _open_line(self, a: int, product: str, day: int, seats: int | None = None) -> None:
        seats = int(self.seats[a]) if seats is None else seats
        mrr = catalog.monthly_price(
            product,
            seats,
            int(self.acc.segment[a]),
            float(self.acc.discount[a]),
            float(self.price_factor[a]),
            bool(self.annual[a]),
        )
        self.book.open_line(
            Segment(
                a,
                product,
                day,
                None,
                seats if catalog.seat_based(product) else None,
                mrr,
                bool(self.annual[a]),
                int(self.anchor[a]),
                self.acc.months(a, bool(self.annual[a])),
            )
        )

    def _close_all(self, a: int, day: int) -> None:
        self.book.close_all(a, day)

    def _reprice(self, a: int, day: int) -> None:
        self._close_all(a, day)
        for product in self._held(a):
            self._open_line(a, product, day)

    def _renewal_date(self, a: int, k: int) -> int:
        months = self.acc.months(a, bool(self.annual[a]))
        return anniversary(dt.date.fromordinal(int(self.anchor[a])), k, months).toordinal()

    # -- relationship events ------------------------------------------------------
    def _begin(self, a: int, day: int, returning: bool) -> None:
        rng, seg = self.rng, int(self.acc.segment[a])
        self.status[a], self.anchor[a], self.term[a] = 1, day, 1
        self.rel_start[a], self.active_to[a] = day, BIG
        self.next_renew[a] = self._renewal_date(a, 1)
        if returning:
            floor = SEGMENT_PROFILES[seg].min_seats
            self.seats[a] = max(floor, int(np.ceil(self.demand[a] * 0.8)))
            self.annual[a] = self.annual[a] and rng.random() < 0.6
            self.premium[a], self.addons[a] = False, False
        else:
            self.premium[a] = rng.random() < catalog.PREMIUM_AT_START[seg]
            self.addons[a] = [rng.random() < catalog.ADDON_AT_START[p][seg] for p in catalog.ADDONS]
        self.demand[a] = self.seats[a] * rng.uniform(0.55, 0.9)
        self.features[a] = rng.random(len(catalog.FEATURES)) < 0.15
        self.features[a, 0] = True
        quality = self.acc.onboarding_quality[a]
        if returning:
            quality = 0.5 * quality + 0.8 * rng.standard_normal()
        self.health.start_relationship(np.array([a]), np.array([quality]))
        for product in self._held(a):
            self._open_line(a, product, day)
        self.starts.append((a, day, returning))
        self._plan_increase(a)

    def _begin_before_window(self, a: int) -> None:
        """An existing customer: history lines back to its creation, current term open."""
        rng, seg = self.rng, int(self.acc.segment[a])
        created, start = int(self.acc.created_ord[a]), self.win.start_ord
        self.status[a], self.anchor[a], self.rel_start[a] = 1, created, created
        self.premium[a] = rng.random() < catalog.PREMIUM_AT_START[seg] + 0.1
        self.addons[a] = [rng.random() < catalog.ADDON_AT_START[p][seg] for p in catalog.ADDONS]
        self.features[a] = rng.random(len(catalog.FEATURES)) < 0.5
        self.features[a, 0] = True
        self.price_factor[a] = rng.uniform(0.88, 1.0)
        self.demand[a] = self.seats[a] * rng.uniform(0.6, 0.95)
        k = 1
        while self._renewal_date(a, k) <= start:
            k += 1
        self.term[a], self.next_renew[a] = k, self._renewal_date(a, k)
        current = self._renewal_date(a, k - 1) if self.annual[a] else created
        if self.annual[a]:
            floor = SEGMENT_PROFILES[seg].min_seats
            plan = self._held(a)[0]
            for j in range(k - 1):
                seats = max(floor, int(round(self.seats[a] * 0.88 ** (k - 1 - j))))
                self._open_line(a, plan, self._renewal_date(a, j), seats)
                self._close_all(a, self._renewal_date(a, j + 1))
        for product in self._held(a):
            self._open_line(a, product, current)
        self._plan_increase(a)

    def _plan_increase(self, a: int) -> None:
        probability, notice = PRICE_INCREASE[bool(self.annual[a])]
        recent = self.next_renew[a] - self.last_increase[a] < 330  # at most one a year
        if not recent and self.rng.random() < probability * self.health.story.price_increase_scale:
            self.pending[a] = self.rng.uniform(0.04, 0.09)
            self.announce[a] = self.next_renew[a] - notice
        else:
            self.pending[a], self.announce[a] = 0.0, BIG

    def _churn(self, a: int, day: int) -> None:
        self._close_all(a, day)
        self.status[a], self.active_to[a], self.next_renew[a] = 2, day, BIG
        self.announce[a], self.pending[a] = BIG, 0.0
        if self.rng.random() < REACTIVATION_SHARE:
            self.react[a] = day + int(self.rng.integers(75, 400))

    def _renew(self, a: int, day: int) -> None:
        rng, h = self.rng, self.health.h[a]
        annual, increase = bool(self.annual[a]), self.pending[a]
        seg = int(self.acc.segment[a])
        logit = (
            CHURN_BASE_BY_MONTHS[self.acc.months(a, annual)]
            + SEGMENT_PROFILES[seg].churn_offset
            + CHURN_SLOPE * h
            + (0.3 if increase > 0 else 0.0)
        )
        if rng.random() < sigmoid(logit):
            self._churn(a, day)
            return
        old_seats = self.seats[a]
        self.price_factor[a] *= 1 + increase
        if increase > 0:
            self.last_increase[a] = day
        floor = SEGMENT_PROFILES[seg].min_seats
        demand = self.demand[a]
        if annual:
            if demand > 0.97 * old_seats and h > -0.2 and rng.random() < 0.7:
                self.seats[a] = int(np.ceil(demand * rng.uniform(1.1, 1.3)))
            elif demand < 0.75 * old_seats and rng.random() < 0.6:
                self.seats[a] = max(floor, int(np.ceil(demand * 1.05)))
            if self.premium[a] and h < -0.7 and rng.random() < 0.3:
                self.premium[a] = False
            drop = (h < -0.4) & (rng.random(len(catalog.ADDONS)) < 0.35)
            self.addons[a] &= ~drop
        elif demand < 0.65 * old_seats and day - self.rel_start[a] >= 182 and rng.random() < 0.25:
            self.seats[a] = max(floor, int(np.ceil(demand * 1.05)))
        self.term[a] += 1
        self.next_renew[a] = self._renewal_date(a, int(self.term[a]))
        if annual or increase > 0 or self.seats[a] != old_seats:
            self._reprice(a, day)
        self._plan_increase(a)

    # -- the weekly loop ----------------------------------------------------------
    def _midterm(self, ws: int, busy: np.ndarray) -> None:
        """Changes between renewals: closures, seat growth, upgrades, add-ons and (monthly
        only) seat reductions. At most one per account and week."""
        rng, n, h = self.rng, self.acc.n, self.health.h
        u = rng.random((5, n))
        day = ws + rng.integers(0, 7, n)
        ok = (self.status == 1) & ~busy & (ws - self.rel_start >= 14) & (day < self.win.end_ord_excl)
        util = self.demand / self.seats
        closure = ok & (u[0] < CLOSURE_RATE)
        ok &= ~closure
        expand = ok & (util > 1.0) & (h > -0.2) & (u[1] < 0.15)
        ok &= ~expand
        breadth = self.features.sum(axis=1)
        upgrade = ok & ~self.premium & (u[2] < 0.0012 * np.exp(0.8 * h + 0.25 * (breadth - 3)))
        ok &= ~upgrade
        addon = ok & ~self.addons.all(axis=1) & (u[3] < 0.0010 * np.exp(0.8 * h))
        ok &= ~addon
        settled = ws - self.rel_start >= 182  # new customers grow into their seats first
        shrink = ok & settled & ~self.annual & (util < 0.65) & (u[4] < 0.08)
        for a in np.flatnonzero(closure):
            self._churn(a, int(day[a]))
        for a in np.flatnonzero(expand):
            wanted = int(np.ceil(self.demand[a] * rng.uniform(1.1, 1.35)))
            self.seats[a] = max(self.seats[a] + 1, wanted)
            self._reprice(a, int(day[a]))
        for a in np.flatnonzero(upgrade):
            self.premium[a] = True
            self._reprice(a, int(day[a]))
        for a in np.flatnonzero(addon):
            missing = np.flatnonzero(~self.addons[a])
            j = int(missing[rng.integers(len(missing))])
            self.addons[a, j] = True
            self._open_line(a, catalog.ADDONS[j], int(day[a]))
        for a in np.flatnonzero(shrink):
            floor = SEGMENT_PROFILES[int(self.acc.segment[a])].min_seats
            self.seats[a] = max(floor, int(np.ceil(self.demand[a] * 1.15)))
            self._reprice(a, int(day[a]))

    def _adopt_features(self) -> None:
        n, k = self.features.shape
        avail = np.ones((n, k), bool)
        for name in catalog.PREMIUM_FEATURES:
            avail[:, catalog.FEATURES.index(name)] = self.premium
        api = self.addons[:, catalog.ADDONS.index("addon_api")]
        avail[:, catalog.FEATURES.index(catalog.API_FEATURE)] = api
        s = self.health.lagged[:, None]
        u = self.rng.random((n, k))
        adopt = u < 0.05 * sigmoid(1.5 * s)
        drop = u > 1 - 0.012 * sigmoid(-2.0 * s)
        self.features = (self.features | adopt) & ~drop & avail
        self.features[:, 0] = True

    def _record(self, w: int, ws: int) -> None:
        t, end = self.t, self.win.end_ord_excl
        t["d0"][:, w] = np.clip(self.rel_start - ws, 0, 7)
        t["d1"][:, w] = np.clip(np.minimum(self.active_to, end) - ws, 0, 7)
        t["health"][:, w] = self.health.h
        t["lagged"][:, w] = self.health.lagged
        t["demand"][:, w] = self.demand
        t["seats"][:, w] = self.seats
        t["premium"][:, w] = self.premium
        t["addons"][:, w] = self.addons
        t["features"][:, w] = self.features
        t["tenure_weeks"][:, w] = np.clip((ws - self.rel_start) // 7, 0, 30000)
        t["to_renewal"][:, w] = np.clip(self.next_renew - ws, 0, 99999)
        t["price_pending"][:, w] = self.announce < ws + 7

    def run(self) -> Lifecycle:
        acc, win, rng = self.acc, self.win, self.rng
        n, end = acc.n, win.end_ord_excl
        for a in np.flatnonzero(acc.preexisting):
            self._begin_before_window(int(a))
        for w, ws in enumerate(win.week_start_ords().tolist()):
            we = ws + 7
            h = self.health.step(w)
            live = self.status == 1
            grow = np.exp(-0.0005 + 0.004 * h + 0.012 * rng.standard_normal(n))
            self.demand = np.where(live, np.maximum(1.0, self.demand * grow), self.demand)
            busy = np.zeros(n, bool)
            for a in np.flatnonzero((self.status == 0) & (acc.created_ord < we)):
                self._begin(int(a), int(acc.created_ord[a]), returning=False)
                busy[a] = True
            for a in np.flatnonzero((self.status == 2) & (self.react < we)):
                day = int(self.react[a])
                self.react[a] = BIG
                if day < end:
                    self._begin(int(a), day, returning=True)
                    busy[a] = True
            for a in np.flatnonzero((self.status == 1) & (self.next_renew < min(we, end))):
                self._renew(int(a), int(self.next_renew[a]))
                busy[a] = True
            notified = (self.status == 1) & (self.announce >= ws) & (self.announce < we)
            for a in np.flatnonzero(notified):
                self.health.price_notice(int(a), float(self.pending[a]))
            self._midterm(ws, busy)
            self._adopt_features()
            self._record(w, ws)
        term_end = np.where(self.status == 1, self.next_renew, 0)
        return Lifecycle(self.book.finish(term_end), Trajectories(**self.t), self.starts)


def simulate(rng: np.random.Generator, accounts: Accounts, window: Window, health: HealthProcess) -> Lifecycle:
    """Run the commercial simulation for every account over the window."""
    return _Simulation(rng, accounts, window, health).run()
