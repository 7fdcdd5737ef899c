"""`radar build-features`: materialise the snapshot table, its Parquet export and report.

The I/O edge of the feature builders: opens the workspace (the local database written by
`radar ingest`, or a database URL, see `features.database_workspace`), runs the text step
and the snapshot expression, and writes `snapshots` (database table and Parquet file),
`evidence` and the data-quality report to the local output folder and database.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import ibis

from features import database_workspace, quality
from features.calendar import as_of_calendar
from features.config import Settings
from features.snapshot import KEY, Workspace, build_evidence, feature_registry, snapshot_expr


@dataclass
class BuildResult:
    rows: int
    accounts: int
    as_of_dates: list[date]
    parquet: Path
    report: Path
    evidence_rows: int | None
    seconds: dict[str, float]
    findings: quality.QualityFindings


def open_workspace(settings: Settings) -> Workspace:
    """The contract tables: in the database at `workspace_url` when set, else in the
    local workspace database."""
    if settings.workspace_url:
        return Workspace.from_backend(database_workspace.open_backend(settings.workspace_url))
    path = settings.database_path
    if not path.exists():
        raise FileNotFoundError(f"no workspace database at {path}: run `radar ingest WORKSPACE` first")
    return Workspace.from_backend(_local_database(settings))


def open_store(settings: Settings, ws: Workspace) -> ibis.BaseBackend:
    """Where the build's tables go: the local workspace database (created for a workspace
    that lives in another database)."""
    if not settings.workspace_url:
        return ws.backend
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    return _local_database(settings)


def _local_database(settings: Settings) -> ibis.BaseBackend:
    backend = ibis.duckdb.connect(str(settings.database_path), threads=settings.ingest.threads,
                                  memory_limit=settings.features.memory_limit)
    backend.raw_sql("SET enable_progress_bar = false")
    return backend


def close_workspace(ws: Workspace) -> None:
    """Drop the builders' cached tables, then close the database.

    Ibis drops a cached table when its expression is garbage-collected, which may be
    after the connection is closed; releasing them first keeps that clean.
    """
    for name in list(ws.backend._cache_name_to_entry):
        ws.backend._finalize_cached_table(name)
    ws.backend.disconnect()


def build_features(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    freq: str | None = None,
    step: Callable[[str], None] | None = None,
    texts: Callable[[int], None] | None = None,
) -> BuildResult:
    """Build snapshots for the as-of calendar [start, end] (defaults: the data's span)."""
    ws = open_workspace(settings)
    store = open_store(settings, ws)
    default_start, default_end = ws.default_calendar(settings)
    dates = as_of_calendar(start or default_start, end or default_end, freq or settings.features.freq)
    if not dates:
        raise ValueError(f"no as-of dates between {start or default_start} and {end or default_end}")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if step:
        step("text signals")
    evidence = build_evidence(ws, settings, texts, store=store)
    if evidence is not None and store is not ws.backend:  # the QCF features join it there
        evidence = ws.backend.create_table("radar_evidence", evidence.to_pyarrow(), temp=True)
    seconds["text"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    if step:
        step("snapshots")
    expr = snapshot_expr(ws, dates, settings, evidence)
    if store is not ws.backend:  # ordered here: the other database may collate differently
        expr = ibis.memtable(expr.to_pyarrow()).order_by(KEY)
    store.create_table("snapshots", expr, overwrite=True)
    snaps = store.table("snapshots")
    out_dir = settings.output_dir
    parquet = out_dir / "snapshots.parquet"
    snaps.to_parquet(parquet)
    seconds["snapshots"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    if step:
        step("data-quality report")
    frame = snaps.execute()
    registry = feature_registry(settings)
    findings = quality.assess(frame, registry.names, {f.name for f in registry if f.categorical})
    report = out_dir / "reports" / "data_quality.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(quality.render_markdown(findings))
    seconds["report"] = time.perf_counter() - t2
    ev_rows = int(evidence.count().execute()) if evidence is not None else None
    close_workspace(ws)
    if store is not ws.backend:
        store.disconnect()
    return BuildResult(
        rows=len(frame), accounts=frame.account_id.nunique(), as_of_dates=dates, parquet=parquet,
        report=report, evidence_rows=ev_rows, seconds=seconds, findings=findings,
    )
