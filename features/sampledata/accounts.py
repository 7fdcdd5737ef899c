"""Who the customers are: segment, firmographics, language, start date, owner and the
commercial terms they sign up with (seats, discount, billing period)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

import numpy as np

from features.sampledata.timeline import Window

SEGMENTS = ("smb", "mid_market", "enterprise")
REGIONS = ("EMEA", "NA", "APAC", "LATAM")
LANGUAGES = ("en", "fr", "it")


@dataclass(frozen=True)
class SegmentProfile:
    share: float
    seats_median: float
    seats_sigma: float
    min_seats: int
    discount: tuple[float, float]  # volume discount off list price, uniform range
    annual_share: float  # share of accounts on annual contracts
    churn_offset: float  # added to the churn logit at renewal


SEGMENT_PROFILES = (
    SegmentProfile(0.60, 7.0, 0.55, 2, (0.00, 0.05), 0.30, 0.35),
    SegmentProfile(0.30, 25.0, 0.50, 10, (0.08, 0.20), 0.65, 0.00),
    SegmentProfile(0.10, 100.0, 0.55, 40, (0.20, 0.40), 0.95, -0.55),
)
LANGUAGE_SHARES = (0.82, 0.10, 0.08)
# Region given language: French speakers are in EMEA or Quebec, Italians in EMEA.
REGION_BY_LANGUAGE = ((0.30, 0.45, 0.15, 0.10), (0.88, 0.12, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0))
PREEXISTING_SHARE = 0.45  # accounts already customers when the window opens
INVOICE_LINE_SHARE = 0.35  # monthly accounts whose lines are cut per invoiced month


def load_names() -> dict:
    text = resources.files("features.sampledata").joinpath("phrases/names.toml").read_text("utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class Accounts:
    """One entry per account, all arrays of the same length, ordered by creation."""

    ids: np.ndarray
    names: np.ndarray
    segment: np.ndarray  # index into SEGMENTS
    industry: np.ndarray
    region: np.ndarray
    language: np.ndarray  # index into LANGUAGES
    created_ord: np.ndarray  # day the account was created (= first subscription start)
    created_second: np.ndarray  # second of that day
    preexisting: np.ndarray  # created before the window opens
    csm: np.ndarray
    annual: np.ndarray  # annual contract (else monthly billing)
    invoice_lines: np.ndarray  # monthly account written as one line per month
    seats0: np.ndarray
    discount: np.ndarray
    onboarding_quality: np.ndarray  # N(0, 1): how well the account was onboarded
    # months per term of the term contracts (`annual` True: 3, 6 or 12); None: all 12
    term_months: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def months(self, a: int, term: bool) -> int:
        """Months per billing period of account `a` on a term contract (`term`) or monthly."""
        if not term:
            return 1
        return 12 if self.term_months is None else int(self.term_months[a])


def _company_names(rng: np.random.Generator, language: np.ndarray, names: dict) -> np.ndarray:
    taken: set[str] = set()
    out = []
    for lang in language:
        bank = names["company"][LANGUAGES[lang]]
        name = ""
        for attempt in range(60):
            first = bank["first"][rng.integers(len(bank["first"]))]
            second = bank["second"][rng.integers(len(bank["second"]))]
            suffix = bank["suffix"][rng.integers(len(bank["suffix"]))]
            name = bank["pattern"].format(first=first, second=second)
            if attempt >= 30:  # the word space is crowded: add a distinguishing numeral
                name = f"{name} {attempt - 28}"
            name = f"{name} {suffix}".strip()
            if name not in taken:
                break
        taken.add(name)
        out.append(name)
    return np.array(out, dtype=object)


def draw_accounts(rng: np.random.Generator, n: int, window: Window) -> Accounts:
    names = load_names()
    segment = rng.choice(3, size=n, p=[p.share for p in SEGMENT_PROFILES])
    language = rng.choice(3, size=n, p=LANGUAGE_SHARES)
    region = np.array([rng.choice(4, p=REGION_BY_LANGUAGE[lang]) for lang in language])

    preexisting = rng.random(n) < PREEXISTING_SHARE
    # Survivors from earlier years: recent cohorts are larger.
    back = 14 + np.floor(365 * 5 * rng.random(n) ** 1.6).astype(np.int64)
    arrive = np.floor((window.n_days - 21) * rng.random(n) ** 0.9).astype(np.int64)
    created = np.where(preexisting, window.start_ord - back, window.start_ord + arrive)
    order = np.argsort(created, kind="stable")
    segment, language, region = segment[order], language[order], region[order]
    preexisting, created = preexisting[order], created[order]

    profiles = [SEGMENT_PROFILES[s] for s in segment]
    seats0 = np.array(
        [
            max(p.min_seats, int(round(p.seats_median * np.exp(p.seats_sigma * z))))
            for p, z in zip(profiles, rng.standard_normal(n))
        ]
    )
    discount = np.array([rng.uniform(*p.discount) for p in profiles])
    annual = rng.random(n) < np.array([p.annual_share for p in profiles])
    invoice_lines = ~annual & (rng.random(n) < INVOICE_LINE_SHARE)

    csms = names["csm"]
    k = names["enterprise_csms"]
    csm = np.where(
        segment == 2,
        np.array(csms[:k], dtype=object)[rng.integers(k, size=n)],
        np.array(csms[k:], dtype=object)[rng.integers(len(csms) - k, size=n)],
    )
    industries = np.array(names["industries"], dtype=object)
    return Accounts(
        ids=np.array([f"A{i + 1:05d}" for i in range(n)], dtype=object),
        names=_company_names(rng, language, names),
        segment=segment,
        industry=industries[rng.integers(len(industries), size=n)],
        region=np.array(REGIONS, dtype=object)[region],
        language=language,
        created_ord=created,
        created_second=rng.integers(7 * 3600, 19 * 3600, size=n),
        preexisting=preexisting,
        csm=csm,
        annual=annual,
        invoice_lines=invoice_lines,
        seats0=seats0,
        discount=discount,
        onboarding_quality=rng.standard_normal(n),
    )
