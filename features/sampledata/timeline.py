"""The data window and calendar arithmetic of the sample workspace.

Dates are handled as proleptic ordinals (``date.toordinal()``) so whole columns stay in
numpy; the window is cut into weeks that start on the window's first day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import numpy as np

EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
SECONDS_PER_DAY = 86_400
REGION_HOUR = {"EMEA": 10.5, "NA": 17.0, "APAC": 3.0, "LATAM": 15.0}  # UTC middle of the work day


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 Feb falls back to 28 Feb)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` shifted by whole months, clipped to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def anniversary(anchor: dt.date, k: int, period_months: int) -> dt.date:
    """The k-th billing date after `anchor` (always counted from the anchor, so day 31
    anchors keep returning to the 31st where the month has one)."""
    return add_months(anchor, k * period_months)


@dataclass(frozen=True)
class Window:
    """The observed period: every timestamp written lies in [start, end] (whole days)."""

    start: dt.date
    end: dt.date

    @classmethod
    def ending(cls, end: dt.date, years: int) -> Window:
        if years < 1:
            raise ValueError("years must be >= 1")
        return cls(years_before(end, years) + dt.timedelta(days=1), end)

    @property
    def start_ord(self) -> int:
        return self.start.toordinal()

    @property
    def end_ord_excl(self) -> int:
        """First day after the window."""
        return self.end.toordinal() + 1

    @property
    def n_days(self) -> int:
        return self.end_ord_excl - self.start_ord

    @property
    def n_weeks(self) -> int:
        return -(-self.n_days // 7)

    def week_start_ords(self) -> np.ndarray:
        return self.start_ord + 7 * np.arange(self.n_weeks, dtype=np.int64)

    def week_of(self, ordinal: int) -> int:
        return (ordinal - self.start_ord) // 7

    def day_of_year(self) -> np.ndarray:
        """Day of year (1..366) of each week's first day."""
        return np.array([dt.date.fromordinal(int(o)).timetuple().tm_yday for o in self.week_start_ords()])

    def weekday_of_start(self) -> int:
        return self.start.weekday()


def ordinals_to_dates(ords: np.ndarray) -> np.ndarray:
    """Ordinals to numpy datetime64[D]."""
    return (np.asarray(ords, dtype=np.int64) - EPOCH_ORD).astype("datetime64[D]")


def to_timestamps(day_ords: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Day ordinals plus seconds into the day, as numpy datetime64[s]."""
    secs = (np.asarray(day_ords, dtype=np.int64) - EPOCH_ORD) * SECONDS_PER_DAY
    return (secs + np.asarray(seconds, dtype=np.int64)).astype("datetime64[s]")


def weekday_offsets(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, first_weekday: int) -> np.ndarray:
    """A day offset in [lo, hi) per row, weekends rarer: a weekend draw is redrawn once."""
    span = np.maximum(hi - lo, 1)
    a = lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    b = lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    return np.where((first_weekday + a) % 7 >= 5, b, a)


def business_times(rng: np.random.Generator, day_ords: np.ndarray, centre_hour: np.ndarray) -> np.ndarray:
    """Timestamps on the given days, spread around each row's working-day centre (UTC)."""
    hour = centre_hour + 2.6 * rng.standard_normal(len(day_ords))
    seconds = np.mod(np.round(hour * 3600), SECONDS_PER_DAY).astype(np.int64)
    return to_timestamps(day_ords, seconds)
