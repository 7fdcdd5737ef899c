"""The alert webhook against a real HTTP receiver on 127.0.0.1: alerts in batches (one alert per
account and kind, its signals listed, each with its idempotency key), bounded retries with
backoff that honour Retry-After, no duplicate on a rerun, and alerts past their owner's cap
held back until they come within it."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from radar.settings import AlertSettings
from serving.workflow.alert_rules import Alert
from serving.workflow.webhook import batch_key, deliver, idempotency_key, retry_after_seconds

AS_OF = date(2026, 3, 31)
NOW = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
FAST = AlertSettings(webhook_attempts=4, webhook_backoff_seconds=0.01, webhook_timeout_seconds=5)


def alert(key: str, routing: str = "review", status: str = "new", opened: date = AS_OF, capped: bool = False) -> Alert:
    account, kind = key.split(":")
    rule = "expansion" if kind == "expansion" else "risk_tier"
    return Alert(
        key=key,
        account_id=account,
        account_name=f"Account {account}",
        csm_owner="Ana",
        rule=rule,
        subject="yellow" if rule == "risk_tier" else None,
        title=f"{key} title" + (" (+1 more signal)" if rule == "risk_tier" else ""),
        as_of=AS_OF,
        scores_as_of=AS_OF,
        severity=0.5,
        frequency=0.5,
        impact=0.5,
        insight_score=0.5,
        routing=routing,
        playbook="renewal_risk",
        action="Renewal review",
        owner="Account manager",
        escalated=False,
        mrr=100.0,
        churn_risk=0.08,
        churn_lift=2.0,
        expected_mrr_loss=8.0,
        upsell_likelihood=0.1,
        risk_tier="yellow",
        evidence=[],
        signals=[f"{key} title", "Red pricing perception cues in 2 distinct conversations in the last 30 days"]
        if rule == "risk_tier"
        else [f"{key} title"],
        rules=["risk_tier", "escalation"] if rule == "risk_tier" else ["expansion"],
        capped=capped,
        status=status,
        opened_as_of=opened,
    )


class Receiver:
    """An HTTP receiver that answers the scripted (status code, headers) first, then 200, and keeps
    every request with the time it came."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[int | tuple[int, dict]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(body),
                            "at": time.monotonic(),
                        }
                    )
                    code = receiver.script.pop(0) if receiver.script else 200
                code, extra = code if isinstance(code, tuple) else (code, {})
                self.send_response(code)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/radar?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def keys(self) -> list[str]:
        """The alerts' idempotency keys, over every request."""
        return [a["idempotency_key"] for r in self.requests for a in r["body"]["alerts"]]

    def alerts(self) -> list[dict]:
        return [a for r in self.requests for a in r["body"]["alerts"]]


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(timeout=5)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "radar.duckdb"))
    yield connection
    connection.close()


def test_alerts_are_posted_in_one_batch_with_their_idempotency_keys_and_a_rerun_sends_nothing(receiver, con):
    alerts = [alert("a:risk", "meeting"), alert("b:risk"), alert("c:expansion", "tag", "open")]
    report = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert report.ok and report.sent == ["a:risk", "b:risk", "c:expansion"]
    assert (report.requests, report.batches, len(receiver.requests)) == (1, 1, 1)
    assert receiver.keys() == [idempotency_key(a) for a in alerts] and len(set(receiver.keys())) == 3
    request = receiver.requests[0]
    assert request["path"] == "/hooks/radar?token=s3cret" and request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Idempotency-Key"] == batch_key([idempotency_key(a) for a in alerts])
    first = request["body"]["alerts"][0]
    assert first["key"] == "a:risk" and first["idempotency_key"] == idempotency_key(alerts[0])
    assert first["routing"] == "meeting" and first["owner"] == "Account manager"
    # the decision layer's numbers and the account's grouped signals; no 90-day risk worded as a renewal likelihood
    assert (first["churn_risk"], first["churn_lift"], first["expected_mrr_loss"]) == (0.08, 2.0, 8.0)
    assert first["rules"] == ["risk_tier", "escalation"] and len(first["signals"]) == 2 and first["capped"] is False
    assert first["title"].endswith("(+1 more signal)") and "renewal_likelihood" not in first
    assert report.endpoint == f"http://127.0.0.1:{receiver.server.server_address[1]}"  # no token shown

    again = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert (again.sent, again.already, again.requests, len(receiver.requests)) == ([], 3, 0, 1)
    # a new alert in a later run is sent alone; the same alert raised again later is a new occurrence
    later = [*alerts, alert("d:risk"), alert("a:risk", opened=date(2026, 5, 31))]
    third = deliver(later, receiver.url, FAST, con, now=NOW)
    assert third.sent == ["d:risk", "a:risk"] and third.already == 3 and third.requests == 1
    recorded = con.execute("SELECT count(*), count(DISTINCT idempotency_key) FROM alert_deliveries").fetchone()
    assert recorded == (5, 5)


