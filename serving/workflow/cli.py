"""`radar` commands for the CS team's workflow: alerts, the weekly digest, the leadership drivers report, the backtest and monitoring."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer

from features.ingest import WorkspaceBusy, workspace_lock
from radar.console import console, date_option
from radar.console import fail as _fail
from radar.settings import Settings
from serving.scoring.batch import partial_note
from serving.scoring.decisions import pct, times_typical

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
    """Alerts: indicators below their expected level, churn risk rises, red feedback escalations, risk tiers and
    expansion opportunities, grouped into one alert per account, in call-list order, at most
    alerts.max_per_owner per CSM owner; each with its insight score, routing, owner and evidence."""
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
            markup=False,
        )
        return
    try:
        if action == "list":
            _print_alert_states(alert_states(settings, None if show_all else ("open", "snoozed", "closed")), limit)
            return
        with workspace_lock(settings.database_path, "alerts run", settings.ingest.lock_wait_seconds):
            run, delivery = _run_alerts(settings, date_option(as_of, "--as-of"), webhook, quiet=json_out)
            slack = _post_slack(settings, run)
    except (AlertError, PlaybookError, ValueError, FileNotFoundError, WorkspaceBusy) as exc:
        raise _fail(str(exc)) from exc
    if json_out:
        import json

        typer.echo(json.dumps(run.document(), indent=2, ensure_ascii=False))
    else:
        _print_alerts(run, show_all, limit)
    if slack is not None:
        line = f"Slack {slack.endpoint}: {len(slack.posted)} owner messages posted, {len(slack.already)} posted earlier"
        for text in [line] + [f"  not posted for {owner}: {why}" for owner, why in slack.failed]:
            if json_out:
                typer.echo(text, err=True)
            else:
                console.print(text, highlight=False, markup=False)
    if delivery is not None:
        _print_delivery(delivery, json_out)
    if (delivery is not None and not delivery.ok) or (slack is not None and not slack.ok):
        raise typer.Exit(1)


def _post_slack(settings: Settings, run):
    """The run's open alerts to slack.webhook_url, one message per CSM owner (None when not configured)."""
    from serving.workflow.alerts import workspace
    from serving.workflow.slack import post_alerts

    if settings.slack.webhook_url is None:
        return None
    with workspace(settings, read_only=False) as con:
        return post_alerts(
            run.alerts, run.as_of, settings.slack.webhook_url.get_secret_value(), settings.slack, settings.alerts, con
        )


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

    from serving.scoring.decisions import pct, times_typical
    from serving.workflow.insight import ROUTES

    shown = run.with_status("new", "open") if show_all else run.with_status("new")
    counts = run.counts()
    table = Table(
        title=f"{'Open' if show_all else 'New'} alerts at {run.as_of} (scores of {run.scores_as_of})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    widest = max((len(a.key) for a in shown[:limit]), default=3)
    for col in ("insight", "route", "account", "churn risk", "alert", "owner", "key"):
        table.add_column(
            col,
            justify="right" if col in ("insight", "churn risk") else "left",
            no_wrap=col in ("insight", "route", "key"),
            min_width=widest if col == "key" else None,
        )
    for a in shown[:limit]:
        style = ROUTE_STYLE[a.routing]
        risk = "" if a.churn_risk is None else f"{pct(a.churn_risk)} ({times_typical(a.churn_lift)})"
        if a.expected_mrr_loss:
            risk += f"\n[dim]{a.expected_mrr_loss:,.0f} expected MRR lost[/dim]"
        table.add_row(
            f"{a.insight_score:.2f}",
            f"[{style}]{a.routing}[/{style}]" + ("\n[dim]capped[/dim]" if a.capped else ""),
            escape(a.account_name or a.account_id),
            risk,
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
    owners = run.per_owner()
    if owners:
        console.print(
            "Open alerts per CSM owner: "
            + ", ".join(f"{name or '(no CSM owner)'} {_owner_counts(n)}" for name, n in owners.items())
            + ".",
            highlight=False,
            markup=False,
        )
    if counts["capped"]:
        console.print(
            f"{counts['capped']:,} alerts past the cap"
            + (f" of {run.max_per_owner:,}" if run.max_per_owner else "")
            + " per CSM owner wait in the review queue (marked capped; alerts.max_per_owner).",
            highlight=False,
        )
    if run.previous is not None:
        console.print(f"Churn risk rise: scores of {run.scores_as_of} compared with {run.previous}.", highlight=False)
    else:
        console.print("Churn risk rise: no earlier snapshot in the lookback window, not evaluated.", highlight=False)
    if run.path is not None:
        console.print(f"JSON with evidence, actions and owners: {run.path}", highlight=False, markup=False)


def _owner_counts(n: dict[str, int]) -> str:
    """ "10 (+5 capped, 2 tagged for later, 3 opportunities)": one CSM owner's open risk alerts
    within and past the cap, and its expansion opportunities."""
    more = [f"+{n['capped']:,} capped"] if n["capped"] else []
    more += [f"{n['tagged']:,} tagged for later"] if n["tagged"] else []
    more += [f"{n['opportunities']:,} opportunities"] if n.get("opportunities") else []
    return f"{n['alerts']:,}" + (f" ({', '.join(more)})" if more else "")


def _print_delivery(report, to_stderr: bool) -> None:
    lines = [
        f"webhook {report.endpoint}: {len(report.sent):,} sent, {report.already:,} already delivered "
        f"earlier, {report.requests:,} requests"
    ]
    lines += [f"  not delivered: {key} ({why})" for key, why in report.rejected[:10]]
    if report.capped:
        lines.append(f"  held back: {report.capped:,} alerts past their CSM owner's cap (sent once within it)")
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
        if r.get("assignee"):
            why += f"\n[dim]assigned to {escape(r['assignee'])}[/dim]"
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
            "on the first digest.week_ends day (Sunday) on or after that snapshot (default: the latest snapshot); "
            "a date past that week (no snapshot of its own) is refused."
        ),
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only this CSM owner's digest (name as in csm_owner).")] = None,
    include_partial: Annotated[
        bool, typer.Option("--include-partial", help="Let partial as-of dates be picked (skipped by default).")
    ] = False,
    send: Annotated[
        bool,
        typer.Option("--send", help="Also e-mail each owner's digest (the [mail] settings), once per owner and week."),
    ] = False,
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
    if note := partial_note(settings, day, include_partial):
        console.print(note, highlight=False, markup=False)
    try:
        with console.status("scoring the week's snapshot and evaluating the alert rules"):
            run = build_digests(settings, models, day, owner, now=datetime.now(UTC), include_partial=include_partial)
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
    if send:
        _send_digests(settings, run)


def _send_digests(settings: Settings, run) -> None:
    """`radar digest --send`: e-mail the digests not sent yet for their week, under the workspace lock."""
    from serving.workflow.alerts import workspace
    from serving.workflow.mail import MailError, send_digests

    try:
        with (
            workspace_lock(settings.database_path, "digest --send", settings.ingest.lock_wait_seconds),
            console.status("e-mailing the digests"),
            workspace(settings, read_only=False) as con,
        ):
            report = send_digests(run, settings.mail, con)
    except (MailError, WorkspaceBusy, ValueError) as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"e-mailed via {report.server}: {len(report.sent)} sent, {len(report.already)} sent earlier for this week"
        + (f"; no address for {', '.join(report.no_address)}" if report.no_address else ""),
        highlight=False,
        markup=False,
    )
    for owner, why in report.refused:
        console.print(f"  not sent to {owner}: {why}", highlight=False, markup=False)
    if report.refused:
        raise typer.Exit(1)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Today (YYYY-MM-DD, default: the current date): the run is for the week of the Monday on or before it.",
        ),
    ] = None,
) -> None:
    """The week's whole job, for cron or a systemd timer: ingest the source folder when it changed (run.source_dir),
    build the weekly snapshots, score into the CRM table, raise and deliver the alerts (webhook, Slack), write and
    e-mail the digests, refresh the monitoring report. Idempotent: a finished week does nothing; a failed or
    killed run resumes at the step that did not finish."""
    from datetime import datetime

    from serving.workflow.weekly import RunFailed, WorkspaceBusy, run_week

    settings = _settings(ctx)
    now = datetime.now(UTC)
    today = date_option(day, "--date") or now.date()
    mark = {"done": "[green]done[/green]", "skipped": "[dim]skipped[/dim]", "earlier": "[dim]done earlier[/dim]"}

    def shown(outcome) -> None:
        if outcome.status == "failed":
            return
        took = f" ({outcome.seconds:.1f}s)" if outcome.status != "earlier" else ""
        console.print(f"{outcome.step:>8} {mark[outcome.status]}{took}: ", end="", highlight=False)
        console.print(outcome.detail, highlight=False, markup=False)

    try:
        with console.status("starting") as status:
            report = run_week(settings, today, now=now, progress=status.update, on_step=shown)
    except (RunFailed, WorkspaceBusy) as exc:
        raise _fail(str(exc)) from exc
    if report.nothing_to_do:
        console.print(f"The week of {report.week} was already run: nothing to do.", highlight=False)
    else:
        console.print(f"The week of {report.week} is done.", highlight=False)


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
    include_partial: Annotated[
        bool,
        typer.Option("--include-partial", help="Let partial as-of dates be the report's date or a quarter's."),
    ] = False,
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
    if note := partial_note(settings, day, include_partial):
        console.print(note, highlight=False, markup=False)
    try:
        with console.status("explaining the portfolio at each quarter's snapshot"):
            report = drivers_report(
                settings, models, day, quarters, now=datetime.now(UTC), include_partial=include_partial
            )
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
    for col in ("account", "owner", "MRR", "NPS", "churn risk", "latest positive quote"):
        table.add_column(col, justify="right" if col in ("MRR", "NPS", "churn risk") else "left")
    for r in adv.head(10).itertuples():
        quote = next(iter(report.quotes.get(r.account_id, [])), None)
        table.add_row(
            escape(str(r.name or r.account_id)),
            escape(str(r.csm_owner or "")),
            f"{float(r.mrr):,.0f}",
            f"{r.nps_latest:.0f}",
            f"{pct(r.churn_risk)} ({times_typical(r.churn_lift)})",
            escape(f"“{quote.text}” ({quote.channel}, {quote.date})") if quote else "",
        )
    console.print(table)


