"""The weekly digest per CSM owner (DOMAIN 5): whom to call this week, why, and what to do.

`build_digests` gathers, for each CSM owner (`csm_owner` of the snapshots), the accounts
flagged by the alerts of the week, each with its 2–3 top signals (model drivers with
their reasons, then feedback quotes with date and channel), the recommended action and
who acts, its churn risk over the recent snapshots and the honest one-line summary
(churn risk next 90 days and its lift, the next renewal and the likelihood to renew
there); then the expansion opportunities and the accounts that improved. Accounts at
risk are in call-list order (`serving.scoring.decisions.call_order`), the same order as
the portfolio, the at-risk API, the CRM table and the alert queue. It returns data (dataclasses); rendering
is `serving.workflow.digest_render`.

The week: `--week DATE` (default: the latest snapshot date) picks the latest snapshot on
or before DATE; the digest covers the week ending on the first `digest.week_ends` day on
or after that snapshot and is filed under that date. A DATE after that week (monthly
snapshots asked for a later week) is refused rather than answered with an older week's digest. Its alerts are exactly those of
`radar alerts --as-of <snapshot>` (`serving.workflow.alerts.load_inputs` + `alert_rules.evaluate`),
with the status a run would give them from the stored alert state, read from a copy: the
digest never changes the workspace. Snoozed and closed alerts are left out (an alert
assigned to another owner in the pages is listed in that owner's digest, with the latest
notes CSMs recorded on it); so are alerts
of green accounts routed to a tag (`digest.routings`), while every red or yellow account
with an open alert is listed: the accounts to call are the owner's call list (red and
yellow in call-list order), then green accounts flagged by signals. With the alert rules switched off (empty
`alerts.rules`) the flagged accounts are the red and yellow risk tiers and the
opportunities of the scores.

Improved: churn risk fell by more than `digest.improved_threshold` base rates since the
snapshot the risk rise rule compares with (`alert_rules.previous_date`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import duckdb
import pandas as pd

from features.snapshot import feature_registry
from radar.settings import DigestSettings, Settings
from serving.scoring.batch import snapshot_dates
from serving.scoring.decisions import call_order, risk_words
from serving.scoring.playbook import load_playbooks
from serving.scoring.score import ScoringModels, score_frame
from serving.workflow.alert_rules import Alert, AlertError, AlertInputs, Evidence, driver_evidence, evaluate
from serving.workflow.alert_state import COLUMNS, STATE, apply_state, assignments, ensure_tables, notes_of
from serving.workflow.alerts import SNAPSHOTS, load_inputs, workspace
from serving.workflow.quotes import latest_quotes

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
UNASSIGNED = "Unassigned"
# a flagged account before ranking: why (title), what to do, and its alert
FLAG_COLUMNS = ("account_id", "kind", "insight_score", "routing", "title", "action", "owner", "playbook", "key", "new")


class DigestError(AlertError):
    """A digest that cannot be built (no snapshots, unknown owner), with what to do."""


@dataclass(frozen=True)
class FlaggedAccount:
    account_id: str
    name: str | None
    segment: str | None
    mrr: float | None
    kind: Literal["risk", "opportunity"]
    risk_tier: str
    churn_risk: float
    churn_lift: float
    risk_summary: str  # "churn risk next 90 days 8.4% (2.8x typical) · renews 2027-06-30, 86% likely ..."
    expected_mrr_loss: float
    upsell_likelihood: float
    insight_score: float | None  # the highest of its alerts (None without alert rules)
    routing: str | None
    new: bool  # one of its alerts was raised at this snapshot
    reasons: tuple[str, ...]  # what flagged it: the alert titles, highest insight first
    signals: tuple[Evidence, ...]  # model drivers (kind driver), then quotes (kind quote)
    action: str
    owner: str  # the role that acts
    playbook: str
    trend: tuple[tuple[date, float], ...]  # churn risk at the recent snapshots
    alert_keys: tuple[str, ...] = ()
    context: str | None = None  # contract facts, shown apart from the reasons
    notes: tuple[str, ...] = ()  # what CSMs recorded on its alerts in the pages, newest first


@dataclass(frozen=True)
class ImprovedAccount:
    account_id: str
    name: str | None
    previous_risk: float
    churn_risk: float
    previous_lift: float
    churn_lift: float
    risk_tier: str
    because: str | None  # the largest driver lowering the churn risk now
    trend: tuple[tuple[date, float], ...]

    @property
    def change(self) -> float:
        """How far the churn risk fell, in points (positive = better)."""
        return self.previous_risk - self.churn_risk


@dataclass(frozen=True)
class OwnerDigest:
    owner: str  # the csm_owner, or UNASSIGNED
    slug: str  # file name stem
    accounts: int  # the owner's active accounts at the snapshot
    at_risk: tuple[FlaggedAccount, ...]
    more_at_risk: int  # flagged but beyond digest.max_accounts
    new_at_risk: int  # flagged accounts (shown or not) with an alert raised at this snapshot
    opportunities: tuple[FlaggedAccount, ...]
    more_opportunities: int
    improved: tuple[ImprovedAccount, ...]
    more_improved: int

    def summary(self) -> str:
        shown = len(self.at_risk) + self.more_at_risk
        return (
            f"{shown} flagged account{'s' * (shown != 1)} ({self.new_at_risk} new"
            + (f", top {len(self.at_risk)} shown" if self.more_at_risk else "")
            + "), "
            f"{len(self.opportunities) + self.more_opportunities} expansion opportunit"
            f"{'ies' if len(self.opportunities) + self.more_opportunities != 1 else 'y'}, "
            f"{len(self.improved) + self.more_improved} improved, of {self.accounts} accounts"
        )


@dataclass(frozen=True)
class Digests:
    week_end: date  # the digests are filed under this date
    as_of: date  # the snapshot scored
    previous: date | None  # the snapshot compared with (risk rise, improved)
    source: Literal["alerts", "scores"]
    owners: tuple[OwnerDigest, ...]
    lineage: dict[str, str | None]
    base_rate: float  # the churn base rate the tiers are relative to
    red_lift: float
    yellow_lift: float


def digest_week(dates: Sequence[date], on: date | None, week_ends: str = "sunday") -> tuple[date, date]:
    """(the snapshot of the digest, the last day of its week): the latest snapshot on or
    before `on` (default: the latest), and the first `week_ends` day on or after it."""
    if not dates:
        raise DigestError(f"the {SNAPSHOTS} table is empty: run `radar build-features`")
    on = on or max(dates)
    before = [d for d in dates if d <= on]
    if not before:
        raise DigestError(f"no snapshots on or before {on} (the first is {min(dates)})")
    snapshot = max(before)
    return snapshot, snapshot + timedelta(days=(WEEKDAYS.index(week_ends) - snapshot.weekday()) % 7)


def improved_accounts(history: pd.DataFrame, current: date, previous: date | None, threshold: float) -> pd.DataFrame:
    """Accounts whose churn risk fell by more than `threshold` base rates (lift points) from
    `previous` to `current` (both scored): account_id, previous_risk, churn_risk,
    previous_lift, churn_lift, change (lift points fallen); largest fall first."""
    columns = ["account_id", "previous_risk", "churn_risk", "previous_lift", "churn_lift", "change"]
    if previous is None:
        return pd.DataFrame(columns=columns)
    now = history[history["as_of"] == current].set_index("account_id")
    was = history[history["as_of"] == previous].set_index("account_id")
    both = pd.DataFrame(
        {
            "previous_risk": was["churn_risk"],
            "churn_risk": now["churn_risk"],
            "previous_lift": was["churn_lift"],
            "churn_lift": now["churn_lift"],
        }
    ).dropna()
    both["change"] = both["previous_lift"] - both["churn_lift"]
    up = both[both["change"] > threshold].rename_axis("account_id").reset_index()
    return up.sort_values(["change", "account_id"], ascending=[False, True], kind="stable", ignore_index=True)[columns]


def owner_slug(owner: str, taken: set[str] | None = None) -> str:
    """A file name for an owner: "Chloé Garnier" -> "chloe-garnier" (unique within `taken`)."""
    plain = unicodedata.normalize("NFKD", owner).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "owner"
    if taken is not None:
        base, n = slug, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
    return slug


def alert_statuses(settings: Settings, alerts: list[Alert], as_of: date, now: datetime) -> list[Alert]:
    """The alerts with the status `radar alerts` would give them, computed on an in-memory
    copy of the stored alert state: the workspace is read, never written."""
    con = duckdb.connect()
    try:
        path = settings.database_path
        con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS ws (READ_ONLY)")
        names = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'ws'"
            ).fetchall()
        }
        ensure_tables(con)  # with the state's primary key, which apply_state's upsert needs
        if STATE in names:
            columns = ", ".join(COLUMNS)
            con.execute(f"INSERT INTO {STATE} ({columns}) SELECT {columns} FROM ws.{STATE}")
        con.execute("DETACH ws")
        return apply_state(con, alerts, as_of, (), now)
    finally:
        con.close()


def _flags_from_alerts(alerts: list[Alert], routings: tuple[str, ...], as_of: date) -> pd.DataFrame:
    # a red or yellow account is on the call list whatever its alert's routing; signals on a
    # green account show only when routed to a configured routing (a meeting or the review queue)
    # and within the owner's weekly cap (the capped ones wait in the review queue)
    kept = [
        a
        for a in alerts
        if a.status in ("new", "open")
        and (a.risk_tier in ("red", "yellow") or (a.routing in routings and not a.capped))
    ]
    return pd.DataFrame(
        [
            {
                "account_id": a.account_id,
                "kind": "opportunity" if a.rule == "expansion" else "risk",
                "insight_score": a.insight_score,
                "routing": a.routing,
                "title": a.title,
                "action": a.action,
                "owner": a.owner,
                "playbook": a.playbook,
                "key": a.key,
                "new": a.status == "new" or a.opened_as_of == as_of,
            }
            for a in kept
        ],
        columns=list(FLAG_COLUMNS),
    )


def _flags_from_scores(scores: pd.DataFrame) -> pd.DataFrame:
    risk = scores[scores["risk_tier"] != "green"]
    chance = scores[scores["opportunity"].astype(bool) & (scores["risk_tier"] == "green")]
    rows = [
        {
            "account_id": r.account_id,
            "kind": "risk",
            "insight_score": None,
            "routing": None,
            "title": f"{r.risk_tier.capitalize()} risk tier: {risk_words(r.churn_risk, r.churn_lift)}",
            "action": r.recommended_action,
            "owner": r.action_owner,
            "playbook": r.playbook,
            "key": None,
            "new": False,
        }
        for r in risk.itertuples()
    ]
    rows += [
        {
            "account_id": r.account_id,
            "kind": "opportunity",
            "insight_score": None,
            "routing": None,
            "title": f"Expansion opportunity: upsell likelihood {r.upsell_likelihood:.0%}",
            "action": r.recommended_action,
            "owner": r.action_owner,
            "playbook": r.playbook,
            "key": None,
            "new": False,
        }
        for r in chance.itertuples()
    ]
    return pd.DataFrame(
        rows,
        columns=list(FLAG_COLUMNS),
    )


def _rank(flags: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (account, kind): its reasons, top alert's action. Risks in call-list
    order (expected MRR lost, the sooner renewal first); opportunities by insight, then by
    expansion potential (upsell likelihood x MRR)."""
    if flags.empty:
        return flags.assign(reasons=[], keys=[], order=[])
    ctx = scores.set_index("account_id")
    mrr = pd.to_numeric(ctx["mrr"], errors="coerce").fillna(0.0)
    potential = flags["account_id"].map(mrr * pd.to_numeric(ctx["upsell_likelihood"], errors="coerce"))
    flags = flags.assign(order=flags["insight_score"].fillna(-1.0), value=potential)
    # an account with a risk alert is worked as a risk, even if it is also an opportunity
    risky = set(flags.loc[flags["kind"] == "risk", "account_id"])
    flags = flags.assign(group=flags.apply(lambda r: "risk" if r.account_id in risky else r.kind, axis=1))
    flags = flags.sort_values(["order", "value", "kind"], ascending=[False, False, False], kind="stable")
    top = flags[(flags["kind"] == flags["group"])].drop_duplicates("account_id")
    gathered = flags.groupby("account_id", sort=False).agg(
        reasons=("title", tuple), keys=("key", lambda k: tuple(x for x in k if x)), new=("new", "any")
    )
    out = top.drop(columns=["new"]).join(gathered, on="account_id")
    out["kind"] = out["group"]
    risks = out[out["kind"] == "risk"]
    keyed = risks.assign(
        expected_mrr_loss=risks["account_id"].map(ctx["expected_mrr_loss"]),
        days_to_next_renewal=risks["account_id"].map(ctx["days_to_next_renewal"])
        if "days_to_next_renewal" in ctx.columns
        else None,
    )
    # the call list (red and yellow, as on every screen) first, then green accounts flagged by signals
    tier = keyed["account_id"].map(ctx["risk_tier"])
    flagged = tier.isin(["red", "yellow"])
    ordered_risks = pd.concat([call_order(keyed[flagged]), call_order(keyed[~flagged])])[out.columns]
    chances = out[out["kind"] != "risk"].sort_values(
        ["order", "value", "account_id"], ascending=[False, False, True], kind="stable"
    )
    return pd.concat([ordered_risks, chances], ignore_index=True)


