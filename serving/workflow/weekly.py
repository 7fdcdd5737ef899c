"""`radar run`: the week's whole job, idempotent and resumable.

One run is for the week of its date ("today", `--date` in tests): the snapshot date is the
Monday on or before it (the weekly as-of calendar, `features.calendar`). Its steps, in
order: ingest the source folder when its files changed (`run.source_dir`; a fingerprint of
the files' names, sizes and modification times is kept in `weekly_sources`), build the
snapshots on the Mondays up to the week, score them into the CRM table (`run.crm_to`),
raise the alerts, post them to the alert webhook and to Slack, write the digests, e-mail
them, and refresh the monitoring report.

Each finished step is recorded in the workspace (`weekly_runs`, keyed by week and step):
a rerun of a completed week does nothing, and a run that failed or was killed resumes
at the first step not recorded. Every step is safe to repeat (snapshots are rebuilt, the
CRM write is an upsert, deliveries and mails are recorded one by one), so a step killed
half-way sends no duplicate when it runs again. The workspace write lock is held for the
whole run: a second run exits naming the holder.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from features.ingest import IngestError, WorkspaceBusy, ingest_workspace, workspace_lock
from radar.settings import Settings
from serving.workflow.alert_rules import Alert

RUNS = "weekly_runs"
SOURCES = "weekly_sources"
STEPS = ("ingest", "features", "score", "alerts", "webhook", "slack", "digest", "mail", "monitor")

__all__ = ["STEPS", "RunFailed", "StepOutcome", "WeekReport", "WorkspaceBusy", "run_week", "week_of"]


class RunFailed(RuntimeError):
    """A step failed; the message names it, says why, and that the next run resumes there."""

    def __init__(self, step: str, why: str, report: WeekReport):
        super().__init__(
            f"step {step} of the week of {report.week} failed: {why}. The steps before it are recorded; "
            "run `radar run` again (same week) to resume at this step."
        )
        self.step, self.report = step, report


@dataclass(frozen=True)
class StepOutcome:
    step: str
    status: str  # done, skipped (nothing to do or not configured), earlier (recorded by an earlier run), failed
    detail: str
    seconds: float = 0.0


@dataclass
class WeekReport:
    week: date  # the snapshot date: the Monday on or before the run's date
    steps: list[StepOutcome] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return all(s.status == "earlier" for s in self.steps)


def week_of(day: date) -> date:
    """The Monday on or before `day`: the as-of date of the week's snapshot."""
    return day - timedelta(days=day.weekday())


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.database_path))
    con.execute(f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        week DATE, step VARCHAR, status VARCHAR, detail VARCHAR, finished_at TIMESTAMP, seconds DOUBLE,
        PRIMARY KEY (week, step))""")
    return con


def recorded_steps(settings: Settings, week: date) -> dict[str, tuple[str, str]]:
    """step -> (status, detail) of the steps of `week` finished by earlier runs."""
    if not settings.database_path.exists():
        return {}
    con = _connect(settings)
    try:
        rows = con.execute(f"SELECT step, status, detail FROM {RUNS} WHERE week = ?", [week]).fetchall()
    finally:
        con.close()
    return {step: (status, detail) for step, status, detail in rows}


def _record(settings: Settings, week: date, outcome: StepOutcome) -> None:
    con = _connect(settings)
    try:
        con.execute(
            f"INSERT OR REPLACE INTO {RUNS} VALUES (?, ?, ?, ?, ?, ?)",
            [
                week,
                outcome.step,
                outcome.status,
                outcome.detail,
                datetime.now(UTC).replace(tzinfo=None),
                round(outcome.seconds, 3),
            ],
        )
    finally:
        con.close()


def source_fingerprint(folder: Path) -> str:
    """A hash of the folder's files (relative path, size, modification time): changes when an export changes."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


class _Week:
    """The state shared by the steps of one run: settings, dates, the models and digests once loaded."""

    def __init__(self, settings: Settings, week: date, now: datetime, progress: Callable[[str], None]):
        self.settings, self.week, self.now, self.progress = settings, week, now, progress
        self._models = None
        self._digests = None

    def models(self):
        if self._models is None:
            from serving.scoring.champions import load_champions
            from training.quiet import quiet_mlflow

            self.progress("loading the champion models")
            with quiet_mlflow():
                self._models = load_champions(self.settings)
        return self._models

    def digests(self):
        if self._digests is None:
            from serving.workflow.digest import build_digests

            self.progress("building the digests")
            self._digests = build_digests(self.settings, self.models(), self.week, now=self.now)
        return self._digests

    def alerts(self) -> list[Alert]:
        """The alerts of the week's run, as the alerts step wrote them."""
        path = self.settings.output_dir / "alerts" / f"alerts-{self.week}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        return [Alert.model_validate(a) for a in document["alerts"]]


