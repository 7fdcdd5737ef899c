"""The HTTP service, started with `radar serve` on 127.0.0.1 and spoken to over HTTP.

The served project holds real champion models (trained and promoted by the training
pipeline into a sqlite MLflow store) and a workspace; the server runs with a bearer token.
"""

from __future__ import annotations

import math
import os
import subprocess

import httpx
import numpy as np
import pandas as pd
import pytest

from features.snapshot import feature_registry
from serving.scoring.batch import load_snapshots
from serving.scoring.champions import load_champions
from serving.scoring.score import score_frame


@pytest.fixture(scope="module")
def champions(served_project):
    _, settings = served_project
    return load_champions(settings)


@pytest.fixture(scope="module")
def latest_rows(served_project):
    _, settings = served_project
    frame, _ = load_snapshots(settings)
    return frame


def _records(frame: pd.DataFrame, settings) -> list[dict]:
    """Snapshot rows as POST /score records: registry features, account_id, as_of; NaN -> null."""
    names = [s.name for s in feature_registry(settings)]
    out = []
    for row in frame[["account_id", "as_of", *names]].to_dict("records"):
        record = {}
        for k, v in row.items():
            if k == "as_of":
                v = pd.Timestamp(v).date().isoformat()
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                v = None
            elif isinstance(v, (np.floating, np.integer)):
                v = v.item()
            if v is not None and k not in ("account_id", "as_of") and not isinstance(v, str):
                v = float(v)
            record[k] = v
        out.append(record)
    return out


def _post(server, path, body, **kw):
    return httpx.post(f"{server.base}{path}", json=body, headers=server.headers, timeout=60, **kw)


def test_score_equals_the_in_process_scoring_function(server, served_project, champions, latest_rows):
    _, settings = served_project
    rows = latest_rows.head(7)
    response = _post(server, "/score", {"accounts": _records(rows, settings)})
    assert response.status_code == 200, response.text
    body = response.json()
    local = score_frame(rows, champions, settings)
    assert [a["account_id"] for a in body["accounts"]] == local["account_id"].tolist()
    for got, (_, want) in zip(body["accounts"], local.iterrows()):
        assert got["churn_risk"] == pytest.approx(want["churn_risk"], abs=1e-12)
        assert got["risk_summary"] == want["risk_summary"]
        assert got["upsell_likelihood"] == pytest.approx(want["upsell_likelihood"], abs=1e-12)
        assert got["risk_tier"] == want["risk_tier"] and got["opportunity"] == bool(want["opportunity"])
        assert got["recommended_action"] == want["recommended_action"]
        assert got["action_owner"] == want["action_owner"]
        assert [d["feature"] for d in got["renewal_drivers"]] == [d["feature"] for d in want["renewal_drivers"]]
        assert [d["reason"] for d in got["upsell_drivers"]] == [d["reason"] for d in want["upsell_drivers"]]
        assert 0 < len(got["renewal_drivers"]) <= settings.serving.top_drivers
        assert got["renewal_model"] == {"name": "radar-renewal", "version": champions.renewal.version}
        assert got["upsell_model"] == {"name": "radar-upsell", "version": champions.upsell.version}
        assert "before calibration" in got["explains"]


