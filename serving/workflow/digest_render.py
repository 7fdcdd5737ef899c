"""The weekly digest as files: self-contained HTML for e-mail, and Markdown.

The HTML holds everything inline (styles as attributes, trend charts as data:image/png
URIs), uses tables for layout, and links nowhere, so it reads the same in a mail client
as in a browser. The Markdown shows each trend as a text sparkline on the fixed 0–1
scale. Data comes from `serving.workflow.digest`; nothing here scores or reads the workspace.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from serving.render.charts import sparkline, trend_png
from serving.workflow.alert_rules import Evidence
from serving.workflow.digest import Digests, FlaggedAccount, ImprovedAccount, OwnerDigest
from serving.workflow.insight import ROUTES

TIER = {"red": ("#b42318", "#fde2e1"), "yellow": ("#8a6100", "#fff4cc"), "green": ("#1e6b34", "#e6f4ea")}
FONT = "font-family:Arial,Helvetica,sans-serif;"
MUTED = "color:#5f6b7a;"


def _day(d) -> str:
    return f"{d:%A} {d.day} {d:%B %Y}"


def _money(v: float | None) -> str:
    return "MRR n/a" if v is None else f"MRR {v:,.0f}"


def _who(a: FlaggedAccount | ImprovedAccount) -> str:
    return f"{a.name} ({a.account_id})" if a.name else a.account_id


def _heading(d: OwnerDigest, run: Digests) -> tuple[str, str]:
    compared = f", compared with {run.previous}" if run.previous else ""
    return (
        f"Weekly digest for {d.owner}",
        f"Week ending {_day(run.week_end)} · scores of the {run.as_of} snapshot{compared}",
    )


def _trend_text(trend) -> str:
    if not trend:
        return ""
    values = [v for _, v in trend]
    return f"{sparkline(values)} {values[0]:.0%} → {values[-1]:.0%}" if len(values) > 1 else f"{values[0]:.0%}"


def _signal_md(s: Evidence) -> str:
    if s.kind == "quote":
        return f"“{s.text}” — {s.channel}, {s.date}" + (f" ({s.bucket.replace('_', ' ')})" if s.bucket else "")
    return s.text


def digest_markdown(d: OwnerDigest, run: Digests) -> str:
    title, sub = _heading(d, run)
    out = [f"# {title}", "", sub, "", f"**{d.summary()}**", ""]
    out += _accounts_md("Accounts to call, most urgent first", d.at_risk, d.more_at_risk, "renewal")
    out += _accounts_md("Expansion opportunities", d.opportunities, d.more_opportunities, "upsell")
    out += [f"## Improved since {run.previous}" if run.previous else "## Improved", ""]
    if d.improved:
        out += ["| account | renewal likelihood | tier | trend | what helped |", "|---|---|---|---|---|"]
        out += [
            f"| {_who(a)} | {a.previous_likelihood:.0%} → {a.renewal_likelihood:.0%} (+{a.change * 100:.0f} pts) "
            f"| {a.risk_tier} | {_trend_text(a.trend)} | {a.because or ''} |"
            for a in d.improved
        ]
        out += ["", f"…and {d.more_improved} more."] if d.more_improved else []
    else:
        out.append(
            "No account's renewal likelihood rose past the threshold."
            if run.previous
            else "No earlier snapshot to compare with."
        )
    out += ["", "---", _footer(run), ""]
    return "\n".join(out)


def _accounts_md(title: str, accounts, more: int, target: str) -> list[str]:
    out = [f"## {title}", ""]
    if not accounts:
        return out + ["None this week.", ""]
    for i, a in enumerate(accounts, 1):
        likely = a.renewal_likelihood if target == "renewal" else a.upsell_likelihood
        new = " · **new**" if a.new else ""
        out.append(f"### {i}. {_who(a)} — {a.risk_tier}, {target} likelihood {likely:.0%}{new}")
        facts = [a.segment or "", _money(a.mrr), f"renewal trend {_trend_text(a.trend)}" if a.trend else ""]
        if a.insight_score is not None:
            facts.append(f"insight {a.insight_score:.2f} → {ROUTES.get(a.routing, a.routing)}")
        out += ["", " · ".join(f for f in facts if f), ""]
        out.append("- **Why flagged:**")
        out += [f"  - {t}" for t in a.reasons]
        if a.signals:
            out.append("- **Top signals:**")
            out += [f"  - {_signal_md(s)}" for s in a.signals]
        out += [f"- **Next step:** {a.action} — *{a.owner}*", ""]
    if more:
        out += [f"…and {more} more flagged (`radar alerts` lists them all).", ""]
    return out


def _footer(run: Digests) -> str:
    lin = run.lineage
    source = "the week's alerts (radar alerts)" if run.source == "alerts" else "the risk tiers and opportunities"
    return (
        f"Account Radar · flagged from {source} · {lin['renewal_model']} v{lin['renewal_model_version']}, "
        f"{lin['upsell_model']} v{lin['upsell_model_version']}"
    )


def _badge(tier: str, text: str) -> str:
    fg, bg = TIER.get(tier, ("#1f2933", "#eef0f3"))
    return (
        f'<span style="display:inline-block;padding:2px 8px;border-radius:10px;background:{bg};color:{fg};'
        f'font-weight:bold;font-size:13px;">{escape(text)}</span>'
    )


def _img(trend, run: Digests) -> str:
    if len(trend) < 2:
        return ""
    data = base64.b64encode(trend_png(trend, run.red_below, run.yellow_below)).decode("ascii")
    first, last = trend[0][1], trend[-1][1]
    alt = f"Renewal likelihood {first:.0%} on {trend[0][0]} to {last:.0%} on {trend[-1][0]}"
    return (
        f'<img src="data:image/png;base64,{data}" width="260" height="90" alt="{escape(alt)}" '
        'style="display:block;border:0;">'
    )


def _signal_html(s: Evidence) -> str:
    if s.kind == "quote":
        bucket = f" · {escape(s.bucket.replace('_', ' '))}" if s.bucket else ""
        return (
            f'<li style="margin:2px 0;"><i>“{escape(s.text)}”</i> '
            f'<span style="{MUTED}">— {escape(str(s.channel))}, {s.date}{bucket}</span></li>'
        )
    return f'<li style="margin:2px 0;">{escape(s.text)}</li>'


def _account_html(i: int, a: FlaggedAccount, target: str, run: Digests) -> str:
    likely = a.renewal_likelihood if target == "renewal" else a.upsell_likelihood
    badge = _badge(a.risk_tier, f"{a.risk_tier} · {target} {likely:.0%}")
    new = (
        (
            ' <span style="font-size:11px;font-weight:bold;color:#ffffff;background:#1a4d8f;padding:1px 6px;'
            'border-radius:8px;">NEW</span>'
        )
        if a.new
        else ""
    )
    facts = " · ".join(escape(f) for f in (a.segment or "", _money(a.mrr)) if f)
    route = ""
    if a.insight_score is not None:
        route = (
            f'<div style="{MUTED}font-size:12px;margin-top:4px;">insight {a.insight_score:.2f} → '
            f"{escape(ROUTES.get(a.routing, str(a.routing)))}</div>"
        )
    reasons = "".join(f'<li style="margin:2px 0;">{escape(t)}</li>' for t in a.reasons)
    signals = "".join(_signal_html(s) for s in a.signals)
    signals_block = (
        (
            f'<div style="margin-top:6px;font-weight:bold;">Top signals</div>'
            f'<ul style="margin:2px 0 0 18px;padding:0;">{signals}</ul>'
        )
        if signals
        else ""
    )
    return f"""<tr><td style="padding:12px 16px;border-top:1px solid #e4e7eb;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="{FONT}font-size:14px;color:#1f2933;">
