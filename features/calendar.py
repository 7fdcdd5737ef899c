"""The as-of calendar: the dates on which snapshots are taken.

A snapshot at ``as_of`` describes an account as it was known at ``as_of`` 00:00 UTC:
its features use only rows timestamped strictly before ``as_of`` (for a date column such
as ``start_date``: ``start_date < as_of``), and its labels look at what happens from
``as_of`` on. Month-end calendars use the last day of each month; weekly calendars use
Mondays.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal

import ibis
import pyarrow as pa

Frequency = Literal["month", "week"]


def as_of_calendar(start: date, end: date, freq: Frequency = "month") -> list[date]:
    """Every month-end (``freq="month"``) or Monday (``freq="week"``) in [start, end]."""
    if freq == "month":
        dates = []
        year, month = start.year, start.month
        while True:
            month_end = date(year, month, _cal.monthrange(year, month)[1])
            if month_end > end:
                break
            if month_end >= start:
                dates.append(month_end)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return dates
    if freq == "week":
        first = start + timedelta(days=(7 - start.weekday()) % 7)
        n = (end - first).days // 7 + 1 if first <= end else 0
        return [first + timedelta(weeks=i) for i in range(n)]
    raise ValueError(f"freq must be 'month' or 'week', not {freq!r}")


def calendar_table(dates: Iterable[date]) -> ibis.Table:
    """An in-memory table with one ``as_of`` column of type date (sorted, unique)."""
    unique = sorted(set(dates))
    return ibis.memtable(pa.table({"as_of": pa.array(unique, type=pa.date32())}))


def partial_as_of(populations: Iterable[tuple[date, int]], max_drop: float) -> dict[date, tuple[date, int]]:
    """The as-of dates whose population looks cut off: active accounts fell by more than
    `max_drop` (a share) against the previous as-of date that was not partial itself.

    `populations` holds (as_of, active accounts) pairs. Returns partial date -> (the
    date it was compared with, that date's accounts). Comparing with the last complete
    date, not the previous one, keeps two partial dates in a row (a weekly calendar over
    a missing month) both flagged. A business shrinking by less than `max_drop` per
    period is never partial."""
    out: dict[date, tuple[date, int]] = {}
    reference: tuple[date, int] | None = None
    for day, n in sorted(populations):
        if reference is not None and n < (1 - max_drop) * reference[1]:
            out[day] = reference
            continue
        reference = (day, n)
    return out
