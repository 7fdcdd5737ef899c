"""`radar monitor`: past scores against the outcomes now known, input drift and the retrain signal.

Calibration. The scores are the ones the team acted on: the CRM score history in the
workspace (written by `radar score --to workspace` or the weekly run), one row per
(account, as-of date). The outcomes are the snapshots' labels (`churned`, `expanded`),
which are known once their 90-day window (and the grace period) ended before the data
end. For every scored date with known outcomes, per target (churn: `churn_risk` against
`churned`; expansion: `upsell_likelihood` against `expanded`): the predicted and the
realised rate, by decile of the prediction (a reliability plot), the expected calibration
error (ECE, 10 equal-frequency bins), ROC-AUC and PR-AUC with the number of positives
(`training.evaluate.metrics`, as in the training report); and the call-list figures of
the backtest (`serving.workflow.backtest.date_counts`): churners caught by red + yellow
(recall) and the churned MRR in each CSM's top 10. Scored dates still waiting for their
outcomes are listed with the date they become known.

Drift. The model inputs of the latest snapshots (`monitor.drift_dates`) against the
champion churn model's training window (its `trained_on` dates, recorded with the model):
the population stability index per input (`serving.workflow.drift`), the top movers named
in words with the feature registry's descriptions and the model's recorded training medians.

Retraining is recommended when a configured threshold is crossed, each named in the
report: the ECE of the last `check_dates` scored dates with known outcomes above
`max_calibration_error`; their ROC-AUC more than `max_auc_drop` below the scoring model's
test ROC-AUC (its training report, the registry's version tags); an input among each
champion's `important_features` with a PSI of at least `psi_retrain`. Calibration and AUC
are judged only with at least `min_positives` positives.

`build_report` computes (pure given its inputs), `run_monitor` reads the workspace and the
registry, `log_monitor` writes an MLflow run (experiment `radar-monitor`), `save_latest`
the JSON and the reliability PNG the leadership page reads; `refresh_monitoring` does all
of it (the weekly run calls it).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from radar.settings import MonitorSettings, Settings
from serving.workflow.backtest import date_counts, figures, parse_ranges, sample_status
from serving.workflow.drift import feature_drift, mover_sentence

EXPERIMENT = "radar-monitor"
REPORT = Path("reports") / "monitor.json"  # under settings.output_dir, beside backtest.json
PLOT = Path("reports") / "monitor_reliability.png"
CRM_TABLES = ("crm_score_history", "crm_scores")  # the CRM's score history, then the older per-as_of table
SCORE_COLUMNS = (  # what monitoring reads of a stored score
    "account_id",
    "as_of",
    "csm_owner",
    "churn_risk",
    "risk_tier",
    "expected_mrr_loss",
    "next_renewal",
    "upsell_likelihood",
    "opportunity",
    "health_score",
    "renewal_model",
    "renewal_model_version",
    "upsell_model",
    "upsell_model_version",
)
BINS = 10  # deciles of the prediction, as the training report's ECE
# (key, label column, score column in the CRM table, served target, words)
TARGETS = (
    ("churn", "churned", "churn_risk", "renewal", "churn within 90 days"),
    ("expansion", "expanded", "upsell_likelihood", "upsell", "expansion within 90 days"),
)


class MonitorError(ValueError):
    """Nothing to monitor (no workspace, no snapshots), with what to do."""


# --- pure: calibration of one set of rows ---


def reliability(y, p, bins: int = BINS) -> list[dict]:
    """Predicted vs realised rate per equal-frequency bin of the prediction (lowest first)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    order = np.argsort(p, kind="mergesort")
    out = []
    for i, rows in enumerate(np.array_split(order, min(bins, len(order)) or 1)):
        if len(rows) == 0:
            continue
        out.append(
            {
                "bin": i + 1,
                "accounts": int(len(rows)),
                "predicted": float(p[rows].mean()),
                "realised": float(y[rows].mean()),
            }
        )
    return out