@app.command("backtest")
def backtest_cmd(
    ctx: typer.Context,
    dates: Annotated[int, typer.Option("--dates", min=1, max=60, help="Last labelled as-of dates replayed.")] = 6,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON on stdout instead of tables.")
    ] = False,
    sweep: Annotated[
        bool, typer.Option("--sweep", help="Also print flagged share and recall for a grid of (red_lift, yellow_lift).")
    ] = False,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the run to MLflow (experiment radar-backtest).")
    ] = True,
) -> None:
    """Backtest: the tiers, alerts and call list replayed on the last labelled as-of dates, against who churned
    within 90 days; beside the health score and the previous fixed cut-offs."""
    import json

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from serving.scoring.decisions import NoBaseRate
    from serving.scoring.playbook import PlaybookError
    from serving.workflow.alert_rules import AlertError
    from serving.workflow.backtest import BacktestError, log_backtest, run_backtest, save_latest
    from training.quiet import quiet_mlflow

    settings = _settings(ctx)
    models = _champions_for(settings)
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} dates"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=json_out,
        ) as bar:
            task = bar.add_task("reading the workspace", total=None)
            result = run_backtest(
                settings,
                models,
                dates,
                progress=lambda done, total, text: bar.update(task, completed=done, total=total, description=text),
            )
        if log:
            with quiet_mlflow():
                log_backtest(result, settings)
        document = result.document()
        path = save_latest(document, settings.output_dir)
    except (BacktestError, AlertError, PlaybookError, NoBaseRate, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if json_out:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        return
    _print_backtest(document, sweep)
    console.print(
        f"Saved: {path}" + (f"; MLflow run {result.mlflow_run} ({result.run_name})" if result.mlflow_run else ""),
        highlight=False,
        markup=False,
    )


SAMPLE_SHORT = {"in-sample": "in", "out-of-sample": "out", "label overlap": "overlap", "before training": "before"}


def _pct(v, digits: int = 0) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def _days(v) -> str:
    return "–" if v is None else f"{v:.0f} d"


def _print_backtest(doc: dict, with_sweep: bool) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    s = doc["settings"]
    renewal = doc["models"]["renewal"]
    console.print(
        f"[bold]Backtest {doc['span']}[/bold]: {renewal['name']} v{renewal['version']} (base rate "
        f"{_pct(renewal['base_rate'], 1)}); red at {s['red_lift']:g}x, yellow at {s['yellow_lift']:g}x the base rate "
        f"(floor {_pct(s['risk_floor'], 0)}). Churned = churned within {s['horizon_days']} days of the date.",
        highlight=False,
    )
    table = Table(title="Per date", title_justify="left", box=box.SIMPLE_HEAD)
    for col in (
        "as of",
        "sample",
        "accts",
        "churn",
        "red",
        "yellow",
        "caught r/y",
        "recall",
        "prec r/y",
        "top10",
        "health",
        "fixed",
    ):
        table.add_column(col, justify="left" if col in ("as of", "sample") else "right", no_wrap=True)
    for d in doc["dates"]:
        f, m = d["figures"], d["figures"]["model"]
        table.add_row(
            d["as_of"],
            SAMPLE_SHORT.get(d["sample"], d["sample"]),
            f"{f['accounts']:,}",
            f"{f['churners']:,}",
            f"{m['red']['accounts']:,} {_pct(m['red']['share'], 1)}",
            f"{m['yellow']['accounts']:,} {_pct(m['yellow']['share'], 1)}",
            f"{m['red']['churned']:,}/{m['yellow']['churned']:,}",
            _pct(m["flagged"]["recall"]),
            f"{_pct(m['red']['precision'])}/{_pct(m['yellow']['precision'])}",
            _pct(f["top10"]["model"]["share"]),
            _pct(f["health"]["flagged"]["recall"]),
            _pct(f["fixed"]["flagged"]["recall"]),
        )
    console.print(table)
    console.print(
        "sample (for the churn model): in = fitted or calibrated on, out = after all its labels, overlap = in "
        "between; churn: accounts that churned within the horizon; caught r/y: churners flagged red/yellow; "
        "recall: by red + yellow; prec: the share of red/yellow accounts that churned; top10: churned MRR in each "
        "CSM's top 10 of the call list; health, fixed: the recall of the health score (as many flagged) and of "
        "the previous fixed cut-offs.",
        highlight=False,
    )
    scopes = [("all", "all dates"), ("out_of_sample", "out-of-sample dates only")]
    for key, words in scopes:
        if key not in doc["overall"]:
            continue
        o = doc["overall"][key]
        table = Table(
            title=f"Overall, {words} ({len(o['dates'])} dates, {o['accounts']:,} account-dates, "
            f"{o['churners']:,} churners, {_pct(o['churn_rate'], 1)})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("")
        for col in ("model (lifts)", "health score", "fixed cut-offs"):
            table.add_column(col, justify="right")
        model, health, fixed = o["model"], o["health"], o["fixed"]
        lead = o["lead_days"]

        def cell(v: dict) -> str:
            return f"{v['accounts']:,} ({_pct(v['share'], 1)})"

        rows = [
            ("flagged red", cell(model["red"]), "", cell(fixed["red"])),
            ("flagged yellow", cell(model["yellow"]), "", cell(fixed["yellow"])),
            ("flagged red + yellow", cell(model["flagged"]), cell(health["flagged"]), cell(fixed["flagged"])),
            (
                "churners caught (recall)",
                f"{model['flagged']['churned']:,} ({_pct(model['flagged']['recall'])})",
                f"{health['flagged']['churned']:,} ({_pct(health['flagged']['recall'])})",
                f"{fixed['flagged']['churned']:,} ({_pct(fixed['flagged']['recall'])})",
            ),
            (
                "  caught by red",
                f"{model['red']['churned']:,} ({_pct(model['red']['recall'])})",
                "",
                f"{fixed['red']['churned']:,}",
            ),
            (
                "  caught by yellow",
                f"{model['yellow']['churned']:,} ({_pct(model['yellow']['recall'])})",
                "",
                f"{fixed['yellow']['churned']:,}",
            ),
            (
                "precision red / yellow",
                f"{_pct(model['red']['precision'])} / {_pct(model['yellow']['precision'])}",
                "",
                f"{_pct(fixed['red']['precision'])} / {_pct(fixed['yellow']['precision'])}",
            ),
            (
                "precision red + yellow",
                _pct(model["flagged"]["precision"]),
                _pct(health["flagged"]["precision"]),
                _pct(fixed["flagged"]["precision"]),
            ),
            (
                "churned MRR in each CSM's top 10",
                _pct(o["top10"]["model"]["share"]),
                _pct(o["top10"]["health"]["share"]),
                "",
            ),
        ]
        for kind in ("all", "monthly", "annual"):
            values = [lead[r].get(kind) for r in ("model", "health", "fixed")]
            if values[0] is None:
                continue
            rows.append(
                (
                    f"median lead, {kind} contracts" if kind != "all" else "median lead (first flag → churn)",
                    *(f"{_days(v['median_days'])} ({v['flagged']}/{v['churns']})" for v in values),
                )
            )
        opp = o["opportunities"]
        rows.append(
            (
                "opportunities (expanded)",
                f"{opp['model']['accounts']:,} ({_pct(opp['model']['precision'])})",
                "",
                f"{opp['fixed']['accounts']:,} ({_pct(opp['fixed']['precision'])})",
            )
        )
        for row in rows:
            table.add_row(*row)
        console.print(table)
        if "alerts" in o:
            a = o["alerts"]
            t = Table(
                title=f"Alerts ({words}): share of alerted accounts that churned within 90 days",
                title_justify="left",
                box=box.SIMPLE_HEAD,
            )
            for col in ("routing", "alerts", "accounts", "churned", "precision"):
                t.add_column(col, justify="left" if col == "routing" else "right")
            for r in ("meeting", "review", "review_capped", "tag", "any"):
                v = a.get(r)
                if v is None:
                    continue
                t.add_row(
                    {"any": "any risk alert", "review_capped": "  of which past the owner's cap"}.get(r, r),
                    f"{v['alerts']:,}",
                    f"{v['accounts']:,}",
                    f"{v['churned']:,}",
                    _pct(v["precision"]),
                )
            e = a["expansion"]
            t.add_row("expansion (expanded)", "", f"{e['accounts']:,}", f"{e['expanded']:,}", _pct(e["precision"]))
            console.print(t)
            if a.get("capped"):
                console.print(
                    f"{a['capped']:,} alerts (risk and expansion) past the per-owner cap waited in the review queue.",
                    highlight=False,
                )
    table = Table(
        title="Churned MRR caught by each CSM's top 10 (all dates)", title_justify="left", box=box.SIMPLE_HEAD
    )
    for col in ("CSM owner", "churned MRR", "model top 10", "health top 10"):
        table.add_column(col, justify="left" if col == "CSM owner" else "right")
    for owner, v in doc["owners"].items():
        total = v["churned_mrr"]
        table.add_row(
            escape(owner),
            f"{total:,.0f}",
            f"{v['model']:,.0f} ({_pct(v['model'] / total if total else None)})",
            f"{v['health']:,.0f} ({_pct(v['health'] / total if total else None)})",
        )
    console.print(table)
    console.print(
        f"Lead times: every snapshot date from {s['lookback_days']} days before the first date to the last churn "
        f"was scored ({len(doc['scored_dates'])} dates); churn dates from {doc['churn_source']}.",
        highlight=False,
    )
    if with_sweep and doc.get("sweep"):
        rows = doc["sweep"]
        oos = "oos_recall" in rows[0]
        t = Table(title="Sweep over all dates (the floor applies)", title_justify="left", box=box.SIMPLE_HEAD)
        cols = ["red lift", "yellow lift", "red share", "flagged share", "red recall", "recall", "precision"]
        cols += ["oos flagged", "oos recall"] if oos else []
        for col in cols:
            t.add_column(col, justify="right")
        for r in rows:
            current = r["red_lift"] == s["red_lift"] and r["yellow_lift"] == s["yellow_lift"]
            cells = [
                f"{r['red_lift']:g}x",
                f"{r['yellow_lift']:g}x",
                _pct(r["red_share"], 1),
                _pct(r["flagged_share"], 1),
                _pct(r["red_recall"]),
                _pct(r["recall"]),
                _pct(r["precision"]),
            ]
            cells += [_pct(r["oos_flagged_share"], 1), _pct(r["oos_recall"])] if oos else []
            t.add_row(*cells, style="bold" if current else None)
        console.print(t)


@app.command("monitor")
def monitor_cmd(
    ctx: typer.Context,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout instead of tables.")
    ] = False,
    log: Annotated[
        bool, typer.Option("--log/--no-log", help="Log the run to MLflow (experiment radar-monitor).")
    ] = True,
) -> None:
    """Monitoring: the stored scores against the outcomes now known (calibration by decile, ROC-AUC, PR-AUC,
    the call list's figures per scored date), the drift of the model inputs since the training window, and
    whether to retrain (which threshold fired)."""
    import json

    from serving.workflow.monitor import MonitorError, log_monitor, run_monitor, save_latest
    from training.quiet import quiet_mlflow

    settings = _settings(ctx)
    models = _champions_for(settings)
    try:
        with quiet_mlflow(), console.status("reading the workspace") as status:
            report = run_monitor(settings, models, progress=lambda text: status.update(text))
            if log:
                status.update("logging to MLflow")
                log_monitor(report, settings)
        path = save_latest(report, settings.output_dir)
    except (MonitorError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    document = report.document()
    if json_out:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))
        return
    _print_monitor(document)
    console.print(
        f"Saved: {path}" + (f"; MLflow run {report.mlflow_run} ({report.run_name})" if report.mlflow_run else ""),
        highlight=False,
        markup=False,
    )


