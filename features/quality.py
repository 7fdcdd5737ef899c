"""The data-quality report of a snapshot build: what a data scientist checks first.

Rows and label rates per as_of, missing share per feature, constant features, and a
leakage alarm for features that separate a label almost perfectly (a feature that
"knows" the future is the most common way a churn model lies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEAKAGE_AUC = 0.97


@dataclass(frozen=True)
class QualityFindings:
    per_as_of: pd.DataFrame
    missing: pd.Series
    constant: list[str]
    leakage: list[tuple[str, str, float]]  # feature, label, AUC


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of a score against a binary label (rank formula, ties averaged)."""
    ranks = pd.Series(x).rank(method="average").to_numpy()
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def assess(
    snapshots: pd.DataFrame,
    features: list[str],
    categorical: set[str],
    labels: tuple[str, ...] = ("churned", "expanded"),
) -> QualityFindings:
    per = snapshots.groupby("as_of").agg(
        rows=("account_id", "size"),
        **{f"{lab}_rate": (lab, "mean") for lab in labels},
        **{f"{lab}_known": (lab, lambda s: s.notna().mean()) for lab in labels},
    )
    missing = snapshots[features].isna().mean().sort_values(ascending=False)
    constant = [f for f in features if snapshots[f].nunique(dropna=True) <= 1]
    leakage = []
    for lab in labels:
        known = snapshots[snapshots[lab].notna()]
        y = known[lab].to_numpy().astype(int)
        for f in features:
            if f in categorical or f in constant:
                continue
            x = known[f].to_numpy(dtype=float)
            ok = ~np.isnan(x)
            if ok.sum() < 20:
                continue
            auc = _auc(x[ok], y[ok])
            if not np.isnan(auc) and max(auc, 1 - auc) >= LEAKAGE_AUC:
                leakage.append((f, lab, max(auc, 1 - auc)))
    return QualityFindings(per, missing, constant, leakage)


def _md_table(df: pd.DataFrame) -> str:
    head = [df.index.name or "", *map(str, df.columns)]
    rows = [
        [str(i), *("" if pd.isna(v) else f"{v:g}" if isinstance(v, float) else str(v) for v in r)]
        for i, r in zip(df.index, df.itertuples(index=False))
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def render_markdown(findings: QualityFindings, title: str = "Snapshot data quality") -> str:
    lines = [f"# {title}", ""]
    lines += ["## Leakage alarm", ""]
    if findings.leakage:
        lines.append(f"Features that separate a label with ROC-AUC ≥ {LEAKAGE_AUC} — check they use no future data:")
        lines += [f"- **{f}** vs `{lab}`: AUC {auc:.3f}" for f, lab, auc in findings.leakage]
    else:
        lines.append(f"No feature separates a label with ROC-AUC ≥ {LEAKAGE_AUC}.")
    lines += ["", "## Rows and label rates per as_of", "", _md_table(findings.per_as_of.round(3)), ""]
    lines += ["## Constant features", ""]
    lines.append(", ".join(findings.constant) if findings.constant else "None.")
    lines += ["", "## Missing share per feature (non-zero only)", ""]
    nz = findings.missing[findings.missing > 0]
    lines.append(_md_table(nz.round(3).to_frame("missing")) if len(nz) else "No missing values.")
    return "\n".join(lines) + "\n"