def _finite(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def target_figures(y, p) -> dict:
    """Accounts, positives, predicted and realised rate, ECE, ROC-AUC, PR-AUC, Brier score
    and the reliability bins of labels `y` and probabilities `p` (rows with both)."""
    from training.evaluate import metrics

    y = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(float)
    p = pd.to_numeric(pd.Series(p), errors="coerce").to_numpy(float)
    keep = ~np.isnan(y) & ~np.isnan(p)
    y, p = y[keep], p[keep]
    if len(y) == 0:
        return {"accounts": 0, "positives": 0}
    m = metrics(y, p)
    return {
        "accounts": int(len(y)),
        "positives": int(y.sum()),
        "predicted_rate": float(p.mean()),
        "realised_rate": float(y.mean()),
        "ece": _finite(m["ece"]),
        "roc_auc": _finite(m["roc_auc"]),
        "pr_auc": _finite(m["pr_auc"]),
        "brier": _finite(m["brier"]),
        "bins": reliability(y, p),
    }


def call_list_figures(frame: pd.DataFrame) -> dict:
    """The backtest's call-list figures of one date's labelled rows: churners, those
    flagged red or yellow (recall), flagged accounts and precision, the churned MRR and
    the share of it in each CSM's top 10 (the health score's top 10 beside it)."""
    f = figures(date_counts(frame))
    flagged = f["model"]["flagged"]
    return {
        "churners": f["churners"],
        "caught": flagged["churned"],
        "recall": flagged["recall"],
        "flagged": flagged["accounts"],
        "precision": flagged["precision"],
        "churned_mrr": f["churned_mrr"],
        "top10_mrr": f["top10"]["model"]["captured_mrr"],
        "top10_share": f["top10"]["model"]["share"],
        "health_top10_share": f["top10"]["health"]["share"],
    }


def date_figures(frame: pd.DataFrame) -> dict:
    """Calibration per target and the call-list figures of one scored date (rows with
    known outcomes: the CRM row joined with the snapshot's labels, mrr and owner)."""
    out: dict = {"accounts": int(len(frame))}
    for key, label, score, _, _ in TARGETS:
        out[key] = target_figures(frame[label], frame[score]) if label in frame else {"accounts": 0, "positives": 0}
    churn_known = frame[frame["churned"].notna()]
    out["call_list"] = call_list_figures(churn_known) if len(churn_known) else None
    return out


# --- pure: the retrain checks ---


@dataclass(frozen=True)
class Check:
    """One retrain threshold: what it measured, against what, and whether it fired."""

    name: str  # calibration, auc_drop, drift
    subject: str  # the target (churn, expansion) or the feature
    value: float | None
    threshold: float
    fired: bool
    judged: bool  # False: too few positives or no reference figure; `text` says why
    text: str

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "subject": self.subject,
            "value": self.value,
            "threshold": self.threshold,
            "fired": self.fired,
            "judged": self.judged,
            "text": self.text,
        }


def performance_checks(pooled: Mapping[str, dict], reference: Mapping[str, dict], cfg: MonitorSettings) -> list[Check]:
    """Calibration error and ROC-AUC drop per target of the pooled recent dates.
    `pooled`: target key -> `target_figures`; `reference`: target key -> the scoring
    model's test figures ({"roc_auc": ..., "model": "radar-renewal v3"}; may be empty)."""
    out = []
    for key, *_ in TARGETS:
        f = pooled.get(key) or {}
        positives = int(f.get("positives", 0))
        enough = positives >= cfg.min_positives
        short = f"only {positives} {'churners' if key == 'churn' else 'expansions'} in the checked dates (fewer than monitor.min_positives = {cfg.min_positives})"
        ece = f.get("ece")
        if enough and ece is not None:
            fired = ece > cfg.max_calibration_error
            text = (
                f"{key}: calibration error {ece:.3f} "
                f"{'above' if fired else 'within'} monitor.max_calibration_error {cfg.max_calibration_error:g} "
                f"(predicted {100 * f['predicted_rate']:.1f}%, realised {100 * f['realised_rate']:.1f}%)"
            )
            out.append(Check("calibration", key, ece, cfg.max_calibration_error, fired, True, text))
        else:
            out.append(
                Check(
                    "calibration",
                    key,
                    ece,
                    cfg.max_calibration_error,
                    False,
                    False,
                    f"{key}: calibration not judged: {short if not enough else 'no scored date with known outcomes'}",
                )
            )
        auc, ref = f.get("roc_auc"), (reference.get(key) or {})
        base = ref.get("roc_auc")
        if enough and auc is not None and base is not None:
            drop = float(base) - auc
            fired = drop > cfg.max_auc_drop
            text = (
                f"{key}: ROC-AUC {auc:.3f} vs {float(base):.3f} in the training report of {ref.get('model', 'the model')} "
                f"({'dropped' if drop > 0 else 'changed'} {abs(drop):.3f}; monitor.max_auc_drop {cfg.max_auc_drop:g})"
            )
            out.append(Check("auc_drop", key, drop, cfg.max_auc_drop, fired, True, text))
        else:
            why = short if not enough else ("no training report figure" if base is None else "AUC undefined")
            out.append(
                Check("auc_drop", key, None, cfg.max_auc_drop, False, False, f"{key}: AUC drop not judged: {why}")
            )
    return out


