"""`radar alerts` end to end on a served project (champion models in MLflow, a workspace with
snapshots and feedback evidence): rules grouped into one alert per account, the call-list order,
the per-owner cap, JSON, state kept across runs, snooze, close, list, webhook."""

from __future__ import annotations

import json
import shutil
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
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.extend({"key": a["idempotency_key"], "alert": a} for a in body["alerts"])  # batches of alerts
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
    previous = run["risk_rise_compared"][0]
    assert 28 <= (latest - datetime.fromisoformat(previous).date()).days <= 31  # monthly: the month before
    alerts = {a["key"]: a for a in run["alerts"]}
    assert run["counts"]["new"] == len(alerts) > 0 and {a["status"] for a in alerts.values()} == {"new"}
    assert {r for a in alerts.values() for r in a["rules"]} >= {"escalation", "risk_tier", "indicator", "risk_rise"}
    # one alert per account and kind, its signals listed, strongest first
    assert all(k.endswith((":risk", ":expansion")) for k in alerts)
    assert len({(a["account_id"], a["key"].endswith(":expansion")) for a in alerts.values()}) == len(alerts)
    for a in alerts.values():
        assert (
            a["rule"] == a["rules"][0]
            and len(a["signals"]) == len(a["rules"])
            and a["title"].startswith(a["signals"][0])
        )
        assert a["churn_risk"] is not None and "renewal_likelihood" not in a
        mrr = a["mrr"] or 0.0  # churn_risk is rounded to 6 decimals
        assert a["expected_mrr_loss"] == pytest.approx(a["churn_risk"] * mrr, abs=1e-6 * (mrr + 1))
    escalation = alerts[f"{ESCALATED}:risk"]
    assert escalation["rule"] == "escalation" and escalation["subject"] == "pricing_perception"
    assert escalation["owner"] == "Retention lead" and escalation["playbook"] == "renewal_risk"
    assert [(q["channel"], q["conversation"]) for q in escalation["evidence"] if q["kind"] == "quote"] == [
        ("call", "feedback:f1"),
        ("email", "support_tickets:t9"),
    ]
    # risks in call-list order (expected MRR lost, largest first), then the opportunities
    kinds = [a["key"].endswith(":expansion") for a in run["alerts"]]
    assert kinds == sorted(kinds)
    losses = [a["expected_mrr_loss"] for a in run["alerts"] if not a["key"].endswith(":expansion")]
    assert losses == sorted(losses, reverse=True)
    # at most max_per_owner (10) per CSM owner, in that order; the rest wait in the review queue, counted
    assert run["max_per_owner"] == 10
    # (risks and expansion opportunities are capped apart)
    for owner, counts in run["per_owner"].items():
        capped = 0
        for expansion in (False, True):
            queue = [
                a
                for a in run["alerts"]
                if a["csm_owner"] == owner
                and a["routing"] != "tag"
                and "escalation" not in a["rules"]  # escalations always reach the owner
                and a["key"].endswith(":expansion") == expansion
            ]
            flags = [a["capped"] for a in queue]
            kept = min(len(flags), 10)
            assert flags == [False] * kept + [True] * (len(flags) - kept)
            capped += len(flags) - kept
        assert capped == counts["capped"]
    assert run["counts"]["capped"] == sum(a["capped"] for a in alerts.values()) > 0
    assert {a["routing"] for a in alerts.values() if a["capped"]} == {"review"}
    for a in alerts.values():
        expected = "meeting" if a["insight_score"] > 0.6 else "review" if a["insight_score"] >= 0.3 else "tag"
        flagged = a["risk_tier"] != "green" or "escalation" in a["rules"] or a["key"].endswith(":expansion")
        if expected == "meeting" and (a["capped"] or not flagged):
            expected = "review"  # past the cap, or a green account without an escalation
        assert a["routing"] == expected and a["owner"] and a["action"]
    saved = json.loads((tmp / "out" / "alerts" / f"alerts-{latest}.json").read_text())
    assert saved["counts"] == run["counts"] and saved["per_owner"] == run["per_owner"]

    table = radar(project)  # the same run again: nothing new, everything still open
    assert table.exit_code == 0, table.output
    assert "0 new alerts" in table.output and f"{len(alerts):,} still open from earlier runs" in table.output
    assert f"Churn risk rise: scores of {latest} compared with {previous}" in table.output
    owners = run["per_owner"]
    escalated = {
        o: sum(
            a["csm_owner"] == o and "escalation" in a["rules"] and a["routing"] != "tag" and a["key"].endswith(":risk")
            for a in run["alerts"]
        )
        for o in owners
    }
    assert len(owners) == 3 and all(n["alerts"] == 10 + escalated[o] and n["capped"] > 0 for o, n in owners.items())
    per_owner = ", ".join(
        f"{owner} {10 + escalated[owner]} (+{n['capped']} capped"
        + (f", {n['tagged']} tagged for later" if n["tagged"] else "")
        + (f", {n['opportunities']} opportunities" if n["opportunities"] else "")
        + ")"
        for owner, n in owners.items()
    )
    assert f"Open alerts per CSM owner: {per_owner}." in table.output
    assert f"{run['counts']['capped']:,} alerts past the cap of 10 per CSM owner wait in the review queue" in (
        table.output
    )
    shown = radar(project, "--all", "--limit", "5")  # the table: churn risk in words, capped marked
    assert shown.exit_code == 0, shown.output
    top = run["alerts"][0]
    assert top["key"] in shown.output and f"({top['churn_lift']:.1f}x)" in shown.output
    assert "5 of" in shown.output and "renewal likelihood" not in shown.output.lower()

    tier = next(k for k, a in alerts.items() if a["rule"] == "risk_tier" and k != escalation["key"])
    key = escalation["key"]
    snoozed = radar(project, "snooze", key, "--until", "2099-01-01", "--reason", "pricing call booked")
    closed = radar(project, "close", tier, "--reason", "handled by the account manager")
    assert snoozed.exit_code == 0 and closed.exit_code == 0, snoozed.output + closed.output
    assert radar(project, "close", "nobody:risk", "--reason", "x").exit_code == 1
    listed = radar(project, "list", "--limit", "500")
    assert listed.exit_code == 0, listed.output
    assert key in listed.output and "pricing call booked" in listed.output and tier in listed.output
    assert f"{len(alerts) - 2:,} open" in listed.output and "1 snoozed" in listed.output and "1 closed" in listed.output

    url, got = receiver
    posted = radar(project, "--json", "--webhook", url)
    assert posted.exit_code == 0, posted.output
    third = json.loads(posted.stdout)
    after = {a["key"]: a["status"] for a in third["alerts"]}
    assert (after[key], after[tier]) == ("snoozed", "closed")
    # the alerts within their owner's cap are posted; the capped ones wait (and the snoozed and the
    # closed one no longer take a place under the cap)
    capped = {a["key"] for a in third["alerts"] if a["capped"]}
    assert {g["alert"]["key"] for g in got} == {k for k, s in after.items() if s == "open" and k not in capped}
    assert len({g["key"] for g in got}) == len(got) and capped
    assert third["counts"]["capped"] == len(capped)
    assert f"held back: {len(capped):,} alerts past their CSM owner's cap" in posted.stderr
    for g in got:
        assert g["alert"]["capped"] is False and "churn_risk" in g["alert"] and "signals" in g["alert"]

    rerun = radar(project, "--webhook", url)
    assert rerun.exit_code == 0, rerun.output
    assert f"0 sent, {len(got):,} already delivered" in rerun.output


def test_alerts_and_score_wait_for_the_workspace_writer_and_name_it(served_project, tmp_path):
    """One writer at a time: while another command holds the workspace, `radar alerts run` and
    `radar score --to workspace` exit 1 naming the holder, without a traceback or a change."""
    import duckdb

    from features.ingest import workspace_lock

    root, _ = served_project
    out = tmp_path / "out"
    out.mkdir()
    db = out / "radar.duckdb"
    shutil.copy(root / "out" / "radar.duckdb", db)
    env = {"RADAR_CONFIG_FILE": None, "RADAR_OUTPUT_DIR": str(out), "RADAR_INGEST__LOCK_WAIT_SECONDS": "0"}
    with workspace_lock(db, "ingest", 0):
        alerts = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "alerts", "run"], env=env)
        score = CliRunner().invoke(
            app, ["--config", str(root / "radar.toml"), "score", "--to", "workspace", "--top", "0"], env=env
        )
    for result in (alerts, score):
        assert result.exit_code == 1, result.output
        assert "radar ingest" in result.output and "Traceback" not in result.output
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert not tables & {"alert_state", "crm_scores", "crm_score_history", "crm_accounts"}
