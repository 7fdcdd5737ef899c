"""`radar` commands for the CS team's workflow: alerts, the weekly digest and the leadership drivers report."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer

from radar.console import console, date_option
from radar.console import fail as _fail
from radar.settings import Settings

app = typer.Typer()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


ALERT_ACTIONS = ("run", "list", "snooze", "close", "reopen")
ROUTE_STYLE = {"meeting": "bold red", "review": "yellow", "tag": "dim"}


@app.command("alerts")
def alerts_cmd(
    ctx: typer.Context,
    action: Annotated[
        str,
        typer.Argument(
            help="run (default): evaluate the alert rules; list: the stored alerts and their state; "
            "snooze KEY --until DATE --reason TEXT; close KEY --reason TEXT; reopen KEY."
        ),
    ] = "run",
    key: Annotated[str | None, typer.Argument(help="The alert's key (snooze, close, reopen).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Date of the run: feedback up to the day before counts; scores and indicators come from the latest "
            "snapshot on or before it (default: the latest snapshot date)."
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON on stdout instead of a table.")
    ] = False,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="run: also show alerts still open from earlier runs; list: also resolved ones."),
    ] = False,
    limit: Annotated[int, typer.Option(min=0, help="Alerts shown in the table (all are in the JSON file).")] = 30,
    webhook: Annotated[
        str | None,
        typer.Option(help="POST the open alerts not delivered yet to this URL (default: alerts.webhook_url)."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="snooze: hold the alert back until this date (YYYY-MM-DD).")] = None,
    reason: Annotated[str | None, typer.Option(help="snooze, close, reopen: why (kept with the alert).")] = None,
) -> None:
    """Alerts: indicators below their expected level, renewal drops, red feedback escalations, risk tiers and
    expansion opportunities, each with its insight score, routing, owner and evidence."""
    from datetime import datetime

    from serving.scoring.playbook import PlaybookError
    from serving.workflow.alert_rules import AlertError
    from serving.workflow.alerts import alert_states, change_alert

    settings = _settings(ctx)
    if action not in ALERT_ACTIONS:
        raise typer.BadParameter(f"'{action}' is not one of {', '.join(ALERT_ACTIONS)}", param_hint="ACTION")
    if action in ("snooze", "close", "reopen"):
        if not key:
            raise typer.BadParameter(
                f"{action} needs the alert's KEY (`radar alerts list` shows them)", param_hint="KEY"
            )
        status = {"snooze": "snoozed", "close": "closed", "reopen": "open"}[action]
        try:
            change_alert(
                settings, key, status, reason=reason, until=date_option(until, "--until"), now=datetime.now(UTC)
            )
        except AlertError as exc:
            raise _fail(str(exc)) from exc
        console.print(
            f"{key}: {status}"
            + (f" until {until}" if until and status == "snoozed" else "")
            + (f" ({reason})" if reason else ""),
            highlight=False,
        )
        return
    try:
        if action == "list":
            _print_alert_states(alert_states(settings, None if show_all else ("open", "snoozed", "closed")), limit)
            return
        run, delivery = _run_alerts(settings, date_option(as_of, "--as-of"), webhook, quiet=json_out)
    except (AlertError, PlaybookError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if json_out:
        import json

        typer.echo(json.dumps(run.document(), indent=2, ensure_ascii=False))
    else:
        _print_alerts(run, show_all, limit)
    if delivery is not None:
        _print_delivery(delivery, json_out)
        if not delivery.ok:
            raise typer.Exit(1)


def _run_alerts(settings: Settings, as_of, webhook: str | None, quiet: bool):
    """(the run, the webhook delivery report or None): models, rules, state, JSON file, webhook."""
    import contextlib
    from datetime import datetime

    from serving.scoring.champions import NoChampion, load_champions
    from serving.workflow.alert_rules import AlertError
    from serving.workflow.alerts import deliver_alerts, run_alerts
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    def status(text: str):
        return contextlib.nullcontext() if quiet else console.status(text)

    url = webhook or (settings.alerts.webhook_url.get_secret_value() if settings.alerts.webhook_url else None)
    if url is not None and not url.startswith(("http://", "https://")):
        raise AlertError("the webhook must be an http:// or https:// URL")
    now = datetime.now(UTC)
    try:
        with quiet_mlflow(), status("loading the champion models"):
            models = load_champions(settings)
    except (NoChampion, TrackingUnavailable) as exc:
        raise AlertError(str(exc)) from exc
    with status("scoring the recent snapshots and evaluating the alert rules"):
        run = run_alerts(settings, models, as_of, now=now)
    if url is None:
        return run, None
    with status("posting the alerts to the webhook"):
        return run, deliver_alerts(run, settings, url, now=now)


def _print_alerts(run, show_all: bool, limit: int) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from serving.workflow.insight import ROUTES

    shown = run.with_status("new", "open") if show_all else run.with_status("new")
    counts = run.counts()
    table = Table(
        title=f"{'Open' if show_all else 'New'} alerts at {run.as_of} (scores of {run.scores_as_of})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    widest = max((len(a.key) for a in shown[:limit]), default=3)
    for col in ("insight", "route", "account", "alert", "owner", "key"):
        table.add_column(
            col,
            justify="right" if col == "insight" else "left",
            no_wrap=col in ("insight", "route", "key"),
            min_width=widest if col == "key" else None,
        )
    for a in shown[:limit]:
        style = ROUTE_STYLE[a.routing]
        table.add_row(
            f"{a.insight_score:.2f}",
            f"[{style}]{a.routing}[/{style}]",
            escape(a.account_name or a.account_id),
            escape(a.title),
            escape(a.owner) + (f"\n[dim]{escape(a.csm_owner)}[/dim]" if a.csm_owner else ""),
            f"[dim]{escape(a.key)}[/dim]",
        )
    if shown:
        console.print(table)
    console.print(
        f"{counts['new']:,} new alerts: {counts['new_meeting']:,} meeting ({ROUTES['meeting']}), "
        f"{counts['new_review']:,} {ROUTES['review']}, {counts['new_tag']:,} {ROUTES['tag']}"
        + (f"; {limit:,} of {len(shown):,} shown (--limit)." if len(shown) > limit else "."),
        highlight=False,
    )
    console.print(
        f"{counts['open']:,} still open from earlier runs (--all shows them), {counts['snoozed']:,} "
        f"snoozed, {counts['closed']:,} closed.",
        highlight=False,
    )
    if run.previous is not None:
        console.print(f"Renewal drop: scores of {run.scores_as_of} compared with {run.previous}.", highlight=False)
    else:
        console.print("Renewal drop: no earlier snapshot in the lookback window, not evaluated.", highlight=False)
    if run.path is not None:
        console.print(f"JSON with evidence, actions and owners: {run.path}", highlight=False)


def _print_delivery(report, to_stderr: bool) -> None:
    lines = [
        f"webhook {report.endpoint}: {len(report.sent):,} sent, {report.already:,} already delivered "
        f"earlier, {report.requests:,} requests"
    ]
    lines += [f"  not delivered: {key} ({why})" for key, why in report.rejected[:10]]
    if report.not_sent:
        lines.append(f"  gave up the endpoint for this run: {report.not_sent:,} alerts wait for the next run")
    for line in lines:
        if to_stderr:
            typer.echo(line, err=True)
        else:
            console.print(line, highlight=False, markup=False)


def _print_alert_states(states, limit: int) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    if states.empty:
        console.print("no stored alerts: run `radar alerts`")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for col in ("key", "status", "last seen", "route", "alert (and why its state changed)"):
        table.add_column(col, no_wrap=col != "alert (and why its state changed)")
    for r in states.head(limit).to_dict("records"):
        until = f" until {str(r['snoozed_until'])[:10]}" if r["snoozed_until"] is not None else ""
        why = f"\n[dim]{r['status']}{until}: {escape(r['reason'])}[/dim]" if r["reason"] else ""
        table.add_row(
            escape(r["key"]),
            r["status"] + until,
            str(r["last_seen_as_of"] or "")[:10],
            r["routing"] or "",
            escape(r["title"] or "") + why,
        )
    console.print(table)
    counts = states["status"].value_counts()
    console.print(
        ", ".join(f"{n:,} {s}" for s, n in counts.items())
        + (f"; the {limit:,} latest changes shown (--limit)" if len(states) > limit else ""),
        highlight=False,
    )


def _champions_for(settings: Settings):
    """The champion models, or a clean exit saying what to run."""
    from serving.scoring.champions import NoChampion, load_champions
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    try:
        with quiet_mlflow(), console.status("loading the champion models"):
            return load_champions(settings)
    except (NoChampion, TrackingUnavailable) as exc:
        raise _fail(str(exc)) from exc


@app.command("digest")
def digest_cmd(
    ctx: typer.Context,
    week: Annotated[
        str | None,
        typer.Option(
            help="A date (YYYY-MM-DD): the digest uses the latest snapshot on or before it and covers the week ending "
            "on the first digest.week_ends day (Sunday) on or after that snapshot (default: the latest snapshot)."
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only this CSM owner's digest (name as in csm_owner).")] = None,
) -> None:
    """Weekly digest per CSM owner: flagged accounts with their top signals, action, owner and renewal trend,
    expansion opportunities and improved accounts, as e-mail-ready HTML and Markdown."""
    from datetime import datetime

    from serving.scoring.playbook import PlaybookError
    from serving.workflow.alert_rules import AlertError
    from serving.workflow.digest import build_digests
    from serving.workflow.digest_render import write_digests

    settings = _settings(ctx)
    day = date_option(week, "--week")
    models = _champions_for(settings)
    try:
        with console.status("scoring the week's snapshot and evaluating the alert rules"):
            run = build_digests(settings, models, day, owner, now=datetime.now(UTC))
        folder = settings.output_dir / "digests" / str(run.week_end)
        with console.status(f"writing {len(run.owners)} digests"):
            written = write_digests(run, folder)
    except (AlertError, PlaybookError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    compared = f", compared with {run.previous}" if run.previous else ""
    console.print(
        f"Digests for the week ending {run.week_end} (scores of the {run.as_of} snapshot{compared}) in {folder}:",
        highlight=False,
        markup=False,
    )
    for d, html, _ in written:
        console.print(f"  {d.owner} ({html.stem}.html, .md): {d.summary()}", highlight=False, markup=False)


@app.command("drivers")
def drivers_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(help="Snapshot date of the report: the latest snapshot on or before it (default: the latest)."),
    ] = None,
    quarters: Annotated[
        int | None, typer.Option(min=1, max=20, help="Quarters of movement shown (default: leadership.quarters).")
    ] = None,
) -> None:
    """Leadership view: top drivers of renewal and expansion per indicator family, how they moved over the last
    quarters, indicators that carry little signal, and advocates (promoters with green health)."""
    from datetime import datetime

    from serving.workflow.alert_rules import AlertError
    from serving.workflow.drivers import drivers_report
    from serving.workflow.drivers_report import write_drivers_report

    settings = _settings(ctx)
    day = date_option(as_of, "--as-of")
    models = _champions_for(settings)
    try:
        with console.status("explaining the portfolio at each quarter's snapshot"):
            report = drivers_report(settings, models, day, quarters, now=datetime.now(UTC))
        md, png = write_drivers_report(report, settings.output_dir / "reports")
    except (AlertError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    _print_drivers(report)
    console.print(f"Report: {md}\nChart: {png}", highlight=False, markup=False)


def _print_drivers(report) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]What drives renewal and expansion[/bold]: {report.accounts:,} accounts at {report.as_of}; "
        f"movement at {', '.join(str(d) for d in report.dates)}",
        highlight=False,
    )
    for target, word in (("renewal", "renewal"), ("upsell", "expansion")):
        table = Table(title=f"Top {report.top_n} drivers of {word}", title_justify="left", box=box.SIMPLE_HEAD)
        table.add_column("#", justify="right")
        table.add_column("indicator family")
        table.add_column("share", justify="right")
        table.add_column(f"lowers {target} for", justify="right")
        table.add_column("share by quarter")
        table.add_column("change", justify="right")
        moved = report.movement(target)
        for r, (_, m) in zip(report.top(target).itertuples(), moved.iterrows(), strict=True):
            shares = " → ".join(
                "–" if m[f"share {d}"] != m[f"share {d}"] else f"{m[f'share {d}']:.1%}" for d in report.dates
            )
            change = "" if m["change"] != m["change"] else f"{m['change'] * 100:+.1f} pts"
            table.add_row(
                str(int(r.rank)), escape(r.family_name), f"{r.share:.1%}", f"{r.lowers_share:.0%}", shares, change
            )
        console.print(table)
        console.print(escape(report.context_line(target)) + ".", highlight=False)
    low = report.low_signal
    if len(low):
        table = Table(
            title=f"Little signal (under {report.threshold:.1%} for both targets): candidates to stop tracking",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for col in ("indicator family", "renewal", "upsell"):
            table.add_column(col, justify="left" if col == "indicator family" else "right")
        for r in low.itertuples():
            table.add_row(escape(r.family_name), f"{r.renewal_share:.1%}", f"{r.upsell_share:.1%}")
        console.print(table)
    else:
        console.print(f"No indicator family under {report.threshold:.1%} for both targets.", highlight=False)
    adv = report.advocates
    table = Table(
        title=f"Advocates: {report.advocates_found:,} promoters with green health and high renewal "
        f"likelihood (top {len(adv):,} by MRR)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("account", "owner", "MRR", "NPS", "renewal", "latest positive quote"):
        table.add_column(col, justify="right" if col in ("MRR", "NPS", "renewal") else "left")
    for r in adv.head(10).itertuples():
        quote = next(iter(report.quotes.get(r.account_id, [])), None)
        table.add_row(
            escape(str(r.name or r.account_id)),
            escape(str(r.csm_owner or "")),
            f"{float(r.mrr):,.0f}",
            f"{r.nps_latest:.0f}",
            f"{r.renewal_likelihood:.0%}",
            escape(f"“{quote.text}” ({quote.channel}, {quote.date})") if quote else "",
        )
    console.print(table)
