"""Alerts POSTed to a webhook in batches: retries with backoff that honour `Retry-After`,
one idempotency key per alert and per batch, and a record of what was delivered so that
a rerun sends no duplicate.

Open alerts go out `webhook_batch_size` (100) at a time, each POST a JSON object
`{"alerts": [...]}` whose alerts carry their own `idempotency_key` (a hash of the alert key
and the date it was opened, so the same alert keeps its key across runs and an alert that
comes back later is a new one); the request's `Idempotency-Key` header is a hash of the
batch's keys, the same on every try. Deliveries are recorded in the workspace database
(`alert_deliveries`, per endpoint: a hash of the URL, which may hold a token) as soon as the
receiver accepts a batch.

Retries are tenacity's (`retry_policy`): connection errors, timeouts, 408, 425, 429 and 5xx
are tried again up to `webhook_attempts` tries and `webhook_max_seconds` in all, waiting
what the receiver's `Retry-After` asks (seconds or an HTTP date) or else
`webhook_backoff_seconds` doubled at each try, never more than `webhook_max_wait_seconds`
(a receiver asking for longer is given up for this run). When a batch still fails the
endpoint is given up for this run (the rest wait for the next run). Another 4xx rejects
that batch's alerts only.

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
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import duckdb
import httpx
import pandas as pd
import tenacity

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
    batches: int = 0  # batches accepted
    waits: list[float] = field(default_factory=list)  # seconds waited before each retry

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.not_sent


def idempotency_key(alert: Alert) -> str:
    return hashlib.sha256(f"{alert.key}|{alert.opened_as_of}".encode()).hexdigest()[:32]


def batch_key(keys: list[str]) -> str:
    """The `Idempotency-Key` of a batch: the same for the same alerts, on every try."""
    return hashlib.sha256("|".join(keys).encode()).hexdigest()[:32]


def _endpoint_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def shown_url(url: str) -> str:
    """The URL without its path and query (which may hold a token), for people to read."""
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}" + (f":{parts.port}" if parts.port else "")


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"""CREATE TABLE IF NOT EXISTS {DELIVERIES} (
        idempotency_key VARCHAR, endpoint VARCHAR, key VARCHAR, delivered_at TIMESTAMP, status_code INTEGER,
        attempts INTEGER, PRIMARY KEY (idempotency_key, endpoint))""")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header as seconds to wait: a number of seconds or an HTTP date
    (RFC 9110 10.2.3); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class GiveUp(Exception):
    """The receiver asked for a wait longer than allowed: stop retrying for this run."""


def _retriable(outcome: httpx.Response | None) -> bool:
    return outcome is not None and (outcome.status_code in RETRIED or outcome.status_code >= 500)


def retry_policy(
    attempts: int,
    backoff: float,
    max_wait: float,
    max_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    waited: list[float] | None = None,
) -> tenacity.Retrying:
    """Tenacity's retrying for one HTTP request returning an httpx.Response: transport errors
    and retriable statuses are tried again; the wait is the response's `Retry-After` when it
    has one, else exponential from `backoff`; a `Retry-After` above `max_wait` gives up.
    At most `attempts` tries and `max_seconds` in all; the last outcome is returned (or its
    exception raised)."""
    exponential = tenacity.wait_exponential(multiplier=backoff, exp_base=2, min=0, max=max_wait)

    def wait(state: tenacity.RetryCallState) -> float:
        asked = None
        if not state.outcome.failed:
            asked = retry_after_seconds(state.outcome.result().headers.get("Retry-After"))
        if asked is not None and asked > max_wait:
            raise GiveUp(f"the receiver asked to wait {asked:g}s (Retry-After), more than {max_wait:g}s")
        seconds = asked if asked is not None else exponential(state)
        if waited is not None:
            waited.append(seconds)
        return seconds

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(max_seconds),
        wait=wait,
        retry=tenacity.retry_if_exception_type(httpx.TransportError) | tenacity.retry_if_result(_retriable),
        sleep=sleep,
        retry_error_callback=lambda state: state.outcome.result(),  # the last response (or its exception)
    )


def _post_batch(
    client: httpx.Client,
    url: str,
    body: bytes,
    key: str,
    cfg: AlertSettings,
    sleep: Callable[[float], None],
    report: DeliveryReport,
) -> tuple[str, int | None, str, int]:
    """('ok' | 'rejected' | 'failed', status code, why, attempts) of one batch."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "account-radar"}
    tries = 0

    def post() -> httpx.Response:
        nonlocal tries
        tries += 1
        report.requests += 1
        return client.post(url, content=body, headers=headers)

    policy = retry_policy(
        cfg.webhook_attempts,
        cfg.webhook_backoff_seconds,
        cfg.webhook_max_wait_seconds,
        cfg.webhook_max_seconds,
        sleep,
        report.waits,
    )
    try:
        response = policy(post)
    except httpx.TransportError as exc:
        return "failed", None, f"{type(exc).__name__}: {exc}", tries
    except GiveUp as exc:
        return "failed", 429, str(exc), tries
    code = response.status_code
    if 200 <= code < 300:
        return "ok", code, "", tries
    return ("failed" if _retriable(response) else "rejected"), code, f"HTTP {code}", tries


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
    cap, that this endpoint has not accepted yet, in batches; record each delivery."""
    ensure_table(con)
    endpoint = _endpoint_id(url)
    done = {
        r[0] for r in con.execute(f"SELECT idempotency_key FROM {DELIVERIES} WHERE endpoint = ?", [endpoint]).fetchall()
    }
    report = DeliveryReport(shown_url(url))
    wanted = [a for a in alerts if a.status in ("new", "open") and a.routing in cfg.webhook_routing]
    pending = [a for a in wanted if not a.capped or idempotency_key(a) in done]  # delivered: counted as such
    report.capped = len(wanted) - len(pending)
    todo = [a for a in pending if idempotency_key(a) not in done]
    report.already = len(pending) - len(todo)
    batches = [todo[i : i + cfg.webhook_batch_size] for i in range(0, len(todo), cfg.webhook_batch_size)]
    stamp = utc_naive(now)
    own = client is None
    client = client or httpx.Client(timeout=cfg.webhook_timeout_seconds, follow_redirects=False)
    try:
        for i, batch in enumerate(batches):
            keys = [idempotency_key(a) for a in batch]
            body = json.dumps(
                {"alerts": [{"idempotency_key": k, **a.model_dump(mode="json")} for k, a in zip(keys, batch)]}
            ).encode()
            outcome, code, why, attempts = _post_batch(client, url, body, batch_key(keys), cfg, sleep, report)
            if outcome == "ok":
                rows = pd.DataFrame(  # one statement per batch (executemany runs one per row)
                    {
                        "idempotency_key": keys,
                        "endpoint": endpoint,
                        "key": [a.key for a in batch],
                        "delivered_at": pd.Timestamp(stamp),
                        "status_code": code,
                        "attempts": attempts,
                    }
                )
                con.register("delivered_batch", rows)
                try:
                    con.execute(f"INSERT OR REPLACE INTO {DELIVERIES} SELECT * FROM delivered_batch")
                finally:
                    con.unregister("delivered_batch")
                report.sent += [a.key for a in batch]
                report.batches += 1
            elif outcome == "rejected":
                report.rejected += [(a.key, why) for a in batch]
            else:
                report.rejected += [(a.key, f"{why} after {attempts} tries") for a in batch]
                report.not_sent = sum(len(b) for b in batches[i + 1 :])
                break
    finally:
        if own:
            client.close()
    return report
