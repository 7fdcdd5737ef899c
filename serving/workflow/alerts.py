"""`radar alerts`: the rules of DOMAIN 5 run on the workspace, their state kept in it.

`run_alerts` reads the recent snapshots and the feedback evidence from the workspace
database, scores the snapshots with the served models (`serving.scoring.score.score_frame`:
probabilities for every account and date, explanations only for the accounts an alert
may need them for), evaluates the rules (`serving.workflow.alert_rules`), marks each alert new,
open, snoozed or closed (`serving.workflow.alert_state`) and writes them as JSON under
`<output_dir>/alerts/`. `deliver_alerts` POSTs them to a webhook (`serving.workflow.webhook`).

Dates: `as_of` (default: the latest snapshot date) ends the evidence windows; the scores
and indicators come from the latest snapshot on or before it; the churn risk rise compares
it with an earlier snapshot (see `alert_rules.previous_date`), and says which.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from features.snapshot import feature_registry
from radar.settings import Settings
from serving.scoring.batch import WorkspaceUnavailable, connect_workspace, snapshot_dates
from serving.scoring.explain import likelihood_of
from serving.scoring.playbook import load_playbooks
from serving.scoring.score import ScoringModels, score_frame
from serving.workflow.alert_rules import Alert, AlertError, AlertInputs, evaluate, indicator_specs, previous_date
from serving.workflow.alert_state import apply_state, held_keys, set_status, stored
from serving.workflow.webhook import DeliveryReport, deliver

SNAPSHOTS, EVIDENCE = "snapshots", "evidence"
EVIDENCE_COLUMNS = (
    "account_id",
    "occurred_at",
    "channel",
    "conversation_id",
    "sentence",
    "bucket",
    "polarity",
    "sentiment",
)


@contextmanager
def workspace(settings: Settings, read_only: bool):
    """A connection to the workspace database, closed afterwards; a missing or locked
    one is an `AlertError` saying what to do."""
    try:
        con = connect_workspace(settings, read_only=read_only)
    except WorkspaceUnavailable as exc:
        raise AlertError(str(exc)) from exc
    try:
        yield con
    finally:
        con.close()


@dataclass
class AlertRun:
    as_of: date
    scores_as_of: date
    previous: date | None  # the snapshot the churn risk rise compared with
    dates: tuple[date, ...]  # snapshots the frequencies were measured on
    alerts: list[Alert]  # every alert triggered, with its status
    path: Path | None = None
    max_per_owner: int | None = None  # the per-owner cap the alerts were held to

    def with_status(self, *statuses: str) -> list[Alert]:
        return [a for a in self.alerts if a.status in statuses]

    def counts(self) -> dict[str, int]:
        out = {s: len(self.with_status(s)) for s in ("new", "open", "snoozed", "closed")}
        for routing in ("meeting", "review", "tag"):
            out[f"new_{routing}"] = sum(a.routing == routing for a in self.with_status("new"))
        out["capped"] = sum(a.capped for a in self.with_status("new", "open"))
        return out

    def per_owner(self) -> dict[str, dict[str, int]]:
        """Per CSM owner ("" for none), its open alerts (new or from earlier runs): risk alerts
        within the cap, expansion opportunities within theirs, those past a cap (waiting in the
        review queue) and those tagged for later (not capped); the most alerts first."""
        out: dict[str, dict[str, int]] = {}
        for a in self.with_status("new", "open"):
            counts = out.setdefault(a.csm_owner or "", {"alerts": 0, "opportunities": 0, "capped": 0, "tagged": 0})
            within = "opportunities" if a.key.endswith(":expansion") else "alerts"
            counts["capped" if a.capped else "tagged" if a.routing == "tag" else within] += 1
        return dict(sorted(out.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))

    def document(self) -> dict:
        return {
            "as_of": str(self.as_of),
            "scores_as_of": str(self.scores_as_of),
            "risk_rise_compared": [str(self.previous), str(self.scores_as_of)] if self.previous else None,
            "frequency_snapshots": [str(d) for d in self.dates],
            "counts": self.counts(),
            "max_per_owner": self.max_per_owner,
            "per_owner": self.per_owner(),
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
        }


def _dates(con: duckdb.DuckDBPyConnection, include_partial: bool = False, keep: date | None = None) -> list[date]:
    """The snapshot dates a run may use: partial ones only when asked (`snapshot_dates`)."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if SNAPSHOTS not in tables:
        raise AlertError(f"the workspace has no {SNAPSHOTS} table: run `radar build-features` first")
    return snapshot_dates(con, include_partial=include_partial, keep=keep)


