"""The leadership report as files: `reports/drivers.md` and the chart of the families'
importance over quarters (`reports/drivers_quarters.png`), from a `serving.workflow.drivers.DriversReport`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from serving.render.charts import family_trend_png
from serving.scoring.decisions import pct, times_typical
from serving.workflow.drivers import DriversReport

PNG = "drivers_quarters.png"
WORDS = {
    "renewal": ("renewal", "accounts where it raises churn risk"),
    "upsell": ("expansion", "accounts where it lowers upsell likelihood"),
}


def _pct(v) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.1%}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _top_md(report: DriversReport, target: str) -> list[str]:
    word, lowers = WORDS[target]
    moved = report.movement(target)
    top = report.top(target)
    heads = [f"{d}" for d in report.dates]
    out = [
        f"## Top {len(top)} drivers of {word}",
        "",
        f"| # | indicator family | share of mean \\|SHAP\\| | {lowers} | "
        + " | ".join(f"share {h}" for h in heads)
        + " | change |",
        "|---|---|---|---|" + "---|" * len(heads) + "---|",
    ]
    for r, (_, m) in zip(top.itertuples(), moved.iterrows(), strict=True):
        shares = [m[f"share {d}"] for d in report.dates]
        change = m["change"]
        out.append(
            f"| {int(r.rank)} | {_cell(r.family_name)} | {_pct(r.share)} | {_pct(r.lowers_share)} | "
            + " | ".join(_pct(s) for s in shares)
            + f" | {'–' if pd.isna(change) else f'{change * 100:+.1f} pts'} |"
        )
    out += ["", report.context_line(target) + "."]
    apart = report.apart(target)
    if len(apart):
        out += [
            "",
            "Not indicators (reported apart): "
            + ", ".join(f"{r.family_name} {_pct(r.share)}" for r in apart.itertuples())
            + ".",
        ]
    return out + [""]


def drivers_markdown(report: DriversReport, chart: str | None = PNG) -> str:
    lin = report.lineage
    out = [
        "# What drives renewal and expansion",
        "",
        f"Portfolio of {report.accounts:,} active accounts at the {report.as_of} snapshot, scored by "
        f"{lin.get('renewal_model', 'radar-renewal')} v{lin.get('renewal_model_version', '?')} and "
        f"{lin.get('upsell_model', 'radar-upsell')} v{lin.get('upsell_model_version', '?')}. "
        "Importance of an indicator family = the mean over accounts of |the sum of its features' SHAP "
        "contributions| (raw margin); share = its part of all families' total. Drivers only: context (contract "
        "timing, tenure, MRR, plan, seats, segment) is not something to act on and is reported apart with its "
        f"share. Movement: the latest snapshot of each quarter ({', '.join(str(d) for d in report.dates)}).",
        "",
    ]
    out += _top_md(report, "renewal") + _top_md(report, "upsell")
    if chart:
        out += [f"![Indicator families' share of mean |SHAP| by quarter]({chart})", ""]
    low = report.low_signal
    out += [f"## Indicators that carry little signal (under {report.threshold:.1%} of the total for both targets)", ""]
    if len(low):
        out += [
            "Candidates to stop tracking, or to measure better:",
            "",
            "| indicator family | renewal share | upsell share | read by the models |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {_cell(r.family_name)} | {_pct(r.renewal_share)} | {_pct(r.upsell_share)} | "
            f"{'yes' if r.read_by_models else 'no'} |"
            for r in low.itertuples()
        ]
    else:
        out.append("None: every indicator family carries at least that share for one target.")
    adv = report.advocates
    out += [
        "",
        "## Advocates: referral and reference candidates",
        "",
        f"Promoters (latest NPS 9–10) with a green health band and a high renewal likelihood: "
        f"{report.advocates_found:,} accounts, the {len(adv):,} largest by MRR listed.",
        "",
    ]
    if len(adv):
        out += [
            "| account | CSM owner | segment | MRR | NPS | health | churn risk next 90 days | latest positive quotes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in adv.itertuples():
            quotes = "<br>".join(
                f"“{_cell(q.text)}” ({q.channel}, {q.date})" for q in report.quotes.get(r.account_id, [])
            )
            mrr = "" if pd.isna(r.mrr) else f"{float(r.mrr):,.0f}"
            out.append(
                f"| {_cell(r.name or r.account_id)} ({r.account_id}) | {_cell(r.csm_owner or '')} | "
                f"{_cell(r.segment or '')} | {mrr} | {r.nps_latest:.0f} | {r.health_score:.0f} | "
                f"{pct(r.churn_risk)} ({times_typical(r.churn_lift)} typical) | {quotes} |"
            )
    else:
        out.append("None at this snapshot.")
    return "\n".join(out) + "\n"


def family_shares(report: DriversReport) -> pd.DataFrame:
    """target, as_of, family_name, share of the top families of each target now, at every date."""
    parts = []
    for target in ("renewal", "upsell"):
        top = report.top(target)
        rows = report.importance[
            (report.importance["target"] == target) & report.importance["family"].isin(top["family"])
        ]
        parts.append(rows[["target", "as_of", "family_name", "share"]])
    return pd.concat(parts, ignore_index=True)


def write_drivers_report(report: DriversReport, folder: Path) -> tuple[Path, Path]:
    """Write drivers.md and its chart into `folder`; (markdown, png)."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / PNG
    png.write_bytes(family_trend_png(family_shares(report), "Top indicator families by quarter"))
    md = folder / "drivers.md"
    md.write_text(drivers_markdown(report, PNG), encoding="utf-8")
    return md, png
