"""What a CSM does from the pages: snooze, close, assign or annotate an open alert, and export a table.

Every form posts to /ui/alerts/act with the session's CSRF token (`serving.web.sessions`);
the change is written by `serving.workflow.alert_state.work_alert`, the same alert state
`radar alerts` keeps, so `radar alerts list` shows it and the next run and digest respect
it (snoozed and closed alerts leave the queue and the digest; an assigned one goes to its
new owner's digest). A CSM acts only on the open alerts of accounts in their book (any
other key answers 404, as if it did not exist); scripts with an API key only read.

The export (/ui/export.csv) is the table the portfolio page shows for the same URL
parameters, every page, through `serving.crm.csv_cells.safe_csv` (a cell a spreadsheet
would execute, starting with = + - @, tab or carriage return, is neutralised).
"""

# no `from __future__ import annotations`: FastAPI resolves the routes' annotations (Request, State)
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import pandas as pd

from radar.settings import Settings
from serving.crm.csv_cells import safe_csv
from serving.scoring.batch import WorkspaceUnavailable, connect_workspace
from serving.web.users import Viewer
from serving.workflow.alert_rules import AlertError
from serving.workflow.alert_state import ACTIONS, MAX_NOTE, OUTCOMES, work_alert

FORM_LIMIT = 16_384  # bytes of a posted form read: a note and a few fields
WRITE_TRIES = 20  # the workspace may be open for a page's read in this process: try again shortly
WRITE_PAUSE = 0.1  # seconds between tries
NOTICE = "notice"  # the session key of the one-line message shown on the next page


class ActionRefused(Exception):
    """A form that cannot be done as sent: the HTTP status and a sentence for the person."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class AlertAction:
    """One parsed and checked form: what to do with which alert."""

    key: str
    action: str
    until: date | None = None
    outcome: str | None = None
    assignee: str | None = None
    note: str | None = None

    def done(self) -> str:
        """What happened, for the next page's notice."""
        said = {
            "snooze": f"snoozed until {self.until}",
            "close": f"closed ({self.outcome})",
            "assign": f"assigned to {self.assignee}",
            "note": "noted",
        }[self.action]
        return f"Alert {self.key[:100]} {said}."


