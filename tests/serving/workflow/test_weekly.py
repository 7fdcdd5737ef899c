"""`radar run` on a small sample workspace, two consecutive weeks back to back: ingest when the
files changed, weekly snapshots, CRM rows, alerts, digests e-mailed to a real SMTP server and
alerts posted to real HTTP receivers on 127.0.0.1; a failed step (SMTP server down) resumes
without duplicates, a finished week does nothing, and a second run while one holds the
workspace exits 1 naming it. Champions come from the served project's registry (copied)."""

from __future__ import annotations

import email
import json
import shutil
import socket
from datetime import date
from email import policy

import duckdb
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from features.ingest import workspace_lock
from features.sampledata import generate_workspace
from radar.cli import app
from radar.settings import Settings
from serving.workflow.digest import DigestError, build_digests, owner_slug
from serving.workflow.weekly import STEPS, week_of
from tests.serving.workflow.test_alert_webhook import Receiver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"


@pytest.fixture
def servers():
    inbox, hooks = Inbox(), Receiver()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    hooks.thread.start()
    try:
        yield inbox, smtp.port, hooks
    finally:
        smtp.stop()
        hooks.server.shutdown()
        hooks.server.server_close()


@pytest.fixture
def project(served_project, tmp_path, servers):
    """radar.toml for a sample workspace of 60 accounts (one year to 2026-10-31), the served
    project's registry (a copy of its MLflow database), mail to the test SMTP server and the
    alert webhook and Slack to the test receiver."""
    inbox, smtp_port, hooks = servers
    served_root, _ = served_project
    generate_workspace(tmp_path / "src", accounts=60, years=1, seed=3)
    owners = sorted(pd.read_parquet(tmp_path / "src" / "accounts.parquet")["csm_owner"].dropna().unique())
    (tmp_path / "mlruns").mkdir()
    shutil.copy(served_root / "mlruns" / "mlflow.db", tmp_path / "mlruns" / "mlflow.db")
    addresses = ", ".join(f'"{o}" = "{owner_slug(o)}@x.test"' for o in owners)
    base = hooks.url.split("/hooks")[0]
    config = tmp_path / "radar.toml"
    config.write_text(
        f'output_dir = "{tmp_path / "out"}"\n\n'
        "[training]\n"
        f'tracking_uri = "sqlite:///{tmp_path / "mlruns" / "mlflow.db"}"\n'
        f'artifact_location = "{tmp_path / "mlruns" / "artifacts"}"\n\n'
        f'[run]\nsource_dir = "{tmp_path / "src"}"\n\n'
        f'[alerts]\nwebhook_url = "{base}/hooks/alerts"\n\n'
        f'[slack]\nwebhook_url = "{base}/hooks/slack"\n\n'
        f'[mail]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\nfrom_address = "radar@x.test"\n'
        f"owner_addresses = {{{addresses}}}\n"
    )
    return config, tmp_path / "out", owners


def radar(config, *args: str, **env: str):
    return CliRunner().invoke(
        app, ["--config", str(config), "run", *args], env={"RADAR_CONFIG_FILE": None, "COLUMNS": "200", **env}
    )


def _steps(con, week: date) -> dict[str, str]:
    return dict(con.execute("SELECT step, status FROM weekly_runs WHERE week = ?", [week]).fetchall())


