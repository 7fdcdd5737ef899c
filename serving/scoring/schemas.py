"""The POST /score contract: request models derived from the feature registry, response models.

An account record has one optional, typed field per registered feature (float for a
numeric feature, str for a categorical one), `account_id` (required) and `as_of`. Fields
are strict (a number is not a string, a boolean is not a number), unknown fields and
NaN/inf are rejected, and a request holds 1..`max_batch` accounts; pydantic names the
field path of every error (`accounts.3.adoption_rate_28d`). The classes are built from
the registry with `create_model`: build them once, at service start
(`request_models`). `records_frame` turns a request into the snapshot frame that
`serving.scoring.score.score_frame` reads, and `response_from_frame` its result into a response;
`response_json` writes the same response straight to JSON bytes (the service's path: no
model objects per account and driver, byte for byte what `response_from_frame(...)
.model_dump_json()` gives).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import to_json

from features.registry import FeatureRegistry
from features.snapshot import feature_registry
from radar.settings import ServingSettings, Settings, serving_settings

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, hide_input_in_errors=True)


def account_record_model(registry: FeatureRegistry) -> type[BaseModel]:
    """`AccountRecord`: account_id, as_of and one optional typed field per feature."""
    fields: dict = {
        "account_id": (Annotated[str, Field(min_length=1, strict=True, description="The account's id.")], ...),
        "as_of": (date | None, Field(None, description="Snapshot date the features describe (default: today).")),
    }
    for spec in registry:
        kind = str if spec.categorical else float
        fields[spec.name] = (
            Annotated[kind | None, Field(strict=True)],
            Field(None, description=f"{spec.description} ({spec.family_name})"),
        )
    return create_model("AccountRecord", __config__=_STRICT, __doc__="One account's snapshot features.", **fields)


@dataclass(frozen=True)
class RequestModels:
    record: type[BaseModel]
    request: type[BaseModel]
    registry: FeatureRegistry


def request_models(settings: Settings, serving: ServingSettings | None = None) -> RequestModels:
    """The request classes for these settings (feature windows, max batch size)."""
    registry = feature_registry(settings)
    record = account_record_model(registry)
    cfg = serving_settings(settings, serving)
    accounts = Annotated[
        list[record],  # type: ignore[valid-type]  # a class built at run time from the registry
        Field(min_length=1, max_length=cfg.max_batch, description=f"1 to {cfg.max_batch} accounts to score."),
    ]
    request = create_model("ScoreRequest", __config__=_STRICT, __doc__="Accounts to score.", accounts=(accounts, ...))
    return RequestModels(record, request, registry)


def records_frame(accounts: list[BaseModel], registry: FeatureRegistry) -> pd.DataFrame:
    """A request's accounts as a snapshot frame: numeric features as floats (missing:
    NaN), categorical ones as text (missing values stay missing). Built from the
    validated models' own field values in one pass (no per-record dump); columns are
    account_id, as_of, the numeric features, then the categorical ones."""
    rows = [a.__dict__ for a in accounts]
    numeric = [spec.name for spec in registry if not spec.categorical]
    values = operator.itemgetter(*numeric)
    block = np.array([values(r) for r in rows], dtype=np.float64).reshape(len(rows), len(numeric))
    text = ["account_id", "as_of", *(spec.name for spec in registry if spec.categorical)]
    head = pd.DataFrame({c: [r[c] for r in rows] for c in text}, columns=text, dtype=object)  # no str inference
    return pd.concat([head[["account_id", "as_of"]], pd.DataFrame(block, columns=numeric), head[text[2:]]], axis=1)


class Driver(BaseModel):
    """One SHAP driver: the feature, its value, its contribution to the raw margin and why."""

    feature: str
    value: float | bool | str | None
    contribution: float = Field(description="TreeSHAP contribution to the raw margin (log-odds before calibration).")
    reason: str


class ModelRef(BaseModel):
    name: str
    version: str


class ScoredAccount(BaseModel):
    """Everything a CS team acts on for one account."""

    account_id: str
    as_of: date
    churn_risk: float = Field(
        description="Calibrated P(churn within the next 90 days): drives tiers and the call list."
    )
    churn_lift: float = Field(description="Churn risk / the base rate recorded with the model (2.8 = 2.8x typical).")
    risk_tier: Literal["red", "yellow", "green"] = Field(
        description="From the churn lift (serving.red_lift, yellow_lift)."
    )
    expected_mrr_loss: float = Field(description="MRR x churn risk: the call list's order, largest first.")
    next_renewal: date | None = Field(description="Nearest contract end of an active line (None: open-ended).")
    renewal_likelihood: float | None = Field(
        description="1 - calibrated P(churn by the next renewal): the chance to still be a customer after "
        "next_renewal; None when the next-renewal model is not served."
    )
    risk_summary: str = Field(
        description="The risk in words, e.g. 'churn risk next 90 days 8.4% (2.8x typical) · "
        "renews 2027-06-30, 86% likely to renew there'."
    )
    upsell_likelihood: float = Field(description="Calibrated P(expansion within the horizon).")
    upsell_lift: float = Field(description="Upsell likelihood / the expansion base rate recorded with the model.")
    opportunity: bool
    health_score: float | None
    health_band: str | None
    disagreement: bool = Field(
        description="The health band and the model's tier disagree (e.g. green health, red risk)."
    )
    disagreement_reason: str | None
    renewal_drivers: list[Driver]
    upsell_drivers: list[Driver]
    explains: str | None = Field(
        description="What contributions explain: the raw margin (log-odds) before calibration."
    )
    playbook: str
    recommended_action: str
    action_owner: str
    action_because: str | None = Field(description="The driver (feature) that chose the playbook, if one did.")
    renewal_model: ModelRef
    upsell_model: ModelRef
    next_renewal_model: ModelRef | None


class ScoreResponse(BaseModel):
    accounts: list[ScoredAccount]
    scored_at: datetime


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def response_from_frame(scored: pd.DataFrame) -> ScoreResponse:
    """The response for `score_frame`'s output (one scored account per row, in order)."""
    accounts = []
    for row in scored.to_dict("records"):
        accounts.append(
            ScoredAccount(
                account_id=row["account_id"],
                as_of=row["as_of"],
                churn_risk=row["churn_risk"],
                churn_lift=row["churn_lift"],
                risk_tier=row["risk_tier"],
                expected_mrr_loss=row["expected_mrr_loss"],
                next_renewal=_none(row["next_renewal"]),
                renewal_likelihood=_none(row["renewal_likelihood"]),
                risk_summary=row["risk_summary"],
                upsell_likelihood=row["upsell_likelihood"],
                upsell_lift=row["upsell_lift"],
                opportunity=bool(row["opportunity"]),
                health_score=_none(row["health_score"]),
                health_band=_none(row["health_band"]),
                disagreement=bool(row["disagreement"]),
                disagreement_reason=_none(row["disagreement_reason"]),
                renewal_drivers=row["renewal_drivers"] or [],
                upsell_drivers=row["upsell_drivers"] or [],
                explains=_none(row["explains"]),
                playbook=row["playbook"],
                recommended_action=row["recommended_action"],
                action_owner=row["action_owner"],
                action_because=_none(row["action_because"]),
                renewal_model=ModelRef(name=row["renewal_model"], version=row["renewal_model_version"]),
                upsell_model=ModelRef(name=row["upsell_model"], version=row["upsell_model_version"]),
                next_renewal_model=None
                if _none(row.get("next_renewal_model")) is None
                else ModelRef(name=row["next_renewal_model"], version=row["next_renewal_model_version"]),
            )
        )
    stamp = scored["scored_at"].iloc[0].to_pydatetime() if len(scored) else datetime.now().astimezone()
    return ScoreResponse(accounts=accounts, scored_at=stamp)