def form_fields(body: bytes) -> dict[str, str]:
    """A posted urlencoded form, first value of each field (at most FORM_LIMIT bytes read)."""
    parsed = parse_qs(body[:FORM_LIMIT].decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


def parse_action(
    form: dict[str, str],
    who: Viewer,
    open_alerts: pd.DataFrame | None,
    scored: pd.DataFrame,
    as_of: date,
) -> AlertAction:
    """The form checked against who is asking and the open alerts: 403, 404 or 400 otherwise."""
    if not who.may_act:
        raise ActionRefused(403, "An API key reads these pages; sign in as a person to change alerts.")
    action, key = form.get("action", ""), form.get("key", "")
    if action not in ACTIONS:
        raise ActionRefused(400, f"Unknown action {action[:40]!r}: one of {', '.join(ACTIONS)}.")
    found = None if open_alerts is None else open_alerts[open_alerts["key"].astype(str) == key]
    if found is None or found.empty:
        raise ActionRefused(404, f"No open alert {key[:100]!r}: it may have been worked already.")
    owner_of = scored.drop_duplicates("account_id").set_index("account_id")["csm_owner"]
    account = str(found["account_id"].iloc[0])
    if not who.sees(owner_of.get(account)):
        raise ActionRefused(404, f"No open alert {key[:100]!r}: it may have been worked already.")
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE:
        raise ActionRefused(400, f"The note has {len(note):,} characters; at most {MAX_NOTE:,} are kept.")
    until = outcome = assignee = None
    if action == "snooze":
        try:
            until = date.fromisoformat(form.get("until", "")[:10])
        except ValueError:
            raise ActionRefused(400, "Give the date to snooze until (YYYY-MM-DD).") from None
        if until <= as_of:
            raise ActionRefused(
                400, f"Snooze until a date after the portfolio's date ({as_of}); {until} would reopen it at once."
            )
    elif action == "close":
        outcome = form.get("outcome", "")
        if outcome not in OUTCOMES:
            raise ActionRefused(400, f"Closing an alert needs its outcome: {', '.join(OUTCOMES)}.")
    elif action == "assign":
        assignee = form.get("assignee", "")
        owners = set(scored["csm_owner"].dropna().astype(str))
        if assignee not in owners:
            raise ActionRefused(400, f"{assignee[:100]!r} is not an owner of accounts in the portfolio.")
    elif not note:
        raise ActionRefused(400, "The note is empty.")
    return AlertAction(key, action, until, outcome, assignee, note or None)


def write_action(settings: Settings, act: AlertAction, by: str, now: datetime | None = None) -> str:
    """Write the action to the workspace's alert state (one transaction); the sentence logged.
    A workspace open for reading in this process is waited for (WRITE_TRIES x WRITE_PAUSE)."""
    for attempt in range(WRITE_TRIES):
        try:
            con = connect_workspace(settings, read_only=False)
            break
        except WorkspaceUnavailable:
            if attempt == WRITE_TRIES - 1:
                raise
            time.sleep(WRITE_PAUSE)
    try:
        return work_alert(
            con,
            act.key,
            act.action,
            by=by,
            now=now or datetime.now(UTC),
            until=act.until,
            outcome=act.outcome,
            assignee=act.assignee,
            note=act.note,
        )
    except AlertError as exc:
        raise ActionRefused(400, str(exc)) from exc
    finally:
        con.close()


def export_csv(frame: pd.DataFrame) -> str:
    """The exported table as CSV text, cells a spreadsheet would run neutralised."""
    return safe_csv(frame)


def export_name(tab: str, as_of: date) -> str:
    return f"account-radar-{tab}-{as_of}.csv"


def add_routes(app, State, common, page, in_book, safe_next=None) -> None:
    """The action and export routes on the /ui app (`serving.web.app.web_app` passes its
    state dependency, page context, renderer, book filter and the check of a return path)."""
    safe_next = safe_next or _within_pages
    from fastapi import Request
    from fastapi.responses import RedirectResponse, Response
    from starlette.concurrency import run_in_threadpool

    from serving.scoring.explain import likelihood_of
    from serving.web.pages import query_from
    from serving.web.sessions import csrf_ok, viewer

    def refused(request: Request, st, status: int, message: str, back: str):
        return page("problem.html", status, title="Not done", message=message, back=back, **common(request, st))

    @app.post("/alerts/act")
    async def act(request: Request, st: State):
        """Snooze, close, assign or annotate one open alert (a form of the queue or the account page)."""
        form = form_fields(await request.body())
        target = safe_next(form.get("back"))
        back = target.partition("?")[2] if target.startswith(_ui(request) + "/?") else ""
        if not csrf_ok(request, form.get("csrf")):
            return refused(
                request, st, 403, "The form expired or came from another page: reload the page and try again.", back
            )
        service = st.service
        try:
            scored, open_alerts, as_of = service.portfolio.scored(), st.open_alerts(), service.portfolio.as_of
        except WorkspaceUnavailable as exc:
            return refused(request, st, 503, str(exc), back)
        who = viewer(request)
        try:
            todo = parse_action(form, who, open_alerts, scored, as_of)
            await run_in_threadpool(write_action, service.settings, todo, who.name)
        except ActionRefused as exc:
            return refused(request, st, exc.status, exc.message, back)
        except WorkspaceUnavailable as exc:
            return refused(request, st, 503, f"Not saved, the workspace is busy: {exc}. Try again shortly.", back)
        st.alerts.forget()
        set_notice(request, todo.done())
        return RedirectResponse(target, status_code=303)

    @app.get("/export.csv")
    def export(request: Request, st: State):
        """The portfolio page's current table (same parameters), every page, as CSV."""
        service = st.service
        query = query_from({k: v for k, v in request.query_params.items()})
        try:
            scored, alerts, as_of = service.portfolio.scored(), st.open_alerts(), service.portfolio.as_of
        except WorkspaceUnavailable as exc:
            return refused(request, st, 503, str(exc), "")
        scored, alerts = in_book(viewer(request), scored, alerts)
        from serving.web.pages import export_frame

        frame = export_frame(scored, alerts, query, likelihood_of(service.models.renewal.model)[1])
        return Response(
            export_csv(frame),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{export_name(query.tab, as_of)}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


def _within_pages(target: str | None) -> str:
    """Only a path of these pages as the page to return to: never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _ui(request) -> str:
    return request.scope.get("root_path", "").rstrip("/") or "/ui"


def set_notice(request, text: str) -> None:
    """A one-line message for the next page of this session (dropped without a session)."""
    try:
        request.session[NOTICE] = text[:300]
    except (AssertionError, AttributeError, KeyError):
        pass


def pop_notice(request) -> str | None:
    """The message left by the last action, once."""
    if "session" not in request.scope:
        return None
    try:
        found = request.session.pop(NOTICE, None)
    except (AssertionError, AttributeError, KeyError):
        return None
    return found if isinstance(found, str) else None


def action_context(request, service) -> dict:
    """What the pages' alert forms need: the outcomes, the owners one may assign to (every
    CSM owner of the portfolio, beyond the viewer's book), the earliest snooze date, and the
    notice left by the last action."""
    from datetime import timedelta

    from serving.web.sessions import viewer

    try:
        scored, as_of = service.portfolio.scored(), service.portfolio.as_of
        owners = sorted({str(o) for o in scored["csm_owner"].dropna()})
        earliest = as_of + timedelta(days=1)
    except WorkspaceUnavailable:  # no workspace: the page says so, the forms are not shown
        owners, earliest = [], None
    return {
        "outcomes": OUTCOMES,
        "assignees": owners,
        "earliest": earliest,
        "may_act": viewer(request).may_act and earliest is not None,
        "notice": pop_notice(request),
        "note_max": MAX_NOTE,
    }
