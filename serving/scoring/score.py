"""THE scoring function: snapshot records in, everything a CS team acts on out.

POST /score and batch scoring (`radar score`, CRM enrichment) both call `score_frame`,
so they cannot drift apart: the 90-day churn risk and its lift over the base rate, the
risk tier and expected MRR lost (`serving.scoring.decisions`), the renewal likelihood at
the next renewal and its date, upsell likelihood and the opportunity flag, health score and
band, the disagreement flag, the top drivers per target with reasons, the playbook
action and owner, and the model names and versions. It does no I/O and reads no clock
(the caller passes `scored_at`).

Speed: each model's input is prepared once (shared when both models read the same
features), probabilities are predicted for all rows in one call, SHAP contributions are
computed in chunks on `explain_threads` threads, and reason strings only for the top k.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pandas as pd

from features.events import missing_features_message
from features.snapshot import feature_registry
from radar.settings import ServingSettings, Settings, serving_settings
from serving.scoring.context import context_lines
from serving.scoring.decisions import base_rate_of, expected_loss, lift, risk_tier, summary
from serving.scoring.decisions import opportunity as is_opportunity
from serving.scoring.explain import EXPLAINS, Explainer, drivers, likelihood_of
from serving.scoring.playbook import Recommendation, load_playbooks, recommend
from training.model import RadarModel

CARRIED = ("name", "csm_owner", "segment", "mrr", "days_to_next_renewal")  # for people and the call list


@dataclass(frozen=True)
class ServedModel:
    """A model as served: the calibrated model and where it came from in the registry."""

    model: RadarModel
    name: str
    version: str


@dataclass
class ScoringModels:
    """The models served together; explainers are built once, on first use.

    renewal: the 90-day churn model (label `churned`): churn risk, tiers and the call list.
    upsell: expansion within the horizon. next_renewal: churn by the next renewal (label
    `churned_by_renewal`), shown as the renewal likelihood at that date; optional (a
    registry without it still scores churn risk and upsell)."""

    renewal: ServedModel
    upsell: ServedModel
    next_renewal: ServedModel | None = None
    _explainers: dict = field(default_factory=dict, repr=False)

    @property
    def targets(self) -> tuple[str, ...]:
        return ("renewal", "upsell") + (("next_renewal",) if self.next_renewal is not None else ())

    def explainer(self, target: str) -> Explainer:
        if target not in self._explainers:
            self._explainers[target] = Explainer(getattr(self, target).model)
        return self._explainers[target]

    def registry(self, settings: Settings):
        """The feature registry of `settings`, built once per settings object (reasons
        read it on every request)."""
        cached = self._explainers.get("registry")
        if cached is None or cached[0] is not settings:
            cached = self._explainers["registry"] = (settings, feature_registry(settings))
        return cached[1]

    @cached_property
    def lineage(self) -> dict[str, str | None]:
        served = self.next_renewal
        return {
            "renewal_model": self.renewal.name,
            "renewal_model_version": str(self.renewal.version),
            "upsell_model": self.upsell.name,
            "upsell_model_version": str(self.upsell.version),
            "next_renewal_model": served.name if served else None,
            "next_renewal_model_version": str(served.version) if served else None,
        }

    @cached_property
    def base_rates(self) -> dict[str, float]:
        """The churn and expansion base rates recorded with the models (tiers are relative to them)."""
        return {t: base_rate_of(getattr(self, t).model, t) for t in ("renewal", "upsell")}


def lineage_words(lineage: dict) -> str:
    """The served models in words: "radar-renewal v3, radar-upsell v2 and radar-next-renewal v1"."""
    parts = [
        f"{lineage[f'{t}_model']} v{lineage[f'{t}_model_version']}"
        for t in ("renewal", "upsell", "next_renewal")
        if lineage.get(f"{t}_model")
    ]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def next_renewal_dates(frame: pd.DataFrame, as_of: pd.Series) -> np.ndarray:
    """The next renewal (nearest contract end of an active line) per row: the snapshot's
    `next_renewal` when it has one, else as_of + days_to_next_renewal; None when open-ended."""
    if "next_renewal" in frame.columns:
        given = pd.to_datetime(frame["next_renewal"], errors="coerce")
    else:
        given = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if "days_to_next_renewal" in frame.columns:
        days = pd.to_numeric(frame["days_to_next_renewal"], errors="coerce")
        derived = pd.to_datetime(pd.Series(as_of.to_numpy(), index=frame.index)) + pd.to_timedelta(days, unit="D")
        given = given.fillna(derived)
    return np.array([None if pd.isna(d) else d.date() for d in given], dtype=object)


def health_band(score: pd.Series, given: pd.Series | None, settings: Settings) -> np.ndarray:
    """The band of the health score (thresholds of `settings.health`); the given band
    where the score is missing."""
    s = pd.to_numeric(score, errors="coerce").to_numpy(dtype=float)
    band = np.select(
        [s < settings.health.red_below, s < settings.health.amber_below, ~np.isnan(s)], ["red", "amber", "green"], ""
    ).astype(object)
    band[band == ""] = None
    if given is not None:
        missing = pd.isna(band)
        band[missing] = [None if pd.isna(v) else v for v in given.to_numpy(dtype=object)[missing]]
    return band


def disagreement(band: np.ndarray, tier: np.ndarray, serving: ServingSettings) -> tuple[np.ndarray, np.ndarray]:
    """(flag, reason) where the health band and the model's tier form a configured pair,
    e.g. green health with a red risk tier."""
    flag = np.zeros(len(tier), dtype=bool)
    text = np.full(len(tier), None, dtype=object)
    for health, model_tier in serving.disagreement:
        hit = (band == health) & (tier == model_tier)
        flag |= hit
        text[hit] = f"health score is {health} but the model's risk tier is {model_tier}"
    return flag, text


def check_columns(models: ScoringModels, columns: pd.Index) -> None:
    """A ValueError naming the feature columns a served model needs and the snapshots lack
    (per-event features of other event types: which, and the fix)."""
    for target in models.targets:
        served = getattr(models, target)
        absent = [f for f in served.model.features if f not in columns]
        if absent:
            model = f"the {target} model ({served.name} version {served.version})"
            raise ValueError(missing_features_message(absent, model, served.model.metadata.get("event_types")))


def _predict(models: ScoringModels, frame: pd.DataFrame, threads: int) -> dict:
    """Per target: the explainer's inputs, raw margin and calibrated P(positive) — inputs
    prepared once for models that read the same features, margins for all rows at once."""
    out, cache = {}, {}
    for target in models.targets:
        model, explainer = getattr(models, target).model, models.explainer(target)
        key = (
            tuple(model.features),
            tuple((k, tuple(v)) for k, v in sorted(model.categories.items())),
            explainer.method,
        )
        if key not in cache:
            cache[key] = explainer.rows(frame)
        margin = explainer.margin(cache[key], threads=threads)
        out[target] = (cache[key], margin, model.calibrator.transform(margin))
    return out


def score_frame(
    snapshots: pd.DataFrame,
    models: ScoringModels,
    settings: Settings,
    *,
    serving: ServingSettings | None = None,
    explain: bool = True,
    top_k: int | None = None,
    scored_at: datetime | None = None,
) -> pd.DataFrame:
    """Score snapshot records (one row per account and as_of; every feature column the
    models read, values may be missing). One output row per input row, in order.

    `explain=False` skips SHAP (probabilities only): no drivers, and the action then
    follows the tier alone. `scored_at` defaults to now (UTC); a missing `as_of` is the
    date of `scored_at`.
    """
    cfg = serving_settings(settings, serving)
    k = cfg.top_drivers if top_k is None else top_k
    stamp = pd.Timestamp(scored_at or datetime.now(UTC))
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if "account_id" not in snapshots.columns:
        raise ValueError("snapshot records need an account_id column")
    frame = snapshots.reset_index(drop=True)
    n = len(frame)
    as_of = frame["as_of"] if "as_of" in frame.columns else pd.Series([None] * n)
    codes, dates = pd.factorize(as_of)  # few distinct dates: convert those, not every row
    dates = np.array([d.date() for d in pd.to_datetime(dates)] + [stamp.date()], dtype=object)
    as_of = pd.Series(dates[codes], dtype=object)  # code -1 (missing) takes the scoring date

    check_columns(models, frame.columns)
    predicted = _predict(models, frame, cfg.explain_threads)
    result = {"account_id": frame["account_id"].astype(str).to_numpy(dtype=object), "as_of": as_of.to_numpy()}
    for c in CARRIED:
        result[c] = frame[c].to_numpy() if c in frame.columns else np.full(n, None, dtype=object)
    for target, (_, margin, _p) in predicted.items():
        result[f"{target}_margin"] = margin
    rates = models.base_rates
    churn_risk = predicted["renewal"][2]
    churn_lift = lift(churn_risk, rates["renewal"])
    tier = risk_tier(churn_risk, rates["renewal"], cfg)
    upsell = predicted["upsell"][2]
    opportunity = is_opportunity(upsell, rates["upsell"], cfg)
    renews = predicted["next_renewal"][2] if "next_renewal" in predicted else np.full(n, np.nan)
    renewal_dates = next_renewal_dates(frame, as_of)
    health = (
        pd.to_numeric(frame["health_score"], errors="coerce")
        if "health_score" in frame.columns
        else pd.Series(np.full(n, np.nan))
    )
    band = health_band(health, frame["health_band"] if "health_band" in frame.columns else None, settings)
    flag, why = disagreement(band, tier, cfg)
    result.update(
        churn_risk=churn_risk,
        churn_lift=churn_lift,
        risk_tier=tier,
        expected_mrr_loss=expected_loss(result["mrr"], churn_risk),
        renewal_likelihood=1.0 - renews,
        next_renewal=renewal_dates,
        upsell_likelihood=upsell,
        upsell_lift=lift(upsell, rates["upsell"]),
        risk_summary=[
            summary(*values)
            for values in zip(churn_risk.tolist(), churn_lift.tolist(), renewal_dates, (1.0 - renews).tolist())
        ],
        opportunity=opportunity,
        health_score=health.to_numpy(dtype=float),
        health_band=band,
        disagreement=flag,
        disagreement_reason=why,
    )

    found: dict[str, list] = {"renewal": [None] * n, "upsell": [None] * n}
    result["renewal_base_value"] = result["upsell_base_value"] = np.full(n, np.nan)
    registry = models.registry(settings)
    if explain and n:
        for target in ("renewal", "upsell"):  # the reasons a CSM reads: churn risk and expansion
            inputs = predicted[target][0]
            contrib, base = models.explainer(target).contributions(
                inputs, threads=cfg.explain_threads, chunk_rows=cfg.explain_chunk_rows
            )
            found[target] = drivers(frame, getattr(models, target).model, contrib, registry, k)
            result[f"{target}_base_value"] = base
    result["renewal_drivers"], result["upsell_drivers"] = found["renewal"], found["upsell"]
    result["explains"] = np.full(n, EXPLAINS if explain else None, dtype=object)
    result["context"] = context_lines(frame, as_of)  # contract timing, MRR, tenure: said apart from the drivers
    inverted = likelihood_of(models.renewal.model)[1]
    books = load_playbooks(cfg.playbooks_file)
    # without drivers the action depends on (tier, opportunity) alone
    by_tier: dict[tuple[str, bool], Recommendation] = {}
    actions = [
        recommend(t, o, d, registry, inverted, books)
        if d
        else by_tier.get((t, o)) or by_tier.setdefault((t, o), recommend(t, o, [], registry, inverted, books))
        for t, o, d in zip(tier.tolist(), opportunity.tolist(), found["renewal"])
    ]
    result["playbook"] = [a.playbook for a in actions]
    result["recommended_action"] = [a.action for a in actions]
    result["action_owner"] = [a.owner for a in actions]
    result["action_because"] = [a.because for a in actions]
    for key, value in models.lineage.items():
        result[key] = np.full(n, value, dtype=object)
    result["scored_at"] = pd.Series(
        np.full(n, stamp.tz_convert(None).to_datetime64(), dtype="datetime64[us]"), dtype="datetime64[us]"
    ).dt.tz_localize("UTC")
    return pd.DataFrame(result)
