"""The web pages of the service, at /ui: the portfolio and the account scorecard.

Server-rendered HTML (Jinja2 templates in serving/web/templates, the stylesheet in
serving/web/static inlined into every page): no JavaScript, no CDN, no request leaves the
page (the Content-Security-Policy forbids it). The pages only read: the scored portfolio
the service holds (`serving.scoring.portfolio`), one account's records and the open alerts from
the workspace database (`serving.web.reads`).

Sign-in (serving.web.sessions, serving.web.users): people sign in at /ui/login with the
name and password `radar users add` gave them and get a server-side session that
sign-out ends; a CSM sees only the accounts they own, a leader or admin every account.
Scripts may send `Authorization: Bearer <key>` instead (an API key with the `read` scope,
or serving.api_token). With no users, no keys and no token (a local demo) the pages are
open to anyone who can reach them.
"""

# no `from __future__ import annotations`: FastAPI resolves the route closures' annotations
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, parse_qsl, quote

import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from serving.render.templating import environment
from serving.scoring.decisions import pct as risk_pct
from serving.scoring.decisions import times_typical
from serving.scoring.explain import likelihood_of
from serving.scoring.portfolio import WorkspaceUnavailable
from serving.scoring.score import score_frame
from serving.web.access import access_path
from serving.web.actions import action_context, add_routes
from serving.web.keys import any_keys, bearer, check_key, note_key
from serving.web.limits import bounded
from serving.web.pages import (
    SORTS,
    TABS,
    TIERS,
    PortfolioQuery,
    account_view,
    backtest_view,
    leadership_view,
    monitor_view,
    portfolio_view,
    query_from,
)
from serving.web.reads import AlertQueue, account_records
from serving.web.sessions import (
    CSRF,
    VIEWER,
    Sessions,
    csrf_token,
    sign_in,
    sign_out,
    signed_in_user,
    viewer,
)
from serving.web.users import OPEN, Viewer, any_users, authenticate, list_users, viewer_of
from serving.workflow.scorecard import measures_of, portfolio_levels

UI_PATH = "/ui"
OPEN_ROUTES = ("/login",)  # reachable without signing in
MAX_NEXT = 2000  # longest page address the login page returns to (the login form's own limit)
HERE = Path(__file__).parent
CSS = (HERE / "static" / "radar.css").read_text(encoding="utf-8")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# --- sign-in ---


def sign_in_configured(settings) -> bool:
    """Whether the pages need a sign-in: a token, an API key or a user exists."""
    path = access_path(settings)
    return settings.serving.api_token is not None or any_users(path) or any_keys(path)


def _route(scope) -> str:
    """The path inside the pages (without the /ui mount)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


class SignInGuard:
    """ASGI middleware (inside `Sessions`): who is asking. A bearer header must be an active key
    with the `read` scope (else 401); otherwise the session's user; otherwise, when sign-in is
    configured, the login page (303). The Viewer is left in the scope's state for the pages."""

    def __init__(self, app, service_of: Callable[[], Any]):
        self.app, self.service_of = app, service_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = self.service_of().settings
        path = access_path(settings)
        state = scope.setdefault("state", {})
        given = bearer(scope.get("headers") or [])
        if given is not None:
            token = settings.serving.api_token
            key = check_key(path, token.get_secret_value() if token else None, given)
            if key is None or "read" not in key.scopes:
                refused = Response(
                    "unauthorized: the key is not an active API key with the read scope\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"WWW-Authenticate": "Bearer", **HEADERS},
                )
                return await refused(scope, receive, send)
            note_key(key.name)
            state[VIEWER] = Viewer(key.name, "key", None)
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        user = signed_in_user(conn, path)
        if user is not None:
            state[VIEWER] = viewer_of(user)
        elif not sign_in_configured(settings):
            state[VIEWER] = OPEN
            if not isinstance(conn.session.get(CSRF), str):  # the demo's forms post a token too
                import secrets

                conn.session[CSRF] = secrets.token_urlsafe(32)
        elif _route(scope) not in OPEN_ROUTES:
            query = scope.get("query_string", b"").decode("latin-1")
            target = UI_PATH + _route(scope) + (f"?{query}" if query else "")
            back = f"?next={quote(target, safe='')}" if len(target) <= MAX_NEXT else ""  # never echo a huge URL
            refused = RedirectResponse(f"{UI_PATH}/login{back}", status_code=303)
            return await refused(scope, receive, send)
        return await self.app(scope, receive, send)