def _trends(
    settings: Settings,
    models: ScoringModels,
    dates: list[date],
    accounts: set[str],
    history: pd.DataFrame,
    scored_at: datetime,
) -> dict[str, tuple[tuple[date, float], ...]]:
    """Churn risk at `dates` for `accounts`: from the alert run's history where it has the
    date, else scored (probabilities only) from the snapshots."""
    known = history[history["account_id"].isin(accounts) & history["as_of"].isin(dates)]
    missing = [d for d in dates if d not in set(known["as_of"])]
    parts = [known[["account_id", "as_of", "churn_risk"]]]
    if missing and accounts:
        with workspace(settings, read_only=True) as con:
            con.register("wanted_accounts", pd.DataFrame({"account_id": sorted(accounts)}))
            snaps = con.execute(
                f"SELECT s.* FROM {SNAPSHOTS} s JOIN wanted_accounts w ON CAST(s.account_id AS VARCHAR) = w.account_id "
                f"WHERE CAST(s.as_of AS DATE) IN ({', '.join('?' * len(missing))})",
                missing,
            ).df()
        if not snaps.empty:
            snaps["as_of"] = pd.to_datetime(snaps["as_of"]).dt.date
            scored = score_frame(snaps, models, settings, explain=False, scored_at=scored_at)
            parts.append(scored[["account_id", "as_of", "churn_risk"]])
    rows = pd.concat(parts, ignore_index=True).sort_values(["account_id", "as_of"], kind="stable")
    return {
        a: tuple((d, float(v)) for d, v in zip(g["as_of"], g["churn_risk"], strict=True))
        for a, g in rows.groupby("account_id", sort=False)
    }