def test_score_accounts_equals_batch_scoring_and_lists_unknown_ids(server, served_project, champions, latest_rows):
    _, settings = served_project
    ids = latest_rows["account_id"].tolist()[:4]
    response = _post(server, "/score_accounts", {"account_ids": [ids[0], "no-such-account", *ids[1:], ids[0]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["not_found"] == ["no-such-account"]
    assert [a["account_id"] for a in body["accounts"]] == ids  # repeated ids are scored once
    batch = score_frame(latest_rows, champions, settings).set_index("account_id").loc[ids]
    for got, (_, want) in zip(body["accounts"], batch.iterrows()):
        assert got["churn_risk"] == pytest.approx(want["churn_risk"], abs=1e-12)
        assert got["risk_summary"] == want["risk_summary"]
        assert got["upsell_likelihood"] == pytest.approx(want["upsell_likelihood"], abs=1e-12)
        assert got["as_of"] == str(want["as_of"])
        assert got["renewal_drivers"] == [
            {**d, "contribution": pytest.approx(d["contribution"], abs=1e-12)} for d in want["renewal_drivers"]
        ]


def test_at_risk_is_the_call_list_and_filters(server, latest_rows):
    response = httpx.get(f"{server.base}/accounts/at-risk", params={"limit": 10}, headers=server.headers, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    accounts = body["accounts"]
    assert 0 < len(accounts) <= 10 and body["total"] >= len(accounts)
    values = [a["value"] for a in accounts]
    assert values == sorted(values, reverse=True)
    for a in accounts:
        assert a["risk_tier"] != "green"
        assert a["value"] == pytest.approx(a["mrr"] * a["churn_risk"])
    owner = accounts[0]["csm_owner"]
    mine = httpx.get(
        f"{server.base}/accounts/at-risk", params={"owner": owner, "limit": 1000}, headers=server.headers, timeout=60
    ).json()
    assert mine["accounts"] and all(owner in (a["csm_owner"], a["action_owner"]) for a in mine["accounts"])
    smb = httpx.get(
        f"{server.base}/accounts/at-risk", params={"segment": "smb", "limit": 1000}, headers=server.headers, timeout=60
    ).json()
    assert all(a["segment"] == "smb" for a in smb["accounts"])
    assert (
        smb["total"]
        + httpx.get(
            f"{server.base}/accounts/at-risk", params={"segment": "enterprise"}, headers=server.headers, timeout=60
        ).json()["total"]
        <= body["total"]
    )


def test_opportunities_are_ranked_by_expansion_potential(server):
    response = httpx.get(
        f"{server.base}/accounts/opportunities", params={"limit": 5}, headers=server.headers, timeout=60
    )
    assert response.status_code == 200, response.text
    accounts = response.json()["accounts"]
    assert all(a["opportunity"] for a in accounts)
    values = [a["value"] for a in accounts]
    assert values == sorted(values, reverse=True)
    assert all(a["value"] == pytest.approx(a["upsell_likelihood"] * a["mrr"]) for a in accounts)
    assert all(d["reason"].endswith("upsell likelihood") for a in accounts for d in a["drivers"])


GOOD = {"account_id": "acc-1", "adoption_rate_28d": 0.4}
BAD_BODIES = [
    ("unknown field", {"accounts": [{**GOOD, "favourite_colour": "blue"}]}, 400, "accounts.0.favourite_colour"),
    ("wrong type", {"accounts": [{**GOOD, "adoption_rate_28d": "high"}]}, 400, "accounts.0.adoption_rate_28d"),
    ("bool is not a number", {"accounts": [{**GOOD, "seats": True}]}, 400, "accounts.0.seats"),
    ("missing account_id", {"accounts": [{"adoption_rate_28d": 0.4}]}, 400, "accounts.0.account_id"),
    ("empty batch", {"accounts": []}, 400, "accounts"),
    ("oversized batch", {"accounts": [GOOD] * 51}, 400, "accounts"),
    ("no accounts key", {"records": []}, 400, "accounts"),
    ("bad date", {"accounts": [{**GOOD, "as_of": "last tuesday"}]}, 400, "accounts.0.as_of"),
]


@pytest.mark.parametrize("label,body,status,field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_4xx_naming_the_field(server, label, body, status, field):
    response = _post(server, "/score", body)
    assert response.status_code == status, response.text
    paths = [".".join(str(p) for p in d["loc"]) for d in response.json()["detail"]]
    assert field in paths, paths


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_rejected(server, raw):
    content = f'{{"accounts": [{{"account_id": "a", "adoption_rate_28d": {raw}}}]}}'
    response = httpx.post(
        f"{server.base}/score",
        content=content,
        timeout=30,
        headers={**server.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["loc"] == ["accounts", 0, "adoption_rate_28d"]


def test_malformed_json_is_a_400_saying_so(server):
    for path in ("/score", "/score_accounts"):
        response = httpx.post(
            f"{server.base}{path}",
            content='{"accounts": [{"account_id": "a",}',
            timeout=30,
            headers={**server.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "content,ctype,status,says",
    [
        ("not json", "application/json", 400, "JSON object"),
        ("", "application/json", 400, "JSON object"),
        ('[{"account_id": "a"}]', "application/json", 400, "JSON object"),
        ("account_id=a", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
    ],
)
def test_malformed_bodies_get_a_4xx_with_a_message(server, content, ctype, status, says):
    for path in ("/score", "/score_accounts"):
        response = httpx.post(
            f"{server.base}{path}", content=content, timeout=30, headers={**server.headers, "Content-Type": ctype}
        )
        assert response.status_code == status, response.text
        assert says in response.json()["error"]


def test_bad_listing_parameters_are_422_naming_them(server):
    response = httpx.get(
        f"{server.base}/accounts/at-risk", params={"limit": "lots"}, headers=server.headers, timeout=30
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]
    assert (
        httpx.get(
            f"{server.base}/accounts/at-risk", params={"limit": 0}, headers=server.headers, timeout=30
        ).status_code
        == 422
    )


def test_the_token_guards_scoring_and_listing_but_not_health(server):
    wrong = {"Authorization": "Bearer not-the-token"}
    for headers in ({}, wrong, {"Authorization": "Basic abc"}):
        assert (
            httpx.post(f"{server.base}/score", json={"accounts": [GOOD]}, headers=headers, timeout=30).status_code
            == 401
        )
        assert (
            httpx.post(
                f"{server.base}/score_accounts", json={"account_ids": ["a"]}, headers=headers, timeout=30
            ).status_code
            == 401
        )
        for path in ("/accounts/at-risk", "/accounts/opportunities"):
            response = httpx.get(f"{server.base}{path}", headers=headers, timeout=30)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{server.base}{path}", timeout=30).status_code == 200, path
    assert _post(server, "/score", {"accounts": [GOOD]}).status_code == 200


def test_openapi_documents_every_endpoint_and_field(server):
    spec = httpx.get(f"{server.base}/docs.json", timeout=30).json()
    for path in ("/score", "/score_accounts", "/accounts/at-risk", "/accounts/opportunities", "/metrics", "/readyz"):
        assert path in spec["paths"], path
    text = str(spec)
    assert "adoption_rate_28d" in text and "not_found" in text and "mrr_at_risk" not in spec["paths"]


def test_logs_hold_no_account_names_or_text(server, served_project, latest_rows):
    _, settings = served_project
    secret = "Globex Secret Pricing Complaint"
    _post(server, "/score", {"accounts": [{**GOOD, "note": secret}]})
    _post(server, "/score", {"accounts": [{**GOOD, "main_product": secret, "seats": secret}]})
    _post(server, "/score", {"accounts": _records(latest_rows.head(3), settings)})
    names = [
        a["name"]
        for a in httpx.get(
            f"{server.base}/accounts/at-risk", params={"limit": 50}, headers=server.headers, timeout=30
        ).json()["accounts"]
    ]
    log = server.log.read_text()
    assert "POST /score" in log or "path=/score" in log  # the access log is there
    assert secret not in log
    assert "rejected /score: 1 invalid field(s): accounts.0.note" in log  # one line, field paths only
    assert "Traceback" not in log
    assert names and not [n for n in names if n in log]


def test_serve_without_a_champion_exits_1_saying_what_to_run(tmp_path, radar_cli):
    (tmp_path / "radar.toml").write_text(f'[training]\ntracking_uri = "sqlite:///{tmp_path / "mlflow.db"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_")}
    done = subprocess.run(
        [*radar_cli, "serve", "--port", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = " ".join((done.stdout + done.stderr).split())
    assert "no champion version of radar-renewal and radar-upsell" in out
    assert "radar train --target all --promote" in out
