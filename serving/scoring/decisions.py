"""The decision layer (DOMAIN 5): from calibrated probabilities to what a CS team sees.

- **Churn risk** = P(churn within the horizon, 90 days) of the renewal model. Its **lift**
  is churn risk / the base rate recorded with the model (the share of accounts that
  churned within 90 days in the model's calibration period): "2.8x the typical churn
  risk". Red at or above `red_lift`, yellow at or above `yellow_lift`, each only with at
  least `risk_floor` absolute risk (so a tiny base rate cannot paint the book red).
  Fixed cut-offs on the probability never fire at realistic base rates (3-4% a quarter).
- **Expansion opportunity**: upsell likelihood at or above `opportunity_lift` x the
  expansion base rate and at least `opportunity_floor`.
- **The call list**: one ranking for every screen — expected MRR lost within the horizon
  (MRR x churn risk), largest first; the sooner renewal breaks ties, then the account id.

Pure functions of arrays and frames; the settings come from `[serving]`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from radar.settings import ServingSettings

TIERS = ("red", "yellow", "green")
TOLERANCE = 1e-9  # exactly 3x the base rate is red, whatever the floating point says


class NoBaseRate(ValueError):
    """A model without the base rate that tiers are relative to (trained by an older version)."""


def base_rate_of(model, target: str) -> float:
    """The positive rate recorded with a trained model; `NoBaseRate` says how to fix it."""
    rate = getattr(model, "base_rate", None)
    if rate is None:
        rate = getattr(model, "metadata", {}).get("base_rate")
    if rate is None or not math.isfinite(float(rate)) or float(rate) <= 0:
        raise NoBaseRate(
            f"the {target} model has no recorded base rate (it was trained by an older version or on data "
            "without a single positive): retrain it with `radar train` and promote the new version"
        )
    return float(rate)


def lift(probability: np.ndarray, base_rate: float) -> np.ndarray:
    """How many times the typical (base) rate a probability is."""
    return np.asarray(probability, dtype=float) / base_rate


def risk_tier(churn_risk: np.ndarray, base_rate: float, cfg: ServingSettings) -> np.ndarray:
    """red / yellow / green from the churn risk relative to the base rate, with the floor."""
    risk = np.asarray(churn_risk, dtype=float)
    times = lift(risk, base_rate)
    floor = risk >= cfg.risk_floor - TOLERANCE
    red = (times >= cfg.red_lift - TOLERANCE) & floor
    yellow = (times >= cfg.yellow_lift - TOLERANCE) & floor
    return np.select([red, yellow], ["red", "yellow"], "green").astype(object)


def opportunity(upsell: np.ndarray, base_rate: float, cfg: ServingSettings) -> np.ndarray:
    """Whether the upsell likelihood marks an expansion opportunity (relative, with a floor)."""
    p = np.asarray(upsell, dtype=float)
    return (lift(p, base_rate) >= cfg.opportunity_lift - TOLERANCE) & (p >= cfg.opportunity_floor - TOLERANCE)


def times_typical(value: float) -> str:
    """A lift in words: "2.8x", "0.4x", "12x"."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


def risk_words(churn_risk: float, churn_lift: float) -> str:
    """ "churn risk next 90 days 8.4% (2.8x typical)" — what every screen says."""
    if churn_risk is None or not math.isfinite(churn_risk):
        return "churn risk not scored"
    return f"churn risk next 90 days {pct(churn_risk)} ({times_typical(churn_lift)} typical)"


def summary(churn_risk: float, churn_lift: float, next_renewal, renewal_likelihood: float | None) -> str:
    """The honest one-liner every screen shows: "churn risk next 90 days 0.4% (0.1x typical)
    · renews 2027-06-30, 86% likely to renew there". The renewal part needs both the date
    and the next-renewal model; a 90-day risk is never worded as a renewal likelihood."""
    text = risk_words(churn_risk, churn_lift)
    if next_renewal is None or (isinstance(next_renewal, float) and math.isnan(next_renewal)):
        return text + " · no contract end date (open-ended)"
    if renewal_likelihood is None or not math.isfinite(renewal_likelihood):
        return f"{text} · renews {next_renewal}"
    return f"{text} · renews {next_renewal}, {pct(renewal_likelihood)} likely to renew there"


def pct(p: float) -> str:
    """A probability as a percentage with the precision small risks need (0.4%, 8.4%, 86%)."""
    if p is None or not math.isfinite(p):
        return "n/a"
    value = 100 * p
    if value < 10:
        return f"{value:.1f}%"
    if value < 99.5:
        return f"{value:.0f}%"
    return "100%" if value >= 100 else f"{min(value, 99.9):.1f}%"  # never round a near-certainty up


def expected_loss(mrr: pd.Series | np.ndarray, churn_risk: np.ndarray) -> np.ndarray:
    """Expected MRR lost within the horizon = MRR x churn risk (missing MRR counts as 0)."""
    money = pd.to_numeric(pd.Series(np.asarray(mrr, dtype=object)), errors="coerce").fillna(0.0).to_numpy(float)
    return money * np.asarray(churn_risk, dtype=float)


def call_order(scored: pd.DataFrame) -> pd.DataFrame:
    """THE call list: `scored` ordered by expected MRR lost (largest first), then the
    sooner renewal, then account id. Every screen, API and writer orders accounts with it."""
    loss = scored["expected_mrr_loss"] if "expected_mrr_loss" in scored.columns else None
    if loss is None:
        loss = pd.Series(expected_loss(scored["mrr"], scored["churn_risk"]), index=scored.index)
    days = (
        pd.to_numeric(scored["days_to_next_renewal"], errors="coerce")
        if "days_to_next_renewal" in scored.columns
        else pd.Series(np.nan, index=scored.index)
    )
    keys = pd.DataFrame(
        {"_loss": -pd.to_numeric(loss, errors="coerce").fillna(0.0), "_days": days.fillna(np.inf)},
        index=scored.index,
    )
    keys["_id"] = scored["account_id"].astype(str)
    order = keys.sort_values(["_loss", "_days", "_id"], kind="stable").index
    return scored.loc[order]
