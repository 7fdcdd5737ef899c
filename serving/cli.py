"""`radar` commands for serving: serve (the HTTP service) and score (batch CRM enrichment).

The CS team's commands (alerts, digest, drivers) are in `serving.workflow.cli`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from radar.console import console, date_option
from radar.console import fail as _fail
from radar.settings import Settings

app = typer.Typer()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: serving.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port, 3000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: serving.workers).")] = None,
) -> None:
    """Start the HTTP service: scores with reasons, rankings, the web pages (/ui/), health and metrics
    (OpenAPI at /docs.json). It switches to a newly promoted champion within serving.champion_poll_seconds."""
    import os
    import sys
    import tempfile

    from serving.scoring.champions import NoChampion, load_champions, versions_of
    from serving.scoring.playbook import PlaybookError, load_playbooks
    from training.outcome import TARGETS
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    settings = _settings(ctx)
    try:  # fail here, clearly, rather than in worker processes after start-up
        load_playbooks(settings.serving.playbooks_file)
        with quiet_mlflow(), console.status("loading the champion models"):
            versions = versions_of(load_champions(settings))  # every file read, as a worker will
    except (NoChampion, TrackingUnavailable, PlaybookError) as exc:  # a damaged registry is a TrackingUnavailable
        raise _fail(str(exc)) from exc
    host = host or settings.serving.host
    port = port or settings.serving.port
    env = dict(os.environ, BENTOML_DO_NOT_TRACK="true", OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    if workers is not None:
        env["RADAR_SERVING__WORKERS"] = str(workers)
    if not settings.database_path.exists():
        console.print(
            f"[yellow]note:[/yellow] no workspace at {escape(str(settings.database_path))}: POST /score works, "
            "the workspace endpoints answer 503 until `radar build-features` has run",
            highlight=False,
        )
    poll = settings.serving.champion_poll_seconds
    console.print(
        f"serving {' and '.join(f'{TARGETS[t].model_name} v{v}' for t, v in versions.items())} on "
        f"http://{host}:{port} (web pages: http://{host}:{port}/ui/; OpenAPI: /docs.json; Ctrl+C stops); "
        + (f"a new champion is picked up within {poll:g} s" if poll else "restart to serve a new champion"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    sys.stdout.flush()
    fd, failures = tempfile.mkstemp(prefix="radar-serve-", suffix=".failures")
    os.close(fd)
    env[START_FAILURES_ENV] = failures
    server = [sys.executable, "-m", "bentoml", "serve", "serving.service:RadarService", "--host", host]
    guard = [sys.executable, "-m", "serving.cli", str(settings.serving.max_worker_start_failures), failures]
    # this process (with the models it loaded) is replaced by a small guard running the server
    os.execve(sys.executable, [*guard, *server, "--port", str(port)], env)


# The service's workers append a line here when they cannot start (serving/service.py, same name).
START_FAILURES_ENV = "ACCOUNT_RADAR_START_FAILURES"
GUARD_POLL_SECONDS = 0.5  # how often the guard counts failed worker starts


def guard_server(limit: int, failures: str, command: list[str]) -> int:
    """Run the server `command` and return its exit status, or stop it and return 1 once
    `limit` worker starts have failed (lines in the file `failures`): the server itself
    would restart failing workers forever. Ctrl+C reaches the server directly (same process
    group); SIGTERM and SIGHUP sent to this process are passed on to it."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    path = Path(failures)
    server = subprocess.Popen(command)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: server.send_signal(signum))
    signal.signal(signal.SIGINT, lambda *_: None)  # the terminal sends it to the server too
    try:
        while True:
            try:
                return server.wait(timeout=GUARD_POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
            if len(lines) >= limit:
                print(
                    f"error: {len(lines)} service workers failed to start; stopping (serving.max_worker_start_failures "
                    f"= {limit}). The last reason: {lines[-1]}",
                    file=sys.stderr,
                    flush=True,
                )
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
                return 1
    finally:
        path.unlink(missing_ok=True)


@app.command()
def score(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Where the CRM table goes: a .parquet or .csv file, 'workspace' (the DuckDB workspace), "
            "a .duckdb file, or a SQLAlchemy URL such as postgresql+psycopg://user@host/db.",
        ),
    ],
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date to score (default: the latest that is not partial).")
    ] = None,
    include_partial: Annotated[
        bool,
        typer.Option(
            "--include-partial",
            help="Let the default be a partial as-of date (one whose active accounts fell sharply, as "
            "build-features reports; skipped by default).",
        ),
    ] = False,
    top: Annotated[int, typer.Option(min=0, help="At-risk accounts and opportunities to print.")] = 5,
    engine: Annotated[
        str,
        typer.Option(
            help="local (this process) or spark (each partition scored on the Spark "
            "executors by the same code; needs the spark extra and Java 17)."
        ),
    ] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL with --engine spark, e.g. local[4] or "
            "spark://host:7077; default from config (spark.master)."
        ),
    ] = None,
) -> None:
    """Score every active account of the workspace and upsert the CRM table (idempotent)."""
    import contextlib

    from features.ingest import WorkspaceBusy, workspace_lock
    from serving.crm.table import crm_frame, workspace_crm_ids
    from serving.crm.write import write_scores
    from serving.scoring.batch import at_risk, load_snapshots, opportunities, partial_note, reading_workspace
    from serving.scoring.champions import NoChampion, load_champions
    from serving.scoring.score import lineage_words, score_frame
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    settings = _settings(ctx)
    day = date_option(as_of, "--as-of")
    target = str(settings.database_path) if to == "workspace" else to
    if engine not in ("local", "spark"):
        raise typer.BadParameter("--engine must be local or spark", param_hint="--engine")
    if engine == "spark":
        _score_on_spark(settings, day, target, spark_master)
        return
    writes_workspace = to == "workspace"
    try:
        with quiet_mlflow(), console.status("loading the champion models"):
            models = load_champions(settings)
        if note := partial_note(settings, day, include_partial):
            console.print(note, highlight=False, markup=False)
        with console.status("reading snapshots"):
            frame, day = load_snapshots(settings, day, include_partial)
            with reading_workspace(settings) as con:
                crm_ids = workspace_crm_ids(con)
        with console.status(f"scoring {len(frame):,} accounts with their drivers"):
            scored = score_frame(frame, models, settings)
        with (
            (
                workspace_lock(settings.database_path, "score --to workspace", settings.ingest.lock_wait_seconds)
                if writes_workspace
                else contextlib.nullcontext()
            ),
            console.status(f"writing the CRM table to {escape(_shown_target(target))}"),
        ):
            report = write_scores(
                crm_frame(scored, settings.serving, crm_ids=crm_ids),
                target,
                change_points=settings.serving.crm_change_points,
            )
    except (NoChampion, TrackingUnavailable, FileNotFoundError, ValueError, WorkspaceBusy) as exc:
        raise _fail(str(exc)) from exc
    lineage = models.lineage
    try:  # the CRM table is written: a report that cannot be printed never fails the run
        console.print(
            f"scored {len(scored):,} accounts at {day} with {lineage_words(lineage)}",
            highlight=False,
            markup=False,
        )
        console.print(
            f"CRM table {_shown_target(target)}: {report.inserted:,} inserted, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged; {_accounts_words(report)}",
            highlight=False,
            markup=False,
        )
        if top:
            _print_ranking(
                "Call list: red and yellow accounts by expected MRR lost in 90 days (MRR x churn risk)",
                at_risk(scored, limit=top),
                "mrr_at_risk",
                "renewal",
            )
            _print_ranking(
                "Top expansion opportunities (by expansion potential)",
                opportunities(scored, limit=top),
                "expansion_potential",
                "upsell",
            )
    except Exception as exc:
        _warn_unprinted(exc)