class _Failed(Exception):
    """A step that could not finish (a delivery endpoint down, ...): the run stops, resumable."""


def _ingest(w: _Week) -> tuple[str, str]:
    s = w.settings
    if s.run.source_dir is None:
        return "skipped", "run.source_dir is not set (the workspace is loaded apart)"
    if s.workspace_url is not None:
        return "skipped", "the contract tables are read from workspace_url"
    folder = s.run.source_dir
    if not folder.is_dir():
        raise _Failed(f"run.source_dir {folder} is not a folder")
    fingerprint = source_fingerprint(folder)
    con = _connect(s)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {SOURCES} (fingerprint VARCHAR, week DATE, ingested_at TIMESTAMP)")
        last = con.execute(f"SELECT fingerprint, week FROM {SOURCES} ORDER BY ingested_at DESC LIMIT 1").fetchone()
    finally:
        con.close()
    if last is not None and last[0] == fingerprint:
        return "skipped", f"the files in {folder} are unchanged since the ingest of the week of {last[1]}"
    w.progress(f"ingesting {folder}")
    report = ingest_workspace(folder, s, accept_shrink=s.run.accept_shrink)
    con = _connect(s)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {SOURCES} (fingerprint VARCHAR, week DATE, ingested_at TIMESTAMP)")
        con.execute(
            f"INSERT INTO {SOURCES} VALUES (?, ?, ?)", [fingerprint, w.week, w.now.astimezone(UTC).replace(tzinfo=None)]
        )
    finally:
        con.close()
    accepted = sum(t.accepted for t in report.tables if t.status != "missing")
    rejected = sum(t.rejected for t in report.tables if t.status != "missing")
    return "done", f"{accepted:,} rows accepted, {rejected:,} rejected from {folder}"


def _features(w: _Week) -> tuple[str, str]:
    from features.build import build_features

    result = build_features(w.settings, None, w.week, "week", step=w.progress)
    d = result.as_of_dates
    if d[-1] != w.week:
        raise _Failed(f"the weekly calendar ends on {d[-1]}, not on the week's Monday {w.week}")
    return "done", f"{result.rows:,} snapshots of {result.accounts:,} accounts on {len(d)} Mondays ({d[0]} … {d[-1]})"


def _score(w: _Week) -> tuple[str, str]:
    from serving.crm.table import crm_frame, workspace_crm_ids
    from serving.crm.write import write_scores
    from serving.scoring.batch import load_snapshots, reading_workspace
    from serving.scoring.score import score_frame

    s = w.settings
    models = w.models()
    frame, day = load_snapshots(s, w.week)
    if day != w.week:
        raise _Failed(f"the latest snapshot on or before {w.week} is {day}: the features step did not build the week")
    w.progress(f"scoring {len(frame):,} accounts")
    scored = score_frame(frame, models, s, scored_at=w.now)
    target = str(s.database_path) if s.run.crm_to == "workspace" else s.run.crm_to
    with reading_workspace(s) as con:
        crm_ids = workspace_crm_ids(con)
    report = write_scores(
        crm_frame(scored, s.serving, crm_ids=crm_ids),
        target,
        written_at=w.now,
        change_points=s.serving.crm_change_points,
    )
    return "done", (
        f"{len(scored):,} accounts scored at {day}; CRM table {report.inserted:,} inserted, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged"
    )


def _alerts(w: _Week) -> tuple[str, str]:
    from serving.workflow.alerts import run_alerts

    run = run_alerts(w.settings, w.models(), w.week, now=w.now)
    c = run.counts()
    return "done", f"{c['new']:,} new alerts, {c['open']:,} still open, {c['capped']:,} capped; {run.path}"


def _webhook(w: _Week) -> tuple[str, str]:
    from serving.workflow.alerts import workspace
    from serving.workflow.webhook import deliver

    s = w.settings
    if s.alerts.webhook_url is None:
        return "skipped", "alerts.webhook_url is not set"
    with workspace(s, read_only=False) as con:
        report = deliver(w.alerts(), s.alerts.webhook_url.get_secret_value(), s.alerts, con, now=w.now)
    detail = (
        f"{report.endpoint}: {len(report.sent):,} sent in {report.requests:,} requests, "
        f"{report.already:,} already delivered, {report.capped:,} held back (capped)"
    )
    if report.not_sent or (report.rejected and not report.sent and not report.already):
        why = report.rejected[0][1] if report.rejected else "gave up"
        raise _Failed(f"alert webhook {detail}; {why}; {report.not_sent:,} alerts wait")
    if report.rejected:
        detail += f"; {len(report.rejected):,} rejected by the receiver (e.g. {report.rejected[0][1]})"
    return "done", detail


