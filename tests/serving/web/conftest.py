"""A served project with people and keys: users of each role, an API key per scope, a token.

`guarded_project` is a copy of the served project (tests/serving/conftest.py) whose access
database holds a CSM for the first account owner (`ana`), one for the second (`bo`), a
leader, an admin and two keys; `guarded_server` is `radar serve` on it with
serving.api_token set. `sign_in(server, name)` returns an httpx client signed in as a user.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
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


ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"


def _browser_or_skip() -> tuple[str, str]:
    found = {name: shutil.which(name) for name in ("chromium", "chromedriver")}
    missing = [name for name, path in found.items() if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"{' and '.join(missing)} not found (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("RADAR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"RADAR_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return found["chromium"], found["chromedriver"]


@pytest.fixture(scope="module")
def browser(request):
    """A headless Chromium per test module (Debian's chromium and chromium-driver, paths given,
    nothing downloaded); skips without them unless RADAR_REQUIRE_BROWSER=1."""
    chromium, chromedriver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1366,768",  # a laptop screen,
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look anything up
    driver = webdriver.Chrome(
        options=options,
        service=Service(
            executable_path=chromedriver,
            log_output=str(ARTIFACTS / f"chromedriver-{request.module.__name__.rsplit('.', 1)[-1]}.log"),
        ),
    )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
