"""Customers' own words as evidence: quotes from the workspace `evidence` table.

`read_evidence` reads matched quotes (features.text.evidence) of a date range from the
workspace database, read-only; a workspace without an evidence table (no text tables
were ingested) gives no quotes rather than an error. `latest_quotes` picks an account's
latest quotes of one polarity, one per conversation, as `Evidence` items (the type
alerts carry), for the digest, the leadership report and the account pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from radar.settings import Settings
from serving.workflow.alert_rules import Evidence, quote_evidence
from serving.workflow.alerts import EVIDENCE, EVIDENCE_COLUMNS, workspace


def read_evidence(
    settings: Settings,
    start: date,
    end: date,
    polarities: tuple[str, ...] = ("red", "green"),
    accounts: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Quotes dated in [start, end) of these polarities (and accounts), columns EVIDENCE_COLUMNS."""
    with workspace(settings, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if EVIDENCE not in tables or not polarities:
            return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
        where, params = "", [pd.Timestamp(start), pd.Timestamp(end), *polarities]
        if accounts is not None:
            con.register("quote_accounts", pd.DataFrame({"account_id": sorted(set(map(str, accounts)))}))
            where = " AND CAST(account_id AS VARCHAR) IN (SELECT account_id FROM quote_accounts)"
        return con.execute(
            f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM {EVIDENCE} WHERE occurred_at >= ? "
            f"AND occurred_at < ? AND polarity IN ({', '.join('?' * len(polarities))}){where}",
            params,
        ).df()


def latest_quotes(
    evidence: pd.DataFrame,
    account: str,
    polarity: str,
    k: int,
    end: date,
    days: int,
    buckets: tuple[str, ...] | None = None,
) -> list[Evidence]:
    """The account's k latest quotes of `polarity` dated in the `days` before `end`, one per
    conversation, latest first."""
    if k <= 0 or evidence.empty:
        return []
    stop = pd.Timestamp(end)
    when = pd.to_datetime(evidence["occurred_at"])
    rows = evidence[
        (evidence["account_id"].astype(str) == account)
        & (evidence["polarity"] == polarity)
        & (when >= stop - pd.Timedelta(days=days))
        & (when < stop)
    ]
    if buckets is not None:
        rows = rows[rows["bucket"].isin(buckets)]
    return quote_evidence(rows, k, one_per_conversation=True)
