"""Alerts to a Slack-compatible incoming webhook on 127.0.0.1: one mrkdwn message per owner per
run with the account data escaped, Retry-After honoured, and nothing posted twice."""

from __future__ import annotations

import duckdb
import pytest

from radar.settings import SlackSettings
from serving.workflow.slack import escape, post_alerts
from tests.serving.workflow.test_alert_webhook import AS_OF, FAST, NOW, Receiver, alert

CFG = SlackSettings(routings=("meeting", "review"), max_alerts=2)


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(timeout=5)


def _owned(key: str, owner: str, name: str | None = None, **kw):
    a = alert(key, **kw)
    return a.model_copy(update={"csm_owner": owner, "account_name": name or a.account_name})


def test_one_escaped_message_per_owner_and_a_rerun_posts_nothing(receiver, tmp_path):
    con = duckdb.connect(str(tmp_path / "radar.duckdb"))
    alerts = [
        _owned("a:risk", "Ana", "<!channel> Acme & <http://evil|click>", routing="meeting"),
        _owned("b:risk", "Ana"),
        _owned("c:risk", "Ana"),
        _owned("d:risk", "Ben <@U123>"),
        _owned("e:risk", "Ben <@U123>", status="closed"),
        _owned("f:expansion", "Chloe", routing="tag"),  # not a routing posted
    ]
    report = post_alerts(alerts, AS_OF, receiver.url, CFG, FAST, con, now=NOW)
    assert report.ok and report.posted == ["Ana", "Ben <@U123>"] and len(receiver.requests) == 2
    ana, ben = (r["body"]["text"] for r in receiver.requests)
    assert ana.startswith("*Account Radar: 3 open alerts for Ana*") and "…and 1 more" in ana
    assert "&lt;!channel&gt; Acme &amp; &lt;http://evil|click&gt;" in ana and "<!channel>" not in ana
    assert "for Ben &lt;@U123&gt;*" in ben and "1 open alert for" in ben and "d:risk title" in ben
    again = post_alerts(alerts, AS_OF, receiver.url, CFG, FAST, con, now=NOW)
    assert again.posted == [] and again.already == ["Ana", "Ben <@U123>"] and len(receiver.requests) == 2


def test_a_429_with_retry_after_is_waited_for(receiver, tmp_path):
    con = duckdb.connect(str(tmp_path / "radar.duckdb"))
    receiver.script = [(429, {"Retry-After": "1"})]
    report = post_alerts([_owned("a:risk", "Ana")], AS_OF, receiver.url, CFG, FAST, con, now=NOW)
    assert report.ok and len(receiver.requests) == 2
    assert receiver.requests[1]["at"] - receiver.requests[0]["at"] >= 1.0


def test_escape_leaves_plain_text_alone():
    assert escape("Chloé Garnier") == "Chloé Garnier" and escape("a<b>&c") == "a&lt;b&gt;&amp;c"


def test_radar_alerts_posts_one_message_per_owner_once(served_project, tmp_path, receiver):
    """`radar alerts` with slack.webhook_url on a private copy of the served project."""
    import shutil

    from typer.testing import CliRunner

    from radar.cli import app

    root, _ = served_project
    shutil.copytree(root / "out", tmp_path / "out", ignore=shutil.ignore_patterns("digests", "alerts"))
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "200",
        "RADAR_SLACK__WEBHOOK_URL": receiver.url,
        "RADAR_SLACK__ROUTINGS": '["meeting", "review", "tag"]',
    }
    first = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "alerts"], env=env)
    assert first.exit_code == 0, first.output
    texts = [r["body"]["text"] for r in receiver.requests]
    assert texts and len(texts) == len({t.split("* (")[0] for t in texts})  # one message per owner
    assert f"{len(texts)} owner messages posted, 0 posted earlier" in first.output
    again = CliRunner().invoke(app, ["--config", str(root / "radar.toml"), "alerts"], env=env)
    assert again.exit_code == 0 and f"0 owner messages posted, {len(texts)} posted earlier" in again.output
    assert len(receiver.requests) == len(texts)
