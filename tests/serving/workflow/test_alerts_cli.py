"""`radar alerts` end to end on a served project (champion models in MLflow, a workspace with
snapshots and feedback evidence): rules, JSON, state kept across runs, snooze, close, webhook."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from radar.cli import app

ESCALATED = "acc0007"


@pytest.fixture
def project(served_project, tmp_path, red_quotes_workspace):
    """The served project with a private workspace holding red feedback for one account:
    two distinct conversations within the 30 days before the latest snapshot."""
    root, settings = served_project
    latest = red_quotes_workspace(root / "out", tmp_path / "out", ESCALATED, (3, 12), -0.5)
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "200",
        "RADAR_ALERTS__INDICATOR_LEVELS": json.dumps({"adoption_rate_28d": [0.1, 0.0]}),
    }
    return root / "radar.toml", env, tmp_path, latest


def radar(project, *args):
    config, env, _, _ = project
    return CliRunner().invoke(app, ["--config", str(config), "alerts", *args], env=env)


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(
                {
                    "key": self.headers["Idempotency-Key"],
                    "alert": json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                }
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", got
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_alerts_run_keep_their_state_and_are_posted_once(project, receiver):
    _, _, tmp, latest = project
    first = radar(project, "--json")
    assert first.exit_code == 0, first.output
    run = json.loads(first.stdout)
    assert run["as_of"] == run["scores_as_of"] == str(latest)
    previous = run["renewal_drop_compared"][0]
    assert 28 <= (latest - datetime.fromisoformat(previous).date()).days <= 31  # monthly: the month before
    alerts = {a["key"]: a for a in run["alerts"]}
    assert run["counts"]["new"] == len(alerts) > 0 and {a["status"] for a in alerts.values()} == {"new"}
    assert {a["rule"] for a in alerts.values()} >= {"escalation", "risk_tier", "indicator"}
    escalation = alerts[f"{ESCALATED}:escalation:pricing_perception"]
    assert escalation["owner"] == "Retention lead" and escalation["playbook"] == "renewal_risk"
    assert [(q["channel"], q["conversation"]) for q in escalation["evidence"]] == [
        ("call", "feedback:f1"),
        ("email", "support_tickets:t9"),
    ]
    for a in alerts.values():
        expected = "meeting" if a["insight_score"] > 0.6 else "review" if a["insight_score"] >= 0.3 else "tag"
        assert a["routing"] == expected and a["owner"] and a["action"]
    saved = json.loads((tmp / "out" / "alerts" / f"alerts-{latest}.json").read_text())
    assert saved["counts"] == run["counts"]

    table = radar(project)  # the same run again: nothing new, everything still open
    assert table.exit_code == 0, table.output
    assert "0 new alerts" in table.output and f"{len(alerts):,} still open from earlier runs" in table.output
    assert f"compared with {previous}" in table.output

    tier = next(k for k, a in alerts.items() if a["rule"] == "risk_tier")
    key = escalation["key"]
    snoozed = radar(project, "snooze", key, "--until", "2099-01-01", "--reason", "pricing call booked")
    closed = radar(project, "close", tier, "--reason", "handled by the account manager")
    assert snoozed.exit_code == 0 and closed.exit_code == 0, snoozed.output + closed.output
    assert radar(project, "close", "nobody:risk_tier:red", "--reason", "x").exit_code == 1
    listed = radar(project, "list")
    assert key in listed.output and "pricing call booked" in listed.output

    url, got = receiver
    posted = radar(project, "--json", "--webhook", url)
    assert posted.exit_code == 0, posted.output
    after = {a["key"]: a["status"] for a in json.loads(posted.stdout)["alerts"]}
    assert (after[key], after[tier]) == ("snoozed", "closed")
    assert {g["alert"]["key"] for g in got} == {k for k, s in after.items() if s == "open"}
    assert len({g["key"] for g in got}) == len(got)

    rerun = radar(project, "--webhook", url)
    assert rerun.exit_code == 0, rerun.output
    assert f"0 sent, {len(got):,} already delivered" in rerun.output and len(got) == sum(
        s == "open" for s in after.values()
    )
