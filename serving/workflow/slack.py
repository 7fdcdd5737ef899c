"""The week's alerts posted to a Slack-compatible incoming webhook: one message per CSM owner
per run, in mrkdwn, account data escaped.

A message lists the owner's open alerts of the run (new or still open, within the owner's
cap, of `slack.routings`) in call-list order, at most `slack.max_alerts` of them, the
rest counted. Account names, titles and actions are user data: `&`, `<` and `>` are
escaped as Slack asks, so a name cannot mention `@channel`, link or break the message.
Posts are retried like the alert webhook (`webhook.retry_policy`: Retry-After honoured);
each accepted message is recorded (`slack_messages`: endpoint, owner, run date) so a rerun
posts nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import httpx

from radar.settings import AlertSettings, SlackSettings
from serving.scoring.decisions import pct, times_typical
from serving.workflow.alert_rules import Alert
from serving.workflow.insight import ROUTES
from serving.workflow.webhook import GiveUp, retry_policy, shown_url

POSTED = "slack_messages"


@dataclass
class SlackReport:
    endpoint: str
    posted: list[str] = field(default_factory=list)  # owners
    already: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (owner, why)

    @property
    def ok(self) -> bool:
        return not self.failed


def escape(text: object) -> str:
    """User data as Slack mrkdwn text: &, < and > escaped (no mention, link or markup)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def owner_message(owner: str, alerts: list[Alert], as_of: date, max_alerts: int) -> str:
    """The mrkdwn text of one owner's message."""
    n = len(alerts)
    lines = [f"*Account Radar: {n} open alert{'s' if n != 1 else ''} for {escape(owner)}* (scores of {as_of})"]
    for a in alerts[:max_alerts]:
        risk = "" if a.churn_risk is None else f" · churn risk {pct(a.churn_risk)} ({times_typical(a.churn_lift)})"
        lines.append(
            f"• *{escape(a.account_name or a.account_id)}*: {escape(a.title)}{risk}\n"
            f"    {escape(ROUTES.get(a.routing, a.routing))}: {escape(a.action)} ({escape(a.owner)})"
        )
    if n > max_alerts:
        lines.append(f"…and {n - max_alerts} more in `radar alerts list`")
    return "\n".join(lines)


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE TABLE IF NOT EXISTS {POSTED} (
        endpoint VARCHAR, owner VARCHAR, as_of DATE, posted_at TIMESTAMP, PRIMARY KEY (endpoint, owner, as_of))""")


def post_alerts(
    alerts: list[Alert],
    as_of: date,
    url: str,
    cfg: SlackSettings,
    retries: AlertSettings,
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SlackReport:
    """One message per CSM owner with open alerts in the run of `as_of`, not posted before."""
    ensure_table(con)
    endpoint = hashlib.sha256(url.encode()).hexdigest()[:16]
    done = {
        r[0]
        for r in con.execute(
            f"SELECT owner FROM {POSTED} WHERE endpoint = ? AND as_of = ?", [endpoint, as_of]
        ).fetchall()
    }
    report = SlackReport(shown_url(url))
    per_owner: dict[str, list[Alert]] = {}
    for a in alerts:
        if a.status in ("new", "open") and not a.capped and a.routing in cfg.routings:
            per_owner.setdefault(a.csm_owner or "(no CSM owner)", []).append(a)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    with httpx.Client(timeout=cfg.timeout_seconds, follow_redirects=False) as client:
        for owner, owned in per_owner.items():
            if owner in done:
                report.already.append(owner)
                continue
            body = json.dumps({"text": owner_message(owner, owned, as_of, cfg.max_alerts), "mrkdwn": True})
            policy = retry_policy(
                retries.webhook_attempts,
                retries.webhook_backoff_seconds,
                retries.webhook_max_wait_seconds,
                retries.webhook_max_seconds,
                sleep,
            )
            try:
                response = policy(
                    lambda body=body: client.post(url, content=body, headers={"Content-Type": "application/json"})
                )
            except (httpx.TransportError, GiveUp) as exc:
                report.failed.append((owner, f"{type(exc).__name__}: {exc}"))
                break  # the endpoint is given up for this run; the next run posts the rest
            if not 200 <= response.status_code < 300:
                report.failed.append((owner, f"HTTP {response.status_code}: {response.text[:200]}"))
                continue
            con.execute(f"INSERT INTO {POSTED} VALUES (?, ?, ?, ?)", [endpoint, owner, as_of, stamp])
            report.posted.append(owner)
    return report
