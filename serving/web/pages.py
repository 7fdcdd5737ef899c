"""What the web pages show, as plain data: the portfolio (three tabs) and one account.

Pure functions over the scored portfolio (`serving.scoring.portfolio.Portfolio.scored`), the
open alerts and one account's records; serving/web/app.py reads the inputs and renders the
templates. Rankings are those of the API (`serving.scoring.batch`): MRR at risk = mrr x (1 -
renewal likelihood) and expansion potential = upsell likelihood x mrr; the portfolio
tab lists every active account (green ones too), the API only red and yellow ones.

Every table sorts by any of its columns (`sort` and `dir` in the URL, done here on the
whole filtered list before paging; an empty value always last) and exports the rows of
the current view, every page, as CSV (`export_frame`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal
from urllib.parse import urlencode

import pandas as pd

from features.registry import QCF_BUCKETS, FeatureRegistry
from serving.scoring.batch import at_risk, opportunities
from serving.scoring.decisions import call_order

Tab = Literal["risk", "opportunities", "alerts"]
TABS: dict[str, str] = {"risk": "At risk", "opportunities": "Expansion opportunities", "alerts": "Alert queue"}
QUERY_KEYS = ("tab", "owner", "segment", "tier", "q", "sort", "dir")
SORTS: dict[str, tuple[str, ...]] = {  # the sortable columns of each tab's table (keys of its rows)
    "risk": ("name", "tier", "churn_risk", "next_renewal", "mrr", "mrr_at_risk", "health", "driver", "action"),
    "opportunities": ("name", "upsell", "mrr", "expansion_potential", "tier", "driver", "action"),
    "alerts": ("insight", "routing", "name", "title", "owner", "opened", "last_seen"),
}
EXPORTS: dict[str, tuple[str, ...]] = {  # the CSV export's columns per tab
    "risk": (
        "account_id", "name", "segment", "csm_owner", "tier", "churn_risk", "churn_lift", "next_renewal", "renewal",
        "mrr", "mrr_at_risk", "health", "health_band", "driver", "action", "action_owner",
    ),
    "opportunities": (
        "account_id", "name", "segment", "csm_owner", "upsell", "mrr", "expansion_potential", "tier", "driver",
        "action", "action_owner",
    ),
    "alerts": (
        "key", "account_id", "name", "csm_owner", "tier", "rule", "title", "insight", "routing", "owner", "opened",
        "last_seen",
    ),
}  # fmt: skip
TIER_ORDER = {"red": 0, "yellow": 1, "green": 2}
TIERS = {"red": "Red", "yellow": "Yellow", "green": "Green", "at_risk": "Red and yellow"}  # the tier filter
POLARITY = {"red": "Risk", "gray": "Neutral", "green": "Positive"}


@dataclass(frozen=True)
class PortfolioQuery:
    """The portfolio's filters and page, as they appear in its URL."""

    tab: Tab = "risk"
    owner: str | None = None
    segment: str | None = None
    tier: str | None = None
    q: str | None = None
    sort: str | None = None  # one of SORTS[tab]; None: the tab's own order (call list, potential, queue)
    dir: Literal["asc", "desc"] | None = None
    page: int = 1

    def params(self, **changes) -> str:
        """The query string of these filters (empty ones left out), with `changes`."""
        values = {k: getattr(self, k) for k in (*QUERY_KEYS, "page")} | changes
        if values.get("page") == 1:
            values.pop("page")
        if values.get("tab") == "risk":
            values.pop("tab")
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def query_from(params: dict[str, str]) -> PortfolioQuery:
    """A query from untrusted URL parameters (the account page's `back`): unknown keys and
    values dropped."""
    tab = params.get("tab") if params.get("tab") in TABS else "risk"
    tier = params.get("tier") if params.get("tier") in TIERS else None
    text = {k: (params.get(k) or "")[:200] or None for k in ("owner", "segment", "q")}
    page = params.get("page", "1")
    sort = params.get("sort") if params.get("sort") in SORTS[tab] else None
    order = params.get("dir") if sort and params.get("dir") in ("asc", "desc") else None
    page = int(page) if page.isdigit() and 0 < int(page) < 10**6 else 1
    return PortfolioQuery(tab=tab, tier=tier, sort=sort, dir=order, page=page, **text)