def drift_checks(drift: pd.DataFrame, important: Mapping[str, int], cfg: MonitorSettings, registry=None) -> list[Check]:
    """A check per important input (rank <= cfg.important_features in a champion) whose PSI
    reaches `psi_retrain`; one passing check naming the largest otherwise."""
    watched = drift[drift["feature"].isin([f for f, r in important.items() if r <= cfg.important_features])]
    watched = watched[watched["psi"].notna()]
    fired = watched[watched["psi"] >= cfg.psi_retrain]
    if len(fired):
        return [
            Check(
                "drift",
                str(r["feature"]),
                float(r["psi"]),
                cfg.psi_retrain,
                True,
                True,
                f"{mover_sentence(r, registry)}; an input ranked {important[r['feature']]} by importance, "
                f"at or above monitor.psi_retrain {cfg.psi_retrain:g}",
            )
            for r in fired.to_dict("records")
        ]
    if watched.empty:
        return [Check("drift", "", None, cfg.psi_retrain, False, False, "drift not judged: no input to compare")]
    top = watched.iloc[0]
    return [
        Check(
            "drift",
            str(top["feature"]),
            float(top["psi"]),
            cfg.psi_retrain,
            False,
            True,
            f"the {len(watched)} inputs among each champion's {cfg.important_features} most important moved at "
            f"most PSI {top['psi']:.2f} "
            f"(below monitor.psi_retrain {cfg.psi_retrain:g})",
        )
    ]


# --- the report ---


@dataclass
class MonitorReport:
    """What `radar monitor` found; `document()` is the saved JSON."""

    latest_snapshot: date
    dates: list[dict]  # per scored date with known outcomes: as_of, sample, models, churn, expansion, call_list
    awaiting: list[dict]  # scored dates whose outcomes are not known yet: as_of, accounts, known_after
    pooled: dict  # the checked dates: dates, churn, expansion (target_figures), models
    drift: pd.DataFrame  # feature_drift rows
    drift_window: dict  # train window, recent dates, rows, the reference model
    movers: list[dict]  # top movers: feature, psi, rank, important, sentence
    checks: list[Check]
    models: dict  # the champions: name, version, trained_on, test figures
    settings: dict
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    notes: list[str] = field(default_factory=list)
    reliability_png: bytes | None = None
    mlflow_run: str | None = None

    @property
    def retrain(self) -> bool:
        return any(c.fired for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.text for c in self.checks if c.fired]

    @property
    def run_name(self) -> str:
        r = self.models.get("renewal", {})
        return f"monitor {self.latest_snapshot} renewal v{r.get('version', '?')}"

    def metrics(self) -> dict[str, float]:
        """The few figures worth an MLflow metric (the rest is in the artifacts)."""
        out: dict[str, float | None] = {"retrain": 1.0 if self.retrain else 0.0}
        out["scored_dates_known"] = len(self.dates)
        out["scored_dates_awaiting"] = len(self.awaiting)
        for key, *_ in TARGETS:
            f = self.pooled.get(key) or {}
            for m in ("ece", "roc_auc", "pr_auc", "positives", "predicted_rate", "realised_rate"):
                out[f"{key}.{m}"] = f.get(m)
        psi = self.drift["psi"].dropna() if len(self.drift) else pd.Series(dtype=float)
        out["drift.max_psi"] = float(psi.max()) if len(psi) else None
        out["drift.inputs_over_threshold"] = int((psi >= self.settings["psi_retrain"]).sum())
        important = self.drift[self.drift["rank"].notna() & (self.drift["rank"] <= self.settings["important_features"])]
        out["drift.max_psi_important"] = float(important["psi"].max()) if important["psi"].notna().any() else None
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}

    def document(self) -> dict:
        return {
            "kind": "radar-monitor",
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "latest_snapshot": str(self.latest_snapshot),
            "models": self.models,
            "settings": self.settings,
            "dates": self.dates,
            "awaiting": self.awaiting,
            "pooled": self.pooled,
            "drift": {
                **self.drift_window,
                "top_movers": self.movers,
                "features": _records(self.drift),
            },
            "retrain": {
                "recommended": self.retrain,
                "reasons": self.reasons,
                "checks": [c.as_dict() for c in self.checks],
            },
            "notes": self.notes,
            "plot": str(PLOT),
            "mlflow_run": self.mlflow_run,
        }


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for r in frame.to_dict("records"):
        out.append(
            {
                k: (None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v)
                for k, v in r.items()
            }
        )
    for r in out:
        if r.get("rank") is not None:
            r["rank"] = int(r["rank"])
    return out


