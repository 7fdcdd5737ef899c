"""One call list: the portfolio page, the at-risk API, the CRM table and a CSM's digest show
the same accounts in the same order (expected MRR lost in 90 days, the sooner renewal
first), against a real `radar serve` and the real champion models."""

from __future__ import annotations

import re

import httpx

from serving.crm.table import crm_frame
from serving.scoring.batch import load_snapshots
from serving.scoring.champions import load_champions
from serving.scoring.decisions import call_order
from serving.scoring.score import score_frame
from serving.workflow.digest import build_digests

ACCOUNT_ROW = re.compile(r'<tr class="tier-(?:red|yellow)" data-account="([^"]+)"')


def test_the_same_top_10_in_the_same_order_on_every_screen(server, served_project):
    _, settings = served_project
    models = load_champions(settings)
    frame, _ = load_snapshots(settings)
    scored = score_frame(frame, models, settings)
    flagged = scored[scored["risk_tier"] != "green"]
    owner = flagged["csm_owner"].value_counts().idxmax()
    expected = call_order(flagged[flagged["csm_owner"] == owner])["account_id"].tolist()[:10]
    assert len(expected) >= 3, "the fixture portfolio should give this owner several flagged accounts"

    api = httpx.get(
        f"{server.base}/accounts/at-risk", params={"owner": owner, "limit": 10}, headers=server.headers, timeout=60
    )
    assert api.status_code == 200
    api_ids = [a["account_id"] for a in api.json()["accounts"]]

    page = httpx.get(
        f"{server.base}/ui/", params={"owner": owner, "tier": "at_risk"}, headers=server.headers, timeout=60
    )
    assert page.status_code == 200
    page_ids = ACCOUNT_ROW.findall(page.text)[:10]

    crm = crm_frame(scored, settings.serving)
    mine = crm[crm["account_id"].isin(set(flagged.loc[flagged["csm_owner"] == owner, "account_id"]))]
    crm_ids = mine.sort_values("call_rank")["account_id"].tolist()[:10]

    digest = build_digests(settings, models, owner=owner).owners[0]
    digest_ids = [a.account_id for a in digest.at_risk if a.risk_tier != "green"][:10]

    assert api_ids == expected
    assert page_ids == expected
    assert crm_ids == expected
    assert digest_ids == expected
    # and the CRM's call_rank is the portfolio-wide call list, 1 first
    everyone = call_order(scored)["account_id"].tolist()
    assert crm.sort_values("call_rank")["account_id"].tolist() == everyone
