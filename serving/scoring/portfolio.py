"""The service's view of the workspace: each account's latest snapshot, scored once.

POST /score_accounts scores the latest snapshot of the accounts asked for; the listings
(at risk, opportunities) rank the accounts active at the latest snapshot date. Both read
one in-memory copy of the workspace's snapshots, loaded at start-up and reloaded when the
workspace database changes on disk (a new `radar build-features`), so a request never
waits on the database or holds its lock. The full portfolio is scored (with drivers) once
per copy and reused by every listing request. A missing or locked workspace does not stop
the service: POST /score still works, and the workspace endpoints answer 503 saying why.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from radar.settings import Settings
from serving.scoring.batch import (
    SNAPSHOTS,
    WorkspaceUnavailable,
    at_risk,
    opportunities,
    reading_workspace,
    snapshot_date,
)
from serving.scoring.score import ScoringModels, score_frame


@dataclass(frozen=True)
class _Copy:
    stamp: tuple | None  # (mtime_ns, size) of the database file it was read from (None: not stat-able)
    latest: pd.DataFrame  # one row per account: its latest snapshot, indexed by account_id
    as_of: date  # the latest snapshot date: accounts with this as_of are the active portfolio


def read_latest_snapshots(settings: Settings) -> tuple[pd.DataFrame, date]:
    """Each account's latest snapshot row, and the workspace's latest snapshot date."""
    with reading_workspace(settings) as con:
        # a snapshots table with rows (or a clear error); partial as-of dates at the end are left out
        latest = snapshot_date(con, settings, None)
        frame = (
            con.execute(
                f"SELECT * FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) <= ? QUALIFY row_number() OVER "
                "(PARTITION BY account_id ORDER BY as_of DESC) = 1 ORDER BY account_id",
                [latest],
            )
            .to_arrow_table()
            .to_pandas()
        )
    frame["account_id"] = frame["account_id"].astype(str)
    return frame.set_index("account_id", drop=False), pd.Timestamp(frame["as_of"].max()).date()


class Portfolio:
    """Latest snapshots and the scored portfolio, refreshed when the workspace changes."""

    def __init__(self, settings: Settings, models: ScoringModels):
        self.settings = settings
        self.models = models
        self._lock = threading.Lock()
        self._copy: _Copy | None = None
        self._scored: pd.DataFrame | None = None
        self._problem: str | None = None

    def _stamp(self) -> tuple | None:
        try:
            st = self.settings.database_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _current(self) -> _Copy:
        stamp = self._stamp()
        with self._lock:
            if self._copy is None or (stamp is not None and stamp != self._copy.stamp):
                try:
                    latest, as_of = read_latest_snapshots(self.settings)
                except WorkspaceUnavailable as exc:
                    if self._copy is None:  # nothing to fall back to
                        raise
                    self._problem = str(exc)  # keep answering from the copy we have
                    return self._copy
                self._copy, self._scored, self._problem = _Copy(stamp, latest, as_of), None, None
            return self._copy

    def load(self) -> str | None:
        """Read the workspace now (at start-up); None, or why it is unavailable."""
        try:
            self._current()
            self.scored()
        except WorkspaceUnavailable as exc:
            return str(exc)
        return None

    @property
    def as_of(self) -> date:
        return self._current().as_of

    def snapshots_of(self, account_ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """(latest snapshot rows of the known ids, in request order; the unknown ids)."""
        latest = self._current().latest
        known = [a for a in account_ids if a in latest.index]
        missing = [a for a in account_ids if a not in latest.index]
        return latest.loc[known].reset_index(drop=True), missing

    def scored(self, scored_at: datetime | None = None) -> pd.DataFrame:
        """The active portfolio (accounts at the latest snapshot date), scored with drivers."""
        copy = self._current()
        with self._lock:
            if self._scored is None or self._copy is not copy:
                active = copy.latest[copy.latest["as_of"] == copy.latest["as_of"].max()].reset_index(drop=True)
                self._scored = score_frame(active, self.models, self.settings, scored_at=scored_at)
            return self._scored

    def at_risk(self, *, limit: int, segment: str | None, owner: str | None) -> pd.DataFrame:
        return at_risk(self.scored(), limit=limit, segment=segment, owner=owner)

    def opportunities(self, *, limit: int, segment: str | None, owner: str | None) -> pd.DataFrame:
        return opportunities(self.scored(), limit=limit, segment=segment, owner=owner)
