"""Point-in-time account snapshots: one row per (account_id, as_of) for active accounts.

The snapshot expression joins every builder's features onto the population of accounts
active at each as_of, adds the health score and the forward-looking labels. It is one
Ibis expression, so the same definitions run on DuckDB (the default), Spark or a
warehouse; only the qualitative-text step is Python, streamed in batches.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import ibis
import pandas as pd
import pyarrow.parquet as pq

from features import events, feedback, health, support, touchpoints, usage
from features.calendar import calendar_table
from features.contract import TABLES
from features.labels import build_labels, workspace_blackouts
from features.registry import FeatureRegistry, FeatureSpec
from features.subscriptions import SPECS as SUBSCRIPTION_SPECS
from features.subscriptions import subscription_features
from features.text.evidence import EVIDENCE_SCHEMA, iter_evidence
from features.text.taxonomy import load_taxonomy
from radar.settings import Settings

KEY = ["account_id", "as_of"]
LABELS = ["churned", "expanded", "churned_by_renewal"]
# Known at as_of, but never model inputs: which rows renewal-window mode keeps, the next
# contract end and the end of the churned_by_renewal window (training splits on it).
LABEL_CONTEXT = ["renewal_in_horizon", "next_renewal", "label_end_by_renewal"]
META = ["name", "csm_owner"]  # carried for people and serving, never model inputs
CONTEXT_SPECS = [
    FeatureSpec("segment", "Segment", "context", "accounts", unit="category", categorical=True),
    FeatureSpec("industry", "Industry", "context", "accounts", unit="category", categorical=True),
    FeatureSpec("region", "Region", "context", "accounts", unit="category", categorical=True),
]
OPTIONAL_TABLES = ("accounts", "usage_events", "support_tickets", "feedback", "touchpoints")


def all_specs() -> list[FeatureSpec]:
    return [
        *CONTEXT_SPECS,
        *SUBSCRIPTION_SPECS,
        *usage.SPECS,
        *support.SPECS,
        *feedback.SURVEY_SPECS,
        *touchpoints.SPECS,
        *feedback.QCF_SPECS,
        *health.SPECS,
    ]


def feature_registry(settings: Settings, event_types: list[events.EventType] | None = None) -> FeatureRegistry:
    """Every snapshot feature, for the configured windows, with the per-event-type features
    of `event_types` (default: those the last build recorded, `events.recorded_event_types`);
    the role features are described by the configured event names (`events.describe_roles`)."""
    chosen = events.recorded_event_types(settings.output_dir) if event_types is None else event_types
    specs = events.describe_roles(all_specs(), settings.features) + events.event_specs(chosen, settings.features)
    return FeatureRegistry(specs, settings.features.windows)


@dataclass
class Workspace:
    """The contract tables of a workspace in an Ibis backend; absent optional tables are None.

    `data_end` is the last day the data covers: the configured `features.data_end`, else
    the earliest last date of the tables that record every day (`resolve_data_end`), so
    that a table exported earlier than the others (subscriptions ending on 2024-01-01
    while events go on to 2024-01-31) never turns the days it misses into churn.
    `table_ends` holds every present table's last date (subscriptions: the latest
    start_date or passed end_date); `data_end_source` says where the end comes from, in words.
    """

    backend: ibis.BaseBackend
    tables: dict[str, ibis.Table | None]
    data_start: date
    data_end: date
    activity_start: date  # when the latest-starting activity table (events, tickets, ...) begins
    data_end_source: str = "the data"
    table_ends: dict[str, date] = field(default_factory=dict)

    @classmethod
    def from_backend(cls, backend: ibis.BaseBackend, data_end: date | None = None) -> Workspace:
        """The contract tables found in `backend` (the ingested DuckDB or any database
        holding them under their contract names), the span of their data and its end
        (`data_end` when given, e.g. `settings.features.data_end`)."""
        present = set(backend.list_tables())
        if "subscriptions" not in present:
            raise ValueError(
                "the workspace database has no subscriptions table: run `radar ingest` first (or check workspace_url)"
            )
        tables = {t: (backend.table(t) if t in present else None) for t in ("subscriptions", *OPTIONAL_TABLES)}
        spans = data_spans(tables).execute()
        activity = spans[spans.table_name != "subscriptions"]
        start = pd.Timestamp(spans.first_at.min()).date()
        activity_start = pd.Timestamp(activity.first_at.max()).date() if len(activity) else start
        ends = {str(r.table_name): pd.Timestamp(r.last_at).date() for r in spans.itertuples() if pd.notna(r.last_at)}
        if len(activity):  # subscriptions also record ends already passed: a line ending on 2024-01-01
            ends["subscriptions"] = _last_subscription_date(tables["subscriptions"], ends, activity.last_at.max())
        end, source = resolve_data_end(ends, data_end)
        return cls(backend, tables, start, end, activity_start, source, ends)

    def default_calendar(self, settings: Settings) -> tuple[date, date]:
        """From one full longest window after every activity table has started, to the
        end of the data (subscription history often reaches further back than events)."""
        return self.activity_start + timedelta(days=max(settings.features.windows)), self.data_end


def _last_subscription_date(subs: ibis.Table, ends: dict[str, date], activity_end) -> date:
    """The last date the subscriptions record: the latest start_date, or a later end_date
    that has already passed when the activity tables end (contract ends scheduled beyond
    them are plans, not data)."""
    limit = pd.Timestamp(activity_end).date()
    passed = subs.filter(subs.end_date <= ibis.date(limit)).end_date.max().execute()
    last = ends["subscriptions"]
    return max(last, pd.Timestamp(passed).date()) if pd.notna(passed) else last


# Tables that record something every day of a live business: their last date is where
# the export stopped. Tickets, feedback and touchpoints are sparse (a quiet last week is
# normal, more so for a small portfolio): their last dates are reported, never the end.
DENSE_TABLES = ("subscriptions", "usage_events")


def resolve_data_end(ends: dict[str, date], configured: date | None = None) -> tuple[date, str]:
    """The end of the data and where it comes from (a sentence for the build's output).

    `ends` holds each present table's last date. The configured date wins; otherwise the
    earliest last date of the dense tables (`DENSE_TABLES`, those present): the last day
    every one of them still covers."""
    if not ends:
        raise ValueError("the workspace tables hold no dates: no end of the data to take")
    if configured is not None:
        return configured, "configured (features.data_end)"
    dense = {t: d for t, d in ends.items() if t in DENSE_TABLES} or ends
    first = min(dense.values())
    earliest = sorted(t for t, d in dense.items() if d == first)
    later = [f"{t} {d}" for t, d in sorted(dense.items(), key=lambda kv: (kv[1], kv[0])) if d > first]
    source = f"the earliest last date of {' and '.join(sorted(dense))}: {', '.join(earliest)}"
    if later:
        source += f" (later: {', '.join(later)})"
    return first, source


def data_spans(tables: dict[str, ibis.Table | None]) -> ibis.Table:
    """(table_name, first_at, last_at) per present table: its time column's range, and for
    subscriptions the range of start dates (the same spans ingest records), in one query."""
    parts = []
    for name, table in tables.items():
        column = "start_date" if name == "subscriptions" else TABLES[name].time_column
        if table is None or column is None:
            continue
        col = table[column]
        parts.append(
            table.aggregate(
                table_name=ibis.literal(name), first_at=col.min().cast("timestamp"), last_at=col.max().cast("timestamp")
            )
        )
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def text_rows(ws: Workspace) -> ibis.Table | None:
    """Every customer text, as (source_table, source_id, account_id, occurred_at, channel, text, language)."""
    parts = []
    fb, tk, tp = (ws.tables[t] for t in ("feedback", "support_tickets", "touchpoints"))
    s = ibis.literal
    if fb is not None:
        parts.append(
            fb.select(
                source_table=s("feedback"),
                source_id=fb.feedback_id,
                account_id=fb.account_id,
                occurred_at=fb.submitted_at,
                channel=fb.channel,
                text=fb.text,
                language=fb.language,
            )
        )
    if tk is not None:
        body = ibis.coalesce(tk.subject + ". ", s("")) + ibis.coalesce(tk.body, s(""))
        parts.append(
            tk.select(
                source_table=s("support_tickets"),
                source_id=tk.ticket_id,
                account_id=tk.account_id,
                occurred_at=tk.opened_at,
                channel=s("ticket"),
                text=body,
                language=ibis.null("string"),
            )
        )
    if tp is not None:
        tid = tp.account_id + "|" + tp.occurred_at.cast("string") + "|" + tp.kind
        parts.append(
            tp.select(
                source_table=s("touchpoints"),
                source_id=tid,
                account_id=tp.account_id,
                occurred_at=tp.occurred_at,
                channel=tp.kind,
                text=tp.notes,
                language=ibis.null("string"),
            )
        )
    if not parts:
        return None
    rows = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return rows.filter(rows.text.notnull() & (rows.text.length() > 0))


def build_evidence(
    ws: Workspace,
    settings: Settings,
    progress: Callable[[int], None] | None = None,
    store: ibis.BaseBackend | None = None,
) -> ibis.Table | None:
    """Match every text against the taxonomy, in batches, into the `evidence` table of
    `store` (default: the workspace's own database).

    Returns None when the workspace holds no text table at all (QCF features missing).
    """
    rows = text_rows(ws)
    if rows is None:
        return None
    taxonomy = load_taxonomy(extra_dir=settings.features.taxonomy_dir)

    def batches(spool: Path) -> Iterator[pd.DataFrame]:
        for batch in pq.ParquetFile(spool).iter_batches(batch_size=settings.features.text_batch_rows):
            frame = batch.to_pandas()
            if progress:
                progress(len(frame))
            yield frame

    store = ws.backend if store is None else store
    store.create_table("evidence", schema=EVIDENCE_SCHEMA, overwrite=True)
    with tempfile.TemporaryDirectory(prefix="radar-texts-") as tmp:
        # the texts are spooled to a file first: an insert into the database streaming
        # them (DuckDB) would end that stream after its first batch
        spool = Path(tmp) / "texts.parquet"
        rows.to_parquet(spool)
        for frame in iter_evidence(batches(spool), taxonomy):
            if len(frame):
                store.insert("evidence", frame)
    return store.table("evidence")


def snapshot_expr(
    ws: Workspace,
    as_of_dates: list[date],
    settings: Settings,
    evidence: ibis.Table | None,
    event_types: list[events.EventType] | None = None,
) -> ibis.Table:
    """The snapshot table: features, health score and labels per (account_id, as_of).

    `event_types`: those that get per-event features (default: chosen here from the
    events before the last as-of date, `events.choose_event_types`).

    Each builder's result is cached (materialised as a temporary table by the backend)
    before the final join: one plan per builder stays small, where a single plan of
    every builder inlined would be compiled and optimised as one very large query.
    """
    cfg = settings.features
    calendar = calendar_table(as_of_dates)
    subs = ws.tables["subscriptions"]
    spine = subscription_features(subs, calendar, grace_days=settings.domain.grace_days).cache()
    if event_types is None:
        event_types = events.choose_event_types(ws.tables["usage_events"], max(as_of_dates), cfg)
    parts = [
        usage.usage_features(ws.tables["usage_events"], spine, calendar, cfg, event_types),
        support.support_features(ws.tables["support_tickets"], spine, calendar, cfg),
        feedback.survey_features(ws.tables["feedback"], spine, calendar, cfg),
        touchpoints.touchpoint_features(ws.tables["touchpoints"], spine, calendar, cfg),
        feedback.qcf_features(evidence, spine, calendar, cfg),
        build_labels(subs, calendar, settings.domain, ws.data_end, workspace_blackouts(ws.backend)),
    ]
    out = spine
    accounts = ws.tables["accounts"]
    if accounts is not None:
        out = out.left_join(accounts.select("account_id", *META, "segment", "industry", "region"), "account_id")
        out = out.drop("account_id_right")
    else:
        out = out.mutate(**{c: ibis.null("string") for c in (*META, "segment", "industry", "region")})
    for part in parts:
        out = out.left_join(part.cache(), KEY).drop("account_id_right", "as_of_right")
    out = health.with_health(out, settings.health)
    registry = feature_registry(settings, event_types)
    # labels are int8 everywhere; Spark reads its cached labels back as int (IF(c, 1, 0))
    labels = [out[c].cast("int8").name(c) for c in LABELS]
    return out.select(*KEY, *META, *registry.names, *labels, *LABEL_CONTEXT).order_by(KEY)
