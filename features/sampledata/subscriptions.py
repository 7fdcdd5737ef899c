"""Subscription lines: the book of open and closed lines kept during the simulation, and
the `subscriptions` table written from it.

A line is one product over one stretch with constant seats and price. Annual contracts
get a line per contract year (and per mid-term change); monthly accounts get a line per
change, open-ended while live, except some whose lines are cut per invoiced month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from features.sampledata.accounts import Accounts
from features.sampledata.products import PERIOD_WORDS
from features.sampledata.timeline import Window, anniversary, ordinals_to_dates


@dataclass
class Segment:
    account: int
    product: str
    start: int
    end: int | None
    seats: int | None
    mrr: float
    annual: bool  # a term contract (annual, or quarterly/semiannual for some products)
    anchor: int  # billing anchor of the relationship (for monthly invoice lines)
    months: int = 12  # months per billing period of a term contract


class LineBook:
    """Open lines per account; closing moves them to the written history."""

    def __init__(self, n: int):
        self.open: list[dict[str, Segment]] = [{} for _ in range(n)]
        self.closed: list[Segment] = []

    def open_line(self, segment: Segment) -> None:
        self.open[segment.account][segment.product] = segment

    def close_all(self, a: int, day: int) -> None:
        for seg in self.open[a].values():
            if day > seg.start:  # a line closed the day it opened never existed
                seg.end = day
                self.closed.append(seg)
        self.open[a] = {}

    def finish(self, term_end: np.ndarray) -> list[Segment]:
        """Close the books at the end of the window: annual lines end with their term,
        monthly lines stay open-ended."""
        out = list(self.closed)
        for a, lines in enumerate(self.open):
            for seg in lines.values():
                seg.end = int(term_end[a]) if seg.annual else None
                out.append(seg)
        return out


def _invoice_split(seg: Segment, window: Window) -> list[tuple[int, int | None]]:
    """Cut a monthly line at each billing date of its relationship."""
    anchor = dt.date.fromordinal(seg.anchor)
    stop = seg.end if seg.end is not None else None
    pieces, k, lo = [], 1, seg.start
    while True:
        cut = anniversary(anchor, k, 1).toordinal()
        k += 1
        if cut <= lo:
            continue
        hi = cut if stop is None else min(cut, stop)
        pieces.append((lo, hi))
        lo = hi
        if (stop is not None and lo >= stop) or (stop is None and lo >= window.end_ord_excl):
            return pieces


def subscription_rows(
    segments: list[Segment], accounts: Accounts, window: Window, export_lag_days: int = 0, custom_term_every: int = 0
) -> dict:
    """Columns of the subscriptions table, sorted by account and start.

    `export_lag_days` > 0: the monthly invoice lines that renew in the last days of the
    window are not in the export yet (posted at month close), so those accounts' lines
    stop before the window ends; lines a sale or a change opened are there.
    `custom_term_every` > 0: the term lines of the last nine months of every n-th account
    on a term contract (the first, the n+1-th, ...) say billing_period "custom"
    (renegotiated terms no mapping knows)."""
    cutoff = window.end_ord_excl - export_lag_days
    custom_from = window.end_ord_excl - 270
    rows = []
    for seg in segments:
        months = seg.months if seg.annual else 1
        if accounts.invoice_lines[seg.account] and not seg.annual:
            for lo, hi in _invoice_split(seg, window):
                if export_lag_days and lo >= cutoff and lo > seg.start:
                    continue
                rows.append((seg.account, lo, seg.product, hi, seg.mrr, seg.seats, months))
        else:
            rows.append((seg.account, seg.start, seg.product, seg.end, seg.mrr, seg.seats, months))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    term_accounts = sorted({r[0] for r in rows if r[6] > 1})
    custom = set(term_accounts[::custom_term_every]) if custom_term_every else set()
    account = np.array([r[0] for r in rows], dtype=np.int64)
    end = np.array([-1 if r[3] is None else r[3] for r in rows], dtype=np.int64)
    seats = np.array([-1 if r[5] is None else r[5] for r in rows], dtype=np.int64)
    return {
        "subscription_id": np.array([f"S{i + 1:07d}" for i in range(len(rows))], dtype=object),
        "account_id": accounts.ids[account],
        "product": np.array([r[2] for r in rows], dtype=object),
        "start_date": ordinals_to_dates(np.array([r[1] for r in rows], dtype=np.int64)),
        "end_date": np.ma.masked_array(ordinals_to_dates(np.where(end < 0, 0, end)), mask=end < 0),
        "mrr": np.array([r[4] for r in rows], dtype=float),
        "seats": np.ma.masked_array(np.where(seats < 0, 0, seats), mask=seats < 0),
        "billing_period": np.array(
            ["custom" if r[0] in custom and r[6] > 1 and r[1] >= custom_from else PERIOD_WORDS[r[6]] for r in rows],
            dtype=object,
        ),
    }