def importance_ranks(models) -> dict[str, int]:
    """Per input, its best rank by LightGBM gain over the champion models (1 = most important;
    inputs with no gain are not ranked)."""
    ranks: dict[str, int] = {}
    for target in ("renewal", "upsell"):
        served = getattr(models, target, None)
        if served is None:
            continue
        gain = served.model.importance("gain")
        gain = gain[gain > 0]
        for i, f in enumerate(gain.index, start=1):
            ranks[str(f)] = min(ranks.get(str(f), i), i)
    return ranks


def build_report(
    scored: pd.DataFrame,
    train_rows: pd.DataFrame,
    recent_rows: pd.DataFrame,
    models,
    settings: Settings,
    *,
    latest_snapshot: date,
    train_window: tuple[date, date] | None,
    references: Mapping[tuple[str, str], dict] | None = None,
    ranges: Mapping[tuple[str, str], dict] | None = None,
    registry=None,
    now: datetime | None = None,
) -> MonitorReport:
    """The report from frames. `scored`: CRM rows joined with the snapshot labels (churned,
    expanded: NaN when unknown), mrr and csm_owner; `train_rows` / `recent_rows`: snapshot
    rows of the training window and of the latest dates; `references` / `ranges`: per
    (model name, version) its training report's test figures and its split ranges."""
    cfg = settings.monitor
    horizon, grace = settings.domain.horizon_days, settings.domain.grace_days
    references = references or {}
    ranges = ranges or {}
    notes: list[str] = []
    dates, awaiting = [], []
    scored = scored.copy()
    if len(scored):
        scored["as_of"] = pd.to_datetime(scored["as_of"]).dt.date
    for day, rows in scored.groupby("as_of", sort=True) if len(scored) else []:
        known = rows[rows["churned"].notna() | rows["expanded"].notna()]
        version = _mode(rows.get("renewal_model_version"))
        name = _mode(rows.get("renewal_model"))
        upsell = f"{_mode(rows.get('upsell_model'))} v{_mode(rows.get('upsell_model_version'))}"
        if known.empty:
            awaiting.append(
                {
                    "as_of": str(day),
                    "accounts": int(len(rows)),
                    "known_after": str(day + timedelta(days=horizon + grace)),
                }
            )
            continue
        parsed = parse_ranges({f"split.{k}": v for k, v in (ranges.get((name, version)) or {}).items()})
        dates.append(
            {
                "as_of": str(day),
                "scored": int(len(rows)),
                "models": {"renewal": f"{name} v{version}", "upsell": upsell},
                "sample": sample_status(day, parsed, horizon),
                **date_figures(known.reset_index(drop=True)),
            }
        )
    checked = [d["as_of"] for d in dates[-cfg.check_dates :]]
    pooled: dict = {"dates": checked}
    reference: dict[str, dict] = {}
    if checked:
        rows = scored[scored["as_of"].astype(str).isin(checked)]
        for key, label, score, target, _ in TARGETS:
            pooled[key] = target_figures(rows[label], rows[score])
            name_col, version_col = (
                ("renewal_model", "renewal_model_version")
                if target == "renewal"
                else ("upsell_model", "upsell_model_version")
            )
            latest = rows[rows["as_of"].astype(str) == checked[-1]]
            ident = (_mode(latest.get(name_col)), _mode(latest.get(version_col)))
            versions = rows[[name_col, version_col]].drop_duplicates() if name_col in rows else pd.DataFrame()
            if len(versions) > 1:
                notes.append(
                    f"the checked dates were scored by {len(versions)} versions of {ident[0]}; "
                    f"the AUC is compared with the latest ({ident[0]} v{ident[1]})"
                )
            ref = dict(references.get(ident) or {})
            if ref:
                ref["model"] = f"{ident[0]} v{ident[1]}"
            reference[key] = ref
            pooled[f"{key}_reference"] = ref
    else:
        notes.append(
            "no scored date has known outcomes yet: store the weekly scores (`radar score --to workspace`, or "
            f"the weekly run); a date's outcomes are known {horizon + grace} days after it"
        )
    checks = performance_checks(pooled, reference, cfg) if checked else []

    ranks = importance_ranks(models) if models is not None else {}
    features, categories, medians = _inputs(models)
    if train_window is not None and len(train_rows) and len(recent_rows):
        drift = feature_drift(
            train_rows,
            recent_rows,
            features,
            categories=categories,
            bins=cfg.psi_bins,
            train_medians=medians,
            importance_rank=ranks,
        )
        checks += drift_checks(drift, ranks, cfg, registry)
    else:
        drift = feature_drift(pd.DataFrame(), pd.DataFrame(), [])
        notes.append(
            "drift not computed: "
            + (
                "the champion churn model records no training dates"
                if train_window is None
                else "no snapshot rows in its training window or at the latest dates"
            )
        )
    movers = [
        {
            "feature": r["feature"],
            "psi": r["psi"],
            "rank": None if pd.isna(r["rank"]) else int(r["rank"]),
            "important": (not pd.isna(r["rank"])) and int(r["rank"]) <= cfg.important_features,
            "sentence": mover_sentence(r, registry),
        }
        for r in drift.head(cfg.top_movers).to_dict("records")
        if r["psi"] is not None and not pd.isna(r["psi"])
    ]
    recent_dates = sorted({str(pd.Timestamp(d).date()) for d in recent_rows["as_of"]}) if len(recent_rows) else []
    window = {
        "train_window": None if train_window is None else f"{train_window[0]}..{train_window[1]}",
        "train_rows": int(len(train_rows)),
        "recent_dates": recent_dates,
        "recent_rows": int(len(recent_rows)),
        "reference_model": (f"{models.renewal.name} v{models.renewal.version}" if models is not None else None),
    }
    return MonitorReport(
        latest_snapshot=latest_snapshot,
        dates=dates,
        awaiting=awaiting,
        pooled=pooled,
        drift=drift,
        drift_window=window,
        movers=movers,
        checks=checks,
        models=_model_info(models, references),
        settings=cfg.model_dump() | {"horizon_days": horizon, "grace_days": grace},
        created_at=now or datetime.now(UTC),
        notes=notes,
    )


