"""The leadership view: what drives renewal and expansion across the portfolio, how that
moves, which indicators carry little signal, and which customers would vouch for us.

Per indicator family (DOMAIN 3, and the feedback buckets of DOMAIN 4), over the accounts
of a snapshot date, with the champion models' exact TreeSHAP contributions (raw margin):

- an account's family contribution is the SUM of its features' contributions (SHAP
  values add up, so this is the family's whole effect on that account's score);
- every context feature (`FeatureSpec.kind`: contract timing, tenure, past renewals,
  MRR, plan, seats, segment, region), whatever its indicator family, counts in one
  "context" family: a leader cannot act on it, so it is never ranked as a driver;
- importance = the mean over accounts of |family contribution|; share = importance /
  the sum of all families' importances (context included, so its share says how much
  of the signal is context);
- direction = the share of accounts where the family lowers the likelihood (renewal:
  it raises the churn margin; upsell: it lowers the expansion margin).

Top families rank the indicator families of driver features; context is reported
apart with its share ("Context (contract timing, tenure, MRR, plan): 58% of the renewal
signal — not shown as drivers"), and so are the health score and unregistered features. Movement: the same at the latest snapshot of each of the last N calendar
quarters, the current quarter's being as_of. Low signal: an indicator family whose share
is below `leadership.low_signal_share` for both targets (or that no model reads).
Advocates: latest NPS answer >= `promoter_min_nps`, green health band and renewal
churn risk at most `advocate_max_lift` x the typical risk, largest MRR first, with their latest green quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from features.registry import FeatureRegistry
from radar.settings import LeadershipSettings, Settings
from serving.scoring.batch import snapshot_dates
from serving.scoring.explain import likelihood_of
from serving.scoring.score import ScoringModels, score_frame
from serving.workflow.alert_rules import AlertError, Evidence
from serving.workflow.alerts import SNAPSHOTS, workspace
from serving.workflow.quotes import latest_quotes, read_evidence

TARGETS = ("renewal", "upsell")
NPS_FEATURE = "nps_latest"  # latest NPS answer (0-10) of the last 365 days, indicator 11
OTHER = "other"
CONTEXT = "context"
CONTEXT_WORDS = "contract timing, tenure, MRR, plan"
SIGNAL_WORDS = {"renewal": "renewal", "upsell": "expansion"}


class DriversError(AlertError):
    """A leadership report that cannot be built, with what to do."""


def family_key(feature: str, registry: FeatureRegistry) -> str:
    """The feature's family as a string key: "1".."15", "qcf:<bucket>", "health", "other",
    or "context" for every context feature (whatever its indicator family)."""
    if feature not in registry:
        return OTHER
    spec = registry[feature]
    return CONTEXT if spec.kind == "context" else str(spec.family)


def context_sentence(share: float | None, target: str) -> str:
    """How much of a target's signal is context, said apart from the drivers."""
    word = SIGNAL_WORDS.get(target, target)
    shown = "0%" if share is None or pd.isna(share) else f"{share:.0%}"
    return f"Context ({CONTEXT_WORDS}): {shown} of the {word} signal — not shown as drivers"


def family_label(key: str, registry: FeatureRegistry) -> str:
    if key == CONTEXT:
        return f"Context ({CONTEXT_WORDS})"
    for spec in registry:
        if str(spec.family) == key:
            return spec.family_name
    return "Other (not in the feature registry)" if key == OTHER else key


def is_indicator(key: str) -> bool:
    """An indicator of DOMAIN 3 (1-15) or a feedback bucket of DOMAIN 4; not context, health, other."""
    return key.isdigit() or key.startswith("qcf:")


