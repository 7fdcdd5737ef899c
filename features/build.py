"""`radar build-features`: materialise the snapshot table, its Parquet export and report.

The I/O edge of the feature builders: opens the workspace (the local database written by
`radar ingest`, or a database URL, see `features.database_workspace`), runs the text step
and the snapshot expression, and writes `snapshots` (database table and Parquet file),
`evidence` and the data-quality report to the local output folder and database.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import ibis

from features import database_workspace, events, quality, snapshot_meta
from features.calendar import as_of_calendar, partial_as_of
from features.snapshot import KEY, Workspace, build_evidence, feature_registry, snapshot_expr
from radar.settings import Settings


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
    meta: snapshot_meta.BuildMeta | None = None  # the build's parameters, data end and partial dates
    partial: dict[date, tuple[date, int, int]] | None = None  # partial as_of -> (compared with, its accounts, accounts)
    event_choice: events.EventChoice | None = None  # the per-event types, where they come from, what changed


def open_workspace(settings: Settings) -> Workspace:
    """The contract tables: in the database at `workspace_url` when set, else in the
    local workspace database."""
    if settings.workspace_url:
        return Workspace.from_backend(
            database_workspace.open_backend(settings.workspace_url), settings.features.data_end
        )
    path = settings.database_path
    if not path.exists():
        raise FileNotFoundError(f"no workspace database at {path}: run `radar ingest WORKSPACE` first")
    return Workspace.from_backend(_local_database(settings), settings.features.data_end)


def open_store(settings: Settings, ws: Workspace) -> ibis.BaseBackend:
    """Where the build's tables go: the local workspace database (created for a workspace
    that lives in another database)."""
    if not settings.workspace_url:
        return ws.backend
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    return _local_database(settings)


def _local_database(settings: Settings) -> ibis.BaseBackend:
    backend = ibis.duckdb.connect(
        str(settings.database_path), threads=settings.ingest.threads, memory_limit=settings.features.memory_limit
    )
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


@contextmanager
def _phase(key: str, label: str, seconds: dict[str, float], step: Callable[[str], None] | None) -> Iterator[None]:
    """Announce a step of the build and add its duration to `seconds[key]`."""
    if step:
        step(label)
    t = time.perf_counter()
    yield
    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t


def _run_here(
    ws: Workspace,
    store: ibis.BaseBackend,
    dates: list[date],
    settings: Settings,
    seconds: dict[str, float],
    step: Callable[[str], None] | None,
    texts: Callable[[int], None] | None,
    event_types: list[events.EventType] | None = None,
) -> bool:
    """Text step and snapshots where the workspace lives (DuckDB or its database), into
    `store`; whether the workspace has text (an `evidence` table)."""
    with _phase("text", "text signals", seconds, step):
        evidence = build_evidence(ws, settings, texts, store=store)
        if evidence is not None and store is not ws.backend:  # the QCF features join it there
            evidence = ws.backend.create_table("radar_evidence", evidence.to_pyarrow(), temp=True)
    with _phase("snapshots", "snapshots", seconds, step):
        expr = snapshot_expr(ws, dates, settings, evidence, event_types)
        if store is not ws.backend:  # ordered here: the other database may collate differently
            expr = ibis.memtable(expr.to_pyarrow()).order_by(KEY)
        store.create_table("snapshots", expr, overwrite=True)
    return evidence is not None


def _run_on_spark(
    ws: Workspace,
    store: ibis.BaseBackend,
    dates: list[date],
    settings: Settings,
    seconds: dict[str, float],
    step: Callable[[str], None] | None,
    texts: Callable[[int], None] | None,
    event_types: list[events.EventType] | None = None,
) -> bool:
    """The same on Spark (`features.spark`): the workspace's tables staged as Parquet in a
    folder of this build's own, the results loaded into `store`; the folder is removed
    afterwards."""
    from features import spark

    base = spark.staging_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=base))
    with _phase("spark start", "starting Spark, staging the workspace as Parquet", seconds, step):
        session = spark.spark_session(settings, staging)
        sws = spark.spark_workspace(ws, session, staging)
    try:
        with _phase("text", "text signals on Spark", seconds, step):
            evidence = spark.spark_evidence(sws, session, settings, staging, texts)
        with _phase("snapshots", "snapshots on Spark", seconds, step):
            expr = snapshot_expr(sws, dates, settings, evidence, event_types)
            spark.load_results(
                store,
                spark.write_snapshots(sws, expr, staging),
                expr.schema(),
                staging / "evidence" if evidence is not None else None,
            )
    finally:
        close_workspace(sws)
        shutil.rmtree(staging, ignore_errors=True)
    return evidence is not None


def build_features(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    freq: str | None = None,
    step: Callable[[str], None] | None = None,
    texts: Callable[[int], None] | None = None,
    refresh_event_types: bool = False,
) -> BuildResult:
    """Build snapshots for the as-of calendar [start, end] (defaults: the data's span).
    `refresh_event_types`: choose the per-event types anew rather than keep the record."""
    ws = open_workspace(settings)
    store = open_store(settings, ws)
    default_start, default_end = ws.default_calendar(settings)
    dates = as_of_calendar(start or default_start, end or default_end, freq or settings.features.freq)
    if not dates:
        raise ValueError(f"no as-of dates between {start or default_start} and {end or default_end}")
    seconds: dict[str, float] = {}
    run = _run_on_spark if settings.features.engine == "spark" else _run_here
    # chosen once, where the workspace lives: the same types on every engine; a later build
    # keeps the recorded list (served models need its columns) unless pinned or refreshed
    choice = events.stable_event_types(
        ws.tables["usage_events"],
        dates[-1],
        settings.features,
        events.recorded_event_types(settings.output_dir),
        refresh_event_types,
    )
    event_types = choice.chosen
    has_evidence = run(ws, store, dates, settings, seconds, step, texts, event_types)
    events.record_event_types(settings.output_dir, event_types)  # the registry's generated features
    snaps = store.table("snapshots")
    parquet = settings.output_dir / "snapshots.parquet"
    with _phase("snapshots", "snapshots", seconds, None):
        found = dict(snapshot_meta.populations(store))
        counts = [(d, found.get(d, 0)) for d in dates]  # a date nobody is active on has 0 accounts
        partial = partial_as_of(counts, settings.features.partial_drop_share)
        meta = _build_meta(ws, settings, dates, freq or settings.features.freq, sorted(partial), choice)
        snapshot_meta.record(store, meta, snapshot_meta.as_of_frame(counts, partial))
        snapshot_meta.write_parquet(store, "snapshots", parquet, meta)

    report = settings.output_dir / "reports" / "data_quality.md"
    with _phase("report", "data-quality report", seconds, step):
        frame = snaps.execute()
        registry = feature_registry(settings, event_types)
        findings = quality.assess(frame, registry.names, {f.name for f in registry if f.categorical})
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(quality.render_markdown(findings))
    ev_rows = int(store.table("evidence").count().execute()) if has_evidence else None
    close_workspace(ws)
    if store is not ws.backend:
        store.disconnect()
    return BuildResult(
        rows=len(frame),
        accounts=frame.account_id.nunique(),
        as_of_dates=dates,
        parquet=parquet,
        report=report,
        evidence_rows=ev_rows,
        seconds=seconds,
        findings=findings,
        meta=meta,
        partial={d: (ref, ref_n, dict(counts)[d]) for d, (ref, ref_n) in partial.items()},
        event_choice=choice,
    )


def _build_meta(
    ws: Workspace, settings: Settings, dates: list[date], freq: str, partial: list[date], choice: events.EventChoice
):
    """The parameters of this build (see `features.snapshot_meta`)."""
    d = settings.domain
    return snapshot_meta.BuildMeta(
        freq=freq,
        horizon_days=d.horizon_days,
        grace_days=d.grace_days,
        expansion_min_pct=d.expansion_min_pct,
        max_lead_days=d.max_lead_days,
        renewal_window_mode=d.renewal_window_mode,
        label_definition=snapshot_meta.label_sentence(
            d.horizon_days, d.grace_days, d.expansion_min_pct, d.max_lead_days
        ),
        data_start=ws.data_start.isoformat(),
        data_end=ws.data_end.isoformat(),
        data_end_source=ws.data_end_source,
        as_of_first=dates[0].isoformat(),
        as_of_last=dates[-1].isoformat(),
        as_of_count=len(dates),
        windows=list(settings.features.windows),
        engine=settings.features.engine,
        partial_as_of=[p.isoformat() for p in partial],
        partial_drop_share=settings.features.partial_drop_share,
        built_at=snapshot_meta.now_iso(),
        event_types=choice.names,
        event_types_source=choice.source_words(),
    )
