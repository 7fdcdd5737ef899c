"""A served project with people and keys: users of each role, an API key per scope, a token.

`guarded_project` is a copy of the served project (tests/serving/conftest.py) whose access
database holds a CSM for the first account owner (`ana`), one for the second (`bo`), a
leader, an admin and two keys; `guarded_server` is `radar serve` on it with
serving.api_token set. `sign_in(server, name)` returns an httpx client signed in as a user.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

PASSWORD = "correct horse battery"
LIMITS_TOML = "max_body_bytes = 1048576\nheader_timeout_s = 3\nbody_timeout_s = 3\n"


@pytest.fixture(scope="session")
def guarded_project(served_project, served_copy, tmp_path_factory):
    import duckdb

    from serving.web.access import access_path
    from serving.web.keys import add_key
    from serving.web.users import add_user

    root = tmp_path_factory.mktemp("guarded")
    settings = served_copy.project(served_project, root, LIMITS_TOML)
    with duckdb.connect(str(settings.database_path), read_only=True) as con:
        latest = con.execute(
            "SELECT account_id, csm_owner FROM snapshots QUALIFY as_of = max(as_of) OVER (PARTITION BY account_id) "
            "ORDER BY account_id"
        ).df()
    owners = sorted(latest["csm_owner"].dropna().unique())
    path = access_path(settings)
    add_user(path, "ana", "csm", PASSWORD, owner=owners[0])
    add_user(path, "bo", "csm", PASSWORD, owner=owners[1])
    add_user(path, "lea", "leader", PASSWORD)
    add_user(path, "adm", "admin", PASSWORD)
    keys = {"crm": add_key(path, "crm", "score"), "bi": add_key(path, "bi", "read")}
    return SimpleNamespace(root=root, settings=settings, path=path, owners=owners, latest=latest, keys=keys)


@pytest.fixture(scope="session")
def guarded_server(guarded_project, serve_project):
    with serve_project(guarded_project.root) as running:
        yield running


@pytest.fixture(scope="session")
def sign_in():
    """`sign_in(server, name)`: an httpx.Client signed in as `name` (password PASSWORD)."""
    import httpx

    def signed_in(server, name: str, password: str = PASSWORD):
        client = httpx.Client(base_url=server.base, timeout=60, follow_redirects=False)
        answer = client.post("/ui/login", data={"name": name, "password": password, "next": "/ui/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/", answer.text[:500]
        return client

    return signed_in
