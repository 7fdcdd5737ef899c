"""The alert webhook against a real HTTP receiver on 127.0.0.1: one POST per alert (one per
account and kind, its signals listed) with an idempotency key, bounded retries with backoff,
no duplicate on a rerun, and alerts past their owner's cap held back until they come within it."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from radar.settings import AlertSettings
from serving.workflow.alert_rules import Alert
from serving.workflow.webhook import deliver, idempotency_key

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
    """An HTTP receiver that answers the scripted status codes first, then 200, and keeps every request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                    )
                    code = receiver.script.pop(0) if receiver.script else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/radar?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests]


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


def test_each_alert_is_posted_once_with_its_idempotency_key_and_a_rerun_sends_nothing(receiver, con):
    alerts = [alert("a:risk", "meeting"), alert("b:risk"), alert("c:expansion", "tag", "open")]
    report = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert report.ok and report.sent == ["a:risk", "b:risk", "c:expansion"]
    assert receiver.keys() == [idempotency_key(a) for a in alerts] and len(set(receiver.keys())) == 3
    first = receiver.requests[0]
    assert first["path"] == "/hooks/radar?token=s3cret" and first["headers"]["Content-Type"] == "application/json"
    assert first["body"]["key"] == "a:risk" and first["body"]["idempotency_key"] == idempotency_key(alerts[0])
    assert first["body"]["routing"] == "meeting" and first["body"]["owner"] == "Account manager"
    # the decision layer's numbers and the account's grouped signals; no 90-day risk worded as a renewal likelihood
    body = first["body"]
    assert (body["churn_risk"], body["churn_lift"], body["expected_mrr_loss"]) == (0.08, 2.0, 8.0)
    assert body["rules"] == ["risk_tier", "escalation"] and len(body["signals"]) == 2 and body["capped"] is False
    assert body["title"].endswith("(+1 more signal)") and "renewal_likelihood" not in body
    assert report.endpoint == f"http://127.0.0.1:{receiver.server.server_address[1]}"  # no token shown

    again = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert (again.sent, again.already, again.requests, len(receiver.requests)) == ([], 3, 0, 3)
    # a new alert in a later run is sent alone; the same alert raised again later is a new occurrence
    later = [*alerts, alert("d:risk"), alert("a:risk", opened=date(2026, 5, 31))]
    third = deliver(later, receiver.url, FAST, con, now=NOW)
    assert third.sent == ["d:risk", "a:risk"] and third.already == 3
    recorded = con.execute("SELECT count(*), count(DISTINCT idempotency_key) FROM alert_deliveries").fetchone()
    assert recorded == (5, 5)


def test_a_receiver_that_fails_twice_then_succeeds_gets_the_alert_once_with_the_same_key(receiver, con):
    receiver.script = [503, 502]
    waits = []
    report = deliver([alert("a:risk")], receiver.url, FAST, con, now=NOW, sleep=waits.append)
    assert report.ok and report.sent == ["a:risk"] and report.requests == 3
    assert len(set(receiver.keys())) == 1 and len(receiver.requests) == 3
    assert waits == [0.01, 0.02]  # backoff doubles between tries
    assert con.execute("SELECT attempts, status_code FROM alert_deliveries").fetchall() == [(3, 200)]
    assert deliver([alert("a:risk")], receiver.url, FAST, con, now=NOW).requests == 0


def test_an_endpoint_that_keeps_failing_is_given_up_and_the_next_run_sends_everything(receiver, con):
    receiver.script = [503] * 4
    alerts = [alert("a:risk"), alert("b:risk"), alert("c:risk")]
    report = deliver(alerts, receiver.url, FAST, con, now=NOW, sleep=lambda s: None)
    assert not report.ok and report.requests == 4 and report.sent == []  # 4 tries, then no more requests
    assert report.rejected == [("a:risk", "HTTP 503 after 4 tries")] and report.not_sent == 2
    assert con.execute("SELECT count(*) FROM alert_deliveries").fetchone() == (0,)
    recovered = deliver(alerts, receiver.url, FAST, con, now=NOW)
    assert recovered.ok and len(recovered.sent) == 3


def test_a_rejected_alert_is_not_retried_and_does_not_stop_the_others(receiver, con):
    receiver.script = [422]
    report = deliver([alert("a:risk"), alert("b:risk")], receiver.url, FAST, con, now=NOW)
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
    assert receiver.requests[-1]["body"]["routing"] == "meeting" and receiver.requests[-1]["body"]["capped"] is False
    # an alert delivered while within the cap and capped later is already delivered, not held back
    week3 = [alert("b:risk", status="open", capped=True)]
    third = deliver(week3, receiver.url, FAST, con, now=NOW)
    assert (third.sent, third.already, third.capped, third.requests) == ([], 1, 0, 0)