<tr><td valign="top">
<div style="font-size:16px;font-weight:bold;">{i}. {escape(_who(a))}{new}</div>
<div style="{MUTED}font-size:12px;margin:2px 0 6px 0;">{facts}</div>
<div>{badge}</div>{route}
</td><td valign="top" align="right" width="264">{_img(a.trend, run)}</td></tr>
<tr><td colspan="2" style="padding-top:6px;">
<div style="font-weight:bold;">Why flagged</div>
<ul style="margin:2px 0 0 18px;padding:0;">{reasons}</ul>
{signals_block}
<div style="margin-top:8px;padding:8px 10px;background:#f1f5fb;border-left:3px solid #1a4d8f;">
<b>Next step:</b> {escape(a.action)} <span style="{MUTED}">— {escape(a.owner)}</span></div>
</td></tr></table></td></tr>"""


def _section(title: str) -> str:
    return (
        f'<tr><td style="padding:18px 16px 4px 16px;{FONT}font-size:17px;font-weight:bold;color:#1f2933;">'
        f"{escape(title)}</td></tr>"
    )


def _note(text: str) -> str:
    return f'<tr><td style="padding:6px 16px;{FONT}font-size:13px;{MUTED}">{escape(text)}</td></tr>'


def _improved_html(d: OwnerDigest, run: Digests) -> str:
    if not d.improved:
        return _note(
            "No account's renewal likelihood rose past the threshold."
            if run.previous
            else "No earlier snapshot to compare with."
        )
    cell = f'style="padding:6px 8px;border-top:1px solid #e4e7eb;{FONT}font-size:13px;" valign="top"'
    head = "".join(
        f'<th align="left" style="padding:6px 8px;{FONT}font-size:12px;{MUTED}">{h}</th>'
        for h in ("Account", "Renewal likelihood", "Tier", "What helped")
    )
    rows = "".join(
        f"<tr><td {cell}>{escape(_who(a))}</td>"
        f"<td {cell}>{a.previous_likelihood:.0%} → <b>{a.renewal_likelihood:.0%}</b> (+{a.change * 100:.0f} pts)</td>"
        f"<td {cell}>{_badge(a.risk_tier, a.risk_tier)}</td><td {cell}>{escape(a.because or '')}</td></tr>"
        for a in d.improved
    )
    more = _note(f"…and {d.more_improved} more.") if d.more_improved else ""
    return (
        f'<tr><td style="padding:0 8px;"><table role="presentation" width="100%" cellpadding="0" '
        f'cellspacing="0">{head and f"<tr>{head}</tr>"}{rows}</table></td></tr>{more}'
    )


def digest_html(d: OwnerDigest, run: Digests) -> str:
    title, sub = _heading(d, run)
    n_risk, n_up = len(d.at_risk) + d.more_at_risk, len(d.improved) + d.more_improved
    n_opp = len(d.opportunities) + d.more_opportunities
    new = d.new_at_risk
    tiles = "".join(
        f'<td align="center" style="padding:10px;{FONT}"><div style="font-size:26px;font-weight:bold;color:{c};">'
        f'{n}</div><div style="font-size:12px;{MUTED}">{escape(label)}</div></td>'
        for n, label, c in (
            (n_risk, f"accounts to call ({new} new)", "#b42318"),
            (n_opp, "expansion opportunities", "#1e6b34"),
            (n_up, "improved", "#1a4d8f"),
            (d.accounts, "accounts owned", "#1f2933"),
        )
    )
    parts = [_section("Accounts to call, most urgent first")]
    parts += [_account_html(i, a, "renewal", run) for i, a in enumerate(d.at_risk, 1)] or [_note("None this week.")]
    if d.more_at_risk:
        parts.append(_note(f"…and {d.more_at_risk} more flagged accounts (radar alerts lists them all)."))
    parts.append(_section("Expansion opportunities"))
    parts += [_account_html(i, a, "upsell", run) for i, a in enumerate(d.opportunities, 1)] or [
        _note("None this week.")
    ]
    if d.more_opportunities:
        parts.append(_note(f"…and {d.more_opportunities} more."))
    parts.append(_section(f"Improved since {run.previous}" if run.previous else "Improved"))
    parts.append(_improved_html(d, run))
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · week ending {run.week_end}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f5f7;"><tr>
<td align="center" style="padding:16px 8px;">
<table role="presentation" width="680" cellpadding="0" cellspacing="0" style="width:100%;max-width:680px;
background:#ffffff;border:1px solid #dde1e6;{FONT}font-size:14px;color:#1f2933;">
<tr><td style="padding:18px 16px 6px 16px;background:#1a4d8f;color:#ffffff;{FONT}">
<div style="font-size:12px;letter-spacing:1px;">ACCOUNT RADAR</div>
<div style="font-size:22px;font-weight:bold;margin-top:2px;">{escape(title)}</div>
<div style="font-size:13px;margin:4px 0 10px 0;">{escape(sub)}</div></td></tr>
<tr><td style="padding:4px 8px;"><table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr>
{tiles}</tr></table></td></tr>
{body}
<tr><td style="padding:16px;border-top:1px solid #e4e7eb;{FONT}font-size:11px;{MUTED}">{escape(_footer(run))}</td></tr>
</table></td></tr></table>
</body></html>
"""


def write_digests(run: Digests, folder: Path) -> list[tuple[OwnerDigest, Path, Path]]:
    """Write `<slug>.html` and `<slug>.md` per owner into `folder`; (digest, html, md) each."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for d in run.owners:
        html, md = folder / f"{d.slug}.html", folder / f"{d.slug}.md"
        html.write_text(digest_html(d, run), encoding="utf-8")
        md.write_text(digest_markdown(d, run), encoding="utf-8")
        written.append((d, html, md))
    return written