def sort_rows(rows: list[dict], key: str, descending: bool) -> list[dict]:
    """`rows` by one column: numbers as numbers, text ignoring case, tiers red-yellow-green,
    dates in order; rows without a value last either way; ties keep the tab's own order."""

    def value(r):
        v = r.get(key)
        if key == "tier":
            return TIER_ORDER.get(v, len(TIER_ORDER))
        return v if isinstance(v, int | float) and not isinstance(v, bool) else str(v).casefold()

    present = [r for r in rows if r.get(key) is not None and r.get(key) == r.get(key)]  # NaN is missing
    missing = [r for r in rows if not (r.get(key) is not None and r.get(key) == r.get(key))]
    return sorted(present, key=value, reverse=descending) + missing


@dataclass
class PortfolioView:
    query: PortfolioQuery
    as_of: date
    rows: list[dict]
    total: int  # rows matching the filters, all pages
    page: int
    pages: int
    page_size: int
    summary: dict
    owners: list[str]
    roles: list[str]
    segments: list[str]
    alerts_missing: bool = False  # `radar alerts` never ran on this workspace
    base_rate: float | None = None  # the churn base rate the tiers are relative to

    @property
    def first(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.page * self.page_size, self.total)


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _text(v) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _search(frame: pd.DataFrame, q: str | None) -> pd.DataFrame:
    if not q:
        return frame
    needle = q.strip().casefold()
    names = frame["name"].astype(object).where(frame["name"].notna(), "").astype(str).str.casefold()
    ids = frame["account_id"].astype(str).str.casefold()
    return frame[names.str.contains(needle, regex=False) | ids.str.contains(needle, regex=False)]


def _owned(frame: pd.DataFrame, owner: str | None, segment: str | None, owner_cols: tuple[str, ...]) -> pd.DataFrame:
    if segment:
        frame = frame[frame["segment"].astype(object) == segment]
    if owner:
        hit = pd.Series(False, index=frame.index)
        for c in owner_cols:
            hit |= frame[c].astype(object) == owner
        frame = frame[hit]
    return frame


def first_lowering(drivers, inverted: bool) -> dict | None:
    """The largest churn-model driver that raises the churn risk, if any."""
    for d in drivers or []:
        if (d["contribution"] > 0) == inverted:
            return d
    return None


def _summary(scored: pd.DataFrame, alerts: pd.DataFrame | None) -> dict:
    mrr = pd.to_numeric(scored["mrr"], errors="coerce").fillna(0.0)
    risky = scored["risk_tier"] != "green"
    tiers = scored["risk_tier"].value_counts()
    opp = scored["opportunity"].astype(bool)
    return {
        "accounts": len(scored),
        "mrr": float(mrr.sum()),
        "red": int(tiers.get("red", 0)),
        "yellow": int(tiers.get("yellow", 0)),
        "green": int(tiers.get("green", 0)),
        "mrr_at_risk": float(pd.to_numeric(scored["expected_mrr_loss"], errors="coerce")[risky].sum()),
        "opportunities": int(opp.sum()),
        "expansion_potential": float((mrr * scored["upsell_likelihood"])[opp].sum()),
        "alerts": None if alerts is None else len(alerts),
        "meetings": None if alerts is None else int((alerts["routing"] == "meeting").sum()),
    }


