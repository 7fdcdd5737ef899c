"""Batch scoring of the workspace, and the rankings the API serves from its result.

`score_workspace` reads the snapshots of one as_of (by default the latest that is not
partial, `snapshot_dates`) from the workspace database, read-only, and scores every
account in them (snapshots hold the accounts active at as_of) with `serving.scoring.score.score_frame`, the function POST /score
uses. `at_risk` is the call list (`serving.scoring.decisions.call_order`: expected MRR
lost within 90 days = mrr x churn risk, the sooner renewal breaking ties) of the red and
yellow accounts; `opportunities` ranks flagged accounts by expansion potential =
upsell likelihood x mrr.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime

import pandas as pd

from features import snapshot_meta
from radar.settings import ServingSettings, Settings
from serving.scoring.decisions import call_order, expected_loss
from serving.scoring.score import ScoringModels, score_frame

SNAPSHOTS = "snapshots"


class WorkspaceUnavailable(ValueError):
    """No workspace to read: no database yet, no snapshots table, or it is locked."""


def connect_workspace(settings: Settings, *, read_only: bool = True):
    """A connection to the workspace database; `WorkspaceUnavailable` says what to run
    when there is none, or that it is locked (e.g. by a running build)."""
    import duckdb

    path = settings.database_path
    if not path.exists():
        raise WorkspaceUnavailable(f"no workspace database at {path}: run `radar ingest` and `radar build-features`")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise WorkspaceUnavailable(
            f"cannot open the workspace database {path} ({exc}); another process may be writing to it"
        ) from exc
    con.execute("SET enable_progress_bar = false")
    return con


@contextmanager
def reading_workspace(settings: Settings):
    """A read-only connection to the workspace database, closed afterwards (errors as
    `connect_workspace`)."""
    con = connect_workspace(settings, read_only=True)
    try:
        yield con
    finally:
        con.close()


def snapshot_dates(con, *, include_partial: bool = False, keep: date | None = None) -> list[date]:
    """Every snapshot date of the workspace, in order, without the partial ones (as-of
    dates whose active population fell sharply, recorded by `radar build-features`; see
    `features.snapshot_meta`) unless `include_partial`; `keep` (a date asked for
    explicitly, e.g. --as-of) stays even when partial. The one place where score, drivers,
    alerts and the digest learn which dates they may pick by default."""
    dates = [
        pd.Timestamp(r[0]).date()
        for r in con.execute(f"SELECT DISTINCT CAST(as_of AS DATE) FROM {SNAPSHOTS} ORDER BY 1").fetchall()
    ]
    if include_partial:
        return dates
    partial = snapshot_meta.partial_dates(con)
    return [d for d in dates if d not in partial or d == keep]


def partial_note(settings: Settings, as_of: date | None, include_partial: bool = False) -> str | None:
    """What a command picking its snapshot date by default (`as_of` None) says when it
    skipped partial dates at the end of the calendar, or None."""
    if as_of is not None or include_partial or not settings.database_path.exists():
        return None
    try:
        with reading_workspace(settings) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if SNAPSHOTS not in tables:
                return None
            partial = snapshot_meta.partial_dates(con)
            usable = snapshot_dates(con)
    except WorkspaceUnavailable:
        return None
    skipped = [d for d in partial if not usable or d > usable[-1]]
    if not skipped or not usable:
        return None
    day = skipped[-1]
    ref, ref_n, n = partial[day]
    return (
        f"note: skipping the partial as-of date{'s' if len(skipped) > 1 else ''} "
        f"{', '.join(str(d) for d in skipped)} ({n:,} active accounts on {day} against {ref_n:,} on {ref}: "
        f"the data only partly covers it); using {usable[-1]}. --as-of {day} or --include-partial uses it."
    )


def snapshot_date(con, settings: Settings, as_of: date | None, include_partial: bool = False) -> date:
    """`as_of`, or the latest snapshot date that is not partial (`snapshot_dates`), checked
    to have snapshot rows."""
    path = settings.database_path
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if SNAPSHOTS not in tables:
        raise WorkspaceUnavailable(f"{path} has no {SNAPSHOTS} table: run `radar build-features` first")
    if as_of is None:
        dates = snapshot_dates(con, include_partial=include_partial)
        if not dates:
            raise WorkspaceUnavailable(f"the {SNAPSHOTS} table in {path} is empty")
        return dates[-1]
    if not con.execute(f"SELECT count(*) FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) = ?", [as_of]).fetchone()[0]:
        raise WorkspaceUnavailable(f"no snapshots at as_of {as_of} in {path}")
    return as_of


def load_snapshots(
    settings: Settings, as_of: date | None = None, include_partial: bool = False
) -> tuple[pd.DataFrame, date]:
    """The snapshot rows of `as_of` (default: the latest as_of that is not partial) and that date."""
    with reading_workspace(settings) as con:
        as_of = snapshot_date(con, settings, as_of, include_partial)
        frame = (
            con.execute(f"SELECT * FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) = ? ORDER BY account_id", [as_of])
            .to_arrow_table()
            .to_pandas()
        )
    return frame, as_of


def score_workspace(
    settings: Settings,
    models: ScoringModels,
    as_of: date | None = None,
    *,
    serving: ServingSettings | None = None,
    explain: bool = True,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """Score every account of the workspace at `as_of` (default: the latest snapshot date)."""
    frame, _ = load_snapshots(settings, as_of)
    return score_frame(frame, models, settings, serving=serving, explain=explain, scored_at=scored_at)


def _filtered(scored: pd.DataFrame, segment: str | None, owner: str | None) -> pd.DataFrame:
    out = scored
    if segment is not None:
        out = out[out["segment"].astype(object) == segment]
    if owner is not None:  # the account's CSM, or the role the action is routed to
        out = out[(out["csm_owner"].astype(object) == owner) | (out["action_owner"].astype(object) == owner)]
    return out


def _mrr(scored: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(scored["mrr"], errors="coerce").fillna(0.0)


def at_risk(
    scored: pd.DataFrame,
    *,
    limit: int = 20,
    segment: str | None = None,
    owner: str | None = None,
    include_green: bool = False,
) -> pd.DataFrame:
    """The call list: accounts by expected MRR lost (mrr x churn risk), largest first, the
    sooner renewal breaking ties; red and yellow tiers only unless `include_green`.
    `mrr_at_risk` is that expected loss."""
    rows = _filtered(scored, segment, owner)
    if not include_green:
        rows = rows[rows["risk_tier"] != "green"]
    rows = rows.assign(mrr_at_risk=expected_loss(rows["mrr"], rows["churn_risk"]))
    return call_order(rows).head(limit)


def opportunities(
    scored: pd.DataFrame,
    *,
    limit: int = 20,
    segment: str | None = None,
    owner: str | None = None,
    flagged_only: bool = True,
) -> pd.DataFrame:
    """Accounts by expansion potential = upsell likelihood x mrr, largest first; flagged
    opportunities only unless `flagged_only` is False."""
    rows = _filtered(scored, segment, owner)
    if flagged_only:
        rows = rows[rows["opportunity"].astype(bool)]
    rows = rows.assign(expansion_potential=rows["upsell_likelihood"] * _mrr(rows))
    return rows.sort_values(["expansion_potential", "account_id"], ascending=[False, True], kind="stable").head(limit)
