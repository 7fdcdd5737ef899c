"""The context line of a scored account: the facts that frame a score but are not drivers
(DOMAIN 5, drivers and context), e.g. "renews 2027-03-01, in 88 days · MRR 5,028 ·
customer for 2.3 years".

Contract timing, MRR and tenure explain much of a churn score, yet a CSM cannot change
them; they are said here, once, beside the reasons (which are drivers only, see
serving.scoring.explain). The contract end is the snapshot's `next_renewal` date when
it has one, else as_of + `days_to_next_renewal`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pandas as pd

SEPARATOR = " · "
COLUMNS = ("next_renewal", "days_to_next_renewal", "mrr", "tenure_days")


def _number(value) -> float | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _day(value) -> date | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, datetime):  # pandas Timestamps too (NaT included)
        return None if pd.isna(value) else value.date()
    if isinstance(value, date):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(stamp) else stamp.date()


def _days(n: int) -> str:
    return f"{n:,} day" if n == 1 else f"{n:,} days"


def renewal_text(next_renewal: date | None, days: float | None, as_of: date | None) -> str:
    """The contract end, e.g. "renews 2027-03-01, in 88 days" (either fact is found from
    the other and as_of)."""
    if next_renewal is None and days is not None and as_of is not None:
        next_renewal = as_of + timedelta(days=int(round(days)))
    if days is None and next_renewal is not None and as_of is not None:
        days = (next_renewal - as_of).days
    if next_renewal is None and days is None:
        return "no contract end recorded"
    on = f" {next_renewal.isoformat()}" if next_renewal is not None else ""
    if days is None:
        return f"renews{on}"
    n = int(round(days))
    if n < 0:
        return f"contract ended{on}, {_days(-n)} ago"
    return f"renews{on}, today" if n == 0 else f"renews{on}, in {_days(n)}"


def tenure_text(days: float | None) -> str | None:
    """How long they have been a customer, e.g. "customer for 2.3 years" (months under a
    year, days under two months)."""
    if days is None or days < 0:
        return None
    if days < 60:
        return f"customer for {_days(int(round(days)))}"
    if days < 365:
        return f"customer for {int(round(days / 30.44))} months"
    return f"customer for {days / 365.25:.1f} years"


def context_line(row, as_of: date | None = None) -> str:
    """The context line of one snapshot record (a mapping: a dict or a pandas row)."""
    get = row.get if hasattr(row, "get") else (lambda key: None)
    day = as_of if as_of is not None else _day(get("as_of"))
    parts = [renewal_text(_day(get("next_renewal")), _number(get("days_to_next_renewal")), day)]
    mrr = _number(get("mrr"))
    if mrr is not None:
        parts.append(f"MRR {mrr:,.0f}")
    tenure = tenure_text(_number(get("tenure_days")))
    if tenure:
        parts.append(tenure)
    return SEPARATOR.join(parts)


def context_lines(frame: pd.DataFrame, as_of: Sequence | pd.Series | None = None) -> list[str]:
    """The context line of every row of `frame`, in order. `as_of`: per row, the snapshot
    date (default: the frame's as_of column)."""
    n = len(frame)
    columns = {c: (frame[c].tolist() if c in frame.columns else [None] * n) for c in COLUMNS}
    if as_of is None:
        as_of = frame["as_of"].tolist() if "as_of" in frame.columns else [None] * n
    days = list(as_of)
    return [
        context_line(dict(zip(COLUMNS, values)), _day(day))
        for day, values in zip(days, zip(*(columns[c] for c in COLUMNS)))
    ]