def _mode(values) -> str | None:
    if values is None:
        return None
    s = pd.Series(values).dropna().astype(str)
    return None if s.empty else str(s.mode().iloc[0])


def _inputs(models) -> tuple[list[str], dict[str, list[str]], dict[str, float]]:
    """The champions' inputs (churn model first), categorical levels and training medians."""
    if models is None:
        return [], {}, {}
    features: list[str] = []
    categories: dict[str, list[str]] = {}
    medians: dict[str, float] = {}
    for target in ("renewal", "upsell"):
        served = getattr(models, target, None)
        if served is None:
            continue
        m = served.model
        features += [f for f in m.features if f not in features]
        for f, levels in m.categories.items():
            categories.setdefault(f, list(levels))
        for f, v in (m.reference or {}).items():
            medians.setdefault(f, float(v))
    return features, categories, medians


def _model_info(models, references: Mapping[tuple[str, str], dict]) -> dict:
    if models is None:
        return {}
    out = {}
    for target in ("renewal", "upsell"):
        served = getattr(models, target, None)
        if served is None:
            continue
        meta = served.model.metadata or {}
        out[target] = {
            "name": served.name,
            "version": str(served.version),
            "trained_on": meta.get("trained_on", ""),
            "calibrated_on": meta.get("calibrated_on", ""),
            "test": dict(references.get((served.name, str(served.version))) or {}),
        }
    return out