def _evidence(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if EVIDENCE not in tables:
        return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
    return con.execute(
        f"SELECT {', '.join(EVIDENCE_COLUMNS)} FROM {EVIDENCE} WHERE occurred_at >= ? "
        "AND occurred_at < ? AND polarity IN ('red', 'green')",
        [pd.Timestamp(start), pd.Timestamp(end)],
    ).df()


def load_inputs(
    settings: Settings,
    models: ScoringModels,
    as_of: date | None = None,
    *,
    scored_at: datetime | None = None,
    include_partial: bool = False,
) -> AlertInputs:
    """Snapshots, scores and evidence for a run at `as_of` (default: the latest snapshot
    date that is not partial; partial dates are never compared with unless asked)."""
    cfg = settings.alerts
    with workspace(settings, read_only=True) as con:
        dates = _dates(con, include_partial, keep=as_of)
        if not dates:
            raise AlertError(f"the {SNAPSHOTS} table is empty: run `radar build-features`")
        as_of = as_of or dates[-1]
        before = [d for d in dates if d <= as_of]
        if not before:
            raise AlertError(f"no snapshots on or before {as_of} (the first is {dates[0]})")
        current = before[-1]
        recent = tuple(before[-cfg.history_snapshots :])
        previous = previous_date(before, current, cfg)
        wanted = sorted(set(recent) | ({previous} if previous else set()))
        snaps = con.execute(
            f"SELECT * FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) IN "
            f"({', '.join('?' * len(wanted))}) ORDER BY as_of, account_id",
            wanted,
        ).df()
        days = max(cfg.quote_days, cfg.escalation_days)
        evidence = _evidence(con, as_of - timedelta(days=days), as_of)
    snaps["as_of"] = pd.to_datetime(snaps["as_of"]).dt.date
    stamp = scored_at or datetime.now(UTC)
    quick = score_frame(snaps, models, settings, explain=False, scored_at=stamp)
    history = quick[["account_id", "as_of", "churn_risk", "churn_lift", "risk_tier", "opportunity"]]
    now = quick["as_of"] == current
    needs = now & ((quick["risk_tier"] != "green") | quick["opportunity"].astype(bool))
    if previous is not None:
        was = history[history["as_of"] == previous].set_index("account_id")["churn_lift"]
        needs |= now & ((quick["churn_lift"] - quick["account_id"].map(was)) > cfg.rise_threshold)
    explained = (
        score_frame(snaps[needs.to_numpy()], models, settings, explain=True, scored_at=stamp)
        if needs.any()
        else quick.iloc[:0]
    )
    scores = pd.concat([explained, quick[now & ~needs]], ignore_index=True)
    scores = scores.sort_values("account_id", kind="stable", ignore_index=True)
    return AlertInputs(
        as_of=as_of,
        current=current,
        dates=recent,
        snapshots=snaps[snaps["as_of"].isin(recent)],
        scores=scores,
        history=history,
        previous=previous,
        evidence=evidence,
        inverted=likelihood_of(models.renewal.model)[1],
    )


def run_alerts(
    settings: Settings,
    models: ScoringModels,
    as_of: date | None = None,
    *,
    now: datetime | None = None,
    write: bool = True,
) -> AlertRun:
    """Evaluate the rules at `as_of`, record the alerts' state, write the JSON file."""
    now = now or datetime.now(UTC)
    books = load_playbooks(settings.serving.playbooks_file)
    registry = feature_registry(settings)
    indicator_specs(settings.alerts.indicator_levels, registry)  # settings mistakes before any work
    inputs = load_inputs(settings, models, as_of, scored_at=now)
    evaluated = tuple(r for r in settings.alerts.rules if r != "risk_rise" or inputs.previous is not None)
    with workspace(settings, read_only=False) as con:
        inputs = replace(inputs, held=held_keys(con, inputs.as_of))  # snoozed and closed: not under the cap
        alerts = evaluate(inputs, settings.alerts, books, registry)
        alerts = apply_state(con, alerts, inputs.as_of, evaluated, now)
    run = AlertRun(
        inputs.as_of, inputs.current, inputs.previous, inputs.dates, alerts, max_per_owner=settings.alerts.max_per_owner
    )
    if write:
        folder = settings.output_dir / "alerts"
        folder.mkdir(parents=True, exist_ok=True)
        run.path = folder / f"alerts-{inputs.as_of}.json"
        run.path.write_text(json.dumps(run.document(), indent=2, ensure_ascii=False))
    return run


def deliver_alerts(
    run: AlertRun, settings: Settings, url: str, *, now: datetime | None = None, **options
) -> DeliveryReport:
    """POST the run's open alerts to `url` (see `serving.workflow.webhook`)."""
    with workspace(settings, read_only=False) as con:
        return deliver(run.alerts, url, settings.alerts, con, now=now or datetime.now(UTC), **options)


def change_alert(
    settings: Settings,
    key: str,
    status: str,
    *,
    reason: str | None = None,
    until: date | None = None,
    now: datetime | None = None,
) -> None:
    """Snooze (until a date), close or reopen a stored alert, with a reason."""
    with workspace(settings, read_only=False) as con:
        set_status(con, key, status, reason=reason, until=until, now=now or datetime.now(UTC))


def alert_states(settings: Settings, statuses: tuple[str, ...] | None = None) -> pd.DataFrame:
    with workspace(settings, read_only=False) as con:
        return stored(con, statuses)