@pytest.mark.slow  # 29 s alone, 89-99 s on the shared 2-core machine (four runs, 38 weekly snapshots twice)
def test_two_weeks_back_to_back_resume_after_a_failed_step_and_never_repeat(project, servers):
    config, out, owners = project
    inbox, _, hooks = servers
    week1, week2 = date(2026, 10, 19), date(2026, 10, 26)

    # week 1, with the SMTP server unreachable: every step up to mail is done, mail fails clearly
    down = radar(config, "--date", "2026-10-21", RADAR_MAIL__PORT=str(_free_port()))
    assert down.exit_code == 1, down.output
    assert "step mail of the week of 2026-10-19 failed: cannot connect to the SMTP server" in down.output
    assert "resume at this step" in down.output and "Traceback" not in down.output
    assert inbox.messages == []
    posted = len(hooks.requests)
    alerts = json.loads((out / "alerts" / "alerts-2026-10-19.json").read_text())["alerts"]
    paths = [r["path"] for r in hooks.requests]
    assert paths.count("/hooks/alerts") == -(-sum(not a["capped"] for a in alerts) // 100)  # batches of 100
    slack_owners = {a["csm_owner"] for a in alerts if a["routing"] in ("meeting", "review") and not a["capped"]}
    assert paths.count("/hooks/slack") == len(slack_owners) >= 1  # one message per owner

    # resumed: only mail (and monitor) run; every owner gets one message
    resumed = radar(config, "--date", "2026-10-21")
    assert resumed.exit_code == 0, resumed.output
    for step in ("ingest", "features", "score", "alerts", "webhook", "slack", "digest"):
        assert f"{step} done earlier" in resumed.output
    assert len(hooks.requests) == posted  # nothing posted twice
    assert sorted(r for rcpts, _ in inbox.messages for r in rcpts) == sorted(f"{owner_slug(o)}@x.test" for o in owners)

    again = radar(config, "--date", "2026-10-25")  # the same week (a Sunday): nothing to do
    assert again.exit_code == 0 and "already run: nothing to do" in again.output, again.output
    assert len(inbox.messages) == len(owners) and len(hooks.requests) == posted

    # week 2: the files did not change (no ingest), new Monday snapshots, scores, digests
    second = radar(config, "--date", "2026-10-26")
    assert second.exit_code == 0, second.output
    assert "ingest skipped" in second.output and "unchanged since the ingest of the week of 2026-10-19" in second.output
    with duckdb.connect(str(out / "radar.duckdb"), read_only=True) as con:
        assert set(_steps(con, week2)) == set(STEPS) and _steps(con, week1)["mail"] == "done"
        assert _steps(con, week2)["monitor"] == "done" and _steps(con, week2)["ingest"] == "skipped"
        snapshots = {r[0] for r in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM snapshots").fetchall()}
        assert {week1, week2} <= snapshots and all(d.weekday() == 0 for d in snapshots)
        history = con.execute(
            "SELECT CAST(as_of AS DATE), count(*), count(DISTINCT account_id) FROM crm_score_history "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        accounts = con.execute(
            "SELECT count(*), min(CAST(as_of AS DATE)), max(CAST(as_of AS DATE)) FROM crm_accounts"
        ).fetchone()
        mails = con.execute("SELECT week_end, count(*) FROM digest_mails GROUP BY 1 ORDER BY 1").fetchall()
    assert [h[0] for h in history] == [week1, week2] and all(n == k for _, n, k in history)
    assert accounts[0] == history[1][1] and accounts[1:] == (week2, week2)  # every account at its week-2 scores
    assert mails == [(date(2026, 10, 25), len(owners)), (date(2026, 11, 1), len(owners))]

    folder = out / "digests" / "2026-11-01"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{owner_slug(o)}.{e}" for o in owners for e in ("html", "md")
    )
    week2_mails = [email.message_from_bytes(raw, policy=policy.default) for _, raw in inbox.messages[len(owners) :]]
    assert len(week2_mails) == len(owners)
    for msg in week2_mails:
        assert "week ending 2026-11-01" in msg["Subject"]
        html = msg.get_body(("html",)).get_content()
        assert "2026-10-26 snapshot" in html and "compared with 2026-10-19" in html and "data:image" not in html
    assert (out / "reports" / "monitor.json").exists()  # the monitoring report refreshed at the end
    md = (folder / f"{owner_slug(owners[0])}.md").read_text()
    assert "Week ending Sunday 1 November 2026" in md and "scores of the 2026-10-26 snapshot" in md


def test_a_second_run_while_the_workspace_is_held_exits_1_naming_the_holder(project):
    config, out, _ = project
    out.mkdir()
    with workspace_lock(out / "radar.duckdb", "ingest", 0):
        busy = radar(config, "--date", "2026-10-21")
    assert busy.exit_code == 1 and "being written by `radar ingest` (pid" in busy.output, busy.output
    assert "raise run.lock_wait_seconds" in busy.output  # the setting `radar run` waits by
    assert not (out / "radar.duckdb").exists()  # nothing was done


def test_a_digest_week_without_a_snapshot_of_its_own_is_refused(tmp_path):
    settings = Settings(output_dir=tmp_path)
    with duckdb.connect(str(settings.database_path)) as con:  # monthly snapshots
        con.execute(
            "CREATE TABLE snapshots AS SELECT * FROM (VALUES (DATE '2026-09-30'), (DATE '2026-10-31')) t(as_of)"
        )
    with pytest.raises(
        DigestError, match="no snapshot in the week ending 2026-11-08: the latest snapshot on or before"
    ):
        build_digests(settings, None, date(2026, 11, 8))


def test_the_week_is_the_monday_on_or_before_the_date():
    assert week_of(date(2026, 10, 26)) == date(2026, 10, 26) and week_of(date(2026, 11, 1)) == date(2026, 10, 26)