def _auc(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _print_monitor(doc: dict) -> None:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    s = doc["settings"]
    renewal = doc["models"].get("renewal", {})
    console.print(
        f"[bold]Monitoring at {doc['latest_snapshot']}[/bold]: champion {escape(str(renewal.get('name')))} "
        f"v{escape(str(renewal.get('version')))} (trained on {escape(str(renewal.get('trained_on') or 'unknown dates'))}).",
        highlight=False,
    )
    if doc["dates"]:
        table = Table(
            title="Stored scores against the outcomes now known (churn / expansion within 90 days)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for col in (
            "as of",
            "sample",
            "accts",
            "churn pred/real",
            "ECE",
            "ROC-AUC",
            "PR-AUC (churners)",
            "caught (recall)",
            "top10 MRR",
            "expansion pred/real",
            "ROC-AUC",
        ):
            table.add_column(col, justify="left" if col in ("as of", "sample") else "right", no_wrap=True)
        for d in doc["dates"]:
            c, e, cl = d["churn"], d["expansion"], d["call_list"] or {}
            table.add_row(
                d["as_of"],
                SAMPLE_SHORT.get(d["sample"], d["sample"]),
                f"{d['accounts']:,}",
                f"{_pct(c.get('predicted_rate'), 1)} / {_pct(c.get('realised_rate'), 1)}",
                _auc(c.get("ece")),
                _auc(c.get("roc_auc")),
                f"{_auc(c.get('pr_auc'))} ({c.get('positives', 0):,})",
                f"{cl.get('caught', 0):,}/{cl.get('churners', 0):,} ({_pct(cl.get('recall'))})",
                _pct(cl.get("top10_share")),
                f"{_pct(e.get('predicted_rate'), 1)} / {_pct(e.get('realised_rate'), 1)}",
                _auc(e.get("roc_auc")),
            )
        console.print(table)
        console.print(
            "pred/real: the mean predicted probability and the share that happened; ECE: expected calibration error "
            "over 10 equal-frequency bins; caught: churners flagged red or yellow; top10 MRR: churned MRR in each "
            "CSM's top 10 of the call list. The reliability plot by decile is saved beside the report.",
            highlight=False,
        )
    for w in doc["awaiting"]:
        console.print(
            f"{w['as_of']}: {w['accounts']:,} accounts scored, outcomes known after {w['known_after']}.",
            highlight=False,
        )
    drift = doc["drift"]
    if drift.get("train_window") and drift.get("top_movers"):
        console.print(
            f"[bold]Drift[/bold] of the model inputs: training window {drift['train_window']} "
            f"({drift['train_rows']:,} rows) vs {', '.join(drift['recent_dates'])} ({drift['recent_rows']:,} rows). "
            f"Largest population stability index (PSI; above 0.25 a large shift):",
            highlight=False,
        )
        for m in drift["top_movers"]:
            rank = f" [importance rank {m['rank']}]" if m.get("rank") else ""
            console.print(f"  - {m['sentence']}{rank}", highlight=False, markup=False)
    for note in doc["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False)
    retrain = doc["retrain"]
    if retrain["recommended"]:
        console.print("[bold red]Retraining recommended[/bold red]: a threshold was crossed.", highlight=False)
        for reason in retrain["reasons"]:
            console.print(f"  - {reason}", highlight=False, markup=False)
    else:
        console.print(
            f"[bold green]No retraining needed[/bold green]: no threshold crossed (monitor.psi_retrain "
            f"{s['psi_retrain']:g}, max_calibration_error {s['max_calibration_error']:g}, max_auc_drop "
            f"{s['max_auc_drop']:g}).",
            highlight=False,
        )
    for check in retrain["checks"]:
        if not check["fired"]:
            console.print(f"  - {check['text']}", highlight=False, markup=False)