def _slack(w: _Week) -> tuple[str, str]:
    from serving.workflow.alerts import workspace
    from serving.workflow.slack import post_alerts

    s = w.settings
    if s.slack.webhook_url is None:
        return "skipped", "slack.webhook_url is not set"
    with workspace(s, read_only=False) as con:
        report = post_alerts(
            w.alerts(), w.week, s.slack.webhook_url.get_secret_value(), s.slack, s.alerts, con, now=w.now
        )
    detail = f"{report.endpoint}: {len(report.posted)} messages posted, {len(report.already)} posted earlier"
    if report.failed:
        raise _Failed(f"Slack {detail}; {report.failed[0][0]}: {report.failed[0][1]}")
    return "done", detail


def _digest(w: _Week) -> tuple[str, str]:
    from serving.workflow.digest_render import write_digests

    run = w.digests()
    folder = w.settings.output_dir / "digests" / str(run.week_end)
    written = write_digests(run, folder)
    return "done", f"{len(written)} digests for the week ending {run.week_end} in {folder}"


def _mail(w: _Week) -> tuple[str, str]:
    from serving.workflow.alerts import workspace
    from serving.workflow.mail import MailError, send_digests

    s = w.settings
    if not s.mail.host:
        return "skipped", "mail.host is not set: the digests stay on disk"
    run = w.digests()
    try:
        with workspace(s, read_only=False) as con:
            report = send_digests(run, s.mail, con, now=w.now)
    except MailError as exc:
        raise _Failed(str(exc)) from exc
    detail = f"{len(report.sent)} digests e-mailed via {report.server}, {len(report.already)} sent earlier"
    if report.no_address:
        detail += f"; no address for {', '.join(report.no_address)} (mail.owner_addresses or accounts.csm_email)"
    if report.refused:
        detail += "; refused: " + "; ".join(f"{o}: {why}" for o, why in report.refused)
    return "done", detail


def _monitor(w: _Week) -> tuple[str, str]:
    try:
        from serving.workflow import monitor
    except ImportError:
        return "skipped", "the monitoring report is not available in this version"
    try:
        report = monitor.refresh_monitoring(w.settings, w.models(), now=w.now)
    except monitor.MonitorError as exc:
        return "skipped", f"no monitoring report yet: {exc}"
    retrain, reasons = getattr(report, "retrain", None), getattr(report, "reasons", None) or []
    if retrain:
        return "done", "retraining recommended: " + "; ".join(reasons) + " (`radar monitor` shows the report)"
    return "done", "monitoring report refreshed" + (": no retraining needed" if retrain is False else "")


STEP_RUNNERS: dict[str, Callable[[_Week], tuple[str, str]]] = {
    "ingest": _ingest,
    "features": _features,
    "score": _score,
    "alerts": _alerts,
    "webhook": _webhook,
    "slack": _slack,
    "digest": _digest,
    "mail": _mail,
    "monitor": _monitor,
}

# what a step raises when its input or configuration is wrong (a message for people, no traceback)
EXPECTED = (_Failed, IngestError, FileNotFoundError, ValueError, RuntimeError, OSError, duckdb.Error)


def run_week(
    settings: Settings,
    today: date,
    *,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
    on_step: Callable[[StepOutcome], None] | None = None,
    steps: dict[str, Callable[[_Week], tuple[str, str]]] | None = None,
) -> WeekReport:
    """Run (or resume) the week of `today` under the workspace lock; see the module docstring.

    Raises WorkspaceBusy when another command holds the workspace, RunFailed when a step fails."""
    now = now or datetime.now(UTC)
    week = week_of(today)
    progress = progress or (lambda _: None)
    runners = steps or STEP_RUNNERS
    report = WeekReport(week)
    with workspace_lock(
        settings.database_path, f"run (week of {week})", settings.run.lock_wait_seconds, setting="run.lock_wait_seconds"
    ):
        earlier = recorded_steps(settings, week)
        w = _Week(settings, week, now, progress)
        for step, runner in runners.items():
            if step in earlier:
                outcome = StepOutcome(step, "earlier", earlier[step][1])
            else:
                progress(step)
                started = time.monotonic()
                try:
                    status, detail = runner(w)
                except EXPECTED as exc:
                    failed = StepOutcome(step, "failed", str(exc), time.monotonic() - started)
                    report.steps.append(failed)
                    if on_step:
                        on_step(failed)
                    raise RunFailed(step, str(exc), report) from exc
                outcome = StepOutcome(step, status, detail, time.monotonic() - started)
                _record(settings, week, outcome)
            report.steps.append(outcome)
            if on_step:
                on_step(outcome)
    return report
