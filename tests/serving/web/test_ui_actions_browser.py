"""A CSM works the alert queue in a real headless Chromium against a real `radar serve`:
sign in, sort the queue by a column, snooze an alert from its row, see it leave the queue,
and find it snoozed in `radar alerts list`.

Debian's `chromium` and `chromium-driver` through Selenium (paths given, nothing
downloaded); without them the test skips, unless RADAR_REQUIRE_BROWSER=1, where it fails.
Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real server and Chromium (~35 s): run in CI by make test-slow

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"
PASSWORD = "correct horse battery"


def _running_server(config):
    """tests/serving/conftest.py's `running_server` (conftests cannot be imported under
    --import-mode=importlib; pytest holds the loaded module)."""
    for plugin in config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", None) or "").as_posix().endswith("tests/serving/conftest.py"):
            return plugin.running_server
    pytest.fail("tests/serving/conftest.py not loaded")


@pytest.fixture(scope="module")
def acting_server(browser, ui_project, tmp_path_factory, request):
    """`radar serve` (no API token) over a copy of the web pages' project with one CSM, ben
    (owner Ben). Yields (server, project folder)."""
    from radar.settings import load_settings
    from serving.web.access import access_path
    from serving.web.users import add_user

    # `browser` first: without Chromium the test skips before a server starts
    source, _ = ui_project
    root = tmp_path_factory.mktemp("ui-acting")
    shutil.copytree(source / "out", root / "out")
    (root / "radar.toml").write_text(
        (source / "radar.toml").read_text().replace(str(source / "out"), str(root / "out"))
    )
    add_user(access_path(load_settings(root / "radar.toml")), "ben", "csm", PASSWORD, owner="Ben")
    with _running_server(request.config)(root, token=None) as running:
        yield running, root


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, 30, poll_frequency=0.1).until(condition)
    except TimeoutException:
        pytest.fail(f"waited 30 s for {what} at {driver.current_url}:\n{driver.page_source[-3000:]}")


def test_a_csm_snoozes_an_alert_in_chromium_and_the_cli_lists_it(browser, acting_server, radar_cli):
    from selenium.webdriver.common.by import By

    server, root = acting_server
    b = browser
    b.get(f"{server.base}/ui/?tab=alerts")
    _wait(b, lambda d: "/ui/login" in d.current_url and d.find_elements(By.ID, "name"), "the login form")
    b.find_element(By.ID, "name").send_keys("ben")
    b.find_element(By.ID, "password").send_keys(PASSWORD)
    b.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    _wait(b, lambda d: "tab=alerts" in d.current_url and d.find_elements(By.CSS_SELECTOR, "details.act"), "the queue")
    rows = b.find_elements(By.CSS_SELECTOR, "tbody tr[data-routing]")
    assert rows and {r.get_attribute("data-owner") for r in rows} == {"Ben"}  # the CSM's own book

    b.find_element(By.CSS_SELECTOR, 'a.sort[data-sort="insight"]').click()  # sort by a column, server-side
    _wait(b, lambda d: "sort=insight" in d.current_url, "the queue sorted by insight")
    insights = [
        float(r.get_attribute("data-insight")) for r in b.find_elements(By.CSS_SELECTOR, "tbody tr[data-routing]")
    ]
    assert insights == sorted(insights, reverse=True)
    assert b.find_element(By.CSS_SELECTOR, "th[aria-sort]").text.startswith("Insight")

    first = b.find_element(By.CSS_SELECTOR, "details.act")
    key = first.get_attribute("data-key")
    first.find_element(By.TAG_NAME, "summary").click()
    snooze = first.find_element(By.CSS_SELECTOR, "form.snooze")
    until = snooze.find_element(By.NAME, "until").get_attribute(
        "value"
    )  # the earliest date, the day after the portfolio's
    snooze.find_element(By.NAME, "note").send_keys("renewal call booked for next month")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    b.save_screenshot(str(ARTIFACTS / "10-alert-actions.png"))
    snooze.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(b, lambda d: d.find_elements(By.ID, "notice"), "the notice after snoozing")
    assert f"Alert {key} snoozed until {until}." == b.find_element(By.ID, "notice").text
    assert "sort=insight" in b.current_url  # back on the same view
    left = {d.get_attribute("data-key") for d in b.find_elements(By.CSS_SELECTOR, "details.act")}
    assert key not in left
    b.save_screenshot(str(ARTIFACTS / "11-alert-snoozed.png"))
    problems = [e for e in b.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems

    listed = subprocess.run(
        [*radar_cli, "--config", str(root / "radar.toml"), "alerts", "list", "--limit", "500"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if key in row)
    assert f"snoozed until {until}" in line
    assert f"snoozed until {until}: renewal call booked for next month (by ben)" in listed.stdout