def family_contributions(contributions: np.ndarray, features: Sequence[str], registry: FeatureRegistry) -> pd.DataFrame:
    """Rows x families: per row, the sum of the contributions of each family's features."""
    keys = [family_key(f, registry) for f in features]
    families = list(dict.fromkeys(keys))
    member = np.zeros((len(keys), len(families)))
    member[np.arange(len(keys)), [families.index(k) for k in keys]] = 1.0
    return pd.DataFrame(np.asarray(contributions, dtype=float) @ member, columns=pd.Index(families, name="family"))


def family_importance(
    contributions: np.ndarray, features: Sequence[str], registry: FeatureRegistry, inverted: bool
) -> pd.DataFrame:
    """Per family: features, mean |SHAP| (of the family sum), share of the total, the share
    of rows where it lowers the likelihood (`inverted`: contributions are to P(churn)), and
    its rank among indicator families; largest first."""
    per = family_contributions(contributions, features, registry)
    size = per.abs().mean()
    total = float(size.sum())
    lowers = (per > 0).mean() if inverted else (per < 0).mean()
    counts = pd.Series([family_key(f, registry) for f in features]).value_counts()
    out = pd.DataFrame(
        {
            "family": size.index,
            "mean_abs_shap": size.to_numpy(),
            "share": size.to_numpy() / total if total > 0 else 0.0,
            "lowers_share": lowers.reindex(size.index).to_numpy(),
            "features": counts.reindex(size.index).to_numpy(),
        }
    )
    out["family_name"] = [family_label(k, registry) for k in out["family"]]
    out["indicator"] = [is_indicator(k) for k in out["family"]]
    out = out.sort_values(["mean_abs_shap", "family"], ascending=[False, True], kind="stable", ignore_index=True)
    out["rank"] = out["indicator"].cumsum().where(out["indicator"])
    return out[["family", "family_name", "indicator", "features", "mean_abs_shap", "share", "lowers_share", "rank"]]


def low_signal(importance: pd.DataFrame, families: dict[str, str], threshold: float) -> pd.DataFrame:
    """Indicator families whose share is below `threshold` for every target scored
    (`importance`: target, family, share at one date); `families` (key -> name) are all the
    registry's families, so one no model reads has share 0. Lowest first."""
    keys = [k for k in families if is_indicator(k)]
    shares = importance.pivot_table(index="family", columns="target", values="share", aggfunc="sum")
    shares = shares.reindex(index=keys, columns=sorted(set(importance["target"])) or list(TARGETS)).fillna(0.0)
    low = shares[(shares < threshold).all(axis=1)]
    out = low.rename(columns=lambda t: f"{t}_share").reset_index(names="family")
    out.insert(1, "family_name", [families[k] for k in out["family"]])
    out["read_by_models"] = out["family"].isin(set(importance["family"]))
    out["max_share"] = low.max(axis=1).to_numpy()
    return out.sort_values(["max_share", "family"], kind="stable", ignore_index=True)


def quarter_dates(dates: Sequence[date], as_of: date, quarters: int) -> list[date]:
    """The latest snapshot date on or before as_of in each of the last `quarters` calendar
    quarters ending with as_of's quarter (quarters without a snapshot are skipped), oldest first."""

    def quarter(d: date) -> int:
        return d.year * 4 + (d.month - 1) // 3

    last = quarter(as_of)
    found: dict[int, date] = {}
    for d in dates:
        q = quarter(d)
        if d <= as_of and last - quarters < q <= last and (q not in found or d > found[q]):
            found[q] = d
    return [found[q] for q in sorted(found)]


def advocates(scored: pd.DataFrame, cfg: LeadershipSettings) -> pd.DataFrame:
    """Promoters (latest NPS >= promoter_min_nps) with a green health band and renewal
    churn risk at most advocate_max_lift x typical, largest MRR first. `scored` has
    nps_latest, health_band, churn_lift and mrr."""
    nps = pd.to_numeric(scored[NPS_FEATURE], errors="coerce")
    keep = (
        (nps >= cfg.promoter_min_nps)
        & (scored["health_band"] == "green")
        & (pd.to_numeric(scored["churn_lift"], errors="coerce") <= cfg.advocate_max_lift)
    )
    out = scored[keep.fillna(False).to_numpy(dtype=bool)]
    out = out.assign(_mrr=pd.to_numeric(out["mrr"], errors="coerce").fillna(0.0))
    return out.sort_values(["_mrr", "account_id"], ascending=[False, True], kind="stable", ignore_index=True).drop(
        columns="_mrr"
    )


