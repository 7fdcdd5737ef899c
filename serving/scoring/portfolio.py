"""The service's view of the workspace: each account's latest snapshot, scored once.

POST /score_accounts scores the latest snapshot of the accounts asked for; the listings
(at risk, opportunities) rank the accounts active at the latest snapshot date. Both read
one in-memory copy of the workspace's snapshots, loaded at start-up and reloaded when the
workspace database changes on disk (a new `radar build-features`), so a request never
waits on the database or holds its lock. The full portfolio is scored (with drivers) once
per copy and champion set and reused by every listing request (a new champion set is
scored before the service switches to it). A missing or locked workspace does not stop
the service: POST /score still works, and the workspace endpoints answer 503 with a plain
reason (`PortfolioUnavailable`: no file paths or process ids for clients; the full reason
goes to the service log, once per change).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
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

log = logging.getLogger("radar.portfolio")


class PortfolioUnavailable(WorkspaceUnavailable):
    """The workspace cannot be read now. `str()` is the plain reason shown to clients;
    `detail` the full one (database path, the lock holder) for the service log."""

    def __init__(self, public: str, detail: str):
        super().__init__(public)
        self.detail = detail


def plain_reason(exc: WorkspaceUnavailable, settings: Settings) -> PortfolioUnavailable:
    """`exc` as a client may read it: what is wrong and what to do, without paths or PIDs."""
    detail = str(exc)
    if not settings.database_path.exists():
        public = "no workspace has been built yet: run `radar ingest` and `radar build-features`"
    elif exc.__cause__ is not None:  # DuckDB could not open the file: a writer holds it
        public = (
            "the workspace is being updated (by `radar ingest`, `radar build-features` or another writer); "
            "try again when it has finished"
        )
    else:
        public = "the workspace has no snapshots yet: run `radar build-features`"
    return PortfolioUnavailable(public, detail)


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


@dataclass
class _Scoring:
    """The active portfolio of one copy scored by one champion set (computed once, on first use)."""

    copy: _Copy
    models: ScoringModels
    lock: threading.Lock = field(default_factory=threading.Lock)
    frame: pd.DataFrame | None = None


class Portfolio:
    """Latest snapshots and the scored portfolio, refreshed when the workspace changes.

    `models` is the champion set, or a function giving the one served now (the service's
    `LiveChampions`); methods scoring the portfolio take the set a request read, so one
    response never mixes versions."""

    def __init__(self, settings: Settings, models: ScoringModels | Callable[[], ScoringModels]):
        self.settings = settings
        self._models = models if callable(models) and not isinstance(models, ScoringModels) else (lambda: models)
        self._lock = threading.Lock()
        self._copy: _Copy | None = None
        self._scorings: list[_Scoring] = []  # the latest two (current and previous champion set)
        self._problem: str | None = None

    @property
    def models(self) -> ScoringModels:
        return self._models()

    def _stamp(self) -> tuple | None:
        try:
            st = self.settings.database_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _note(self, problem: str | None) -> None:
        """Log a change of the workspace's availability once (not on every request)."""
        if problem != self._problem:
            if problem is None:
                log.info("the workspace reads again")
            else:
                log.warning("workspace unavailable: %s", problem)
            self._problem = problem

    def _current(self) -> _Copy:
        stamp = self._stamp()
        with self._lock:
            if self._copy is None or (stamp is not None and stamp != self._copy.stamp):
                try:
                    latest, as_of = read_latest_snapshots(self.settings)
                except WorkspaceUnavailable as exc:
                    plain = plain_reason(exc, self.settings)
                    self._note(plain.detail)
                    if self._copy is None:  # nothing to fall back to
                        raise plain from exc
                    return self._copy  # keep answering from the copy we have
                self._copy, self._scorings = _Copy(stamp, latest, as_of), []
                self._note(None)
            return self._copy

    def load(self) -> str | None:
        """Read the workspace now (at start-up); None, or why it is unavailable (in full)."""
        try:
            self._current()
            self.scored()
        except PortfolioUnavailable as exc:
            return exc.detail
        return None

    def prepare(self, models: ScoringModels) -> None:
        """Score the portfolio with a champion set about to be served (no-op without a workspace)."""
        try:
            self.scored(models)
        except WorkspaceUnavailable:
            pass

    @property
    def as_of(self) -> date:
        return self._current().as_of

    def snapshots_of(self, account_ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """(latest snapshot rows of the known ids, in request order; the unknown ids)."""
        latest = self._current().latest
        known = [a for a in account_ids if a in latest.index]
        missing = [a for a in account_ids if a not in latest.index]
        return latest.loc[known].reset_index(drop=True), missing

    def scored(self, models: ScoringModels | None = None, scored_at: datetime | None = None) -> pd.DataFrame:
        """The active portfolio (accounts at the latest snapshot date), scored with drivers by
        `models` (default: the set served now)."""
        models = self.models if models is None else models
        copy = self._current()
        with self._lock:
            entry = next((e for e in self._scorings if e.copy is copy and e.models is models), None)
            if entry is None:
                entry = _Scoring(copy, models)
                self._scorings = [*self._scorings[-1:], entry]
        with entry.lock:  # one scoring per (copy, set); other sets' requests do not wait for it
            if entry.frame is None:
                active = copy.latest[copy.latest["as_of"] == copy.latest["as_of"].max()].reset_index(drop=True)
                entry.frame = score_frame(active, models, self.settings, scored_at=scored_at)
            return entry.frame

    def at_risk(
        self, *, limit: int, segment: str | None, owner: str | None, models: ScoringModels | None = None
    ) -> pd.DataFrame:
        return at_risk(self.scored(models), limit=limit, segment=segment, owner=owner)

    def opportunities(
        self, *, limit: int, segment: str | None, owner: str | None, models: ScoringModels | None = None
    ) -> pd.DataFrame:
        return opportunities(self.scored(models), limit=limit, segment=segment, owner=owner)