def _safe_next(target: str | None) -> str:
    """Only a path of these pages: never another site."""
    if target and target.startswith(UI_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return UI_PATH + "/"


def in_book(who: Viewer, scored: pd.DataFrame, alerts: pd.DataFrame | None):
    """The scored portfolio and open alerts cut to the viewer's book (a CSM's own accounts)."""
    if who.sees_all:
        return scored, alerts
    scored = who.visible(scored)
    if alerts is not None and "account_id" in alerts.columns:
        alerts = alerts[alerts["account_id"].isin(scored["account_id"])]
    return scored, alerts


# --- rendering ---


def _pct(v) -> str:
    return "–" if v is None or v != v else f"{float(v):.0%}"


def _money(v) -> str:
    return "–" if v is None else f"{float(v):,.0f}"


def _points(now, before) -> str:
    if now is None or before is None:
        return ""
    d = round(100 * (float(now) - float(before)))
    return "no change" if d == 0 else f"{d:+d} pts"


ENV = environment(HERE / "templates")
ENV.filters.update(
    pct=_pct,
    money=_money,
    points=_points,
    quote=lambda s: quote(str(s), safe=""),
    risk_pct=lambda v: "–" if v is None else risk_pct(float(v)),
    lift=lambda v: "–" if v is None else times_typical(float(v)),
)
ENV.globals.update(TABS=TABS, TIERS=TIERS, css=CSS)


def page(template: str, status: int = 200, **context) -> HTMLResponse:
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


class UiState:
    """What the pages keep between requests: the alert queue, the portfolio's indicator
    levels and the leadership report (computed again when the workspace file changes)."""

    def __init__(self, service):
        self.service = service
        self.alerts = AlertQueue(service.settings)
        self._levels: tuple[Any, dict] | None = None
        self._leadership: tuple[tuple | None, dict, str] | None = None
        self._lock = threading.Lock()
        registry = service.models.registry(service.settings)
        self.measured = [
            f for fs in measures_of(registry, service.settings.alerts.indicator_levels).values() for f in fs
        ]

    def reference(self, scored: pd.DataFrame) -> dict:
        """Portfolio cut-offs of the scorecard measures, computed once per scored portfolio."""
        if self._levels is None or self._levels[0] is not scored:
            latest, _ = self.service.portfolio.snapshots_of(scored["account_id"].tolist())
            registry = self.service.models.registry(self.service.settings)
            self._levels = (scored, portfolio_levels(latest, self.measured, registry))
        return self._levels[1]

    def open_alerts(self) -> pd.DataFrame | None:
        return self.alerts.open_alerts()

    def leadership(self) -> tuple[dict, str]:
        """(the leadership view, its quarters chart as a PNG data URI)."""
        import base64

        from serving.render.charts import family_trend_png
        from serving.workflow.drivers import drivers_report
        from serving.workflow.drivers_report import family_shares

        try:
            st = self.service.settings.database_path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if self._leadership is None or stamp is None or self._leadership[0] != stamp:
                report = drivers_report(self.service.settings, self.service.models)
                png = family_trend_png(family_shares(report), "Top indicator families by quarter")
                self._leadership = (
                    stamp,
                    leadership_view(report),
                    "data:image/png;base64," + base64.b64encode(png).decode(),
                )
            return self._leadership[1], self._leadership[2]


def web_app(service_of: Callable[[], Any]) -> FastAPI:
    """The /ui app. `service_of` gives the object holding `settings`, `models` and
    `portfolio` (the BentoML service: `bentoml.get_current_service`)."""
    app = FastAPI(title="Account Radar pages", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SignInGuard, service_of=service_of)  # added first: runs inside Sessions
    app.add_middleware(Sessions, settings_of=lambda: service_of().settings, path=UI_PATH)
    states: dict[int, UiState] = {}

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each bad parameter and what is wrong, never echoing the value sent."""
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))[:80]}: {str(e.get('msg', 'invalid'))[:200]}"
            for e in exc.errors()[:10]
        ]
        return JSONResponse({"error": "bad parameters", "problems": problems}, status_code=422, headers=HEADERS)

    def state(service: Annotated[Any, Depends(service_of)]) -> UiState:
        found = states.get(id(service))
        if found is None or found.service is not service:
            found = states[id(service)] = UiState(service)
        return found

    State = Annotated[UiState, Depends(state)]
    Text = Annotated[str | None, Query(max_length=200)]

    def common(request: Request, st: UiState) -> dict:
        models = st.service.models
        who = viewer(request)
        return {
            "base": request.scope.get("root_path", "").rstrip("/") or UI_PATH,
            "signed_in": who.role in ("csm", "leader", "admin"),
            "viewer": who,
            "csrf": csrf_token(request),
            "models": models.lineage,
            "act": action_context(request, st.service),
        }

    def not_found(request: Request, st: UiState, account_id: str, back: str = "") -> HTMLResponse:
        """The same answer for an account that is not there and one outside the viewer's book."""
        return page(
            "problem.html",
            404,
            title="No such account",
            message="The workspace has no snapshots of account "
            f"{bounded(account_id, st.service.settings.serving.echo_chars)!r}.",
            back=back,
            **common(request, st),
        )

    def unavailable(request: Request, st: UiState, exc: Exception) -> HTMLResponse:
        return page("problem.html", 503, title="Workspace unavailable", message=str(exc), **common(request, st))

    @app.get("/", response_class=HTMLResponse)
    def portfolio(
        request: Request,
        st: State,
        tab: Literal["risk", "opportunities", "alerts"] = "risk",
        owner: Text = None,
        segment: Text = None,
        tier: Literal["red", "yellow", "green", "at_risk", ""] | None = None,
        q: Text = None,
        sort: Text = None,
        dir_: Annotated[Literal["asc", "desc", ""] | None, Query(alias="dir")] = None,
        page_: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    ) -> HTMLResponse:
        """The active portfolio by MRR at risk, the expansion opportunities, or the alert queue."""
        query = PortfolioQuery(
            tab=tab,
            owner=owner or None,
            segment=segment or None,
            tier=tier or None,
            q=(q or "").strip() or None,
            sort=sort if sort in SORTS[tab] else None,  # any column of the tab's table (serving.web.pages)
            dir=(dir_ or None) if sort in SORTS[tab] else None,
            page=page_,
        )
        service = st.service
        try:
            scored = service.portfolio.scored()
            as_of = service.portfolio.as_of
            alerts = st.open_alerts()
        except WorkspaceUnavailable as exc:
            return unavailable(request, st, exc)
        scored, alerts = in_book(viewer(request), scored, alerts)
        inverted = likelihood_of(service.models.renewal.model)[1]
        view = portfolio_view(scored, as_of, alerts, query, service.settings.ui.page_size, inverted)
        return page(
            "portfolio.html",
            title=TABS[query.tab],
            view=view,
            back=quote(query.params(), safe=""),
            serving=service.settings.serving,
            alerts_cap=service.settings.alerts.max_per_owner,
            **common(request, st),
        )

    @app.get("/account/{account_id:path}", response_class=HTMLResponse)  # ids may hold "/"
    def account(
        request: Request,
        st: State,
        account_id: Annotated[str, PathParam(max_length=200)],
        back: Annotated[str, Query(max_length=2000)] = "",
    ) -> HTMLResponse:
        """One account: likelihoods over time, scorecard, drivers, quotes and playbook."""
        service, settings = st.service, st.service.settings
        returning = query_from(dict(parse_qsl(back)))
        try:
            records = account_records(settings, account_id)
            scored = service.portfolio.scored()
            as_of = service.portfolio.as_of
            alerts = st.open_alerts()
        except WorkspaceUnavailable as exc:
            return unavailable(request, st, exc)
        snaps = records.snapshots
        if snaps.empty or not viewer(request).sees(snaps["csm_owner"].iloc[-1] if "csm_owner" in snaps else None):
            return not_found(request, st, account_id, returning.params())
        scored, alerts = in_book(viewer(request), scored, alerts)
        history = score_frame(snaps, service.models, settings, explain=False)
        mine = scored[scored["account_id"] == account_id]
        active = not mine.empty and snaps["as_of"].iloc[-1] == as_of
        current = (
            mine.iloc[0].to_dict()
            if active
            else score_frame(snaps.iloc[[-1]], service.models, settings).iloc[0].to_dict()
        )
        registry = service.models.registry(settings)
        view = account_view(
            snaps,
            records.evidence,
            history,
            current,
            active,
            registry,
            settings.alerts.indicator_levels,
            st.reference(scored),
            alerts,
            settings.serving,
            settings.ui.quotes_per_bucket,
            likelihood_of(service.models.renewal.model)[1],
        )
        return page(
            "account.html",
            title=view.name,
            view=view,
            portfolio_as_of=as_of,
            back=returning.params(),
            serving=settings.serving,
            **common(request, st),
        )

    @app.get("/leadership", response_class=HTMLResponse)
    def leadership(request: Request, st: State) -> HTMLResponse:
        """The top drivers of renewal and expansion, their movement, low-signal indicators, advocates."""
        from serving.workflow.alert_rules import AlertError  # DriversError's base: also "no workspace"

        if viewer(request).role == "csm":
            return page(
                "problem.html",
                403,
                title="For leaders",
                message="The leadership page is for leaders and admins; your portfolio is on the Portfolio page.",
                **common(request, st),
            )
        try:
            view, chart = st.leadership()
        except (WorkspaceUnavailable, AlertError) as exc:
            return unavailable(request, st, exc)
        from serving.workflow.backtest import read_latest

        backtest = backtest_view(read_latest(st.service.settings.output_dir))
        from serving.workflow.monitor import read_latest as read_monitor

        monitor = monitor_view(read_monitor(st.service.settings.output_dir))
        return page(
            "leadership.html",
            title="Leadership",
            view=view,
            chart=chart,
            backtest=backtest,
            monitor=monitor,
            **common(request, st),
        )

    # the alert forms and the CSV export (serving.web.actions), returning only to these pages
    add_routes(app, State, common, page, in_book, _safe_next)

    @app.get("/users", response_class=HTMLResponse)
    def users(request: Request, st: State) -> HTMLResponse:
        """For admins: the users, their roles and books (managed with `radar users`); 404 for anyone else."""
        if not viewer(request).manages_users:
            return page("problem.html", 404, title="Not found", message="There is no such page.", **common(request, st))
        people = list_users(access_path(st.service.settings))
        return page("users.html", title="Users", users=people, **common(request, st))

    @app.get("/login", response_class=HTMLResponse)
    def login_form(
        request: Request, st: State, next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None
    ):
        if not sign_in_configured(st.service.settings):
            return RedirectResponse(_safe_next(next_), status_code=303)
        return page("login.html", title="Sign in", next=_safe_next(next_), name="", error=None, **common(request, st))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request, st: State):
        settings = st.service.settings
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        target = _safe_next((form.get("next") or [None])[0])
        if not sign_in_configured(settings):
            return RedirectResponse(target, status_code=303)
        name = (form.get("name") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        user = await run_in_threadpool(authenticate, access_path(settings), name, password)  # argon2: ~50 ms
        if user is None:
            return page(
                "login.html",
                401,
                title="Sign in",
                next=target,
                name=name[:64],
                error="That name and password do not match a user of these pages.",
                **common(request, st),
            )
        sign_in(request, user)
        return RedirectResponse(target, status_code=303)

    @app.api_route("/logout", methods=["GET", "POST"])
    def logout(request: Request):
        """Sign out: the session is deleted server-side (a copy of the cookie opens nothing)."""
        sign_out(request)
        return RedirectResponse(f"{UI_PATH}/login", status_code=303)

    return app
