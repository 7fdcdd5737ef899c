"""End to end in a real headless Chromium: sign in, filter the portfolio by owner, open an
account, read its drivers and quotes, follow the link back, open the alert queue and the
leadership page.

Debian's `chromium` and `chromium-driver`, driven by Selenium with their paths given (no
driver or browser download). Without them the test skips, unless RADAR_REQUIRE_BROWSER=1
(CI), where it fails. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"


def _shot(driver, name: str, full: bool = False) -> None:
    if full:  # the whole page, beyond the window
        import base64

        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
    else:
        driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 30, poll_frequency=0.1).until(condition, message=f"waited 30 s for {what}")


def _load_ms(driver) -> list[float]:
    return driver.execute_script(
        "const t = performance.getEntriesByType('navigation')[0];"
        "return [t.responseStart - t.requestStart, t.loadEventEnd - t.startTime];"
    )


def _fits_the_screen(driver) -> bool:
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1;")


_LEADER, _PASSWORD = "lea-browser", "a long browser password"


@pytest.fixture(scope="module")
def leader(ui_project):
    """A leader of the web pages' project (added to its access database; the server reads it per request)."""
    from serving.web.access import access_path
    from serving.web.users import add_user

    add_user(access_path(ui_project[1]), _LEADER, "leader", _PASSWORD, replace=True)


def test_portfolio_to_account_and_back_in_chromium(browser, ui_server, leader):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    b, timings = browser, {}
    b.get(f"{ui_server.base}/ui/")
    _wait(b, lambda d: "/ui/login" in d.current_url, "the login page")
    _shot(b, "01-login")
    b.find_element(By.ID, "name").send_keys(_LEADER)
    b.find_element(By.ID, "password").send_keys(_PASSWORD)
    b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(
        b,
        lambda d: d.current_url.endswith("/ui/") and d.find_elements(By.CSS_SELECTOR, "tr[data-account]"),
        "the portfolio after signing in",
    )
    timings["portfolio"] = _load_ms(b)
    assert b.title.startswith("At risk") and _fits_the_screen(b)
    _shot(b, "02-portfolio")

    Select(b.find_element(By.ID, "owner")).select_by_visible_text("Ben")
    b.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    _wait(b, lambda d: "owner=Ben" in d.current_url, "the owner filter")
    rows = b.find_elements(By.CSS_SELECTOR, "tbody tr[data-account]")
    assert rows and {r.get_attribute("data-owner") for r in rows} == {"Ben"}
    assert "Portfolio: Ben" in b.find_element(By.TAG_NAME, "h1").text
    _shot(b, "03-filtered-by-owner")

    account = rows[0].get_attribute("data-account")
    name = rows[0].find_element(By.CSS_SELECTOR, "a").text
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    _wait(b, lambda d: f"/ui/account/{account}" in d.current_url, "the account page")
    timings["account"] = _load_ms(b)
    assert name in b.find_element(By.TAG_NAME, "h1").text
    drivers = b.find_elements(By.CSS_SELECTOR, "#renewal-drivers li")
    assert drivers and all(" churn risk" in d.text for d in drivers)
    assert b.find_elements(By.CSS_SELECTOR, "#upsell-drivers li")
    assert "Owner:" in b.find_element(By.ID, "playbook").text
    trend = b.find_element(By.CSS_SELECTOR, "#trend-h ~ img.chart")
    assert trend.is_displayed() and "Churn risk next 90 days" in trend.get_attribute("alt")
    assert b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", trend)
    red = b.find_elements(By.CSS_SELECTOR, "#bucket-renewal_likelihood ~ ul.quotes li.red")
    assert red and "looking at other vendors" in red[0].text and "Risk" in red[0].text
    colour = red[0].value_of_css_property("border-left-color")
    assert colour.startswith("rgba(180, 35, 24"), colour  # the red of a risk quote
    green = b.find_elements(By.CSS_SELECTOR, "#bucket-onboarding_clarity ~ ul.quotes li.green")
    assert green and "Positive" in green[0].text
    assert len(b.find_elements(By.CSS_SELECTOR, "th[scope=row]")) == 15 and _fits_the_screen(b)
    _shot(b, "04-account")
    _shot(b, "05-account-full-page", full=True)

    b.find_element(By.ID, "back").click()
    _wait(b, lambda d: "/ui/account/" not in d.current_url, "the way back to the portfolio")
    assert "owner=Ben" in b.current_url
    assert Select(b.find_element(By.ID, "owner")).first_selected_option.text == "Ben"
    rows = b.find_elements(By.CSS_SELECTOR, "tbody tr[data-account]")
    assert rows and {r.get_attribute("data-owner") for r in rows} == {"Ben"}
    _shot(b, "06-back-with-the-filter")

    b.find_element(By.LINK_TEXT, "Alert queue").click()
    _wait(b, lambda d: "tab=alerts" in d.current_url, "the alert queue")
    routings = {r.get_attribute("data-routing") for r in b.find_elements(By.CSS_SELECTOR, "tbody tr[data-routing]")}
    assert routings and routings <= {"meeting", "review", "tag"} and "owner=Ben" in b.current_url
    _shot(b, "07-alert-queue")

    b.find_element(By.LINK_TEXT, "Leadership").click()
    _wait(b, lambda d: "/ui/leadership" in d.current_url, "the leadership page")
    chart = b.find_element(By.CSS_SELECTOR, "img.chart")
    assert b.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", chart)
    assert b.find_elements(By.CSS_SELECTOR, "#top-renewal ~ table tbody tr") and _fits_the_screen(b)
    _shot(b, "08-leadership")

    problems = [e for e in b.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems  # e.g. a blocked resource or a missing file
    print(
        "\nChromium, server time to first byte / full load (ms): "
        + ", ".join(f"{k} {a:.0f} / {c:.0f}" for k, (a, c) in timings.items())
    )