def _account_rows(rows: pd.DataFrame, inverted: bool, target: str) -> list[dict]:
    out = []
    for r in rows.to_dict("records"):
        drivers = r[f"{target}_drivers"] or []
        top = (
            first_lowering(drivers, inverted)
            if target == "renewal"
            else next((d for d in drivers if d["contribution"] > 0), None)
        )
        out.append(
            {
                "account_id": r["account_id"],
                "name": _text(r.get("name")) or r["account_id"],
                "segment": _text(r.get("segment")),
                "csm_owner": _text(r.get("csm_owner")),
                "mrr": _float(r.get("mrr")),
                "mrr_at_risk": _float(r.get("mrr_at_risk")),
                "expansion_potential": _float(r.get("expansion_potential")),
                "churn_risk": float(r["churn_risk"]),
                "churn_lift": float(r["churn_lift"]),
                "risk_summary": r["risk_summary"],
                "next_renewal": r.get("next_renewal"),
                "renewal": _float(r.get("renewal_likelihood")),
                "upsell": float(r["upsell_likelihood"]),
                "tier": r["risk_tier"],
                "opportunity": bool(r["opportunity"]),
                "health": _float(r.get("health_score")),
                "health_band": _text(r.get("health_band")),
                "driver": top["reason"] if top else None,
                "action": r["recommended_action"],
                "action_short": r["recommended_action"].split(":")[0],
                "action_owner": r["action_owner"],
            }
        )
    return out


def _alert_rows(alerts: pd.DataFrame) -> list[dict]:
    out = []
    for r in alerts.to_dict("records"):
        out.append(
            {
                "key": r["key"],
                "account_id": r["account_id"],
                "name": _text(r.get("name")) or r["account_id"],
                "csm_owner": _text(r.get("csm_owner")),
                "segment": _text(r.get("segment")),
                "tier": _text(r.get("risk_tier")),
                "rule": r["rule"],
                "title": r["title"],
                "insight": _float(r.get("insight_score")),
                "routing": r["routing"],
                "owner": r["owner"],
                "opened": r["opened_as_of"],
                "last_seen": r["last_seen_as_of"],
            }
        )
    return out