def _warn_unprinted(exc: Exception) -> None:
    """After a completed write: the rest of the report could not be printed (a warning, exit 0)."""
    import sys

    message = f"warning: the CRM table was written, but printing the report failed: {type(exc).__name__}: {exc}"
    try:
        console.print(message, highlight=False, markup=False)
    except Exception:
        print(message, file=sys.stderr)


def _score_on_spark(settings: Settings, day, target: str, master: str | None) -> None:
    """`radar score --engine spark`: the CRM rows computed on Spark, written like the local ones."""
    from features.spark import SparkUnavailable
    from serving.crm.spark import score_on_spark
    from serving.crm.write import write_scores
    from serving.scoring.champions import NoChampion
    from serving.scoring.score import lineage_words
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    if master is not None:
        settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"master": master})})
    try:
        with quiet_mlflow(), console.status(f"scoring on Spark ({settings.spark.master})"):
            run = score_on_spark(settings, day)
        with console.status(f"writing the CRM table to {escape(_shown_target(target))}"):
            report = write_scores(run.crm, target, change_points=settings.serving.crm_change_points)
    except (NoChampion, TrackingUnavailable, SparkUnavailable, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    lineage = run.lineage
    try:  # the CRM table is written: a report that cannot be printed never fails the run
        console.print(
            f"scored {len(run.crm):,} accounts at {run.as_of} on Spark ({settings.spark.master}) with "
            f"{lineage_words(lineage)}",
            highlight=False,
            markup=False,
        )
        console.print(
            f"CRM table {_shown_target(target)}: {report.inserted:,} inserted, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged; {_accounts_words(report)} (rankings: run without --engine spark)",
            highlight=False,
            markup=False,
        )
    except Exception as exc:
        _warn_unprinted(exc)


def _accounts_words(report) -> str:
    """What the write did to crm_accounts, e.g. 'crm_accounts: 12 changed (1 churned)'."""
    return f"crm_accounts: {report.changed:,} changed ({report.churned:,} churned)"


def _shown_target(target: str) -> str:
    """The target without a password, for printing."""
    from sqlalchemy.engine import make_url

    if "://" in target and not target.startswith("duckdb://"):
        try:
            return make_url(target).render_as_string(hide_password=True)
        except Exception:  # not a SQLAlchemy URL: the writer reports it
            return target
    return target


def _print_ranking(title: str, rows, value_col: str, target: str) -> None:
    """One short card per account: who, how much, the top 3 reasons, the next step."""
    console.print(f"\n[bold]{title}[/bold]" + ("" if len(rows) else ": none"))
    from serving.scoring.decisions import pct

    tier_colour = {"red": "red", "yellow": "yellow", "green": "green"}
    label = {"mrr_at_risk": "expected MRR lost in 90 days"}.get(value_col, value_col.replace("_", " "))
    for rank, r in enumerate(rows.to_dict("records"), start=1):
        tier = r["risk_tier"]
        console.print(
            f"{rank:>2}. [bold]{escape(str(r.get('name') or r['account_id']))}[/bold] ({escape(str(r['account_id']))}) · "
            f"{escape(str(r.get('csm_owner') or 'no owner'))} · {escape(str(r.get('segment') or ''))} — "
            f"MRR {float(r['mrr']):,.0f}, {label} {r[value_col]:,.0f}, [{tier_colour[tier]}]{tier}[/{tier_colour[tier]}] · "
            f"{escape(r['risk_summary'])} · upsell {pct(r['upsell_likelihood'])}",
            highlight=False,
        )
        # what puts the account on this list first: drivers raising its churn risk (or upsell likelihood)
        for d in [d for d in (r[f"{target}_drivers"] or []) if d["contribution"] > 0][:3]:
            console.print(f"      - {escape(d['reason'])}", highlight=False)
        console.print(
            f"      → {escape(r['recommended_action'])} [dim]({escape(r['action_owner'])})[/dim]", highlight=False
        )


# --- people and keys (serving.web.users, serving.web.keys): `radar users ...`, `radar keys ...` ---

users_app = typer.Typer(help="People who sign in to the web pages (/ui): csm, leader or admin.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys, one per integration (scope score or read).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")


def _password(stdin: bool) -> str:
    import sys

    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The name they sign in with.")],
    role: Annotated[str, typer.Option(help="csm (their own accounts), leader (every account) or admin.")],
    owner: Annotated[
        str | None, typer.Option(help="A csm's csm_owner value in the accounts table (default: their name).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    replace: Annotated[bool, typer.Option(help="Change an existing user's role, owner and password.")] = False,
) -> None:
    """Add a user of the web pages (asks for the password twice; stored as an argon2 hash)."""
    from serving.web.access import AccessError, access_path
    from serving.web.users import ROLES, check_name, check_password

    path = access_path(_settings(ctx))
    if role not in ROLES:
        console.print(f"[red]error:[/red] --role must be one of {', '.join(ROLES)}, not {escape(role[:40])!r}")
        raise typer.Exit(2)
    try:
        check_name(name)
        password = check_password(_password(password_stdin))
        from serving.web.users import add_user

        user = add_user(path, name, role, password, owner=owner, replace=replace)
    except AccessError as exc:
        raise _fail(str(exc)) from exc
    sees = f"the accounts of {user.owner or user.name}" if user.role == "csm" else "every account"
    console.print(f"user {escape(user.name)} ({user.role}) saved: sees {escape(sees)}", highlight=False)


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The user to remove.")]) -> None:
    """Remove a user; their sign-ins end at once."""
    from serving.web.access import AccessError, access_path
    from serving.web.users import remove_user

    try:
        remove_user(access_path(_settings(ctx)), name)
    except AccessError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"user {escape(name)} removed", highlight=False)


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """The users, their roles and whose accounts a csm sees."""
    from serving.web.access import access_path
    from serving.web.users import list_users

    rows = list_users(access_path(_settings(ctx)))
    if not rows:
        console.print("no users yet: add one with `radar users add NAME --role csm|leader|admin`", highlight=False)
    for r in rows:
        book = f"accounts of {r['owner'] or r['name']}" if r["role"] == "csm" else "every account"
        console.print(f"{escape(r['name'])}  {r['role']}  {escape(book)}  since {r['created_at']}", highlight=False)


@keys_app.command("add")
def keys_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The integration's name (shown in each request's log line).")],
    scope: Annotated[str, typer.Option(help="score (POST /score, /score_accounts) or read (/accounts, /ui).")],
) -> None:
    """Create an API key and print it once (only its hash is kept)."""
    from serving.web.access import AccessError, access_path
    from serving.web.keys import SCOPES, add_key

    if scope not in SCOPES:
        console.print(f"[red]error:[/red] --scope must be one of {', '.join(SCOPES)}, not {escape(scope[:40])!r}")
        raise typer.Exit(2)
    try:
        key = add_key(access_path(_settings(ctx)), name, scope)
    except AccessError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"key {escape(name)} ({scope}); shown only now, send it as 'Authorization: Bearer <key>':")
    print(key, flush=True)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key to revoke.")]) -> None:
    """Revoke a key: its requests answer 401 from now on."""
    from serving.web.access import AccessError, access_path
    from serving.web.keys import revoke_key

    try:
        revoke_key(access_path(_settings(ctx)), name)
    except AccessError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"key {escape(name)} revoked", highlight=False)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """The keys: name, scope, first characters, created, revoked (never the keys themselves)."""
    from serving.web.access import access_path
    from serving.web.keys import DEFAULT, list_keys

    settings = _settings(ctx)
    rows = list_keys(access_path(settings))
    if settings.serving.api_token is not None:
        console.print(f"{DEFAULT}  score+read  (serving.api_token)", highlight=False)
    if not rows and settings.serving.api_token is None:
        console.print("no keys yet: add one with `radar keys add NAME --scope score|read`", highlight=False)
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        console.print(
            f"{escape(r['name'])}  {r['scope']}  {escape(r['prefix'])}…  created {r['created_at']}  {state}",
            highlight=False,
        )


if __name__ == "__main__":  # `radar serve` runs the server through this guard: LIMIT FAILURES_FILE COMMAND...
    import sys

    sys.exit(guard_server(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))