@dataclass(frozen=True)
class DriversReport:
    as_of: date
    dates: tuple[date, ...]  # quarter snapshot dates, oldest first, the last = as_of
    accounts: int  # accounts scored at as_of
    importance: pd.DataFrame  # target, as_of, family_importance columns, at every date
    low_signal: pd.DataFrame  # at as_of
    advocates: pd.DataFrame  # account_id, name, csm_owner, segment, mrr, nps_latest, health_score, churn_risk, ...
    quotes: dict[str, list[Evidence]] = field(default_factory=dict)  # per advocate, latest green quotes
    advocates_found: int = 0  # before the leadership.max_advocates cut
    lineage: dict[str, str] = field(default_factory=dict)
    top_n: int = 5
    threshold: float = 0.01

    def top(self, target: str, when: date | None = None) -> pd.DataFrame:
        """The top indicator families of `target` at `when` (default as_of): drivers only."""
        imp = self.importance
        rows = imp[(imp["target"] == target) & (imp["as_of"] == (when or self.as_of))]
        return rows[rows["indicator"]].head(self.top_n).reset_index(drop=True)

    def context_share(self, target: str, when: date | None = None) -> float:
        """The share of `target`'s signal (mean |SHAP|) that is context, at `when` (default as_of)."""
        imp = self.importance
        rows = imp[(imp["target"] == target) & (imp["as_of"] == (when or self.as_of)) & (imp["family"] == CONTEXT)]
        return float(rows["share"].sum())

    def context_line(self, target: str) -> str:
        """The context sentence of `target` at as_of (`context_sentence`)."""
        return context_sentence(self.context_share(target), target)

    def apart(self, target: str) -> pd.DataFrame:
        """Families that are neither drivers ranked nor context (the health score, features
        outside the registry) at as_of, reported apart with their share."""
        imp = self.importance
        rows = imp[(imp["target"] == target) & (imp["as_of"] == self.as_of)]
        return rows[~rows["indicator"] & (rows["family"] != CONTEXT)].reset_index(drop=True)

    def movement(self, target: str) -> pd.DataFrame:
        """The top families of `target` now: share and rank at each quarter date (wide),
        and the change in share from the first date to now."""
        top = self.top(target)
        rows = self.importance[(self.importance["target"] == target) & self.importance["family"].isin(top["family"])]
        share = rows.pivot_table(index="family", columns="as_of", values="share").reindex(top["family"])
        rank = rows.pivot_table(index="family", columns="as_of", values="rank").reindex(top["family"])
        out = pd.DataFrame({"family": top["family"], "family_name": top["family_name"]})
        for d in self.dates:
            out[f"share {d}"] = share[d].to_numpy() if d in share.columns else np.nan
            out[f"rank {d}"] = rank[d].to_numpy() if d in rank.columns else np.nan
        first = self.dates[0]
        out["change"] = out[f"share {self.as_of}"] - out[f"share {first}"]
        return out