def test_557_alerts_go_out_in_6_requests_of_at_most_the_batch_size(receiver, con):
    alerts = [alert(f"acc{i:04d}:risk") for i in range(557)]
    report = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert report.ok and (report.requests, report.batches, len(report.sent)) == (6, 6, 557)
    assert [len(r["body"]["alerts"]) for r in receiver.requests] == [100] * 5 + [57]
    assert sorted(receiver.keys()) == sorted(idempotency_key(a) for a in alerts)
    assert deliver(alerts, receiver.url, FAST, con, now=NOW).requests == 0
    small = FAST.model_copy(update={"webhook_batch_size": 250})
    more = [alert(f"new{i:04d}:risk") for i in range(557)]
    assert deliver(more, receiver.url, small, con, now=NOW).requests == 3


def test_a_429_with_retry_after_is_waited_for_then_the_batch_is_sent_once(receiver, con):
    receiver.script = [(429, {"Retry-After": "1"})]
    alerts = [alert(f"acc{i:03d}:risk") for i in range(150)]
    report = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert report.ok and report.requests == 3 and report.batches == 2 and report.waits == [1.0]
    first, retried, _ = receiver.requests
    assert retried["at"] - first["at"] >= 1.0  # the receiver's wait, not the 0.01 s backoff
    assert retried["headers"]["Idempotency-Key"] == first["headers"]["Idempotency-Key"]
    assert sorted(receiver.keys()[100:]) == sorted(idempotency_key(a) for a in alerts)  # each sent once, after the 429


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=45), usegmt=True), now) == 45.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_a_receiver_asking_for_a_longer_wait_than_allowed_is_left_for_the_next_run(receiver, con):
    receiver.script = [(503, {"Retry-After": "3600"})]
    cfg = FAST.model_copy(update={"webhook_batch_size": 1, "webhook_max_wait_seconds": 30})
    waits = []
    report = deliver([alert("a:risk"), alert("b:risk")], receiver.url, cfg, con, now=NOW, sleep=waits.append)
    assert not report.ok and waits == [] and report.requests == 1 and report.not_sent == 1
    assert "asked to wait 3600s" in report.rejected[0][1]
    assert deliver([alert("a:risk"), alert("b:risk")], receiver.url, cfg, con, now=NOW).sent == ["a:risk", "b:risk"]


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_batch_once_with_the_same_key(receiver, con):
    receiver.script = [503, 502]
    waits = []
    report = deliver([alert("a:risk")], receiver.url, FAST, con, now=NOW, sleep=waits.append)
    assert report.ok and report.sent == ["a:risk"] and report.requests == 3
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.requests}) == 1 and len(receiver.requests) == 3
    assert waits == [0.01, 0.02]  # backoff doubles between tries
    assert con.execute("SELECT attempts, status_code FROM alert_deliveries").fetchall() == [(3, 200)]
    assert deliver([alert("a:risk")], receiver.url, FAST, con, now=NOW).requests == 0


