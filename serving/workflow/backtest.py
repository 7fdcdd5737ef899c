"""`radar backtest`: the decisions replayed over the last labelled as-of dates, against what happened.

For each of the last N snapshot dates whose `churned` label is known, the snapshots of that
date are scored with the champion models (`serving.scoring.score.score_frame`) and the
alert rules evaluated as `radar alerts` would have on that date (`serving.workflow.alerts.
load_inputs` + `alert_rules.evaluate`; nothing is written to the alert state). Then, per
date and pooled over the dates:

- tiers: accounts red / yellow (count, share), churners caught per tier and by red + yellow
  (recall), precision of each tier (the share of its accounts that churned within 90 days);
- alerts by routing (meeting / review / tag): alerts, accounts, and the share of alerted
  accounts that churned (risk alerts); expansion alerts against `expanded`;
- the call list: per CSM owner, the churned MRR caught by the top 10 of
  `decisions.call_order` over the owner's accounts (as the portfolio page lists them), as a
  share of that owner's churned MRR, and overall;
- expansion opportunities: flagged, and the share that expanded within 90 days;
- lead time: for each churn in the span, the earliest scored as-of date within
  `LOOKBACK_DAYS` (180) before it (and after the account's previous churn) on which the
  account was red or yellow; the median over churns, by monthly and annual contracts.
  Besides the backtest dates, every snapshot date from `LOOKBACK_DAYS` before the first of
  them up to the last churn of the span is scored (probabilities only: the tiers are the
  same), so an annual contract's longer lead can be seen.

Baselines, on the same accounts: the health score (lowest first; as many accounts flagged
as the model's red + yellow, its own top 10 per owner) and the previous fixed cut-offs (red
when 1 - churn risk < 0.4, yellow when < 0.7; opportunity when upsell likelihood > 0.5).

Honesty: every date is marked in-sample, out-of-sample, label overlap or before training
for the served churn model, from the train / calibration ranges recorded in its MLflow
run (`split.*`): out-of-sample means the date is at least one horizon after the last date
the model was fitted or calibrated on, so none of its labels was seen. Pooled figures are
also given for the out-of-sample dates alone (lead times there count flags on
out-of-sample dates only) and for the last quarter of the span (the leadership page).

The computations are pure functions over frames (`date_counts`, `figures`, `lead_times`,
`lead_summary`, `sweep`, `sample_status`); `run_backtest` reads the workspace and the
registry, `log_backtest` writes an MLflow run and `save_latest` the JSON the web page reads.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from radar.settings import ServingSettings, Settings
from serving.scoring.decisions import call_order, risk_tier

EXPERIMENT = "radar-backtest"
REPORT = Path("reports") / "backtest.json"  # under settings.output_dir
LOOKBACK_DAYS = 180
TOP_N = 10
QUARTER_DAYS = 89  # dates less than this before the last one: 3 month-ends, or 13 weeks
ROUTINGS = ("meeting", "review", "tag")
FIXED_RED_BELOW, FIXED_YELLOW_BELOW, FIXED_UPSELL_ABOVE = 0.4, 0.7, 0.5  # the previous defaults
SWEEP_RED = (2.0, 2.5, 3.0, 4.0, 5.0)
SWEEP_YELLOW = (1.25, 1.5, 2.0)
NO_OWNER = "(no owner)"
SAMPLES = ("in-sample", "label overlap", "out-of-sample", "before training", "unknown")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


class BacktestError(ValueError):
    """Nothing to backtest (no labelled dates, no workspace), with what to do."""


# --- pure: one date ---


def fixed_tiers(churn_risk) -> np.ndarray:
    """The previous absolute cut-offs: red when 1 - churn risk < 0.4, yellow when < 0.7."""
    renew = 1.0 - np.asarray(churn_risk, dtype=float)
    return np.select([renew < FIXED_RED_BELOW, renew < FIXED_YELLOW_BELOW], ["red", "yellow"], "green").astype(object)


def health_flags(health, account_id, k: int) -> np.ndarray:
    """The `k` accounts a health-score tool would flag: the lowest health first (missing
    health last, then the account id)."""
    order = pd.DataFrame({"h": pd.to_numeric(pd.Series(np.asarray(health)), errors="coerce")})
    order["id"] = pd.Series(np.asarray(account_id)).astype(str)
    ranked = order.sort_values(["h", "id"], na_position="last", kind="stable").index[: max(0, int(k))]
    flags = np.zeros(len(order), dtype=bool)
    flags[ranked] = True
    return flags


def contract_kind(billing_period) -> np.ndarray:
    """monthly / annual / other / unknown from billing periods in words or months."""
    out = []
    for v in np.asarray(billing_period, dtype=object):
        text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip().lower()
        if text in ("month", "monthly", "1", "1.0"):
            out.append("monthly")
        elif text in ("year", "yearly", "annual", "annually", "12", "12.0"):
            out.append("annual")
        else:
            out.append("unknown" if text == "" else "other")
    return np.array(out, dtype=object)


def _owner(values) -> pd.Series:
    s = pd.Series(np.asarray(values, dtype=object))
    return s.where(s.notna() & (s.astype(str) != ""), NO_OWNER).astype(str)


def call_list_capture(frame: pd.DataFrame, top_n: int = TOP_N) -> dict[str, dict[str, float]]:
    """Per CSM owner: their churned MRR and the part of it in the top `top_n` of the call
    list (`decisions.call_order` over the owner's accounts) and of the health-score ranking
    (lowest health first). `frame` holds account_id, csm_owner, mrr, churn_risk (or
    expected_mrr_loss), health_score and churned."""
    frame = frame.reset_index(drop=True)
    owners = _owner(frame["csm_owner"] if "csm_owner" in frame.columns else [None] * len(frame))
    mrr = pd.to_numeric(frame["mrr"], errors="coerce").fillna(0.0)
    lost = mrr.where(frame["churned"].astype(bool), 0.0)
    out = {}
    for owner, rows in frame.groupby(owners, sort=True):
        model_top = call_order(rows).index[:top_n]
        health_top = rows.index[health_flags(rows["health_score"], rows["account_id"], top_n)]
        out[str(owner)] = {
            "churned_mrr": float(lost[rows.index].sum()),
            "model": float(lost[model_top].sum()),
            "health": float(lost[health_top].sum()),
        }
    return out


def alert_frame(alerts: Iterable) -> pd.DataFrame:
    """The alerts as rows: account_id, routing, kind (risk or expansion), capped."""
    rows = [
        {
            "account_id": str(a.account_id),
            "routing": a.routing,
            "kind": "expansion" if a.rule == "expansion" or str(a.key).endswith(":expansion") else "risk",
            "capped": bool(getattr(a, "capped", False)),
        }
        for a in alerts
    ]
    return pd.DataFrame(rows, columns=["account_id", "routing", "kind", "capped"])


def _tier_counts(prefix: str, tier: np.ndarray, churned: np.ndarray, names=("red", "yellow")) -> dict[str, float]:
    out: dict[str, float] = {}
    masks = {"red": tier == "red", "yellow": tier == "yellow", "flagged": tier != "green"}
    for name in (*names, "flagged"):
        out[f"{prefix}.{name}"] = int(masks[name].sum())
        out[f"{prefix}.{name}_churned"] = int((masks[name] & churned).sum())
    return out


def date_counts(frame: pd.DataFrame, alerts: pd.DataFrame | None = None, *, top_n: int = TOP_N) -> dict[str, float]:
    """The additive counts of one date (pooled over dates by summing, `figures` turns them
    into shares, precision and recall). `frame`: one row per account scored on that date
    with a known label — account_id, csm_owner, mrr, churn_risk, risk_tier, health_score,
    upsell_likelihood, opportunity, churned, expanded (expected_mrr_loss and
    days_to_next_renewal when present order the call list). `alerts`: `alert_frame` rows."""
    frame = frame.reset_index(drop=True)
    churned = frame["churned"].astype(bool).to_numpy()
    expanded = (
        frame["expanded"].fillna(0).astype(bool).to_numpy() if "expanded" in frame else np.zeros(len(frame), bool)
    )
    mrr = pd.to_numeric(frame["mrr"], errors="coerce").fillna(0.0).to_numpy()
    tier = frame["risk_tier"].astype(object).to_numpy()
    c: dict[str, float] = {
        "accounts": len(frame),
        "churners": int(churned.sum()),
        "expanders": int(expanded.sum()),
        "churned_mrr": float(mrr[churned].sum()),
    }
    c.update(_tier_counts("model", tier, churned))
    c.update(_tier_counts("fixed", fixed_tiers(frame["churn_risk"]), churned))
    k = int((tier != "green").sum())
    health = np.where(health_flags(frame["health_score"], frame["account_id"], k), "yellow", "green")
    c.update(_tier_counts("health", health, churned, names=()))
    owners = call_list_capture(frame, top_n)
    c["top.model"] = sum(o["model"] for o in owners.values())
    c["top.health"] = sum(o["health"] for o in owners.values())
    for rule, flags in (
        ("model", frame["opportunity"].astype(bool).to_numpy()),
        ("fixed", pd.to_numeric(frame["upsell_likelihood"], errors="coerce").to_numpy() > FIXED_UPSELL_ABOVE),
    ):
        c[f"opp.{rule}"] = int(flags.sum())
        c[f"opp.{rule}_expanded"] = int((flags & expanded).sum())
    if alerts is not None:
        c.update(
            alert_counts(alerts, frame["account_id"].astype(str)[churned], frame["account_id"].astype(str)[expanded])
        )
    return c


def alert_counts(alerts: pd.DataFrame, churned_ids: Iterable[str], expanded_ids: Iterable[str]) -> dict[str, float]:
    """Risk alerts per routing (alerts, distinct accounts, those that churned), the review
    queue's risk alerts past the owner's cap, any risk alert, expansion alerts (accounts,
    those that expanded) and capped alerts of either kind."""
    churned_ids, expanded_ids = set(churned_ids), set(expanded_ids)
    risk = alerts[alerts["kind"] == "risk"]
    out: dict[str, float] = {}
    for routing in ROUTINGS:
        rows = risk[risk["routing"] == routing]
        accounts = set(rows["account_id"])
        out[f"alerts.{routing}.alerts"] = len(rows)
        out[f"alerts.{routing}.accounts"] = len(accounts)
        out[f"alerts.{routing}.churned"] = len(accounts & churned_ids)
    capped = risk[risk["capped"].astype(bool)]  # past the owner's cap: in the review queue
    out["alerts.review_capped.alerts"] = len(capped)
    out["alerts.review_capped.accounts"] = len(set(capped["account_id"]))
    out["alerts.review_capped.churned"] = len(set(capped["account_id"]) & churned_ids)
    accounts = set(risk["account_id"])
    out["alerts.any.alerts"] = len(risk)
    out["alerts.any.accounts"] = len(accounts)
    out["alerts.any.churned"] = len(accounts & churned_ids)
    grow = set(alerts.loc[alerts["kind"] == "expansion", "account_id"])
    out["alerts.expansion.accounts"] = len(grow)
    out["alerts.expansion.expanded"] = len(grow & expanded_ids)
    out["alerts.capped"] = int(alerts["capped"].astype(bool).sum())
    return out


def pooled(counts: Sequence[dict[str, float]]) -> dict[str, float]:
    """Counts of several dates added up (a key missing on a date counts 0 there)."""
    out: dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def _ratio(a: float, b: float) -> float | None:
    return None if not b else float(a) / float(b)


def figures(c: dict[str, float]) -> dict:
    """Shares, precision and recall from (pooled) counts."""
    n, churners = c.get("accounts", 0), c.get("churners", 0)
    out: dict = {
        "accounts": int(n),
        "churners": int(churners),
        "churn_rate": _ratio(churners, n),
        "churned_mrr": float(c.get("churned_mrr", 0.0)),
    }
    for rule, tiers in (
        ("model", ("red", "yellow", "flagged")),
        ("fixed", ("red", "yellow", "flagged")),
        ("health", ("flagged",)),
    ):
        out[rule] = {
            t: {
                "accounts": int(c.get(f"{rule}.{t}", 0)),
                "share": _ratio(c.get(f"{rule}.{t}", 0), n),
                "churned": int(c.get(f"{rule}.{t}_churned", 0)),
                "precision": _ratio(c.get(f"{rule}.{t}_churned", 0), c.get(f"{rule}.{t}", 0)),
                "recall": _ratio(c.get(f"{rule}.{t}_churned", 0), churners),
            }
            for t in tiers
        }
    out["top10"] = {
        rule: {
            "captured_mrr": float(c.get(f"top.{rule}", 0.0)),
            "share": _ratio(c.get(f"top.{rule}", 0.0), c.get("churned_mrr", 0.0)),
        }
        for rule in ("model", "health")
    }
    out["opportunities"] = {
        rule: {
            "accounts": int(c.get(f"opp.{rule}", 0)),
            "share": _ratio(c.get(f"opp.{rule}", 0), n),
            "expanded": int(c.get(f"opp.{rule}_expanded", 0)),
            "precision": _ratio(c.get(f"opp.{rule}_expanded", 0), c.get(f"opp.{rule}", 0)),
            "recall": _ratio(c.get(f"opp.{rule}_expanded", 0), c.get("expanders", 0)),
        }
        for rule in ("model", "fixed")
    }
    out["expanders"] = int(c.get("expanders", 0))
    if "alerts.any.accounts" in c:
        out["alerts"] = {
            r: {
                "alerts": int(c.get(f"alerts.{r}.alerts", 0)),
                "accounts": int(c.get(f"alerts.{r}.accounts", 0)),
                "churned": int(c.get(f"alerts.{r}.churned", 0)),
                "precision": _ratio(c.get(f"alerts.{r}.churned", 0), c.get(f"alerts.{r}.accounts", 0)),
            }
            for r in (*ROUTINGS, "review_capped", "any")
        }
        out["alerts"]["expansion"] = {
            "accounts": int(c.get("alerts.expansion.accounts", 0)),
            "expanded": int(c.get("alerts.expansion.expanded", 0)),
            "precision": _ratio(c.get("alerts.expansion.expanded", 0), c.get("alerts.expansion.accounts", 0)),
        }
        out["alerts"]["capped"] = int(c.get("alerts.capped", 0))
    return out


# --- pure: lead time ---


def lead_times(
    panel: pd.DataFrame, churns: pd.DataFrame, *, lookback_days: int = LOOKBACK_DAYS, rules: Sequence[str] = ("model",)
) -> pd.DataFrame:
    """Per churn, the earliest scored as_of within `lookback_days` before it on which each
    rule flagged the account, and the lead in days (churn_date - that as_of; NaN when never
    flagged). An as_of on the churn date counts (lead 0); one on or before the account's
    previous churn does not (it belonged to the earlier relationship).

    panel: account_id, as_of (date), billing_period, and one boolean column per rule.
    churns: account_id, churn_date (date). The contract is the billing period of the
    account's latest panel row on or before the churn (within the same window)."""
    out = churns[["account_id", "churn_date"]].copy().reset_index(drop=True)
    out["account_id"] = out["account_id"].astype(str)
    out["churn_date"] = pd.to_datetime(out["churn_date"])
    out = out.sort_values(["account_id", "churn_date"], kind="stable").reset_index(drop=True)
    out["_prev"] = out.groupby("account_id")["churn_date"].shift(1)
    out["_churn"] = np.arange(len(out))
    rows = panel.assign(account_id=panel["account_id"].astype(str), _as_of=pd.to_datetime(panel["as_of"]))
    hits = out.merge(rows, on="account_id", how="inner")
    start = hits["churn_date"] - pd.Timedelta(days=lookback_days)
    inside = (hits["_as_of"] >= start) & (hits["_as_of"] <= hits["churn_date"])
    inside &= hits["_prev"].isna() | (hits["_as_of"] > hits["_prev"])
    hits = hits[inside]
    last = hits.sort_values("_as_of", kind="stable").groupby("_churn").tail(1).set_index("_churn")
    billing = last["billing_period"] if "billing_period" in last.columns else pd.Series(dtype=object)
    out["contract"] = contract_kind(out["_churn"].map(billing).to_numpy(dtype=object))
    for rule in rules:
        first = hits[hits[rule].astype(bool)].groupby("_churn")["_as_of"].min()
        when = out["_churn"].map(first)
        out[f"first_{rule}"] = [None if pd.isna(d) else d.date() for d in when]
        out[f"lead_{rule}"] = (out["churn_date"] - when).dt.days.astype(float)
    out["churn_date"] = out["churn_date"].dt.date
    return out.drop(columns=["_prev", "_churn"])


def lead_summary(leads: pd.DataFrame, rule: str = "model") -> dict:
    """Churns, those flagged in time, and the median lead (days) overall and per contract kind."""
    out = {}
    for kind in ("all", "monthly", "annual", "other", "unknown"):
        rows = leads if kind == "all" else leads[leads["contract"] == kind]
        if kind in ("other", "unknown") and rows.empty:
            continue
        lead = rows[f"lead_{rule}"].dropna()
        out[kind] = {
            "churns": len(rows),
            "flagged": len(lead),
            "median_days": None if lead.empty else float(lead.median()),
        }
    return out


# --- pure: tiers sweep and sample status ---


def sweep(
    panel: pd.DataFrame,
    base_rate: float,
    cfg: ServingSettings,
    red: Sequence[float] = SWEEP_RED,
    yellow: Sequence[float] = SWEEP_YELLOW,
) -> pd.DataFrame:
    """Flagged share, recall and precision for a grid of (red_lift, yellow_lift) over the
    pooled backtest rows (churn_risk, churned; `sample` when present adds out-of-sample
    recall). The floor is `cfg.risk_floor`; pairs with yellow above red are skipped."""
    churned = panel["churned"].astype(bool).to_numpy()
    oos = (panel["sample"] == "out-of-sample").to_numpy() if "sample" in panel.columns else np.zeros(len(panel), bool)
    rows = []
    for r in red:
        for y in yellow:
            if y > r:
                continue
            tier = risk_tier(
                panel["churn_risk"].to_numpy(float), base_rate, cfg.model_copy(update={"red_lift": r, "yellow_lift": y})
            )
            flagged, is_red = tier != "green", tier == "red"
            row = {
                "red_lift": r,
                "yellow_lift": y,
                "red_share": _ratio(is_red.sum(), len(tier)),
                "flagged_share": _ratio(flagged.sum(), len(tier)),
                "red_recall": _ratio((is_red & churned).sum(), churned.sum()),
                "recall": _ratio((flagged & churned).sum(), churned.sum()),
                "red_precision": _ratio((is_red & churned).sum(), is_red.sum()),
                "precision": _ratio((flagged & churned).sum(), flagged.sum()),
            }
            if oos.any():
                row["oos_flagged_share"] = _ratio((flagged & oos).sum(), oos.sum())
                row["oos_recall"] = _ratio((flagged & churned & oos).sum(), (churned & oos).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def parse_ranges(params: dict[str, str]) -> dict[str, tuple[date, date]]:
    """{part: (first, last)} from a training run's `split.*` params ("2024-01-31..2025-06-30 (18 dates)")."""
    out = {}
    for part in ("train", "calibration", "test"):
        found = _RANGE.search(str(params.get(f"split.{part}", "")))
        if found:
            out[part] = (date.fromisoformat(found.group(1)), date.fromisoformat(found.group(2)))
    return out


def sample_status(as_of: date, ranges: dict[str, tuple[date, date]], horizon_days: int) -> str:
    """in-sample: a date the model was fitted or calibrated on (or between them);
    out-of-sample: at least one horizon after the last of them, so none of the labels the
    model saw reaches past it; label overlap: in between; before training; unknown without ranges."""
    fitted = [ranges[p] for p in ("train", "calibration") if p in ranges]
    if not fitted:
        return "unknown"
    first, last = min(r[0] for r in fitted), max(r[1] for r in fitted)
    if as_of < first:
        return "before training"
    if as_of <= last:
        return "in-sample"
    if as_of >= last + timedelta(days=horizon_days):
        return "out-of-sample"
    return "label overlap"


def churns_from_labels(labels: pd.DataFrame, calendar: Sequence[date]) -> pd.DataFrame:
    """Churn events approximated from the `churned` labels when there are no subscriptions:
    each run of an account's snapshots labelled churned on consecutive calendar dates ends in
    one churn, dated at the run's last as_of (the real date lies before the next snapshot
    date, so leads are understated by up to one period)."""
    position = {pd.Timestamp(d): i for i, d in enumerate(sorted(pd.to_datetime(list(calendar))))}
    rows = labels[labels["churned"].fillna(0).astype(float) > 0][["account_id", "as_of"]].copy()
    if rows.empty:
        return pd.DataFrame({"account_id": pd.Series(dtype=object), "churn_date": pd.Series(dtype=object)})
    rows["account_id"] = rows["account_id"].astype(str)
    rows["_t"] = pd.to_datetime(rows["as_of"])
    rows["_i"] = rows["_t"].map(position)
    rows = rows.sort_values(["account_id", "_i"], kind="stable")
    rows["_run"] = (rows.groupby("account_id")["_i"].diff() != 1).cumsum()
    ends = rows.groupby("_run").agg(account_id=("account_id", "first"), churn_date=("_t", "max"))
    return ends.assign(churn_date=ends["churn_date"].dt.date).reset_index(drop=True)


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested figures as "a.b.c" keys (None and text left out)."""
    out: dict[str, float] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)) and v is not None and math.isfinite(v):
            out[key] = float(v)
    return out


# --- the result ---


@dataclass
class Backtest:
    """What `run_backtest` found: per date, pooled, the churns with their lead times and the sweep."""

    dates: list[dict]  # per date: as_of, sample, sample_upsell, counts, figures, owners
    churns: pd.DataFrame  # one row per churn in the span: contract, first flag and lead per rule
    panel: pd.DataFrame  # the backtest dates' rows: account_id, as_of, sample, churn_risk, churned (the sweep's input)
    models: dict  # names, versions, base rates, train/calibration/test ranges
    settings: dict  # the tiers' lifts and floor, horizon, lookback
    scored_dates: list[date]  # every date scored (backtest dates and the earlier ones for lead times)
    churn_source: str  # "subscriptions" or "labels (approximate dates)"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    sweep: pd.DataFrame | None = None
    mlflow_run: str | None = None

    @property
    def span(self) -> str:
        return f"{self.dates[0]['as_of']}..{self.dates[-1]['as_of']}"

    @property
    def run_name(self) -> str:
        return f"backtest {self.span} renewal v{self.models['renewal']['version']}"

    def summary(self, dates: Sequence[dict], *, only_flags_on: set[str] | None = None) -> dict:
        """Pooled figures and lead times over `dates` (churns in their span; with
        `only_flags_on`, flags of those samples only)."""
        out = figures(pooled([d["counts"] for d in dates]))
        start = date.fromisoformat(dates[0]["as_of"])
        end = date.fromisoformat(dates[-1]["as_of"]) + timedelta(days=self.settings["horizon_days"])
        rows = self.churns[(self.churns["churn_date"] >= start) & (self.churns["churn_date"] < end)]
        if only_flags_on is not None:
            rows = rows.copy()
            for rule in ("model", "fixed", "health"):
                ok = rows[f"first_{rule}"].map(lambda d: d is not None and self._sample_of(d) in only_flags_on)
                rows.loc[~ok.astype(bool), f"lead_{rule}"] = np.nan
        out["lead_days"] = {rule: lead_summary(rows, rule) for rule in ("model", "fixed", "health")}
        out["dates"] = [d["as_of"] for d in dates]
        out["samples"] = sorted({d["sample"] for d in dates})
        return out

    def _sample_of(self, day: date) -> str:
        return sample_status(day, self.models["renewal"]["ranges_parsed"], self.settings["horizon_days"])

    def overall(self) -> dict:
        """all dates; out-of-sample dates (when there are some); the last quarter of the span."""
        out = {"all": self.summary(self.dates)}
        oos = [d for d in self.dates if d["sample"] == "out-of-sample"]
        if oos:
            out["out_of_sample"] = self.summary(oos, only_flags_on={"out-of-sample"})
        last = date.fromisoformat(self.dates[-1]["as_of"])
        quarter = [d for d in self.dates if date.fromisoformat(d["as_of"]) > last - timedelta(days=QUARTER_DAYS)]
        out["last_quarter"] = self.summary(quarter)
        return out

    def owners(self, dates: Sequence[dict] | None = None) -> dict[str, dict[str, float]]:
        """Per CSM owner, churned MRR and the top-10 captures pooled over `dates`."""
        total: dict[str, dict[str, float]] = {}
        for d in dates if dates is not None else self.dates:
            for owner, v in d["owners"].items():
                t = total.setdefault(owner, {"churned_mrr": 0.0, "model": 0.0, "health": 0.0})
                for k in t:
                    t[k] += v[k]
        return dict(sorted(total.items()))

    def headline(self, overall: dict) -> dict:
        """The leadership page's figures: the last quarter of the span, model vs health score."""
        q = overall["last_quarter"]
        lead = q["lead_days"]
        return {
            "dates": q["dates"],
            "samples": q["samples"],
            "accounts": q["accounts"],
            "churners": q["churners"],
            "flagged_share": q["model"]["flagged"]["share"],
            "red_share": q["model"]["red"]["share"],
            "recall": q["model"]["flagged"]["recall"],
            "caught": q["model"]["flagged"]["churned"],
            "precision": q["model"]["flagged"]["precision"],
            "red_precision": q["model"]["red"]["precision"],
            "top10": q["top10"]["model"]["share"],
            "lead_days": lead["model"]["all"]["median_days"],
            "lead_monthly": lead["model"]["monthly"]["median_days"],
            "lead_annual": lead["model"]["annual"]["median_days"],
            "lead_churns": lead["model"]["all"]["churns"],
            "lead_flagged": lead["model"]["all"]["flagged"],
            "health": {
                "recall": q["health"]["flagged"]["recall"],
                "precision": q["health"]["flagged"]["precision"],
                "top10": q["top10"]["health"]["share"],
                "lead_days": lead["health"]["all"]["median_days"],
                "lead_flagged": lead["health"]["all"]["flagged"],
            },
            "fixed": {
                "flagged_share": q["fixed"]["flagged"]["share"],
                "recall": q["fixed"]["flagged"]["recall"],
            },
        }

    def per_date_table(self) -> pd.DataFrame:
        """One row per date: the figures as flat columns (the CSV artifact)."""
        rows = []
        for d in self.dates:
            flat = flatten(d["figures"])
            rows.append({"as_of": d["as_of"], "sample": d["sample"], **flat})
        return pd.DataFrame(rows)

    def document(self) -> dict:
        overall = self.overall()
        models = {t: {k: v for k, v in m.items() if k != "ranges_parsed"} for t, m in self.models.items()}
        return {
            "kind": "radar-backtest",
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "span": self.span,
            "models": models,
            "settings": self.settings,
            "churn_source": self.churn_source,
            "scored_dates": [str(d) for d in self.scored_dates],
            "headline": self.headline(overall),
            "overall": overall,
            "owners": self.owners(),
            "dates": [dict(d) for d in self.dates],
            "sweep": None if self.sweep is None else self.sweep.to_dict("records"),
            "mlflow_run": self.mlflow_run,
        }


# --- I/O: the workspace, the registry ---


def labelled_dates(con) -> list[date]:
    """Snapshot dates whose `churned` label is known."""
    return [
        pd.Timestamp(r[0]).date()
        for r in con.execute(
            "SELECT CAST(as_of AS DATE) AS d FROM snapshots GROUP BY 1 HAVING count(churned) > 0 ORDER BY 1"
        ).fetchall()
    ]


def snapshot_dates(con) -> list[date]:
    return [
        pd.Timestamp(r[0]).date()
        for r in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM snapshots ORDER BY 1").fetchall()
    ]


def _snapshots_at(con, dates: Sequence[date]) -> pd.DataFrame:
    if not dates:
        return pd.DataFrame()
    frame = con.execute(
        f"SELECT * FROM snapshots WHERE CAST(as_of AS DATE) IN ({', '.join('?' * len(dates))}) ORDER BY as_of, account_id",
        list(dates),
    ).df()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def churn_events_of(settings: Settings) -> pd.DataFrame | None:
    """Churn events (account_id, churn_date) from the workspace's subscriptions
    (`features.subscriptions.churn_events`, confirmed up to the data end), or None when the
    workspace has no subscriptions table."""
    import ibis

    from features.snapshot import Workspace
    from features.subscriptions import churn_events

    if settings.workspace_url:
        from features import database_workspace

        backend = database_workspace.open_backend(settings.workspace_url)
    else:
        backend = ibis.duckdb.connect(str(settings.database_path), read_only=True)
    try:
        if "subscriptions" not in set(backend.list_tables()):
            return None
        ws = Workspace.from_backend(backend, settings.features.data_end)
        events = churn_events(ws.tables["subscriptions"], settings.domain.grace_days, ws.data_end).to_pandas()
    finally:
        backend.disconnect()
    events["account_id"] = events["account_id"].astype(str)
    events["churn_date"] = pd.to_datetime(events["churn_date"]).dt.date
    return events


def model_ranges(settings: Settings, name: str, version: str) -> dict[str, str]:
    """The train / calibration / test ranges recorded in the training run of a registered version."""
    from mlflow.exceptions import MlflowException

    from training.track import configure

    client = configure(settings.training)
    try:
        run_id = client.get_model_version(name, version).run_id
        params = client.get_run(run_id).data.params if run_id else {}
    except MlflowException:  # a registry without the run (copied models): the model's own record, or unknown
        return {}
    return {p: params[f"split.{p}"] for p in ("train", "calibration", "test") if f"split.{p}" in params}


def _model_info(settings: Settings, models, ranges_of: Callable[[str, str], dict[str, str]]) -> dict:
    out = {}
    for target in ("renewal", "upsell"):
        served = getattr(models, target)
        ranges = ranges_of(served.name, str(served.version))
        if not ranges:  # the model's own record of what it was fitted and calibrated on
            meta = getattr(served.model, "metadata", {}) or {}
            ranges = {p: meta[k] for p, k in (("train", "trained_on"), ("calibration", "calibrated_on")) if meta.get(k)}
        out[target] = {
            "name": served.name,
            "version": str(served.version),
            "base_rate": models.base_rates[target],
            "ranges": ranges,
            "ranges_parsed": parse_ranges({f"split.{k}": v for k, v in ranges.items()}),
        }
    return out


def _frame_of(scores: pd.DataFrame, snaps: pd.DataFrame) -> pd.DataFrame:
    """Scores of one date joined with that date's labels and billing period (accounts with a known label)."""
    keep = [c for c in ("account_id", "churned", "expanded", "billing_period") if c in snaps.columns]
    labels = snaps[keep].assign(account_id=snaps["account_id"].astype(str)).drop_duplicates("account_id")
    frame = scores.drop(columns=[c for c in ("churned", "expanded", "billing_period") if c in scores.columns])
    frame = frame.merge(labels, on="account_id", how="left")
    return frame[frame["churned"].notna()].reset_index(drop=True)


def run_backtest(
    settings: Settings,
    models,
    n_dates: int = 6,
    *,
    lookback_days: int = LOOKBACK_DAYS,
    progress: Callable[[int, int, str], None] | None = None,
    ranges_of: Callable[[str, str], dict[str, str]] | None = None,
    with_sweep: bool = True,
) -> Backtest:
    """Replay the tiers, alerts and call list on the last `n_dates` labelled as-of dates."""
    from features.snapshot import feature_registry
    from serving.scoring.batch import WorkspaceUnavailable, reading_workspace
    from serving.scoring.playbook import load_playbooks
    from serving.scoring.score import score_frame
    from serving.workflow.alert_rules import evaluate, indicator_specs
    from serving.workflow.alerts import load_inputs

    if n_dates < 1:
        raise BacktestError("--dates must be at least 1")
    cfg = settings.serving
    horizon = settings.domain.horizon_days
    info = _model_info(settings, models, ranges_of or (lambda n, v: model_ranges(settings, n, v)))
    try:
        with reading_workspace(settings) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "snapshots" not in tables:
                raise BacktestError("the workspace has no snapshots table: run `radar build-features` first")
            labelled = labelled_dates(con)
            calendar = snapshot_dates(con)
            labels = (
                None
                if "subscriptions" in tables
                else con.execute("SELECT account_id, CAST(as_of AS DATE) AS as_of, churned FROM snapshots").df()
            )
    except WorkspaceUnavailable as exc:
        raise BacktestError(str(exc)) from exc
    if not labelled:
        raise BacktestError(
            "no snapshot date has a known churned label yet (labels need the horizon and the grace period "
            "of data after the as-of date)"
        )
    chosen = labelled[-n_dates:]
    events = churn_events_of(settings) if labels is None or settings.workspace_url else None
    source = "subscriptions"
    if events is None:
        if labels is None:
            with reading_workspace(settings) as con:
                labels = con.execute("SELECT account_id, CAST(as_of AS DATE) AS as_of, churned FROM snapshots").df()
        events, source = churns_from_labels(labels, calendar), "labels (approximate dates: the last snapshot before)"
    span_end = chosen[-1] + timedelta(days=horizon)
    in_span = events[(events["churn_date"] >= chosen[0]) & (events["churn_date"] < span_end)].reset_index(drop=True)
    last_churn = max(in_span["churn_date"], default=chosen[-1])
    earlier = [d for d in calendar if chosen[0] - timedelta(days=lookback_days) <= d <= last_churn and d not in chosen]
    total = len(chosen) + len(earlier)

    books = load_playbooks(cfg.playbooks_file)
    registry = feature_registry(settings)
    indicator_specs(settings.alerts.indicator_levels, registry)
    status = {t: (lambda d, t=t: sample_status(d, info[t]["ranges_parsed"], horizon)) for t in ("renewal", "upsell")}
    dates, panels, done = [], [], 0
    for day in chosen:
        if progress:
            progress(done, total, f"scoring {day} and evaluating the alert rules")
        stamp = datetime(day.year, day.month, day.day, tzinfo=UTC)
        inputs = load_inputs(settings, models, day, scored_at=stamp)
        alerts = alert_frame(evaluate(inputs, settings.alerts, books, registry))
        snaps = inputs.snapshots[inputs.snapshots["as_of"] == inputs.current]
        frame = _frame_of(inputs.scores, snaps)
        counts = date_counts(frame, alerts)
        dates.append(
            {
                "as_of": str(day),
                "sample": status["renewal"](day),
                "sample_upsell": status["upsell"](day),
                "counts": counts,
                "figures": figures(counts),
                "owners": call_list_capture(frame),
            }
        )
        panels.append(_panel_rows(frame, day, alerts=True))
        done += 1
    with reading_workspace(settings) as con:
        extra = _snapshots_at(con, earlier)
    for day in earlier:
        if progress:
            progress(done, total, f"scoring {day} for lead times")
        snaps = extra[extra["as_of"] == day].reset_index(drop=True)
        stamp = datetime(day.year, day.month, day.day, tzinfo=UTC)
        scores = score_frame(snaps, models, settings, explain=False, scored_at=stamp)
        scores["billing_period"] = snaps["billing_period"].to_numpy() if "billing_period" in snaps else None
        panels.append(_panel_rows(scores, day, alerts=False))
        done += 1
    if progress:
        progress(done, total, "lead times and baselines")
    panel = pd.concat(panels, ignore_index=True)
    leads = lead_times(panel, in_span, lookback_days=lookback_days, rules=("model", "fixed", "health"))
    backtest_rows = panel[panel["backtest"]].assign(sample=lambda p: p["as_of"].map(status["renewal"]))
    result = Backtest(
        dates=dates,
        churns=leads,
        panel=backtest_rows[["account_id", "as_of", "sample", "churn_risk", "churned"]].reset_index(drop=True),
        models=info,
        settings={
            "red_lift": cfg.red_lift,
            "yellow_lift": cfg.yellow_lift,
            "risk_floor": cfg.risk_floor,
            "opportunity_lift": cfg.opportunity_lift,
            "opportunity_floor": cfg.opportunity_floor,
            "horizon_days": horizon,
            "lookback_days": lookback_days,
            "top_n": TOP_N,
            "fixed_cutoffs": {
                "red_below": FIXED_RED_BELOW,
                "yellow_below": FIXED_YELLOW_BELOW,
                "upsell_above": FIXED_UPSELL_ABOVE,
            },
        },
        scored_dates=sorted([*chosen, *earlier]),
        churn_source=source,
    )
    if with_sweep:
        result.sweep = sweep(result.panel, info["renewal"]["base_rate"], cfg)
    return result


def _panel_rows(frame: pd.DataFrame, day: date, *, alerts: bool) -> pd.DataFrame:
    """One date's rows for lead times and the sweep: the three rules' flags (health flags as
    many accounts as the model's red + yellow)."""
    tier = frame["risk_tier"].astype(object).to_numpy()
    k = int((tier != "green").sum())
    return pd.DataFrame(
        {
            "account_id": frame["account_id"].astype(str).to_numpy(),
            "as_of": day,
            "billing_period": frame["billing_period"].to_numpy() if "billing_period" in frame else None,
            "churn_risk": frame["churn_risk"].to_numpy(float),
            "churned": frame["churned"].to_numpy() if "churned" in frame else np.nan,
            "model": tier != "green",
            "fixed": fixed_tiers(frame["churn_risk"]) != "green",
            "health": health_flags(frame["health_score"], frame["account_id"], k),
            "backtest": alerts,
        }
    )


# --- I/O: MLflow and the saved result ---


def log_backtest(result: Backtest, settings: Settings) -> str:
    """One MLflow run in the `radar-backtest` experiment: parameters, the overall figures as
    metrics (all dates and, when there are some, out-of-sample ones as `oos.*`), and the
    per-date table, the churns, the sweep and the JSON document as artifacts. Returns the run id."""
    import time

    from mlflow.entities import Metric, Param

    from training.track import configure, ensure_experiment, metric_key

    client = configure(settings.training)
    experiment = ensure_experiment(client, EXPERIMENT, settings.training)
    renewal, upsell = result.models["renewal"], result.models["upsell"]
    run = client.create_run(
        experiment,
        run_name=result.run_name,
        tags={"radar.kind": "backtest", "radar.renewal_model": f"{renewal['name']}/{renewal['version']}"},
    )
    run_id = run.info.run_id
    params = {
        "dates": ",".join(d["as_of"] for d in result.dates),
        "n_dates": len(result.dates),
        "samples": ",".join(f"{d['as_of']}:{d['sample']}" for d in result.dates),
        "renewal_model": f"{renewal['name']}/{renewal['version']}",
        "upsell_model": f"{upsell['name']}/{upsell['version']}",
        "renewal_base_rate": f"{renewal['base_rate']:.6g}",
        "upsell_base_rate": f"{upsell['base_rate']:.6g}",
        "churn_source": result.churn_source,
        **{k: v for k, v in result.settings.items() if not isinstance(v, dict)},
        **{f"renewal.split.{k}": v for k, v in renewal["ranges"].items()},
    }
    overall = result.overall()
    metrics = {}
    for scope, prefix in (("all", ""), ("out_of_sample", "oos.")):
        if scope in overall:
            metrics.update({prefix + k: v for k, v in _headline_metrics(overall[scope]).items()})
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(metric_key(k), v, now, 0) for k, v in metrics.items()],
        params=[Param(metric_key(k), str(v)[:6000]) for k, v in params.items()],
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result.per_date_table().to_csv(folder / "per_date.csv", index=False)
        result.churns.to_csv(folder / "churns.csv", index=False)
        if result.sweep is not None:
            result.sweep.to_csv(folder / "sweep.csv", index=False)
        result.mlflow_run = run_id
        (folder / "backtest.json").write_text(json.dumps(result.document(), indent=2, default=str))
        client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id)
    return run_id