_FLOAT_OR_NONE = ("health_score", "renewal_likelihood")
_TEXT_OR_NONE = ("health_band", "disagreement_reason", "explains", "action_because", "next_renewal_model")


def _column(scored: pd.DataFrame, name: str) -> list:
    values = scored[name].tolist()
    if name in _FLOAT_OR_NONE:
        return [None if v is None or v != v else float(v) for v in values]
    if name in _TEXT_OR_NONE:
        return [None if v is None or (isinstance(v, float) and v != v) else v for v in values]
    return values


def _drivers_json(found) -> list[dict]:
    """Drivers as the `Driver` model serialises them: a whole-number value read from an
    integer column is a float there (the model's union takes float before bool/str)."""
    if not found:
        return []
    return [d if type(d["value"]) is not int else {**d, "value": float(d["value"])} for d in found]


def response_json(scored: pd.DataFrame, **extra) -> bytes:
    """`response_from_frame(scored)` (plus `extra` top-level fields, e.g. `not_found`) as
    JSON bytes, built from the frame's columns in one pass: for 100 accounts with 10
    drivers each this is several times faster than building the response models."""
    n = len(scored)
    cols = {
        name: _column(scored, name)
        for name in (
            "account_id",
            "churn_risk",
            "churn_lift",
            "risk_tier",
            "expected_mrr_loss",
            "renewal_likelihood",
            "risk_summary",
            "upsell_likelihood",
            "upsell_lift",
            "health_score",
            "health_band",
            "disagreement_reason",
            "explains",
            "playbook",
            "recommended_action",
            "action_owner",
            "action_because",
            "renewal_model",
            "renewal_model_version",
            "upsell_model",
            "upsell_model_version",
            "next_renewal_model",
            "next_renewal_model_version",
        )
    }
    renewals = [
        None if d is None or (isinstance(d, float) and d != d) else d.isoformat() for d in scored["next_renewal"]
    ]
    as_of = [d.isoformat() for d in scored["as_of"].tolist()]
    opportunity = [bool(v) for v in scored["opportunity"].tolist()]
    disagreement = [bool(v) for v in scored["disagreement"].tolist()]
    renewal, upsell = scored["renewal_drivers"].tolist(), scored["upsell_drivers"].tolist()
    accounts = [
        {
            "account_id": cols["account_id"][i],
            "as_of": as_of[i],
            "churn_risk": float(cols["churn_risk"][i]),
            "churn_lift": float(cols["churn_lift"][i]),
            "risk_tier": cols["risk_tier"][i],
            "expected_mrr_loss": float(cols["expected_mrr_loss"][i]),
            "next_renewal": renewals[i],
            "renewal_likelihood": cols["renewal_likelihood"][i],
            "risk_summary": cols["risk_summary"][i],
            "upsell_likelihood": float(cols["upsell_likelihood"][i]),
            "upsell_lift": float(cols["upsell_lift"][i]),
            "opportunity": opportunity[i],
            "health_score": cols["health_score"][i],
            "health_band": cols["health_band"][i],
            "disagreement": disagreement[i],
            "disagreement_reason": cols["disagreement_reason"][i],
            "renewal_drivers": _drivers_json(renewal[i]),
            "upsell_drivers": _drivers_json(upsell[i]),
            "explains": cols["explains"][i],
            "playbook": cols["playbook"][i],
            "recommended_action": cols["recommended_action"][i],
            "action_owner": cols["action_owner"][i],
            "action_because": cols["action_because"][i],
            "renewal_model": {"name": cols["renewal_model"][i], "version": str(cols["renewal_model_version"][i])},
            "upsell_model": {"name": cols["upsell_model"][i], "version": str(cols["upsell_model_version"][i])},
            "next_renewal_model": None
            if cols["next_renewal_model"][i] is None
            else {"name": cols["next_renewal_model"][i], "version": str(cols["next_renewal_model_version"][i])},
        }
        for i in range(n)
    ]
    stamp = scored["scored_at"].iloc[0].to_pydatetime() if n else datetime.now().astimezone()
    return to_json({"accounts": accounts, "scored_at": stamp, **extra})
