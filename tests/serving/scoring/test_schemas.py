"""The POST /score contract: typed fields from the registry; bad input is named by its path."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from pydantic import ValidationError

from radar.settings import ServingSettings
from serving.scoring.schemas import ScoredAccount, records_frame, request_models, response_from_frame, response_json


@pytest.fixture(scope="module")
def schemas(settings):
    return request_models(settings, ServingSettings(max_batch=3))


def errors(schemas, payload) -> str:
    with pytest.raises(ValidationError) as info:
        schemas.request.model_validate(payload)
    return str(info.value)


def test_one_typed_optional_field_per_registered_feature(schemas):
    fields = schemas.record.model_fields
    assert set(fields) == {"account_id", "as_of", *schemas.registry.names}
    assert fields["account_id"].is_required()
    assert not fields["adoption_rate_28d"].is_required()
    assert "Active users" in fields["adoption_rate_28d"].description
    ok = schemas.request.model_validate(
        {
            "accounts": [
                {"account_id": "a1", "as_of": "2025-04-30", "adoption_rate_28d": 0.31, "seats": 12, "segment": "smb"}
            ]
        }
    )
    record = ok.accounts[0]
    assert record.as_of == date(2025, 4, 30) and record.seats == 12.0 and record.mrr is None


def test_unknown_fields_are_rejected_with_their_path(schemas):
    text = errors(schemas, {"accounts": [{"account_id": "a1"}, {"account_id": "a2", "adoption": 1}]})
    assert "accounts.1.adoption" in text and "Extra inputs are not permitted" in text
    assert "extra" in errors(schemas, {"accounts": [{"account_id": "a"}], "more": 1})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("adoption_rate_28d", "0.3", "valid number"),
        ("adoption_rate_28d", True, "valid number"),
        ("segment", 3, "valid string"),
        ("adoption_rate_28d", math.nan, "finite number"),
        ("mrr", math.inf, "finite number"),
        ("mrr", -math.inf, "finite number"),
    ],
)
def test_wrong_types_and_non_finite_numbers_are_rejected(schemas, field, value, message):
    text = errors(schemas, {"accounts": [{"account_id": "a1", field: value}]})
    assert f"accounts.0.{field}" in text and message in text


def test_nan_in_json_is_rejected(schemas):
    with pytest.raises(ValidationError, match="accounts.0.mrr"):
        schemas.request.model_validate_json('{"accounts": [{"account_id": "a1", "mrr": NaN}]}')


def test_account_id_is_required(schemas):
    assert "accounts.0.account_id" in errors(schemas, {"accounts": [{"mrr": 1.0}]})
    assert "accounts.0.account_id" in errors(schemas, {"accounts": [{"account_id": ""}]})


def test_empty_and_oversized_batches_are_rejected(schemas):
    assert "accounts" in errors(schemas, {"accounts": []}) and "at least 1" in errors(schemas, {"accounts": []})
    text = errors(schemas, {"accounts": [{"account_id": f"a{i}"} for i in range(4)]})
    assert "accounts" in text and "at most 3" in text


def test_records_become_a_snapshot_frame(schemas):
    request = schemas.request.model_validate(
        {"accounts": [{"account_id": "a1", "adoption_rate_28d": 0.5, "segment": "smb"}, {"account_id": "a2"}]}
    )
    frame = records_frame(request.accounts, schemas.registry)
    assert frame.account_id.tolist() == ["a1", "a2"]
    assert frame.adoption_rate_28d.dtype == np.float64 and np.isnan(frame.adoption_rate_28d[1])
    assert frame.segment[0] == "smb" and frame.segment.isna().tolist() == [False, True]


def test_response_models_hold_the_scored_accounts(models, latest, settings, scored_at):
    from serving.scoring.score import score_frame

    response = response_from_frame(score_frame(latest.iloc[:3], models, settings, scored_at=scored_at))
    account = response.accounts[0]
    assert isinstance(account, ScoredAccount) and account.risk_tier in ("red", "yellow", "green")
    assert account.renewal_drivers and account.renewal_drivers[0].reason
    assert account.upsell_model.name == "radar-upsell" and response.scored_at == scored_at
    assert "raw margin" in account.explains
    response.model_dump_json()  # serialisable as is


def test_response_json_is_the_response_model_byte_for_byte(models, latest, settings, scored_at):
    """The service writes its JSON straight from the scored frame; it must be exactly what
    the documented response model gives, including missing health scores, an integer
    feature value (the model shows it as a float) and the not_found list of /score_accounts."""
    import json

    from serving.scoring.score import score_frame

    rows = latest.iloc[:25].copy()
    rows.loc[rows.index[:3], "health_score"] = np.nan
    scored = score_frame(rows, models, settings, scored_at=scored_at)
    first = [dict(d) for d in scored.at[0, "renewal_drivers"]]
    first[0]["value"] = 3
    scored.at[0, "renewal_drivers"] = first
    assert response_json(scored) == response_from_frame(scored).model_dump_json().encode()
    body = json.loads(response_json(scored, not_found=["nobody"]))
    assert body["not_found"] == ["nobody"] and len(body["accounts"]) == 25
    assert body["accounts"][0]["health_score"] is None and body["accounts"][0]["renewal_drivers"][0]["value"] == 3.0
    assert json.loads(response_json(scored.iloc[:0]))["accounts"] == []
