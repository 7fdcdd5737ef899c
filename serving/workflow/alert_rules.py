"""The alert rules of DOMAIN 5, as pure functions of snapshots, scores and evidence.

Each rule says what is wrong with which account, how bad it is (severity) and how
persistent (frequency), with its evidence and playbook. `finish` groups an account's
signals into one alert (its strongest signal first, the others listed), adds the impact
(the percentile of the account's expected MRR lost in the portfolio), a severity that
includes the model's risk tier, the insight score, the routing and the owner, orders the
alerts by the call list (`serving.scoring.decisions.call_order`) and caps them per owner.

- indicator: a configured indicator worse than its expected level at the current
  snapshot; severity = how far from expected towards worst; frequency = the share of the
  last `history_snapshots` snapshots in which it was worse.
- risk_rise: the churn risk's lift rose by more than `rise_threshold` since the previous
  snapshot (at least `rise_min_days`, at most `rise_lookback_days` before); severity =
  rise / `rise_severe`; frequency = the share of the recent steps in which it rose.
- escalation: red cues of one bucket in `escalation_conversations` or more distinct
  conversations in the `escalation_days` before as_of; severity from the quotes'
  sentiment ((1 - mean) / 2); frequency = conversations / `escalation_full_conversations`.
- risk_tier: a red or yellow account; severity = `tier_severity` of its tier; frequency =
  the share of recent snapshots at risk.
- expansion: a green account flagged as an opportunity (at-risk ones are worked as
  risks); severity = upsell likelihood; frequency = the share of recent snapshots flagged.

Routing: an insight above `meeting_above` goes to a meeting only for a red or yellow
account or an escalation (`meeting_needs_flag`), else to the review queue. An alert's
owner is its playbook's escalation owner when the rule escalates, the account is red or
the alert goes to a meeting; otherwise the usual owner. Past `max_per_owner` alerts of one
CSM owner (in call-list order) the rest wait in the review queue, marked `capped`; alerts
snoozed or closed (`AlertInputs.held`) and alerts tagged for later take no place under the cap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from features.registry import FeatureRegistry, FeatureSpec
from radar.settings import AlertRule, AlertSettings, Routing
from serving.scoring.decisions import call_order, pct, risk_words, times_typical
from serving.scoring.playbook import Playbook, Playbooks, recommend
from serving.workflow.insight import insight_score, route

Status = Literal["new", "open", "snoozed", "closed"]


class AlertError(ValueError):
    """Alert settings or inputs that cannot be used, with what to fix."""


class Evidence(BaseModel):
    """Why an alert was raised: an indicator value, a score change, a model driver or a quote."""

    kind: Literal["indicator", "score", "driver", "quote"]
    text: str
    feature: str | None = None
    value: float | str | None = None
    date: dt.date | None = None
    channel: str | None = None
    bucket: str | None = None
    conversation: str | None = None


class Alert(BaseModel):
    """One alert: stable key, what and how much, where it goes, who acts, and why."""

    key: str
    account_id: str
    account_name: str | None
    csm_owner: str | None
    rule: AlertRule
    subject: str | None
    title: str
    as_of: date
    scores_as_of: date
    severity: float
    frequency: float
    impact: float
    insight_score: float
    routing: Routing
    playbook: str
    action: str
    owner: str
    escalated: bool
    mrr: float | None
    churn_risk: float | None
    churn_lift: float | None
    expected_mrr_loss: float | None
    upsell_likelihood: float | None
    risk_tier: str | None
    evidence: list[Evidence]
    signals: list[str] = []  # every signal grouped into this alert, strongest first
    rules: list[AlertRule] = []
    capped: bool = False  # past the owner's weekly cap: waits in the review queue
    status: Status = "new"
    opened_as_of: date | None = None


@dataclass(frozen=True)
class Signal:
    account_id: str
    rule: AlertRule
    subject: str | None
    title: str
    severity: float
    frequency: float
    evidence: list[Evidence]
    playbook: Playbook
    escalated: bool = False

    @property
    def key(self) -> str:
        return ":".join(p for p in (self.account_id, self.rule, self.subject) if p)


@dataclass(frozen=True)
class AlertInputs:
    """What the rules read; built by `serving.workflow.alerts` from the workspace and the models."""

    as_of: date  # the run's date: evidence windows end here (exclusive)
    current: date  # the snapshot date scored: the latest on or before as_of
    dates: tuple[date, ...]  # recent snapshot dates, oldest first, ending with `current`
    snapshots: pd.DataFrame  # snapshot rows at `dates` (account_id, as_of as date, features)
    scores: pd.DataFrame  # score_frame rows at `current`, one per active account
    history: pd.DataFrame  # account_id, as_of, churn_risk, churn_lift, risk_tier, opportunity at `dates` (+ previous)
    previous: date | None = None  # the snapshot compared for the churn risk rise
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame)  # evidence rows before as_of
    inverted: bool = True  # renewal drivers are contributions to churn: positive lowers renewal
    held: frozenset[str] = frozenset()  # keys of alerts snoozed or closed: they do not count towards the cap


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def driver_evidence(drivers, lowering: bool, inverted: bool, k: int) -> list[Evidence]:
    """At most k model drivers as evidence: those that lower (`lowering`) or raise the
    likelihood; `inverted`: contributions are to P(churn), so a positive one raises the
    churn risk (lowers the likelihood to stay)."""
    out: list[Evidence] = []
    for d in drivers if isinstance(drivers, list) else []:
        if len(out) == k:
            break
        if (d["contribution"] > 0) == (inverted == lowering):
            value = d.get("value")
            out.append(
                Evidence(
                    kind="driver",
                    text=d["reason"],
                    feature=d["feature"],
                    value=value if isinstance(value, (int, float, str)) else None,
                )
            )
    return out


def quote_evidence(rows: pd.DataFrame | None, k: int, one_per_conversation: bool = False) -> list[Evidence]:
    """At most k matched quotes as evidence, newest first (one per conversation if asked)."""
    if rows is None or rows.empty:
        return []
    rows = rows.sort_values(["occurred_at", "conversation_id"], ascending=False, kind="stable")
    if one_per_conversation:
        rows = rows.drop_duplicates("conversation_id")
    return [
        Evidence(
            kind="quote",
            text=r.sentence,
            date=pd.Timestamp(r.occurred_at).date(),
            channel=r.channel,
            bucket=r.bucket,
            conversation=r.conversation_id,
        )
        for r in rows.head(k).itertuples()
    ]


def _evidence_window(inputs: AlertInputs, days: int, polarity: str, buckets: tuple[str, ...] | None = None):
    ev = inputs.evidence
    if ev.empty:
        return {}
    end = pd.Timestamp(inputs.as_of)
    keep = (
        (ev["polarity"] == polarity) & (ev["occurred_at"] >= end - pd.Timedelta(days=days)) & (ev["occurred_at"] < end)
    )
    if buckets is not None:
        keep &= ev["bucket"].isin(buckets)
    return dict(tuple(ev[keep].groupby("account_id", sort=False)))


def _share(flags: pd.DataFrame, column: str, n: int) -> pd.Series:
    """Per account, the share of the n history dates on which `column` is true."""
    return flags.groupby("account_id")[column].sum() / n


def indicator_specs(levels: dict, registry: FeatureRegistry) -> dict[str, FeatureSpec]:
    specs = {}
    for name in levels:
        if name not in registry:
            raise AlertError(
                f"alerts.indicator_levels: {name!r} is not a snapshot feature (`radar features` "
                "lists them; windowed names follow features.windows, e.g. adoption_rate_28d)"
            )
        if registry[name].categorical:
            raise AlertError(f"alerts.indicator_levels: {name!r} is categorical, it has no level")
        specs[name] = registry[name]
    return specs


def indicator_signals(
    inputs: AlertInputs, cfg: AlertSettings, books: Playbooks, registry: FeatureRegistry
) -> list[Signal]:
    specs = indicator_specs(cfg.indicator_levels, registry)
    snaps = inputs.snapshots
    active = set(inputs.scores["account_id"])
    now = (snaps["as_of"] == inputs.current) & snaps["account_id"].isin(active)
    out = []
    for name, (expected, worst) in cfg.indicator_levels.items():
        if name not in snaps.columns:
            raise AlertError(
                f"the snapshots have no column {name!r} (alerts.indicator_levels): rebuild them "
                "with `radar build-features`"
            )
        spec = specs[name]
        values = pd.to_numeric(snaps[name], errors="coerce")
        worse = values < expected if worst < expected else values > expected
        share = _share(snaps.assign(worse=worse), "worse", len(inputs.dates))
        playbook = books.for_family(spec.family) or books.fallback
        bound = "at least" if worst < expected else "at most"
        span = f" over the last {spec.window} days" if spec.window else ""
        for account, value in zip(snaps.loc[now & worse, "account_id"], values[now & worse], strict=True):
            shown = f"{spec.label} is {spec.format_value(value)}{span}; expected {bound} {spec.format_value(expected)}"
            out.append(
                Signal(
                    account,
                    "indicator",
                    name,
                    shown,
                    _clip((expected - value) / (expected - worst)),
                    _clip(share.get(account, 0.0)),
                    [Evidence(kind="indicator", text=shown, feature=name, value=float(value))],
                    playbook,
                )
            )
    return out


def rise_signals(inputs: AlertInputs, cfg: AlertSettings, books: Playbooks, registry: FeatureRegistry) -> list[Signal]:
    """The churn risk rose by more than `rise_threshold` base rates since the previous snapshot."""
    if inputs.previous is None:
        return []
    hist = inputs.history
    before = hist[hist["as_of"] == inputs.previous].set_index("account_id")
    scores = inputs.scores.set_index("account_id", drop=False)
    rise = scores["churn_lift"] - before["churn_lift"].reindex(scores.index)
    recent = hist[hist["as_of"].isin(inputs.dates)].pivot_table(
        index="account_id", columns="as_of", values="churn_lift", aggfunc="first"
    )
    recent = recent.reindex(columns=list(inputs.dates))
    rose = (recent.diff(axis=1).iloc[:, 1:] > 0).sum(axis=1) / max(1, len(inputs.dates) - 1)
    out = []
    for account in rise.index[rise > cfg.rise_threshold]:
        row, r = scores.loc[account], float(rise[account])
        was, was_lift = float(before.at[account, "churn_risk"]), float(before.at[account, "churn_lift"])
        now, now_lift = float(row["churn_risk"]), float(row["churn_lift"])
        text = (
            f"Churn risk next 90 days rose from {pct(was)} ({times_typical(was_lift)} typical) on {inputs.previous} "
            f"to {pct(now)} ({times_typical(now_lift)} typical) on {inputs.current}"
        )
        drivers = row["renewal_drivers"] if isinstance(row["renewal_drivers"], list) else []
        chosen = recommend("yellow", False, drivers, registry, inputs.inverted, books)
        evidence = [Evidence(kind="score", text=text, feature="churn_risk", value=round(now - was, 6))]
        evidence += driver_evidence(drivers, True, inputs.inverted, cfg.evidence_items - 1)
        out.append(
            Signal(
                account,
                "risk_rise",
                None,
                text,
                _clip(r / cfg.rise_severe),
                _clip(rose.get(account, 1.0)),
                evidence,
                books.named(chosen.playbook),
                escalated=row["risk_tier"] == "red",
            )
        )
    return out


def escalation_signals(inputs: AlertInputs, cfg: AlertSettings, books: Playbooks) -> list[Signal]:
    active = set(inputs.scores["account_id"])
    out = []
    for account, rows in _evidence_window(inputs, cfg.escalation_days, "red").items():
        if account not in active:
            continue
        for bucket, found in rows.groupby("bucket", sort=True):
            n = found["conversation_id"].nunique()
            if n < cfg.escalation_conversations:
                continue
            sentiment = pd.to_numeric(found["sentiment"], errors="coerce").fillna(0.0).mean()
            words = bucket.replace("_", " ")
            title = f"Red {words} cues in {n} distinct conversations in the last {cfg.escalation_days} days"
            playbook = books.for_family("qcf:" + bucket) or books.fallback
            out.append(
                Signal(
                    account,
                    "escalation",
                    bucket,
                    title,
                    _clip((1.0 - sentiment) / 2.0),
                    _clip(n / cfg.escalation_full_conversations),
                    quote_evidence(found, cfg.evidence_items, one_per_conversation=True),
                    playbook,
                    escalated=True,
                )
            )
    return out


def tier_signals(inputs: AlertInputs, cfg: AlertSettings, books: Playbooks, registry: FeatureRegistry) -> list[Signal]:
    hist = inputs.history[inputs.history["as_of"].isin(inputs.dates)]
    at_risk = _share(hist.assign(risk=hist["risk_tier"] != "green"), "risk", len(inputs.dates))
    red_quotes = _evidence_window(inputs, cfg.quote_days, "red")
    out = []
    for row in inputs.scores[inputs.scores["risk_tier"].isin(["red", "yellow"])].itertuples(index=False):
        drivers = row.renewal_drivers if isinstance(row.renewal_drivers, list) else []
        chosen = recommend(row.risk_tier, False, drivers, registry, inputs.inverted, books)
        title = f"{row.risk_tier.capitalize()} risk tier: {risk_words(row.churn_risk, row.churn_lift)}"
        evidence = driver_evidence(drivers, True, inputs.inverted, cfg.evidence_items)
        evidence += quote_evidence(red_quotes.get(row.account_id), max(0, cfg.evidence_items - len(evidence)))
        out.append(
            Signal(
                row.account_id,
                "risk_tier",
                row.risk_tier,
                title,
                _clip(cfg.tier_severity.get(row.risk_tier, 0.0)),
                _clip(at_risk.get(row.account_id, 0.0)),
                evidence,
                books.named(chosen.playbook),
                escalated=row.risk_tier == "red",
            )
        )
    return out


def expansion_signals(inputs: AlertInputs, cfg: AlertSettings, books: Playbooks) -> list[Signal]:
    hist = inputs.history[inputs.history["as_of"].isin(inputs.dates)]
    flagged = _share(hist.assign(flag=hist["opportunity"].astype(bool)), "flag", len(inputs.dates))
    green_quotes = _evidence_window(inputs, cfg.quote_days, "green", ("upsell_readiness",))
    rows = inputs.scores[inputs.scores["opportunity"].astype(bool) & (inputs.scores["risk_tier"] == "green")]
    out = []
    for row in rows.itertuples(index=False):
        title = f"Expansion opportunity: upsell likelihood {row.upsell_likelihood:.0%}"
        evidence = driver_evidence(row.upsell_drivers, False, False, cfg.evidence_items)
        evidence += quote_evidence(green_quotes.get(row.account_id), max(0, cfg.evidence_items - len(evidence)))
        out.append(
            Signal(
                row.account_id,
                "expansion",
                None,
                title,
                _clip(row.upsell_likelihood),
                _clip(flagged.get(row.account_id, 0.0)),
                evidence,
                books.opportunity,
            )
        )
    return out


def impact(scores: pd.DataFrame, column: str = "expected_mrr_loss") -> pd.Series:
    """Per account, the percentile of `column` (expected MRR lost, or expansion potential) in
    the portfolio scored (largest = 1; missing or nothing at stake = 0, and not ranked, so
    that accounts without MRR do not lift the others)."""
    values = pd.to_numeric(scores[column], errors="coerce")
    values = values.where(values > 0)
    return values.rank(pct=True, method="max").fillna(0.0).set_axis(scores["account_id"].astype(str))


def _value(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _group(signals: list[Signal]) -> list[list[Signal]]:
    """An account's signals, one group for its risks and one for an expansion opportunity;
    the strongest signal (severity + frequency, ties in the rules' order) first."""
    groups: dict[tuple[str, bool], list[Signal]] = {}
    for s in signals:
        groups.setdefault((s.account_id, s.rule == "expansion"), []).append(s)
    return [sorted(g, key=lambda s: -(s.severity + s.frequency)) for g in groups.values()]


def _more(n: int) -> str:
    return f" (+{n} more signal{'s' if n > 1 else ''})" if n else ""


def finish(signals: list[Signal], inputs: AlertInputs, cfg: AlertSettings) -> list[Alert]:
    """One alert per account (and one per expansion opportunity) from its signals, with impact,
    insight score, routing and owner; in call-list order, capped per owner."""
    scores = inputs.scores
    potential = scores.assign(
        _potential=pd.to_numeric(scores["upsell_likelihood"], errors="coerce")
        * pd.to_numeric(scores["mrr"], errors="coerce")
    )
    size = {"risk": impact(scores), "expansion": impact(potential, "_potential")}
    context = scores.set_index(scores["account_id"].astype(str))
    alerts = []
    for group in _group(signals):
        top = group[0]
        kind = "expansion" if top.rule == "expansion" else "risk"
        row = context.loc[top.account_id]
        tier = row["risk_tier"]
        severity = max(s.severity for s in group)
        if kind == "risk":
            severity = (severity + cfg.tier_severity.get(tier, 0.0)) / 2
        frequency = max(s.frequency for s in group)
        money = float(size[kind].get(top.account_id, 0.0))
        score = insight_score(severity, frequency, money, cfg.weights)
        routing = route(score, cfg)
        flagged = tier in ("red", "yellow") or any(s.rule == "escalation" for s in group) or kind == "expansion"
        if routing == "meeting" and cfg.meeting_needs_flag and not flagged:
            routing = "review"
        escalated = any(s.escalated for s in group) or routing == "meeting" or tier == "red"
        mrr = _value(row.get("mrr"))
        evidence: list[Evidence] = []
        for s in group:
            evidence += [e for e in s.evidence if e.text not in {x.text for x in evidence}]
        titles = [s.title for s in group]
        alerts.append(
            Alert(
                key=f"{top.account_id}:{kind}",
                account_id=top.account_id,
                account_name=_value(row.get("name")),
                csm_owner=_value(row.get("csm_owner")),
                rule=top.rule,
                subject=top.subject,
                title=titles[0] + _more(len(titles) - 1),
                as_of=inputs.as_of,
                scores_as_of=inputs.current,
                severity=round(severity, 6),
                frequency=round(frequency, 6),
                impact=round(money, 6),
                insight_score=score,
                routing=routing,
                playbook=top.playbook.name,
                action=top.playbook.action,
                owner=top.playbook.owner_for(escalated),
                escalated=escalated,
                mrr=None if mrr is None else float(mrr),
                churn_risk=round(float(row["churn_risk"]), 6),
                churn_lift=round(float(row["churn_lift"]), 6),
                expected_mrr_loss=round(float(row["expected_mrr_loss"]), 6),
                upsell_likelihood=round(float(row["upsell_likelihood"]), 6),
                risk_tier=tier,
                evidence=evidence[: cfg.evidence_items * 2],
                signals=titles,
                rules=[s.rule for s in group],
            )
        )
    return cap_per_owner(in_call_order(alerts, scores), cfg.max_per_owner, inputs.held)


def in_call_order(alerts: list[Alert], scores: pd.DataFrame) -> list[Alert]:
    """Risk alerts in call-list order (expected MRR lost, the sooner renewal first), then the
    expansion opportunities by insight."""
    risks = [a for a in alerts if not a.key.endswith(":expansion")]
    days = scores.set_index(scores["account_id"].astype(str)).get("days_to_next_renewal")
    frame = pd.DataFrame(
        {
            "account_id": [a.account_id for a in risks],
            "expected_mrr_loss": [a.expected_mrr_loss for a in risks],
            "days_to_next_renewal": [None if days is None else days.get(a.account_id) for a in risks],
        }
    )
    ordered = [risks[i] for i in call_order(frame).index] if risks else []
    growth = sorted((a for a in alerts if a.key.endswith(":expansion")), key=lambda a: (-a.insight_score, a.key))
    return ordered + growth


def cap_per_owner(alerts: list[Alert], limit: int, held: frozenset[str] = frozenset()) -> list[Alert]:
    """Past `limit` risk alerts of one CSM owner (in the given order), the rest wait in the
    review queue, marked `capped`; expansion opportunities have a cap of their own, so a book
    full of risks still shows its best openings. Alerts `held` back (snoozed or closed) and
    alerts tagged for later take no place under the cap (a tag is never raised to review), and an
    escalation (red cues in several conversations) is never capped: it always reaches its owner."""
    seen: dict[tuple[str | None, bool], int] = {}
    out = []
    for a in alerts:
        if a.key in held or a.routing == "tag" or "escalation" in a.rules:
            out.append(a)  # repeated red cues always reach the owner; held and tagged alerts wait anyway
            continue
        slot = (a.csm_owner, a.key.endswith(":expansion"))
        n = seen.get(slot, 0)
        seen[slot] = n + 1
        out.append(a if n < limit else a.model_copy(update={"routing": "review", "capped": True}))
    return out


def evaluate(inputs: AlertInputs, cfg: AlertSettings, books: Playbooks, registry: FeatureRegistry) -> list[Alert]:
    """Every alert the configured rules raise on `inputs`, grouped per account, in call-list order."""
    rules = {
        "indicator": lambda: indicator_signals(inputs, cfg, books, registry),
        "risk_rise": lambda: rise_signals(inputs, cfg, books, registry),
        "escalation": lambda: escalation_signals(inputs, cfg, books),
        "risk_tier": lambda: tier_signals(inputs, cfg, books, registry),
        "expansion": lambda: expansion_signals(inputs, cfg, books),
    }
    signals = [s for rule in cfg.rules for s in rules[rule]()]
    return finish(signals, inputs, cfg)


def previous_date(dates: list[date], current: date, cfg: AlertSettings) -> date | None:
    """The snapshot the churn risk rise compares with: the latest between `rise_lookback_days`
    and `rise_min_days` before `current`."""
    low, high = current - timedelta(days=cfg.rise_lookback_days), current - timedelta(days=cfg.rise_min_days)
    earlier = [d for d in dates if low <= d <= high]
    return max(earlier) if earlier else None
