"""The one point-in-time filter: which rows a snapshot at `as_of` may see.

A snapshot at as_of (a date; midnight UTC) uses only rows with timestamps strictly
before as_of. Every builder goes through `rows_before` or `trailing`, so the rule lives
in one place and the property test of the snapshot table covers all of them.
"""

from __future__ import annotations

import ibis
from ibis import _


def day_of(table: ibis.Table, time_col: str) -> ibis.Value:
    """The UTC calendar day of a timestamp (or date) column.

    For a day d and a snapshot date a, `d < a` holds exactly when the timestamp is
    before a's midnight, so windows can be computed on daily aggregates without error.
    """
    col = table[time_col]
    return col.date() if col.type().is_timestamp() else col


def rows_before(table: ibis.Table, calendar: ibis.Table, day_col: str = "day") -> ibis.Table:
    """Each row paired with every as_of it is visible to (day < as_of): all history."""
    return table.join(calendar, table[day_col] < calendar.as_of)


def trailing(table: ibis.Table, calendar: ibis.Table, days: int, day_col: str = "day") -> ibis.Table:
    """Each row paired with every as_of whose trailing window of `days` holds it.

    Window: as_of - days <= day < as_of. The result keeps the row's columns plus as_of
    and `age_days` (as_of - day, from 1 to `days`).
    """
    joined = table.join(
        calendar,
        [
            table[day_col] < calendar.as_of,
            table[day_col] >= calendar.as_of - ibis.interval(days=days),
        ],
    )
    return joined.mutate(age_days=_.as_of.delta(_[day_col], unit="day"))