def _plain(v):
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA else v


def _owners(scores: pd.DataFrame, owner: str | None) -> list[str]:
    found = sorted({UNASSIGNED if _plain(o) is None else str(o) for o in scores["csm_owner"]})
    if owner is None:
        return found
    for match in (
        lambda o: o == owner,
        lambda o: o.casefold() == owner.casefold(),
        lambda o: owner_slug(o) == owner_slug(owner),
    ):
        picked = [o for o in found if match(o)]
        if picked:
            return picked[:1]
    raise DigestError(f"no account is owned by {owner!r} at this snapshot; the owners are: {', '.join(found)}")


def build_digests(
    settings: Settings,
    models: ScoringModels,
    week: date | None = None,
    owner: str | None = None,
    *,
    now: datetime | None = None,
    include_partial: bool = False,
) -> Digests:
    """The digests of the week of `week` (see the module docstring), for every owner or one;
    partial as-of dates are not picked unless `include_partial`."""
    cfg = settings.digest
    now = now or datetime.now(UTC)
    with workspace(settings, read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if SNAPSHOTS not in names:
            raise DigestError(f"the workspace has no {SNAPSHOTS} table: run `radar build-features` first")
        dates = snapshot_dates(con, include_partial=include_partial)  # partial as-of dates only when asked
    snapshot, week_end = digest_week(dates, week, cfg.week_ends)
    if week is not None and week_end < week:
        asked = week + timedelta(days=(WEEKDAYS.index(cfg.week_ends) - week.weekday()) % 7)
        raise DigestError(
            f"no snapshot in the week ending {asked}: the latest snapshot on or before {week} is {snapshot}, "
            f"whose digest is the week ending {week_end}. Build weekly snapshots (`radar build-features --freq "
            "week`, or `radar run`), or ask for that week"
        )
    inputs = load_inputs(settings, models, snapshot, scored_at=now)
    scores = inputs.scores
    wanted = _owners(scores, owner)
    if settings.alerts.rules:
        alerts = evaluate(
            inputs, settings.alerts, load_playbooks(settings.serving.playbooks_file), feature_registry(settings)
        )
        flags, source = (
            _flags_from_alerts(alert_statuses(settings, alerts, snapshot, now), cfg.routings, snapshot),
            "alerts",
        )
    else:
        flags, source = _flags_from_scores(scores), "scores"
    ranked = _rank(flags, scores)
    owner_of = scores.set_index("account_id")["csm_owner"].map(lambda o: UNASSIGNED if _plain(o) is None else str(o))
    ranked["csm_owner"] = ranked["account_id"].map(owner_of)
    handed, notes = _worked(settings)
    ranked["csm_owner"] = _handed_over(ranked, handed)
    up = improved_accounts(inputs.history, inputs.current, inputs.previous, cfg.improved_threshold)
    up["csm_owner"] = up["account_id"].map(owner_of)

    chosen = {name: _select(name, ranked, up, owner_of, cfg) for name in wanted}
    shown = set().union(*(c.accounts_shown() for c in chosen.values()))
    explained = _explained(inputs, models, settings, shown, now)
    trend_dates = [d for d in dates if d <= inputs.current][-cfg.trend_snapshots :]
    trends = _trends(settings, models, trend_dates, shown, inputs.history, now)
    owners, taken = [], set()
    for name, c in chosen.items():
        owners.append(
            OwnerDigest(
                owner=name,
                slug=owner_slug(name, taken),
                accounts=c.accounts,
                at_risk=tuple(
                    _noted(_flagged(r, explained, inputs, settings, trends), notes) for r in c.risk.itertuples()
                ),
                more_at_risk=c.risk_total - len(c.risk),
                new_at_risk=c.risk_new,
                opportunities=tuple(
                    _noted(_flagged(r, explained, inputs, settings, trends), notes) for r in c.chance.itertuples()
                ),
                more_opportunities=c.chance_total - len(c.chance),
                improved=tuple(_improved(r, explained, inputs, trends) for r in c.better.itertuples()),
                more_improved=c.better_total - len(c.better),
            )
        )
    return Digests(
        week_end=week_end,
        as_of=inputs.current,
        previous=inputs.previous,
        source=source,
        owners=tuple(owners),
        lineage=models.lineage,
        base_rate=models.base_rates["renewal"],
        red_lift=settings.serving.red_lift,
        yellow_lift=settings.serving.yellow_lift,
    )


NOTES_SHOWN = 3  # the latest notes on an account's alerts in its digest entry


def _worked(settings: Settings) -> tuple[dict[str, str], pd.DataFrame]:
    """What CSMs did in the pages (`alert_state.work_alert`): alert key -> assignee, and the notes."""
    with workspace(settings, read_only=True) as con:
        return assignments(con), notes_of(con)


def _noted(a: FlaggedAccount, notes: pd.DataFrame) -> FlaggedAccount:
    """The account with the latest notes on its alerts ("2026-05-02 ben: left a voicemail")."""
    mine = notes[notes["key"].isin(a.alert_keys)].head(NOTES_SHOWN) if len(notes) and a.alert_keys else notes.iloc[:0]
    if mine.empty:
        return a
    lines = tuple(
        f"{pd.Timestamp(r.written_at):%Y-%m-%d} {r.author}"
        + ("" if r.kind == "note" else f" ({r.kind})")
        + f": {r.note}"
        for r in mine.itertuples()
    )
    return replace(a, notes=lines)


def _handed_over(ranked: pd.DataFrame, handed: dict[str, str]) -> pd.Series:
    """Each flagged account's owner for the digest: the owner one of its alerts was assigned
    to (`alert_state.work_alert`, from the pages), else its CSM owner."""
    if not handed or ranked.empty:
        return ranked["csm_owner"]
    return pd.Series(
        [next((handed[k] for k in keys if k in handed), o) for keys, o in zip(ranked["keys"], ranked["csm_owner"])],
        index=ranked.index,
        dtype=object,
    )


@dataclass(frozen=True)
class _Selection:
    """One owner's rows: the shown ones (ranked, cut to the configured counts) and totals."""

    accounts: int
    risk: pd.DataFrame
    risk_total: int
    risk_new: int
    chance: pd.DataFrame
    chance_total: int
    better: pd.DataFrame
    better_total: int

    def accounts_shown(self) -> set[str]:
        return set(self.risk["account_id"]) | set(self.chance["account_id"]) | set(self.better["account_id"])


def _select(name: str, ranked: pd.DataFrame, up: pd.DataFrame, owner_of: pd.Series, cfg: DigestSettings) -> _Selection:
    mine = ranked[ranked["csm_owner"] == name]
    risk, chance = mine[mine["kind"] == "risk"], mine[mine["kind"] == "opportunity"]
    better = up[up["csm_owner"] == name]
    return _Selection(
        int((owner_of == name).sum()),
        risk.head(cfg.max_accounts),
        len(risk),
        int(risk["new"].sum()),
        chance.head(cfg.max_opportunities),
        len(chance),
        better.head(cfg.max_improved),
        len(better),
    )


def _explained(
    inputs: AlertInputs, models: ScoringModels, settings: Settings, accounts: set[str], now: datetime
) -> pd.DataFrame:
    """The score rows (with drivers) of `accounts` at the digest's snapshot."""
    snaps = inputs.snapshots
    rows = snaps[(snaps["as_of"] == inputs.current) & snaps["account_id"].astype(str).isin(accounts)]
    if rows.empty:
        return inputs.scores.iloc[:0].set_index("account_id")
    # enough drivers per account to find those pushing the way the digest shows
    k = max(settings.serving.top_drivers, 4 * max(settings.digest.drivers, 1))
    return score_frame(rows, models, settings, explain=True, top_k=k, scored_at=now).set_index("account_id")


def _flagged(r, explained: pd.DataFrame, inputs: AlertInputs, settings: Settings, trends: dict) -> FlaggedAccount:
    cfg = settings.digest
    row = explained.loc[r.account_id]
    risk = r.kind == "risk"
    if risk:
        drivers = driver_evidence(row["renewal_drivers"], True, inputs.inverted, cfg.drivers)
        quotes = latest_quotes(
            inputs.evidence, r.account_id, "red", cfg.quotes, inputs.as_of, settings.alerts.quote_days
        )
    else:
        drivers = driver_evidence(row["upsell_drivers"], False, False, cfg.drivers)
        quotes = latest_quotes(
            inputs.evidence,
            r.account_id,
            "green",
            cfg.quotes,
            inputs.as_of,
            settings.alerts.quote_days,
            ("upsell_readiness",),
        )
    mrr = _plain(row["mrr"])
    return FlaggedAccount(
        account_id=r.account_id,
        name=_plain(row["name"]),
        segment=_plain(row["segment"]),
        mrr=None if mrr is None else float(mrr),
        kind=r.kind,
        risk_tier=row["risk_tier"],
        churn_risk=float(row["churn_risk"]),
        churn_lift=float(row["churn_lift"]),
        risk_summary=str(row["risk_summary"]),
        expected_mrr_loss=float(row["expected_mrr_loss"]),
        upsell_likelihood=float(row["upsell_likelihood"]),
        insight_score=None if pd.isna(r.insight_score) else float(r.insight_score),
        routing=r.routing,
        new=bool(r.new),
        reasons=tuple(r.reasons),
        signals=tuple(drivers + quotes),
        action=r.action,
        owner=r.owner,
        playbook=r.playbook,
        trend=trends.get(r.account_id, ()),
        alert_keys=tuple(r.keys),
        context=_plain(row["context"]) if "context" in row.index else None,
    )


def _improved(r, explained: pd.DataFrame, inputs: AlertInputs, trends: dict) -> ImprovedAccount:
    row = explained.loc[r.account_id]
    helped = driver_evidence(row["renewal_drivers"], False, inputs.inverted, 1)
    return ImprovedAccount(
        account_id=r.account_id,
        name=_plain(row["name"]),
        previous_risk=float(r.previous_risk),
        churn_risk=float(r.churn_risk),
        previous_lift=float(r.previous_lift),
        churn_lift=float(r.churn_lift),
        risk_tier=row["risk_tier"],
        because=helped[0].text if helped else None,
        trend=trends.get(r.account_id, ()),
    )
