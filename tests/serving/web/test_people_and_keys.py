"""People and keys against a real `radar serve` (tests/serving/web/conftest.py's `guarded_server`):
a CSM sees only their own book, a leader every account, sign-out ends the session
server-side, API keys are scoped, revocable and named in the log; plus the commands."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from serving.web.sessions import COOKIE

ACCOUNT_LINK = re.compile(r'data-account="([^"]+)" data-owner="([^"]*)"')


def _account_of(project, owner: str) -> str:
    rows = project.latest[project.latest["csm_owner"] == owner]
    return str(rows["account_id"].iloc[0])


def test_a_csm_sees_only_their_own_accounts_and_a_leader_sees_all(guarded_server, guarded_project, sign_in):
    ana, lea = sign_in(guarded_server, "ana"), sign_in(guarded_server, "lea")
    mine, theirs = guarded_project.owners[0], guarded_project.owners[1]
    own, other = _account_of(guarded_project, mine), _account_of(guarded_project, theirs)

    listed = ana.get("/ui/?page=1")
    assert listed.status_code == 200
    owners = {o for _, o in ACCOUNT_LINK.findall(listed.text)}
    assert owners == {mine}  # only her book, also when she asks for another owner's
    assert {o for _, o in ACCOUNT_LINK.findall(ana.get("/ui/", params={"owner": theirs}).text)} == set()

    assert ana.get(f"/ui/account/{quote(own, safe='')}").status_code == 200
    refused = ana.get(f"/ui/account/{quote(other, safe='')}")
    assert refused.status_code == 404 and "No such account" in refused.text
    assert ana.get("/ui/leadership").status_code == 403

    assert lea.get(f"/ui/account/{quote(other, safe='')}").status_code == 200
    assert {o for _, o in ACCOUNT_LINK.findall(lea.get("/ui/").text)} > {mine}
    assert lea.get("/ui/leadership").status_code == 200


def test_an_admin_sees_the_users_page_and_nobody_else(guarded_server, sign_in):
    adm = sign_in(guarded_server, "adm")
    listed = adm.get("/ui/users")
    assert listed.status_code == 200 and 'href="/ui/users"' in listed.text
    assert re.findall(r'data-user="([^"]+)"', listed.text) == ["adm", "ana", "bo", "lea"]
    assert "$argon2" not in listed.text
    for name in ("ana", "lea"):
        other = sign_in(guarded_server, name)
        assert other.get("/ui/users").status_code == 404 and 'href="/ui/users"' not in other.get("/ui/").text


def test_sign_in_needs_the_right_password_and_sign_out_revokes_a_copied_cookie(guarded_server, sign_in):
    base = guarded_server.base
    wrong = httpx.post(f"{base}/ui/login", data={"name": "ana", "password": "nope-nope", "next": "/ui/"}, timeout=60)
    assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")
    unknown = httpx.post(f"{base}/ui/login", data={"name": "zed", "password": "whatever1"}, timeout=60)
    assert unknown.status_code == 401

    client = sign_in(guarded_server, "bo")
    cookie = client.cookies[COOKIE]
    assert re.fullmatch(r"[0-9a-f]{32}", cookie)  # a random id: nothing else lives in the browser
    copied = {COOKIE: cookie}
    assert httpx.get(f"{base}/ui/", cookies=copied, timeout=60).status_code == 200
    page = client.get("/ui/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    again = httpx.get(f"{base}/ui/", cookies=copied, timeout=60, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/ui/login")


def test_a_browser_cannot_bring_its_own_session_id(guarded_server):
    planted = "0123456789abcdef0123456789abcdef"
    answer = httpx.post(
        f"{guarded_server.base}/ui/login",
        data={"name": "lea", "password": "correct horse battery", "next": "/ui/"},
        cookies={COOKIE: planted},
        timeout=60,
    )
    assert answer.status_code == 303 and answer.cookies[COOKIE] != planted
    assert httpx.get(f"{guarded_server.base}/ui/", cookies={COOKIE: planted}, timeout=60).status_code == 303


def test_keys_are_scoped_named_in_the_log_and_revocable(guarded_server, guarded_project):
    from serving.web.keys import add_key, revoke_key

    base, keys = guarded_server.base, guarded_project.keys
    some = str(guarded_project.latest["account_id"].iloc[0])

    def score(key):
        return httpx.post(
            f"{base}/score_accounts",
            json={"account_ids": [some]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    def at_risk(key):
        return httpx.get(f"{base}/accounts/at-risk?limit=1", headers={"Authorization": f"Bearer {key}"}, timeout=60)

    assert score(keys["crm"]).status_code == 200 and at_risk(keys["crm"]).status_code == 401
    assert at_risk(keys["bi"]).status_code == 200 and score(keys["bi"]).status_code == 401
    assert httpx.get(f"{base}/ui/", headers={"Authorization": f"Bearer {keys['bi']}"}, timeout=60).status_code == 200
    assert score(guarded_server.token).status_code == 200  # serving.api_token: the key `default`
    assert at_risk(guarded_server.token).status_code == 200
    assert score("radar_not-a-key").status_code == 401 and score("x" * 5000).status_code == 401

    extra = add_key(guarded_project.path, "temp", "score")
    assert score(extra).status_code == 200
    revoke_key(guarded_project.path, "temp")
    refused = score(extra)
    assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]

    log = guarded_server.log.read_text(errors="replace")
    assert re.search(r"path=/score_accounts.*status=200.* key=crm", log)
    assert re.search(r"path=/accounts/at-risk.*status=200.* key=bi", log)
    assert re.search(r"path=/score_accounts.*status=200.* key=default", log)
    for key in (*keys.values(), extra, guarded_server.token):
        assert key not in log


@pytest.mark.parametrize("role", ["csm", "leader", "admin"])
def test_radar_users_and_keys_commands(tmp_path, role):
    from typer.testing import CliRunner

    from radar.cli import app
    from serving.web.access import FILE_NAME
    from serving.web.users import authenticate

    (tmp_path / "radar.toml").write_text(f'output_dir = "{tmp_path / "out"}"\n')
    run = CliRunner().invoke
    config = ["--config", str(tmp_path / "radar.toml")]
    added = run(app, [*config, "users", "add", "kim", "--role", role, "--password-stdin"], input="a long password\n")
    assert added.exit_code == 0, added.output
    stored = (tmp_path / "out" / FILE_NAME).read_bytes()
    assert b"a long password" not in stored and b"$argon2id$" in stored
    assert authenticate(tmp_path / "out" / FILE_NAME, "kim", "a long password").role == role
    again = run(app, [*config, "users", "add", "kim", "--role", role, "--password-stdin"], input="a long password\n")
    assert again.exit_code == 1 and "exists already" in again.output
    short = run(app, [*config, "users", "add", "lee", "--role", role, "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "8 to 1024" in short.output
    assert run(app, [*config, "users", "add", "x", "--role", "boss", "--password-stdin"], input="x" * 9).exit_code == 2

    made = run(app, [*config, "keys", "add", "crm", "--scope", "score"])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("radar_") and key.encode() not in (tmp_path / "out" / FILE_NAME).read_bytes()
    listed = run(app, [*config, "keys", "list"])
    assert "crm  score" in listed.output and key not in listed.output and "active" in listed.output
    assert run(app, [*config, "keys", "revoke", "crm"]).exit_code == 0
    assert "revoked" in run(app, [*config, "keys", "list"]).output
    assert run(app, [*config, "keys", "revoke", "crm"]).exit_code == 1
    assert run(app, [*config, "keys", "add", "bad", "--scope", "write"]).exit_code == 2