# --- the reliability plot ---


def reliability_png(report: MonitorReport, dpi: int = 110) -> bytes | None:
    """Predicted vs realised rate by decile of the prediction, one panel per target: each
    scored date with known outcomes a thin line, the checked dates pooled in bold."""
    if not report.dates:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    from serving.render.charts import LINE, scale_top

    fig = Figure(figsize=(9, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(TARGETS))
    for ax, (key, _, _, _, words) in zip(axes, TARGETS, strict=True):
        values = []
        for i, d in enumerate(report.dates):
            bins = d[key].get("bins") or []
            if bins:
                x, y = [b["predicted"] for b in bins], [b["realised"] for b in bins]
                values += x + y
                label = "each scored date" if i == 0 else None
                ax.plot(x, y, color="#9aa7b8", linewidth=0.8, marker=".", markersize=3, label=label)
        pooled = (report.pooled.get(key) or {}).get("bins") or []
        if pooled:
            x, y = [b["predicted"] for b in pooled], [b["realised"] for b in pooled]
            values += x + y
            ax.plot(x, y, color=LINE, linewidth=2, marker="o", markersize=4, label="checked dates pooled")
        top = scale_top(values, 0.05)
        ax.plot([0, top], [0, top], color="#777777", linestyle="--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(f"P({words}), by decile", fontsize=10)
        ax.set_xlabel("predicted")
        ax.set_ylabel("realised")
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    span = f"{report.dates[0]['as_of']} to {report.dates[-1]['as_of']}"
    fig.suptitle(f"Reliability of the stored scores, {len(report.dates)} scored dates {span}", fontsize=10)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# --- I/O: the workspace and the registry ---


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_scored(con) -> pd.DataFrame:
    """The stored scores joined with their snapshot's labels, mrr, owner and billing period
    (labels NaN when unknown or when the snapshot is gone). The scores come from the CRM
    history table (`crm_score_history`) and, for keys it lacks, the older per-as_of table
    (`crm_scores`); empty without either."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    parts = []
    for table in CRM_TABLES:
        if table not in tables:
            continue
        have = _columns(con, table)
        picked = ", ".join(_quote(c) for c in SCORE_COLUMNS if c in have)
        part = con.execute(f"SELECT {picked} FROM {table}").df()
        part["as_of"] = pd.to_datetime(part["as_of"]).dt.date
        part["account_id"] = part["account_id"].astype(str)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["as_of", "account_id", "churned", "expanded"])
    scores = pd.concat(parts, ignore_index=True).drop_duplicates(["account_id", "as_of"], keep="first")
    if scores.empty:
        return scores.assign(churned=np.nan, expanded=np.nan)
    snap = set(_columns(con, "snapshots"))
    extra = [c for c in ("churned", "expanded", "mrr", "csm_owner", "billing_period") if c in snap]
    dates = sorted(set(scores["as_of"]))
    labels = con.execute(
        f"SELECT account_id, CAST(as_of AS DATE) AS as_of{''.join(', ' + _quote(c) for c in extra)} FROM snapshots "
        f"WHERE CAST(as_of AS DATE) IN ({', '.join('?' * len(dates))})",
        dates,
    ).df()
    labels["as_of"] = pd.to_datetime(labels["as_of"]).dt.date
    labels["account_id"] = labels["account_id"].astype(str)
    labels = labels.drop(
        columns=[c for c in labels.columns if c in scores.columns and c not in ("account_id", "as_of")]
    )
    frame = scores.merge(labels, on=["account_id", "as_of"], how="left")
    for c in ("churned", "expanded"):
        if c not in frame:
            frame[c] = np.nan
    if "mrr" not in frame:
        frame["mrr"] = 0.0
    if "csm_owner" not in frame:
        frame["csm_owner"] = None
    renewal = pd.to_datetime(frame["next_renewal"]) if "next_renewal" in frame else pd.Series(pd.NaT, index=frame.index)
    frame["days_to_next_renewal"] = (renewal - pd.to_datetime(frame["as_of"])).dt.days
    return frame.sort_values(["as_of", "account_id"], kind="stable", ignore_index=True)


def _snapshot_rows(con, columns: Sequence[str], where: str, params: list) -> pd.DataFrame:
    have = set(_columns(con, "snapshots"))
    picked = ["as_of", *[c for c in columns if c in have and c != "as_of"]]
    return con.execute(f"SELECT {', '.join(map(_quote, picked))} FROM snapshots WHERE {where}", params).df()


def training_window(models, ranges_of: Callable[[str, str], dict[str, str]] | None = None) -> tuple[date, date] | None:
    """The champion churn model's training dates: its recorded `trained_on`, else the
    `split.train` of its MLflow run."""
    if models is None:
        return None
    served = models.renewal
    found = parse_ranges({"split.train": (served.model.metadata or {}).get("trained_on", "")})
    if "train" not in found and ranges_of is not None:
        found = parse_ranges({f"split.{k}": v for k, v in ranges_of(served.name, str(served.version)).items()})
    return found.get("train")


def training_figures(settings: Settings, name: str, version: str) -> dict:
    """A registered version's test figures from its training report (version tags
    `test.model.*`, else its run's metrics): roc_auc, pr_auc, ece; empty when unknown."""
    from mlflow.exceptions import MlflowException

    from training.track import configure

    client = configure(settings.training)
    out: dict[str, float] = {}
    try:
        mv = client.get_model_version(name, version)
        source = dict(mv.tags or {})
        if not any(k.startswith("test.model.") for k in source) and mv.run_id:
            source = {k: str(v) for k, v in client.get_run(mv.run_id).data.metrics.items()}
    except MlflowException:
        return {}
    for m in ("roc_auc", "pr_auc", "ece"):
        try:
            out[m] = float(source[f"test.model.{m}"])
        except (KeyError, ValueError):
            continue
    return out


def run_monitor(
    settings: Settings,
    models,
    *,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
    references_of: Callable[[str, str], dict] | None = None,
    ranges_of: Callable[[str, str], dict[str, str]] | None = None,
) -> MonitorReport:
    """Read the workspace (CRM rows, labels, snapshots of the training window and of the
    latest dates) and the registry (test figures and splits of the scoring versions), then
    `build_report`."""
    from features.snapshot import feature_registry
    from serving.scoring.batch import WorkspaceUnavailable, reading_workspace
    from serving.workflow.backtest import model_ranges

    references_of = references_of or (lambda n, v: training_figures(settings, n, v))
    ranges_of = ranges_of or (lambda n, v: model_ranges(settings, n, v))
    say = progress or (lambda text: None)
    cfg = settings.monitor
    window = training_window(models, ranges_of)
    features, _, _ = _inputs(models)
    try:
        with reading_workspace(settings) as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
            if "snapshots" not in tables:
                raise MonitorError("the workspace has no snapshots table: run `radar build-features` first")
            say("reading the stored scores and the outcomes now known")
            scored = read_scored(con)
            calendar = [
                pd.Timestamp(r[0]).date()
                for r in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM snapshots ORDER BY 1").fetchall()
            ]
            if not calendar:
                raise MonitorError("the snapshots table is empty: run `radar build-features`")
            recent = calendar[-cfg.drift_dates :]
            say(f"reading the snapshots of the training window and of {recent[-1]}")
            if window is not None:
                train_rows = _snapshot_rows(
                    con, features, "CAST(as_of AS DATE) BETWEEN ? AND ?", [window[0], window[1]]
                )
            else:
                train_rows = pd.DataFrame()
            recent_rows = _snapshot_rows(
                con, features, f"CAST(as_of AS DATE) IN ({', '.join('?' * len(recent))})", list(recent)
            )
    except WorkspaceUnavailable as exc:
        raise MonitorError(str(exc)) from exc
    say("comparing with the training reports")
    idents: set[tuple[str, str]] = set()
    for name_col, version_col in (("renewal_model", "renewal_model_version"), ("upsell_model", "upsell_model_version")):
        if name_col in scored and len(scored):
            idents |= {
                (str(n), str(v)) for n, v in scored[[name_col, version_col]].drop_duplicates().itertuples(index=False)
            }
    if models is not None:
        idents |= {(models.renewal.name, str(models.renewal.version)), (models.upsell.name, str(models.upsell.version))}
    references = {i: references_of(*i) for i in sorted(idents)}
    ranges = {i: ranges_of(*i) for i in sorted(idents)}
    report = build_report(
        scored,
        train_rows,
        recent_rows,
        models,
        settings,
        latest_snapshot=calendar[-1],
        train_window=window,
        references=references,
        ranges=ranges,
        registry=feature_registry(settings),
        now=now,
    )
    report.reliability_png = reliability_png(report)
    return report


# --- I/O: MLflow and the saved report ---


def log_monitor(report: MonitorReport, settings: Settings) -> str:
    """One MLflow run in the `radar-monitor` experiment: the thresholds as parameters, the
    headline figures as metrics, and the report (JSON), the per-date calibration and the
    per-input drift tables and the reliability plot as artifacts. Returns the run id."""
    import time

    from mlflow.entities import Metric, Param

    from training.track import configure, ensure_experiment, metric_key

    client = configure(settings.training)
    experiment = ensure_experiment(client, EXPERIMENT, settings.training)
    renewal = report.models.get("renewal", {})
    run = client.create_run(
        experiment,
        run_name=report.run_name,
        tags={
            "radar.kind": "monitor",
            "radar.retrain": "recommended" if report.retrain else "not needed",
            "radar.renewal_model": f"{renewal.get('name')}/{renewal.get('version')}",
        },
    )
    run_id = run.info.run_id
    params = {
        "latest_snapshot": str(report.latest_snapshot),
        "scored_dates": ",".join(d["as_of"] for d in report.dates),
        "checked_dates": ",".join(report.pooled.get("dates", [])),
        "train_window": report.drift_window.get("train_window") or "",
        **{f"monitor.{k}": v for k, v in report.settings.items()},
    }
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(metric_key(k), v, now, 0) for k, v in report.metrics().items()],
        params=[Param(metric_key(k), str(v)[:6000]) for k, v in params.items()],
    )
    report.mlflow_run = run_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        calibration_table(report).to_csv(folder / "calibration.csv", index=False)
        report.drift.to_csv(folder / "drift.csv", index=False)
        (folder / "monitor.json").write_text(json.dumps(report.document(), indent=2, default=str))
        if report.reliability_png:
            (folder / PLOT.name).write_bytes(report.reliability_png)
        client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id)
    return run_id


