"""The web pages of the service, at /ui: the portfolio and the account scorecard.

Server-rendered HTML (Jinja2 templates in serving/web/templates, the stylesheet in
serving/web/static inlined into every page): no JavaScript, no CDN, no request leaves the
page (the Content-Security-Policy forbids it). The pages only read: the scored portfolio
the service holds (`serving.scoring.portfolio`), one account's records and the open alerts from
the workspace database (`serving.web.reads`).

Sign-in: with `serving.api_token` set, /ui is guarded like the API. A browser signs in
once at /ui/login with the token and gets a cookie (HttpOnly, SameSite=Lax, path /ui,
valid `ui.login_hours`) holding an expiry signed with the token, not the token itself;
changing the token signs everyone out. Scripts may send `Authorization: Bearer` instead.
"""

# no `from __future__ import annotations`: FastAPI resolves the route closures' annotations
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, parse_qsl, quote

import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from serving.render.templating import environment
from serving.scoring.decisions import pct as risk_pct
from serving.scoring.decisions import times_typical
from serving.scoring.explain import likelihood_of
from serving.scoring.portfolio import WorkspaceUnavailable
from serving.scoring.score import score_frame
from serving.web.pages import (
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
from serving.workflow.scorecard import measures_of, portfolio_levels

UI_PATH = "/ui"
OPEN_PATHS = (f"{UI_PATH}/login",)  # reachable without signing in
COOKIE = "radar_ui"
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


def _signature(token: bytes, expires: int) -> str:
    return hmac.new(token, f"account-radar ui until {expires}".encode(), hashlib.sha256).hexdigest()


def session_cookie(token: bytes, hours: int, now: float | None = None) -> str:
    """The cookie value: an expiry (epoch seconds) and its signature with the token."""
    expires = int((now or time.time()) + hours * 3600)
    return f"{expires}.{_signature(token, expires)}"


def valid_session(value: str, token: bytes, now: float | None = None) -> bool:
    expires, _, signature = value.partition(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _signature(token, int(expires)).encode())


def _cookie_of(headers: dict) -> str:
    try:
        jar = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return ""
    return jar[COOKIE].value if COOKIE in jar else ""


def ui_refusal(scope, token: bytes) -> Response | None:
    """For a /ui request without a valid bearer header: None when it may pass (the login
    page, or a valid sign-in cookie), else the redirect to the login page."""
    if scope["path"] in OPEN_PATHS or valid_session(_cookie_of(dict(scope.get("headers") or [])), token):
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    target = scope["path"] + (f"?{query}" if query else "")
    return RedirectResponse(f"{UI_PATH}/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a path of these pages: never another site."""
    if target and target.startswith(UI_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return UI_PATH + "/"


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
    states: dict[int, UiState] = {}

    def state(service: Annotated[Any, Depends(service_of)]) -> UiState:
        found = states.get(id(service))
        if found is None or found.service is not service:
            found = states[id(service)] = UiState(service)
        return found

    State = Annotated[UiState, Depends(state)]
    Text = Annotated[str | None, Query(max_length=200)]

    def common(request: Request, st: UiState) -> dict:
        token = st.service.settings.serving.api_token
        models = st.service.models
        return {
            "base": request.scope.get("root_path", "").rstrip("/") or UI_PATH,
            "signed_in": token is not None,
            "models": models.lineage,
        }

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
        page_: Annotated[int, Query(alias="page", ge=1, le=10**6)] = 1,
    ) -> HTMLResponse:
        """The active portfolio by MRR at risk, the expansion opportunities, or the alert queue."""
        query = PortfolioQuery(
            tab=tab,
            owner=owner or None,
            segment=segment or None,
            tier=tier or None,
            q=(q or "").strip() or None,
            page=page_,
        )
        service = st.service
        try:
            scored = service.portfolio.scored()
            as_of = service.portfolio.as_of
            alerts = st.open_alerts()
        except WorkspaceUnavailable as exc:
            return unavailable(request, st, exc)
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
        if records.snapshots.empty:
            return page(
                "problem.html",
                404,
                title="No such account",
                message=f"The workspace has no snapshots of account {account_id!r}.",
                back=returning.params(),
                **common(request, st),
            )
        snaps = records.snapshots
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

    @app.get("/login", response_class=HTMLResponse)
    def login_form(
        request: Request, st: State, next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None
    ):
        if st.service.settings.serving.api_token is None:
            return RedirectResponse(_safe_next(next_), status_code=303)
        return page("login.html", title="Sign in", next=_safe_next(next_), error=None, **common(request, st))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request, st: State):
        settings = st.service.settings
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        target = _safe_next((form.get("next") or [None])[0])
        secret = settings.serving.api_token
        if secret is None:
            return RedirectResponse(target, status_code=303)
        token = secret.get_secret_value().encode()
        given = (form.get("token") or [""])[0].strip().encode()
        if not hmac.compare_digest(given, token):
            return page(
                "login.html",
                401,
                title="Sign in",
                next=target,
                error="That token is not the service's API token.",
                **common(request, st),
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session_cookie(token, settings.ui.login_hours),
            max_age=settings.ui.login_hours * 3600,
            path=UI_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @app.get("/logout")
    def logout():
        response = RedirectResponse(f"{UI_PATH}/login", status_code=303)
        response.delete_cookie(COOKIE, path=UI_PATH)
        return response

    return app
