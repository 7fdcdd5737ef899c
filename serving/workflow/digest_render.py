"""The weekly digest as files: self-contained HTML for e-mail, and Markdown.

Both are Jinja2 templates in `templates/` (`digest.html`, escaped; `digest.md`, plain
text); this module only supplies their data and a few formatting filters. The HTML holds
everything inline (styles as attributes, trend charts as data:image/png URIs), uses
tables for layout, and links nowhere, so it reads the same in a mail client as in a
browser; for sending, `serving.workflow.mail` turns the data: charts into attached `cid:`
images (web mail clients block data: URIs), the file on disk keeps them inline. Trends are an account's churn risk over the recent snapshots, over the risk-tier
bands (yellow and red from `yellow_lift` and `red_lift` times the base rate), on one
scale for the whole digest so accounts compare; the Markdown shows them as text
sparklines. Data comes from `serving.workflow.digest`; nothing here scores or reads the
workspace.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

import jinja2

from serving.render.charts import png_data_uri, scale_top, sparkline, trend_png
from serving.render.templating import environment
from serving.scoring.decisions import pct as risk_pct
from serving.scoring.decisions import times_typical
from serving.workflow.digest import Digests, FlaggedAccount, ImprovedAccount, OwnerDigest
from serving.workflow.insight import ROUTES

TEMPLATES = Path(__file__).parent / "templates"


def _day(d: date) -> str:
    return f"{d:%A} {d.day} {d:%B %Y}"


def _pct(v: float) -> str:
    return f"{v:.0%}"


def _money(v: float | None) -> str:
    return "MRR n/a" if v is None else f"MRR {v:,.0f}"


def _who(a: FlaggedAccount | ImprovedAccount) -> str:
    return f"{a.name} ({a.account_id})" if a.name else a.account_id


def _route(routing: str | None) -> str:
    return ROUTES.get(routing or "", str(routing))


def _trend_text(trend, top: float) -> str:
    """The trend as a sparkline on 0–`top` with its first and last values, e.g. "▂▅▇ 2.1% → 8.4%"."""
    if not trend:
        return ""
    values = [v for _, v in trend]
    ends = f"{risk_pct(values[0])} → {risk_pct(values[-1])}"
    return f"{sparkline(values, top)} {ends}" if len(values) > 1 else risk_pct(values[0])


def _trend_png(trend, scale: dict) -> str:
    """The trend over the risk-tier bands as a data: URI, to inline in the mail."""
    return png_data_uri(trend_png(trend, scale["yellow_at"], scale["red_at"], top=scale["top"]))


def _scale(d: OwnerDigest, run: Digests) -> dict:
    """Where the tiers start (lifts times the base rate) and one top for every trend of the digest."""
    yellow_at, red_at = run.yellow_lift * run.base_rate, run.red_lift * run.base_rate
    values = [v for a in (*d.at_risk, *d.opportunities, *d.improved) for _, v in a.trend]
    return {"yellow_at": yellow_at, "red_at": red_at, "top": scale_top(values, at_least=1.2 * red_at)}


@cache
def _environment() -> jinja2.Environment:
    env = environment(TEMPLATES)
    env.keep_trailing_newline = True  # the files end with a newline, as written
    env.filters.update(
        pct=_pct,
        risk_pct=risk_pct,
        lift=times_typical,
        money=_money,
        who=_who,
        route=_route,
        trend_text=_trend_text,
        trend_png=_trend_png,
    )
    return env


def _render(template: str, d: OwnerDigest, run: Digests) -> str:
    compared = f", compared with {run.previous}" if run.previous else ""
    lin = run.lineage
    source = "the week's alerts (radar alerts)" if run.source == "alerts" else "the risk tiers and opportunities"
    return (
        _environment()
        .get_template(template)
        .render(
            d=d,
            run=run,
            scale=_scale(d, run),
            title=f"Weekly digest for {d.owner}",
            sub=f"Week ending {_day(run.week_end)} · scores of the {run.as_of} snapshot{compared}",
            footer=(
                f"Account Radar · flagged from {source} · {lin['renewal_model']} v{lin['renewal_model_version']}, "
                f"{lin['upsell_model']} v{lin['upsell_model_version']}"
            ),
        )
    )


def digest_markdown(d: OwnerDigest, run: Digests) -> str:
    return _render("digest.md", d, run)


def digest_html(d: OwnerDigest, run: Digests) -> str:
    return _render("digest.html", d, run)


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