def calibration_table(report: MonitorReport) -> pd.DataFrame:
    """One row per scored date with known outcomes: the figures as flat columns (a CSV artifact)."""
    rows = []
    for d in report.dates:
        row = {"as_of": d["as_of"], "sample": d["sample"], "renewal_model": d["models"]["renewal"]}
        for key, *_ in TARGETS:
            row.update({f"{key}.{k}": v for k, v in d[key].items() if k != "bins"})
        row.update({f"call_list.{k}": v for k, v in (d["call_list"] or {}).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the web pages' process reads it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_latest(report: MonitorReport, output_dir: Path) -> Path:
    """Write <output_dir>/reports/monitor.json and the reliability PNG beside it, each
    atomically (a temporary file in the same folder, then renamed)."""
    output_dir = Path(output_dir)
    if report.reliability_png:
        _atomic_write(output_dir / PLOT, report.reliability_png)
    else:
        (output_dir / PLOT).unlink(missing_ok=True)
    path = output_dir / REPORT
    _atomic_write(path, json.dumps(report.document(), indent=2, default=str).encode("utf-8"))
    return path


def read_latest(output_dir: Path) -> dict | None:
    """The latest saved monitoring report, or None (never run, or unreadable)."""
    try:
        document = json.loads((Path(output_dir) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("kind") == "radar-monitor" else None


def refresh_monitoring(
    settings: Settings,
    models=None,
    *,
    log: bool = True,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> MonitorReport:
    """The whole job (the weekly run's last step): load the champions when not given,
    compute the report, log it to MLflow (unless `log` is False), and save
    reports/monitor.json and the reliability PNG. Raises MonitorError (no workspace or
    snapshots), `NoChampion` and MLflow's errors."""
    if models is None:
        from serving.scoring.champions import load_champions

        models = load_champions(settings)
    report = run_monitor(settings, models, progress=progress, now=now)
    if log:
        if progress:
            progress("logging to MLflow")
        log_monitor(report, settings)
    save_latest(report, settings.output_dir)
    return report
