"""Alerts POSTed to a webhook: bounded retries with backoff, one idempotency key per alert,
and a record of what was delivered so that a rerun sends no duplicate.

Each alert is one POST of its JSON with an `Idempotency-Key` header: a hash of the
alert key and the date it was opened, so the same alert keeps its key across runs and
an alert that comes back later is a new one. Deliveries are recorded in the workspace
database (`alert_deliveries`, per endpoint: a hash of the URL, which may hold a token)
as soon as the receiver accepts them. Connection errors, timeouts, 408, 425, 429 and 5xx
are retried up to `webhook_attempts` times, waiting `webhook_backoff_seconds` doubled at
each try; when an alert still fails the endpoint is given up for this run (the rest wait
for the next run). Another 4xx rejects that alert only.

Alerts past their CSM owner's weekly cap (`capped`, see `alert_rules.cap_per_owner`) are
not posted: they wait in the review queue and are counted; an alert is posted in the first
run in which it comes within the cap (posting it capped would spend its idempotency key).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import httpx

from radar.settings import AlertSettings
from serving.workflow.alert_rules import Alert
from serving.workflow.alert_state import utc_naive

DELIVERIES = "alert_deliveries"
RETRIED = frozenset({408, 425, 429})


@dataclass
class DeliveryReport:
    endpoint: str  # the URL without its path and query, for people to read
    sent: list[str] = field(default_factory=list)  # alert keys accepted by the receiver
    already: int = 0  # alerts delivered by an earlier run
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (alert key, why)
    not_sent: int = 0  # alerts left for the next run after the endpoint was given up
    capped: int = 0  # alerts past their owner's cap, held back until they come within it
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.not_sent


def idempotency_key(alert: Alert) -> str:
    return hashlib.sha256(f"{alert.key}|{alert.opened_as_of}".encode()).hexdigest()[:32]


def _endpoint_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _shown(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE TABLE IF NOT EXISTS {DELIVERIES} (
        idempotency_key VARCHAR, endpoint VARCHAR, key VARCHAR, delivered_at TIMESTAMP, status_code INTEGER,
        attempts INTEGER, PRIMARY KEY (idempotency_key, endpoint))""")


def _post(
    client: httpx.Client,
    url: str,
    body: bytes,
    key: str,
    cfg: AlertSettings,
    sleep: Callable[[float], None],
    report: DeliveryReport,
) -> tuple[str, int | None, str, int]:
    """('ok' | 'rejected' | 'failed', status code, why, attempts) of one alert."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "account-radar"}
    why, code = "", None
    for attempt in range(1, cfg.webhook_attempts + 1):
        report.requests += 1
        try:
            response = client.post(url, content=body, headers=headers)
            code = response.status_code
            if 200 <= code < 300:
                return "ok", code, "", attempt
            why = f"HTTP {code}"
            if code < 500 and code not in RETRIED:
                return "rejected", code, why, attempt
        except httpx.TransportError as exc:
            why = f"{type(exc).__name__}: {exc}"
        if attempt < cfg.webhook_attempts:
            sleep(cfg.webhook_backoff_seconds * 2 ** (attempt - 1))
    return "failed", code, why, cfg.webhook_attempts


def deliver(
    alerts: list[Alert],
    url: str,
    cfg: AlertSettings,
    con: duckdb.DuckDBPyConnection,
    *,
    now: datetime,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """POST the open alerts (new or still open) routed to the webhook, within their owner's
    cap, that this endpoint has not accepted yet; record each delivery."""
    ensure_table(con)
    endpoint = _endpoint_id(url)
    done = {
        r[0] for r in con.execute(f"SELECT idempotency_key FROM {DELIVERIES} WHERE endpoint = ?", [endpoint]).fetchall()
    }
    report = DeliveryReport(_shown(url))
    wanted = [a for a in alerts if a.status in ("new", "open") and a.routing in cfg.webhook_routing]
    pending = [a for a in wanted if not a.capped or idempotency_key(a) in done]  # delivered: counted as such
    report.capped = len(wanted) - len(pending)
    stamp = utc_naive(now)
    own = client is None
    client = client or httpx.Client(timeout=cfg.webhook_timeout_seconds, follow_redirects=False)
    try:
        for i, alert in enumerate(pending):
            key = idempotency_key(alert)
            if key in done:
                report.already += 1
                continue
            body = json.dumps({"idempotency_key": key, **alert.model_dump(mode="json")}).encode()
            outcome, code, why, attempts = _post(client, url, body, key, cfg, sleep, report)
            if outcome == "ok":
                con.execute(
                    f"INSERT OR REPLACE INTO {DELIVERIES} VALUES (?, ?, ?, ?, ?, ?)",
                    [key, endpoint, alert.key, stamp, code, attempts],
                )
                report.sent.append(alert.key)
            elif outcome == "rejected":
                report.rejected.append((alert.key, why))
            else:
                report.rejected.append((alert.key, f"{why} after {attempts} tries"))
                report.not_sent = sum(idempotency_key(a) not in done for a in pending[i + 1 :])
                break
    finally:
        if own:
            client.close()
    return report