def _dates(settings: Settings, include_partial: bool = False, keep: date | None = None) -> list[date]:
    with workspace(settings, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if SNAPSHOTS not in tables:
            raise DriversError(f"the workspace has no {SNAPSHOTS} table: run `radar build-features` first")
        return snapshot_dates(con, include_partial=include_partial, keep=keep)


def _snapshots(settings: Settings, dates: list[date]) -> pd.DataFrame:
    with workspace(settings, read_only=True) as con:
        frame = con.execute(
            f"SELECT * FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) IN ({', '.join('?' * len(dates))}) "
            "ORDER BY as_of, account_id",
            dates,
        ).df()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame


def portfolio_importance(frame: pd.DataFrame, models: ScoringModels, settings: Settings) -> pd.DataFrame:
    """family_importance of both champion models over the snapshot rows of `frame` (one date)."""
    registry = models.registry(settings)
    parts = []
    for target in TARGETS:
        explainer = models.explainer(target)
        model = getattr(models, target).model
        contrib, _ = explainer.contributions(
            explainer.rows(frame),
            threads=settings.serving.explain_threads,
            chunk_rows=settings.serving.explain_chunk_rows,
        )
        parts.append(
            family_importance(contrib, model.features, registry, likelihood_of(model)[1]).assign(target=target)
        )
    return pd.concat(parts, ignore_index=True)


def drivers_report(
    settings: Settings,
    models: ScoringModels,
    as_of: date | None = None,
    quarters: int | None = None,
    *,
    now: datetime | None = None,
    include_partial: bool = False,
) -> DriversReport:
    """The leadership report at `as_of` (the latest snapshot on or before it; default the latest).
    Partial as-of dates (`serving.scoring.batch.snapshot_dates`) are neither the report's
    date nor a quarter compared with, unless `include_partial` or asked for as `as_of`."""
    cfg = settings.leadership
    dates = _dates(settings, include_partial, keep=as_of)
    if not dates:
        raise DriversError(f"the {SNAPSHOTS} table is empty: run `radar build-features`")
    before = [d for d in dates if d <= (as_of or dates[-1])]
    if not before:
        raise DriversError(f"no snapshots on or before {as_of} (the first is {dates[0]})")
    as_of = before[-1]
    chosen = quarter_dates(dates, as_of, quarters or cfg.quarters)
    snaps = _snapshots(settings, chosen)
    importance = pd.concat(
        [
            portfolio_importance(snaps[snaps["as_of"] == d].reset_index(drop=True), models, settings).assign(as_of=d)
            for d in chosen
        ],
        ignore_index=True,
    )
    importance = importance[["target", "as_of", *[c for c in importance.columns if c not in ("target", "as_of")]]]
    registry = models.registry(settings)
    families = {str(s.family): s.family_name for s in registry}
    now_rows = snaps[snaps["as_of"] == as_of].reset_index(drop=True)
    scored = score_frame(now_rows, models, settings, explain=False, scored_at=now or datetime.now(UTC))
    scored[NPS_FEATURE] = now_rows[NPS_FEATURE].to_numpy() if NPS_FEATURE in now_rows else np.nan
    found = advocates(scored, cfg)
    chosen_advocates = found.head(cfg.max_advocates)
    columns = [
        "account_id",
        "name",
        "csm_owner",
        "segment",
        "mrr",
        NPS_FEATURE,
        "health_score",
        "health_band",
        "churn_risk",
        "churn_lift",
        "upsell_likelihood",
    ]
    chosen_advocates = chosen_advocates[columns].reset_index(drop=True)
    quotes: dict[str, list[Evidence]] = {}
    if len(chosen_advocates) and cfg.advocate_quotes:
        start = as_of - timedelta(days=cfg.advocate_quote_days)
        evidence = read_evidence(settings, start, as_of, ("green",), chosen_advocates["account_id"])
        quotes = {
            a: latest_quotes(evidence, a, "green", cfg.advocate_quotes, as_of, cfg.advocate_quote_days)
            for a in chosen_advocates["account_id"]
        }
    return DriversReport(
        as_of=as_of,
        dates=tuple(chosen),
        accounts=len(now_rows),
        importance=importance,
        low_signal=low_signal(importance[importance["as_of"] == as_of], families, cfg.low_signal_share),
        advocates=chosen_advocates,
        quotes=quotes,
        advocates_found=len(found),
        lineage=models.lineage,
        top_n=cfg.top_families,
        threshold=cfg.low_signal_share,
    )
