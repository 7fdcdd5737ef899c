"""The web pages over HTTP from a real `radar serve` on 127.0.0.1 (with a bearer token).

`server` serves the served project (snapshots only: no evidence, no alerts yet);
`ui_server` its copy with feedback quotes and stored alerts.
"""

from __future__ import annotations

import base64
import re
from html import unescape
from urllib.parse import quote

import httpx
import pandas as pd
import pytest

from serving.scoring.batch import at_risk, load_snapshots
from serving.scoring.champions import load_champions
from serving.scoring.score import score_frame
from serving.web.sessions import COOKIE

ROW = re.compile(
    r'<tr class="tier-[a-z]+" data-account="([^"]+)" data-owner="([^"]*)" '
    r'data-action-owner="([^"]*)" data-(?:segment="([^"]*)" data-tier="([^"]*)"|routing="([^"]*)" '
    r'data-insight="([^"]*)")>'
)


def _get(server, path, **kw):
    kw.setdefault("headers", server.headers)
    return httpx.get(f"{server.base}{path}", timeout=60, follow_redirects=False, **kw)


def _rows(html: str) -> list[dict]:
    return [
        {
            "account": a,
            "owner": o,
            "action_owner": ao,
            "segment": s,
            "tier": t,
            "routing": r,
            "insight": float(i) if i else None,
        }
        for a, o, ao, s, t, r, i in ROW.findall(html)
    ]


@pytest.fixture(scope="module")
def expected(served_project):
    """The portfolio as the pages should rank it, scored in-process with the champions."""
    _, settings = served_project
    frame, _ = load_snapshots(settings)
    scored = score_frame(frame, load_champions(settings), settings)
    return at_risk(scored, limit=len(scored), include_green=True)


