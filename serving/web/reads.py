"""Read-only queries of the workspace database behind the web pages (serving/web/app.py).

One account's snapshot history and feedback evidence, and the alert queue (open alerts
as `radar alerts` stored them). Each read opens its own read-only connection and closes
it, so the service never holds the database while `radar build-features` or
`radar alerts` writes to it; a missing table is an empty answer with the command that
fills it, not an error. The alert queue is read again only when the file changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd

from radar.settings import Settings
from serving.scoring.batch import WorkspaceUnavailable, reading_workspace

SNAPSHOTS, EVIDENCE, ALERT_STATE = "snapshots", "evidence", "alert_state"
QUOTE_COLUMNS = (
    "occurred_at",
    "channel",
    "conversation_id",
    "sentence",
    "bucket",
    "polarity",
    "negated",
    "expression",
    "sentiment",
)
ALERT_COLUMNS = (
    "key",
    "account_id",
    "rule",
    "subject",
    "status",
    "opened_as_of",
    "last_seen_as_of",
    "insight_score",
    "routing",
    "owner",
    "title",
)


_reading = reading_workspace


def _columns(con, table: str) -> list[str] | None:
    found = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()
    return [r[0] for r in found] or None


def _frame(con, sql: str, params: list) -> pd.DataFrame:
    return con.execute(sql, params).to_arrow_table().to_pandas()


@dataclass(frozen=True)
class AccountRecords:
    """What the workspace holds about one account: its snapshots (oldest first) and its
    quotes (newest first; None when the workspace has no evidence table)."""

    snapshots: pd.DataFrame
    evidence: pd.DataFrame | None


def account_records(settings: Settings, account_id: str) -> AccountRecords:
    with _reading(settings) as con:
        if _columns(con, SNAPSHOTS) is None:
            raise WorkspaceUnavailable(f"the workspace has no {SNAPSHOTS} table: run `radar build-features` first")
        snaps = _frame(con, f"SELECT * FROM {SNAPSHOTS} WHERE account_id = ? ORDER BY as_of", [account_id])
        have = _columns(con, EVIDENCE)
        evidence = None
        if have is not None:
            wanted = [c for c in QUOTE_COLUMNS if c in have]
            evidence = _frame(
                con,
                f"SELECT {', '.join(wanted)} FROM {EVIDENCE} WHERE account_id = ? ORDER BY occurred_at DESC",
                [account_id],
            )
            for c in QUOTE_COLUMNS:
                if c not in evidence.columns:
                    evidence[c] = None
    if not snaps.empty:
        snaps["as_of"] = pd.to_datetime(snaps["as_of"]).dt.date
        snaps["account_id"] = snaps["account_id"].astype(str)
    return AccountRecords(snaps, evidence)


def read_open_alerts(settings: Settings) -> pd.DataFrame | None:
    """The open alerts, highest insight score first; None when `radar alerts` never ran."""
    with _reading(settings) as con:
        have = _columns(con, ALERT_STATE)
        if have is None:
            return None
        wanted = [c for c in ALERT_COLUMNS if c in have]
        frame = _frame(
            con,
            f"SELECT {', '.join(wanted)} FROM {ALERT_STATE} WHERE status = 'open' ORDER BY insight_score DESC, key",
            [],
        )
    for c in ALERT_COLUMNS:
        if c not in frame.columns:
            frame[c] = None
    frame["account_id"] = frame["account_id"].astype(str)
    return frame


class AlertQueue:
    """The open alerts, read again only when the workspace file changes."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._frame: pd.DataFrame | None = None

    def forget(self) -> None:
        """Read again at the next request (after the pages changed an alert)."""
        with self._lock:
            self._stamp = None

    def open_alerts(self) -> pd.DataFrame | None:
        try:
            st = self.settings.database_path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp is None or stamp != self._stamp:
                self._frame = read_open_alerts(self.settings)
                self._stamp = stamp
            return self._frame