def _headline_metrics(s: dict) -> dict[str, float]:
    """The few dozen figures worth a metric (the rest is in the artifacts)."""
    out = {"accounts": s["accounts"], "churners": s["churners"], "churn_rate": s["churn_rate"]}
    for rule in ("model", "fixed", "health"):
        for tier, v in s[rule].items():
            for k in ("share", "recall", "precision"):
                out[f"{rule}.{tier}.{k}"] = v[k]
        lead = s["lead_days"][rule]
        for kind in ("all", "monthly", "annual"):
            out[f"{rule}.lead_days.{kind}"] = lead.get(kind, {}).get("median_days")
    for rule in ("model", "health"):
        out[f"{rule}.top10_share"] = s["top10"][rule]["share"]
    for r, v in s.get("alerts", {}).items():
        if isinstance(v, dict):
            out[f"alerts.{r}.precision"] = v["precision"]
            out[f"alerts.{r}.accounts"] = v["accounts"]
    for rule in ("model", "fixed"):
        out[f"opportunities.{rule}.precision"] = s["opportunities"][rule]["precision"]
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


def save_latest(document: dict, output_dir: Path) -> Path:
    """Write the document to <output_dir>/reports/backtest.json atomically (a temporary file
    in the same folder, then renamed over the old one): a reader never sees half a file."""
    path = Path(output_dir) / REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".backtest-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_latest(output_dir: Path) -> dict | None:
    """The latest saved backtest, or None (never run, or unreadable)."""
    path = Path(output_dir) / REPORT
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("kind") == "radar-backtest" else None