def test_pages_need_a_key_or_a_sign_in(server):
    bare = _get(server, "/ui/?owner=Ana", headers={})
    assert bare.status_code == 303 and bare.headers["location"] == "/ui/login?next=" + quote("/ui/?owner=Ana", safe="")
    form = _get(server, "/ui/login?next=/ui/%3Fowner%3DAna", headers={})
    assert form.status_code == 200 and '<label for="name">' in form.text and 'type="password"' in form.text
    wrong = httpx.post(f"{server.base}/ui/login", data={"name": "x", "password": server.token}, timeout=30)
    assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")
    assert _get(server, "/ui/").status_code == 200  # the token is the key `default`, with the read scope
    assert _get(server, "/ui/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _get(server, "/accounts/at-risk", headers={}, cookies={COOKIE: "ab" * 16}).status_code == 401


def test_portfolio_is_the_call_list_in_pages_of_50(server, expected):
    first = _get(server, "/ui/")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    rows = _rows(first.text)
    assert len(rows) == 50 and "Page 1 of 5" in first.text
    assert [r["account"] for r in rows] == expected["account_id"].head(50).tolist()
    seen = []
    for page in range(1, 6):
        seen += [r["account"] for r in _rows(_get(server, f"/ui/?page={page}").text)]
    assert seen == expected["account_id"].tolist() and len(set(seen)) == 250
    assert "Page 5 of 5" in _get(server, "/ui/?page=77").text  # past the end: the last page
    top = expected.iloc[0]
    assert unescape(first.text).count(f"{top['mrr'] * top['churn_risk']:,.0f}") >= 1


def test_portfolio_filters_by_owner_segment_tier_and_name(server, expected):
    ana = _rows(_get(server, "/ui/?owner=Ana").text)
    want = expected[(expected["csm_owner"] == "Ana") | (expected["action_owner"] == "Ana")]
    assert [r["account"] for r in ana] == want["account_id"].head(50).tolist() and {r["owner"] for r in ana} == {"Ana"}
    smb = _rows(_get(server, "/ui/?segment=smb&owner=Ben").text)
    assert smb and {(r["segment"], r["owner"]) for r in smb} == {("smb", "Ben")}
    red = _rows(_get(server, "/ui/?tier=at_risk").text)
    assert {r["tier"] for r in red} <= {"red", "yellow"}
    assert len(red) == min(50, int((expected["risk_tier"] != "green").sum()))
    name = expected.iloc[3]["name"]
    found = _get(server, f"/ui/?q={quote(name.upper())}")
    assert expected.iloc[3]["account_id"] in [r["account"] for r in _rows(found.text)]
    none = _get(server, "/ui/?q=no-such-account-anywhere")
    assert _rows(none.text) == [] and "No account matches these filters." in none.text
    form = _get(server, "/ui/?owner=Ana&segment=smb").text
    assert '<option value="Ana" selected>' in form and '<option value="smb" selected>' in form
    assert '<label for="owner">' in form and '<label for="q">' in form


def test_opportunities_tab_and_the_alert_queue_before_any_alert_run(server):
    opp = _get(server, "/ui/?tab=opportunities")
    assert opp.status_code == 200 and 'aria-current="page">Expansion opportunities' in opp.text
    assert "by expansion potential" in opp.text
    queue = _get(server, "/ui/?tab=alerts")
    assert queue.status_code == 200 and "run <code>radar alerts</code>" in queue.text


def test_alert_queue_lists_open_alerts_in_call_list_order_with_routing_and_owner(ui_server, ui_project, expected):
    import duckdb

    _, settings = ui_project
    con = duckdb.connect(str(settings.database_path), read_only=True)
    stored = con.execute(
        "SELECT key, account_id, insight_score, routing, owner FROM alert_state WHERE status = 'open'"
    ).df()
    con.close()
    assert len(stored) > 0
    # risks by the account's expected MRR lost (largest first, the sooner renewal first), then opportunities
    money = expected.set_index("account_id")
    stored["loss"] = -stored["account_id"].map(money["expected_mrr_loss"])
    stored["days"] = stored["account_id"].map(money["days_to_next_renewal"]).fillna(float("inf"))
    growth = stored["key"].str.endswith(":expansion")
    stored = pd.concat(
        [
            stored[~growth].sort_values(["loss", "days", "account_id"], kind="stable"),
            stored[growth].sort_values(["insight_score", "key"], ascending=[False, True], kind="stable"),
        ]
    )
    page = _get(ui_server, "/ui/?tab=alerts")
    rows = _rows(page.text)
    assert f"{len(stored)} open alerts in call-list order" in page.text
    assert len(rows) == min(50, len(stored))
    assert {r["routing"] for r in rows} <= {"meeting", "review", "tag"}
    assert [(r["routing"], r["action_owner"]) for r in rows] == list(zip(stored["routing"], stored["owner"]))[:50]
    assert "Review queue" in page.text or "Meeting" in page.text


def test_account_page_without_evidence(server, expected):
    account = expected.iloc[0]
    back = quote("owner=Ana&page=2", safe="")
    page = _get(server, f"/ui/account/{account['account_id']}?back={back}")
    assert page.status_code == 200
    html = page.text
    assert 'href="/ui/?owner=Ana&amp;page=2" id="back"' in html  # the way back keeps the filters
    assert html.count('<th scope="row"') == 15  # the 15 indicators
    assert "Why this churn risk" in html and "Why this upsell likelihood" in html
    # the 90-day model is a churn risk: never shown as a renewal likelihood (the feedback bucket of
    # that name is a different thing)
    assert "churn risk next 90 days" in html
    assert "raises renewal likelihood" not in html and "lowers renewal likelihood" not in html
    assert ">Renewal likelihood<" not in html
    for driver in account["renewal_drivers"]:
        assert unescape(driver["reason"]) in unescape(html)
    assert account["recommended_action"] in unescape(html) and account["action_owner"] in html
    [(src, alt)] = re.findall(r'<img class="chart" src="([^"]*)" alt="([^"]*)"', html)  # the likelihood trend
    assert base64.b64decode(src.removeprefix("data:image/png;base64,")).startswith(b"\x89PNG")
    assert re.fullmatch(
        r"Churn risk next 90 days [.\d]+% on [-\d]{10} and [.\d]+% on [-\d]{10}; Upsell likelihood .+", alt
    )
    assert "No feedback evidence in this workspace" in html


def test_account_page_shows_quotes_by_bucket_and_open_alerts(ui_server, ui_project):
    import duckdb

    _, settings = ui_project
    con = duckdb.connect(str(settings.database_path), read_only=True)
    account = con.execute(
        "SELECT account_id FROM alert_state WHERE status = 'open' ORDER BY insight_score DESC LIMIT 1"
    ).fetchone()[0]
    con.close()
    html = unescape(_get(ui_server, f"/ui/account/{account}").text)
    assert 'id="bucket-renewal_likelihood"' in html and 'id="bucket-pricing_perception"' in html
    renewal = html[html.index('id="bucket-renewal_likelihood"') : html.index('id="bucket-upsell_readiness"')]
    assert "We are looking at other vendors." in renewal and "Risk" in renewal
    onboarding = html[html.index('id="bucket-onboarding_clarity"') : html.index('id="bucket-value_realization"')]
    assert '<li class="green">' in onboarding and "Positive" in onboarding
    assert "No open alert for this account." not in html and "Open alerts" in html


def test_unknown_account_and_bad_parameters(server):
    missing = _get(server, "/ui/account/no-such-account")
    assert missing.status_code == 404 and "no snapshots of account" in missing.text
    assert _get(server, "/ui/?tab=everything").status_code == 422
    assert _get(server, "/ui/?page=0").status_code == 422
    assert _get(server, "/ui/?owner=" + "x" * 500).status_code == 422


def test_pages_load_nothing_from_elsewhere(server, expected):
    for path in ("/ui/", f"/ui/account/{expected.iloc[0]['account_id']}", "/ui/?tab=alerts"):
        page = _get(server, path)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert page.headers["cache-control"] == "no-store"
        inline = re.sub(r' src="data:image/png;base64,[^"]*"', "", page.text)  # the account page's chart
        assert "<script" not in page.text and " src=" not in inline  # (leadership: one data: image, below)
        links = re.findall(r'(?:href|action)="([^"]*)"', page.text)
        assert links and all(link.startswith(("/ui/", "#")) or link == "data:," for link in links), links


def test_server_log_has_no_account_names(server, expected):
    name = expected.iloc[5]["name"]
    assert _get(server, f"/ui/?q={quote(name)}").status_code == 200
    assert _get(server, f"/ui/account/{expected.iloc[5]['account_id']}").status_code == 200
    assert name not in server.log.read_text()


def test_leadership_page_shows_the_drivers_report(ui_server, ui_project):
    from serving.workflow.drivers import drivers_report

    _, settings = ui_project
    report = drivers_report(settings, load_champions(settings))
    page = _get(ui_server, "/ui/leadership")
    assert page.status_code == 200
    html = unescape(page.text)
    for target, word in (("renewal", "renewal"), ("upsell", "expansion")):
        top = report.top(target)
        assert f"Top {len(top)} drivers of {word}" in html
        section = html[html.index(f'id="top-{target}"') :]
        assert [n for n in top["family_name"] if n in section[: section.index("</table>")]] == list(top["family_name"])
        assert "Context (" not in section[: section.index("</table>")]  # context is never ranked as a driver
        assert report.context_line(target) + "." in section  # its share is said apart
    assert "Indicators that carry little signal" in html and "Advocates: referral and reference candidates" in html
    assert f"{report.advocates_found} accounts" in html
    images = re.findall(r'<img [^>]*src="([^"]*)"[^>]*alt="([^"]+)"', page.text)
    assert len(images) == 1 and images[0][0].startswith("data:image/png;base64,")
    again = _get(ui_server, "/ui/leadership")  # computed once per workspace version
    assert again.status_code == 200 and again.elapsed.total_seconds() < 1.0