def _queue_order(alerts: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Open alerts: risks in call-list order (the account's expected MRR lost, the sooner renewal
    first), then expansion opportunities by insight."""
    money = scored.set_index("account_id")[["expected_mrr_loss", "days_to_next_renewal"]]
    keyed = alerts.join(money, on="account_id")
    growth = keyed["key"].astype(str).str.endswith(":expansion") | (keyed["rule"] == "expansion")
    risks = call_order(keyed[~growth].assign(expected_mrr_loss=keyed.loc[~growth, "expected_mrr_loss"].fillna(0.0)))
    chances = keyed[growth].sort_values(["insight_score", "key"], ascending=[False, True], kind="stable")
    return pd.concat([risks, chances])[alerts.columns]


def _listed(
    scored: pd.DataFrame, alerts: pd.DataFrame | None, query: PortfolioQuery
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(the tab's rows for `query` in the tab's own order, the owner's and segment's accounts, their open alerts)."""
    mine = _owned(scored, query.owner, query.segment, ("csm_owner", "action_owner"))
    people = scored[["account_id", "name", "segment", "csm_owner", "risk_tier"]].drop_duplicates("account_id")
    open_alerts = None
    if alerts is not None:
        open_alerts = alerts.merge(people, on="account_id", how="left")
        open_alerts = _owned(open_alerts, query.owner, query.segment, ("csm_owner", "owner"))
    if query.tab == "alerts":  # the alert queue in call-list order, like every other list
        listed = _search(_queue_order(open_alerts, scored), query.q) if open_alerts is not None else people.iloc[:0]
    elif query.tab == "opportunities":
        listed = _search(opportunities(mine, limit=len(mine)), query.q)
    else:
        listed = at_risk(mine, limit=len(mine), include_green=True)
        if query.tier:
            wanted = ("red", "yellow") if query.tier == "at_risk" else (query.tier,)
            listed = listed[listed["risk_tier"].isin(wanted)]
        listed = _search(listed, query.q)
    return listed, mine, open_alerts


def _rows(listed: pd.DataFrame, query: PortfolioQuery, inverted: bool, has_alerts: bool) -> list[dict]:
    if query.tab == "alerts":
        return _alert_rows(listed) if has_alerts else []
    return _account_rows(listed, inverted, "upsell" if query.tab == "opportunities" else "renewal")


def portfolio_view(
    scored: pd.DataFrame,
    as_of: date,
    alerts: pd.DataFrame | None,
    query: PortfolioQuery,
    page_size: int,
    inverted: bool,
) -> PortfolioView:
    """One page of the portfolio for `query`, with the summary of the owner's and segment's accounts."""
    listed, mine, open_alerts = _listed(scored, alerts, query)
    total = len(listed)
    pages = max(1, -(-total // page_size))
    page = min(query.page, pages)
    if query.sort in SORTS[query.tab]:  # every row made, sorted, then the page cut
        ordered = sort_rows(_rows(listed, query, inverted, open_alerts is not None), query.sort, query.dir == "desc")
        rows = ordered[(page - 1) * page_size : page * page_size]
    else:
        rows = _rows(listed.iloc[(page - 1) * page_size : page * page_size], query, inverted, open_alerts is not None)
    owners = sorted({o for o in scored["csm_owner"].dropna().astype(str)})
    roles = sorted({o for o in scored["action_owner"].dropna().astype(str)} - set(owners))
    segments = sorted({s for s in scored["segment"].dropna().astype(str)})
    return PortfolioView(
        query=query,
        as_of=as_of,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        page_size=page_size,
        summary=_summary(mine, open_alerts),
        owners=owners,
        roles=roles,
        segments=segments,
        alerts_missing=alerts is None,
        base_rate=_base_rate(scored),
    )


def export_frame(
    scored: pd.DataFrame, alerts: pd.DataFrame | None, query: PortfolioQuery, inverted: bool
) -> pd.DataFrame:
    """The current view as a table for CSV: the tab's rows for `query`, every page, in its
    order (sorted when asked), the tab's EXPORTS columns."""
    listed, _, open_alerts = _listed(scored, alerts, query)
    rows = _rows(listed, query, inverted, open_alerts is not None)
    if query.sort in SORTS[query.tab]:
        rows = sort_rows(rows, query.sort, query.dir == "desc")
    return pd.DataFrame([{c: r.get(c) for c in EXPORTS[query.tab]} for r in rows], columns=list(EXPORTS[query.tab]))


def _base_rate(scored: pd.DataFrame) -> float | None:
    """The churn base rate the scores were made against (churn risk / its lift)."""
    ratio = pd.to_numeric(scored["churn_risk"], errors="coerce") / pd.to_numeric(scored["churn_lift"], errors="coerce")
    ratio = ratio[ratio > 0]
    return float(ratio.median()) if len(ratio) else None


# --- one account ---


@dataclass
class AccountView:
    account_id: str
    name: str
    facts: dict  # segment, owner, mrr, seats, renewal date ...
    current: dict  # the latest score: likelihoods, tier, health, action
    active: bool  # in the active portfolio (scored at the portfolio's date)
    chart: dict  # the likelihood trend: src (a PNG as a data: URI) and alt (what it shows, in words)
    history: list[dict]  # per snapshot: as_of, renewal, upsell, tier
    scorecard: list
    renewal_drivers: list[dict]
    upsell_drivers: list[dict]
    quotes: list[dict] | None  # per bucket; None: no evidence table
    alerts: list[dict] = field(default_factory=list)


def driver_rows(drivers, registry: FeatureRegistry, target: str, inverted: bool) -> list[dict]:
    """Drivers for display: reason, indicator family, whether it helps, bar width (share of the largest)."""
    drivers = drivers or []
    largest = max((abs(d["contribution"]) for d in drivers), default=0.0) or 1.0
    out = []
    for d in drivers:
        raises = (d["contribution"] > 0) != (inverted and target == "renewal")
        spec = registry[d["feature"]] if d["feature"] in registry else None
        out.append(
            {
                "feature": d["feature"],
                "reason": d["reason"],
                "family": spec.family_name if spec else None,
                "helps": raises,
                "width": round(100 * abs(d["contribution"]) / largest),
                "contribution": d["contribution"],
            }
        )
    return out


def quote_groups(evidence: pd.DataFrame | None, per_bucket: int) -> list[dict] | None:
    """Per feedback bucket: counts by polarity and the latest `per_bucket` quotes, newest first."""
    if evidence is None:
        return None
    out = []
    for bucket in QCF_BUCKETS:
        rows = evidence[evidence["bucket"] == bucket]
        counts = rows["polarity"].value_counts()
        quotes = [
            {
                "date": pd.Timestamp(r["occurred_at"]).date() if r["occurred_at"] is not None else None,
                "channel": _text(r["channel"]),
                "sentence": _text(r["sentence"]) or "",
                "polarity": r["polarity"],
                "polarity_text": POLARITY.get(r["polarity"], str(r["polarity"])),
                "negated": False if r["negated"] is None or pd.isna(r["negated"]) else bool(r["negated"]),
                "expression": _text(r["expression"]),
            }
            for r in rows.head(per_bucket).to_dict("records")
        ]
        out.append(
            {
                "bucket": bucket,
                "label": bucket.replace("_", " ").capitalize(),
                "quotes": quotes,
                "red": int(counts.get("red", 0)),
                "gray": int(counts.get("gray", 0)),
                "green": int(counts.get("green", 0)),
                "total": len(rows),
            }
        )
    return out


def account_view(
    snapshots: pd.DataFrame,
    evidence: pd.DataFrame | None,
    history: pd.DataFrame,
    current: dict,
    active: bool,
    registry: FeatureRegistry,
    levels: dict,
    reference: dict,
    alerts: pd.DataFrame | None,
    serving,
    per_bucket: int,
    inverted: bool,
) -> AccountView:
    """The account page from its snapshots (oldest first), their scores (`history`,
    probabilities only), its latest score with drivers (`current`) and its quotes."""
    from serving.render.charts import Series, likelihood_png, percent, png_data_uri, scale_top, summary
    from serving.workflow.scorecard import scorecard

    last = snapshots.iloc[-1]
    before = snapshots.iloc[-2] if len(snapshots) > 1 else None
    dates = list(history["as_of"])
    risk = pd.to_numeric(history["churn_risk"], errors="coerce")
    upsell = pd.to_numeric(history["upsell_likelihood"], errors="coerce")
    lines = [
        Series("Churn risk next 90 days", [float(v) for v in risk], "#1d4ed8"),
        Series("Upsell likelihood", [float(v) for v in upsell], "#7e22ce", (7, 4)),
    ]
    lifts = pd.to_numeric(history["churn_lift"], errors="coerce")
    base_rates = (risk / lifts)[lifts > 0]  # the typical churn risk the tiers are relative to
    bands, red_at = [], 0.0
    if len(base_rates):
        red_at = max(serving.red_lift * float(base_rates.iloc[-1]), serving.risk_floor)
        yellow_at = max(serving.yellow_lift * float(base_rates.iloc[-1]), serving.risk_floor)
        bands = [
            (red_at, 1.0, "#fde2e1", f"red tier: {percent(red_at)} or more ({serving.red_lift:g}x typical)"),
            (yellow_at, red_at, "#fef3c7", f"yellow tier: {percent(yellow_at)} or more ({serving.yellow_lift:g}x)"),
        ]
    top = scale_top([*risk, *upsell], at_least=1.2 * red_at)
    png = likelihood_png(dates, lines, bands=bands, top=top)
    chart = {"src": png_data_uri(png), "alt": summary(dates, lines)}
    seats = _float(last.get("seats"))
    days = _float(last.get("days_to_next_renewal"))
    facts = {
        "segment": _text(last.get("segment")),
        "csm_owner": _text(last.get("csm_owner")),
        "mrr": _float(last.get("mrr")),
        "seats": seats,
        "as_of": last["as_of"],
        "renewal_in_days": None if days is None else int(days),
        "first": snapshots.iloc[0]["as_of"],
    }
    previous_health = _float(before.get("health_score")) if before is not None else None
    now = {
        "churn_risk": float(current["churn_risk"]),
        "churn_lift": float(current["churn_lift"]),
        "risk_summary": current["risk_summary"],
        "context": _text(current.get("context")),
        "next_renewal": current.get("next_renewal"),
        "renewal": _float(current.get("renewal_likelihood")),
        "upsell": float(current["upsell_likelihood"]),
        "tier": current["risk_tier"],
        "opportunity": bool(current["opportunity"]),
        "health": _float(current.get("health_score")),
        "health_band": _text(current.get("health_band")),
        "health_previous": previous_health,
        "disagreement": _text(current.get("disagreement_reason")),
        "playbook": current["playbook"],
        "action": current["recommended_action"],
        "action_owner": current["action_owner"],
        "because": None,
    }
    because = _text(current.get("action_because"))
    if because:
        now["because"] = registry[because].description if because in registry else because
    if len(history) > 1:
        now["churn_risk_previous"] = float(history["churn_risk"].iloc[-2])
        now["churn_lift_previous"] = float(history["churn_lift"].iloc[-2])
        now["upsell_previous"] = float(history["upsell_likelihood"].iloc[-2])
    rows = [
        {"as_of": d, "churn_risk": float(r), "churn_lift": float(x), "upsell": float(u), "tier": t}
        for d, r, x, u, t in zip(
            history["as_of"],
            history["churn_risk"],
            history["churn_lift"],
            history["upsell_likelihood"],
            history["risk_tier"],
        )
    ]
    mine = [] if alerts is None else _alert_rows(alerts[alerts["account_id"] == str(last["account_id"])])
    return AccountView(
        account_id=str(last["account_id"]),
        name=_text(last.get("name")) or str(last["account_id"]),
        facts=facts,
        current=now,
        active=active,
        chart=chart,
        history=rows,
        scorecard=scorecard(last, before, registry, levels, reference),
        renewal_drivers=driver_rows(current.get("renewal_drivers"), registry, "renewal", inverted),
        upsell_drivers=driver_rows(current.get("upsell_drivers"), registry, "upsell", inverted),
        quotes=quote_groups(evidence, per_bucket),
        alerts=mine,
    )


# --- leadership (serving.workflow.drivers computes it; this only lays it out) ---


def leadership_view(report) -> dict:
    """The drivers report (`serving.workflow.drivers.DriversReport`) as rows for the leadership page."""

    def num(v):
        return None if v is None or pd.isna(v) else float(v)

    targets = []
    for target, word in (("renewal", "renewal"), ("upsell", "expansion")):
        top, moved = report.top(target), report.movement(target)
        rows = [
            {
                "rank": int(r["rank"]),
                "family": r["family_name"],
                "share": num(r["share"]),
                "lowers": num(r["lowers_share"]),
                "shares": [num(m[f"share {d}"]) for d in report.dates],
                "change": num(m["change"]),
            }
            for (_, r), (_, m) in zip(top.iterrows(), moved.iterrows(), strict=True)
        ]
        apart = [{"family": r["family_name"], "share": num(r["share"])} for _, r in report.apart(target).iterrows()]
        targets.append(
            {
                "target": target,
                "word": word,
                "rows": rows,
                "apart": apart,
                "context": report.context_line(target),
                "context_share": num(report.context_share(target)),
            }
        )
    low = [
        {
            "family": r["family_name"],
            "renewal": num(r.get("renewal_share")),
            "upsell": num(r.get("upsell_share")),
            "read": bool(r["read_by_models"]),
        }
        for _, r in report.low_signal.iterrows()
    ]
    advocates = [
        {
            "account_id": r["account_id"],
            "name": _text(r["name"]) or r["account_id"],
            "csm_owner": _text(r["csm_owner"]),
            "segment": _text(r["segment"]),
            "mrr": num(r["mrr"]),
            "nps": num(r["nps_latest"]),
            "health": num(r["health_score"]),
            "churn_risk": num(r["churn_risk"]),
            "churn_lift": num(r["churn_lift"]),
            "quotes": [
                {"text": q.text, "channel": q.channel, "date": q.date} for q in report.quotes.get(r["account_id"], [])
            ],
        }
        for _, r in report.advocates.iterrows()
    ]
    return {
        "as_of": report.as_of,
        "dates": list(report.dates),
        "accounts": report.accounts,
        "targets": targets,
        "low": low,
        "threshold": report.threshold,
        "advocates": advocates,
        "found": report.advocates_found,
    }


def backtest_view(document: dict | None) -> dict | None:
    """The saved `radar backtest` (serving.workflow.backtest.read_latest) as the leadership
    page's "How the radar did last quarter": the last quarter of its span, model vs health
    score. None when there is none, or it lacks a figure the page shows (an older file)."""
    if not document or "headline" not in document:
        return None

    def days(v):
        return "–" if v is None else f"{v:.0f} days"

    try:
        head, settings = document["headline"], document["settings"]
        renewal, health, fixed = document["models"]["renewal"], head["health"], head["fixed"]
        samples = list(head["samples"])
        return {
            "span": f"{head['dates'][0]} to {head['dates'][-1]}",
            "n_dates": len(head["dates"]),
            "model": f"{renewal['name']} v{renewal['version']}",
            "red_lift": float(settings["red_lift"]),
            "yellow_lift": float(settings["yellow_lift"]),
            "created": str(document.get("created_at", ""))[:10],
            "out_of_sample": samples == ["out-of-sample"],
            "samples_text": ", ".join(samples) or "unknown",
            **{
                k: head[k]
                for k in (
                    "accounts",
                    "churners",
                    "flagged_share",
                    "red_share",
                    "recall",
                    "caught",
                    "precision",
                    "red_precision",
                    "top10",
                    "lead_churns",
                    "lead_flagged",
                )
            },
            "health": {k: health[k] for k in ("recall", "precision", "top10", "lead_flagged")},
            "fixed": {k: fixed[k] for k in ("flagged_share", "recall")},
            "lead_text": days(head["lead_days"]),
            "lead_monthly_text": days(head["lead_monthly"]),
            "lead_annual_text": days(head["lead_annual"]),
            "health_lead_text": days(health["lead_days"]),
        }
    except (KeyError, TypeError, IndexError, ValueError):
        return None


def monitor_view(document: dict | None) -> dict | None:
    """The saved `radar monitor` (serving.workflow.monitor.read_latest) as the leadership page's
    "Are the scores still right?": the retrain recommendation and its reasons, predicted vs
    realised churn per scored date, and the inputs that moved most. None when there is none,
    or it lacks a figure the page shows (an older file)."""
    if not document or document.get("kind") != "radar-monitor":
        return None
    try:
        retrain = document["retrain"]
        dates = [
            {
                "as_of": d["as_of"],
                "sample": d["sample"],
                "accounts": d["accounts"],
                "predicted": d["churn"].get("predicted_rate"),
                "realised": d["churn"].get("realised_rate"),
                "churners": d["churn"].get("positives", 0),
                "roc_auc": d["churn"].get("roc_auc"),
                "ece": d["churn"].get("ece"),
                "caught": (d.get("call_list") or {}).get("caught"),
                "recall": (d.get("call_list") or {}).get("recall"),
                "top10": (d.get("call_list") or {}).get("top10_share"),
            }
            for d in document["dates"]
        ]
        drift = document["drift"]
        renewal = document["models"].get("renewal", {})
        return {
            "created": str(document.get("created_at", ""))[:10],
            "latest": document["latest_snapshot"],
            "model": f"{renewal.get('name')} v{renewal.get('version')}" if renewal else "",
            "retrain": bool(retrain["recommended"]),
            "reasons": list(retrain["reasons"]),
            "dates": dates,
            "awaiting": [w["as_of"] for w in document.get("awaiting", [])],
            "train_window": (drift.get("train_window") or "").replace("..", " to "),
            "recent": ", ".join(drift.get("recent_dates", [])),
            "movers": [m["sentence"] for m in drift.get("top_movers", [])],
            "notes": list(document.get("notes", [])),
        }
    except (KeyError, TypeError, AttributeError):
        return None
