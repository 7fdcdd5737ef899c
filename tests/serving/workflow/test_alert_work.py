"""What a CSM records on an alert (`alert_state.work_alert`, used by the pages): snooze,
close with an outcome, assign, note, each one transaction; and the digest that follows
lists an assigned alert under its new owner with the notes."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime

import duckdb
import pytest

from radar.settings import load_settings
from serving.workflow.alert_rules import AlertError
from serving.workflow.alert_state import OUTCOMES, ensure_tables, notes_of, stored, work_alert

NOW = datetime(2026, 5, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def champions(served_project):
    from serving.scoring.champions import load_champions

    _, settings = served_project
    return load_champions(settings)


@pytest.fixture
def con():
    con = duckdb.connect()
    ensure_tables(con)
    for key in ("a1:risk", "a2:risk"):
        con.execute(
            "INSERT INTO alert_state (key, account_id, rule, status, opened_as_of, last_seen_as_of, owner, title) "
            "VALUES (?, ?, 'risk_tier', 'open', DATE '2026-04-30', DATE '2026-04-30', 'CSM', 'Red risk tier')",
            [key, key.split(":")[0]],
        )
    yield con
    con.close()


def test_each_action_writes_state_notes_and_history_in_one_go(con):
    said = work_alert(con, "a1:risk", "snooze", by="ben", now=NOW, until=date(2026, 6, 1), note="call in June")
    assert said == "call in June (by ben)"
    work_alert(con, "a2:risk", "assign", by="ben", now=NOW, assignee="Ana")
    work_alert(con, "a2:risk", "note", by="ana", now=NOW, note="left a voicemail")
    states = stored(con).set_index("key")
    assert (
        states.loc["a1:risk", "status"] == "snoozed"
        and str(states.loc["a1:risk", "snoozed_until"])[:10] == "2026-06-01"
    )
    assert states.loc["a2:risk", "status"] == "open" and states.loc["a2:risk", "assignee"] == "Ana"
    assert states.loc["a1:risk", "assignee"] is None
    work_alert(con, "a2:risk", "close", by="ana", now=NOW, outcome="saved")
    states = stored(con).set_index("key")
    assert states.loc["a2:risk", "status"] == "closed" and states.loc["a2:risk", "reason"] == "outcome: saved (by ana)"
    notes = notes_of(con)
    assert list(zip(notes["key"], notes["kind"], notes["note"])) == [
        ("a1:risk", "snooze", "call in June"),
        ("a2:risk", "note", "left a voicemail"),
        ("a2:risk", "outcome", "saved"),
    ]
    assert con.execute("SELECT count(*) FROM alert_history").fetchone()[0] == 4


@pytest.mark.parametrize(
    "action, fields, words",
    [
        ("close", {"outcome": "won"}, "needs its outcome, one of: " + ", ".join(OUTCOMES)),
        ("snooze", {}, "needs a date"),
        ("assign", {"assignee": " "}, "whom to assign"),
        ("note", {"note": "  "}, "note is empty"),
        ("delete", {}, "not 'delete'"),
    ],
)
def test_an_incomplete_action_is_refused_and_writes_nothing(con, action, fields, words):
    with pytest.raises(AlertError, match=words):
        work_alert(con, "a1:risk", action, by="ben", now=NOW, **fields)
    with pytest.raises(AlertError, match="no alert 'nope'"):
        work_alert(con, "nope", "note", by="ben", now=NOW, note="x")
    assert stored(con)["status"].tolist() == ["open", "open"]
    assert notes_of(con).empty and con.execute("SELECT count(*) FROM alert_history").fetchone()[0] == 0


def test_the_digest_lists_an_assigned_alert_under_its_new_owner_with_its_notes(served_project, champions, tmp_path):
    from serving.workflow.alerts import run_alerts, workspace
    from serving.workflow.digest import build_digests
    from serving.workflow.digest_render import digest_markdown

    root, _ = served_project
    shutil.copytree(root / "out", tmp_path / "out", ignore=shutil.ignore_patterns("digests", "alerts"))
    settings = load_settings(
        root / "radar.toml",
        output_dir=tmp_path / "out",
        digest={"routings": ["meeting", "review"], "max_accounts": 400},
    )
    run_alerts(settings, champions, write=False)
    before = build_digests(settings, champions)
    owner = next(d for d in before.owners if any(a.alert_keys for a in d.at_risk))
    flagged = next(a for a in owner.at_risk if a.alert_keys)
    other = next(d.owner for d in before.owners if d.owner != owner.owner)
    with workspace(settings, read_only=False) as con:
        work_alert(con, flagged.alert_keys[0], "assign", by="lea", now=NOW, assignee=other, note="Ana knows them")
    run = build_digests(settings, champions)
    after = {d.owner: d for d in run.owners}
    assert flagged.account_id not in {a.account_id for a in after[owner.owner].at_risk}
    moved = next(a for a in after[other].at_risk if a.account_id == flagged.account_id)
    assert moved.notes == ("2026-05-02 lea (assign): Ana knows them",)
    assert "Notes: 2026-05-02 lea (assign): Ana knows them" in digest_markdown(after[other], run)