def test_an_endpoint_that_keeps_failing_is_given_up_and_the_next_run_sends_everything(receiver, con):
    receiver.script = [503] * 4
    cfg = FAST.model_copy(update={"webhook_batch_size": 1})
    alerts = [alert("a:risk"), alert("b:risk"), alert("c:risk")]
    report = deliver(alerts, receiver.url, cfg, con, now=NOW, sleep=lambda s: None)
    assert not report.ok and report.requests == 4 and report.sent == []  # 4 tries, then no more requests
    assert report.rejected == [("a:risk", "HTTP 503 after 4 tries")] and report.not_sent == 2
    assert con.execute("SELECT count(*) FROM alert_deliveries").fetchone() == (0,)
    recovered = deliver(alerts, receiver.url, cfg, con, now=NOW)
    assert recovered.ok and len(recovered.sent) == 3


def test_the_total_time_of_a_request_and_its_retries_is_bounded(receiver, con):
    receiver.script = [503] * 10
    cfg = FAST.model_copy(update={"webhook_attempts": 10, "webhook_backoff_seconds": 0.2, "webhook_max_seconds": 0.5})
    started = time.monotonic()
    report = deliver([alert("a:risk")], receiver.url, cfg, con, now=NOW)
    assert not report.ok and report.requests < 10 and time.monotonic() - started < 3


def test_a_rejected_batch_is_not_retried_and_does_not_stop_the_others(receiver, con):
    receiver.script = [422]
    cfg = FAST.model_copy(update={"webhook_batch_size": 1})
    report = deliver([alert("a:risk"), alert("b:risk")], receiver.url, cfg, con, now=NOW)
    assert report.rejected == [("a:risk", "HTTP 422")] and report.sent == ["b:risk"]
    assert report.requests == 2


def test_only_open_alerts_of_the_configured_routings_are_sent(receiver, con):
    cfg = FAST.model_copy(update={"webhook_routing": ("meeting", "review")})
    alerts = [
        alert("a:risk", "meeting"),
        alert("b:expansion", "tag"),
        alert("c:risk", status="snoozed"),
        alert("d:risk", status="closed"),
    ]
    assert deliver(alerts, receiver.url, cfg, con, now=NOW).sent == ["a:risk"]


def test_an_unreachable_endpoint_is_retried_a_bounded_number_of_times(con):
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits = []
    report = deliver([alert("a:risk")], f"http://127.0.0.1:{port}/", FAST, con, now=NOW, sleep=waits.append)
    assert report.requests == 4 and len(waits) == 3 and not report.ok
    assert "ConnectError" in report.rejected[0][1]


def test_alerts_past_the_owner_cap_are_held_back_and_sent_once_within_it(receiver, con):
    week1 = [alert("a:risk", "meeting"), alert("b:risk", capped=True), alert("c:expansion", "tag", capped=True)]
    report = deliver(week1, receiver.url, FAST, con, now=NOW)
    assert report.ok and report.sent == ["a:risk"] and report.capped == 2 and report.requests == 1
    # a week later b comes within the cap (a was closed): it is posted, as it now is, once
    week2 = [alert("a:risk", "meeting", status="closed"), alert("b:risk", "meeting", "open")]
    second = deliver(week2, receiver.url, FAST, con, now=NOW)
    assert (second.sent, second.capped) == (["b:risk"], 0)
    last = receiver.requests[-1]["body"]["alerts"]
    assert [a["key"] for a in last] == ["b:risk"] and last[0]["routing"] == "meeting" and last[0]["capped"] is False
    # an alert delivered while within the cap and capped later is already delivered, not held back
    week3 = [alert("b:risk", status="open", capped=True)]
    third = deliver(week3, receiver.url, FAST, con, now=NOW)
    assert (third.sent, third.already, third.capped, third.requests) == ([], 1, 0, 0)
