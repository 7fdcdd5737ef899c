"""The Account Radar HTTP service (BentoML): scores with reasons for the CRM and internal tools.

Endpoints (all JSON; the OpenAPI document is at /docs.json, Swagger UI at /):
- POST /score: snapshot feature records in; per account the renewal and upsell
  likelihoods, risk tier, opportunity flag, health score, top drivers with reasons, the
  playbook action and owner, the health/model disagreement flag and the model versions.
- POST /score_accounts: account ids in; the latest snapshot of each is read from the
  workspace and scored; unknown ids come back under `not_found`.
- GET /accounts/at-risk and GET /accounts/opportunities (limit, segment, owner): the
  active portfolio ranked by MRR at risk and by expansion potential.
- GET /ui/: the web pages for CS managers (portfolio, account scorecard; serving/web/app.py), with
  a sign-in page at /ui/login when the token is set.
- BentoML's own /livez, /readyz and /metrics (Prometheus).

Start-up loads the `champion` renewal and upsell versions from the MLflow registry (the
service refuses to start without them: a worker that cannot load them logs one line,
records the failure for `radar serve`'s bound on failed starts and exits) and the
workspace's latest snapshots. Every `serving.champion_poll_seconds` the service looks for a
new champion and switches to it without a restart (`serving.scoring.champions.LiveChampions`:
the whole set loaded first, then one reference swapped; a request reads it once). Every
response names the model versions that produced it (`models`, and per scored account).
The workspace endpoints answer 503 with a plain reason while the workspace is missing or
being written (paths and lock holders go to the log only). Settings
come from `radar.toml` in the working directory, or the file named by RADAR_CONFIG_FILE,
plus RADAR_* variables. With `serving.api_token` set (RADAR_SERVING__API_TOKEN), scoring
and listing requests need `Authorization: Bearer <token>`. Request bodies (account names,
feature values) are never logged: validation errors hide input values.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # LightGBM threads must not spin (see radar/cli.py)
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")  # no usage reports leave the machine
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars in the service log

import logging
from datetime import UTC, date, datetime
from typing import Annotated

import bentoml
import pandas as pd
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from radar.settings import Settings, load_settings
from serving.scoring.batch import at_risk, opportunities
from serving.scoring.champions import LiveChampions, NoChampion, load_champions
from serving.scoring.portfolio import Portfolio, WorkspaceUnavailable
from serving.scoring.schemas import Driver, ModelRef, ScoreResponse, records_frame, request_models, response_json
from serving.scoring.score import ScoringModels, lineage_words, score_frame
from serving.web.access import access_path
from serving.web.app import UI_PATH, web_app
from serving.web.keys import KeyInLog, any_keys, bearer, check_key, note_key
from serving.web.limits import BodyLimit, bounded, install_header_timeout

log = logging.getLogger("radar.service")

PROTECTED = ("/score", "/score_accounts", "/accounts", UI_PATH)  # what the bearer token guards
# `radar serve` names a file here; a worker that fails to start appends one line to it, and
# `radar serve` stops after serving.max_worker_start_failures lines (serving/cli.py, same name)
START_FAILURES_ENV = "ACCOUNT_RADAR_START_FAILURES"
START_FAILURE_EXIT = 3  # a worker's exit status when it cannot start


SETTINGS: Settings = load_settings()  # RADAR_CONFIG_FILE (set by `radar --config`) or ./radar.toml, and env
REQUEST = request_models(SETTINGS)
ScoreRequest = REQUEST.request

_STRICT = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ScoreAccountsRequest(BaseModel):
    """Account ids whose latest workspace snapshot to score."""

    model_config = _STRICT
    account_ids: Annotated[
        list[Annotated[str, Field(min_length=1, strict=True)]],
        Field(
            min_length=1,
            max_length=SETTINGS.serving.max_batch,
            description=f"1 to {SETTINGS.serving.max_batch} account ids.",
        ),
    ]


class ServedModels(BaseModel):
    """The model versions behind a response: one set, never mixed (a champion switch
    happens between requests)."""

    renewal_model: ModelRef
    upsell_model: ModelRef
    next_renewal_model: ModelRef | None


def served_models(models: ScoringModels) -> dict:
    """`ServedModels` of a champion set, as JSON-ready data."""
    lineage = models.lineage
    return {
        f"{t}_model": None
        if lineage[f"{t}_model"] is None
        else {"name": lineage[f"{t}_model"], "version": lineage[f"{t}_model_version"]}
        for t in ("renewal", "upsell", "next_renewal")
    }


MODELS_FIELD = Field(description="The model versions that produced this response.")


class ScoredResponse(ScoreResponse):
    models: ServedModels = MODELS_FIELD


class ScoreAccountsResponse(ScoredResponse):
    not_found: list[str] = Field(description="Requested ids with no snapshot in the workspace.")


class RankedAccount(BaseModel):
    """One account of a ranking, with why it is there and what to do."""

    rank: int
    account_id: str
    name: str | None
    segment: str | None
    csm_owner: str | None
    mrr: float | None
    value: float = Field(
        description="What the list is ranked by: expected MRR lost in 90 days (MRR x churn risk) or expansion potential."
    )
    churn_risk: float = Field(description="Calibrated P(churn within the next 90 days).")
    churn_lift: float = Field(description="Churn risk / the typical (base) churn risk recorded with the model.")
    risk_summary: str
    next_renewal: date | None
    renewal_likelihood: float | None = Field(description="Likelihood to renew at next_renewal (None: not served).")
    risk_tier: str
    upsell_likelihood: float
    opportunity: bool
    health_score: float | None
    drivers: list[Driver] = Field(description="Top drivers of the ranked target (renewal or upsell).")
    recommended_action: str
    action_owner: str


class Ranking(BaseModel):
    as_of: date
    ranked_by: str
    total: int = Field(description="Accounts that match the filters (before the limit).")
    accounts: list[RankedAccount]
    models: ServedModels = MODELS_FIELD


def _clean(value):
    return None if value is None or (isinstance(value, float) and value != value) else value


def ranking(
    rows: pd.DataFrame, total: int, as_of: date, ranked_by: str, value_col: str, target: str, models: ScoringModels
) -> Ranking:
    accounts = [
        RankedAccount(
            rank=i + 1,
            account_id=r["account_id"],
            name=_clean(r.get("name")),
            segment=_clean(r.get("segment")),
            csm_owner=_clean(r.get("csm_owner")),
            mrr=_clean(None if r.get("mrr") is None else float(r["mrr"])),
            value=float(r[value_col]),
            churn_risk=r["churn_risk"],
            churn_lift=r["churn_lift"],
            risk_summary=r["risk_summary"],
            next_renewal=_clean(r.get("next_renewal")),
            renewal_likelihood=_clean(r.get("renewal_likelihood")),
            risk_tier=r["risk_tier"],
            upsell_likelihood=r["upsell_likelihood"],
            opportunity=bool(r["opportunity"]),
            health_score=_clean(r["health_score"]),
            drivers=r[f"{target}_drivers"] or [],
            recommended_action=r["recommended_action"],
            action_owner=r["action_owner"],
        )
        for i, r in enumerate(rows.to_dict("records"))
    ]
    return Ranking(
        as_of=as_of, ranked_by=ranked_by, total=total, accounts=accounts, models=ServedModels(**served_models(models))
    )


class ClientErrorsInOneLine(logging.Filter):
    """BentoML logs every rejected request body as an ERROR with a traceback; a client's
    bad input is not a server error: one WARNING line with the field paths (never the
    values) instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:10])
            record.msg, record.args = (
                "rejected %s: %d invalid field(s): %s",
                (record.args[0] if record.args else "request", exc.error_count(), fields),
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorsInOneLine())
logging.getLogger("bentoml.access").addFilter(KeyInLog())  # each request's line names its API key


class BearerToken:
    """ASGI middleware: with a token or an API key configured, scoring paths need a key with the
    `score` scope and listing paths one with `read` (401); serving.api_token is the key
    `default` with both. The pages under /ui check keys and sign-ins themselves (serving.web)."""

    def __init__(self, app, token: str | None = None, access_file=None):
        self.app = app
        self.token = token
        self.access_file = access_file

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED) or scope["path"].startswith(UI_PATH):
            return await self.app(scope, receive, send)
        given = bearer(scope.get("headers") or [])
        if self.token is None and not any_keys(self.access_file):
            return await self.app(scope, receive, send)  # nothing configured: open (a local demo)
        key = check_key(self.access_file, self.token, given or "")
        wanted = "read" if scope["path"].startswith("/accounts") else "score"
        if key is not None and wanted in key.scopes:
            note_key(key.name)
            return await self.app(scope, receive, send)
        response = JSONResponse(
            {"error": f"unauthorized: send 'Authorization: Bearer <key>' with an active key of scope '{wanted}'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


class BadBody:
    """ASGI middleware: a POST body that is not JSON (by Content-Type) answers 415 and one
    that is not a JSON object answers 400, saying so, before BentoML picks a decoder.
    Malformed JSON inside an object is BentoML's to refuse (400, `json_invalid`); the
    body is only peeked at, never parsed twice."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ("/score", "/score_accounts"):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = None
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"application/json")
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            problem = (415, "send the body as JSON (Content-Type: application/json)")
        elif not body.lstrip().startswith(b"{"):
            example = '{"accounts": [...]}' if scope["path"] == "/score" else '{"account_ids": [...]}'
            problem = (400, f"the body must be a JSON object, e.g. {example}")
        if problem is not None:
            response = JSONResponse({"error": problem[1]}, status_code=problem[0])
            return await response(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


listing = FastAPI(title="Account Radar portfolio", description="Rankings of the active portfolio.")
UNAVAILABLE: dict = {503: {"description": "The workspace is missing or being written; the body says which."}}

Limit = Annotated[int, Query(ge=1, le=1000, description="Most accounts to return.")]
Segment = Annotated[
    str | None, Query(max_length=200, description="Only this segment (e.g. smb, mid_market, enterprise).")
]
Owner = Annotated[
    str | None, Query(max_length=200, description="Only accounts of this CSM, or whose action this role owns.")
]


@bentoml.service(
    name="account_radar",
    workers=SETTINGS.serving.workers,
    traffic={"timeout": SETTINGS.serving.request_timeout_s},
    endpoints={"livez": "/livez", "readyz": "/readyz"},
)
@bentoml.asgi_app(listing, path="/accounts")
@bentoml.asgi_app(web_app(bentoml.get_current_service), path=UI_PATH)
class RadarService:
    """Champion models, the workspace's latest snapshots, and the scoring function they share."""

    def __init__(self) -> None:
        logging.getLogger("radar").setLevel(logging.INFO)  # start-up, champion switches (BentoML's root: WARNING)
        self.settings = SETTINGS
        models = _champions_or_exit(self.settings)
        self.request_serving = self.settings.serving.model_copy(
            update={"explain_threads": self.settings.serving.request_threads}
        )
        self.portfolio = Portfolio(self.settings, lambda: self.champions.models)
        self.champions = LiveChampions(self.settings, models, prepare=self.portfolio.prepare)
        self.portfolio.load()  # or the portfolio logs why the workspace endpoints answer 503 for now
        log.info("serving %s", lineage_words(models.lineage))
        self.champions.start(self.settings.serving.champion_poll_seconds)

    @property
    def models(self) -> ScoringModels:
        """The champion set served now: read it once per request and use that object throughout."""
        return self.champions.models

    @bentoml.on_shutdown
    def stop_polling(self) -> None:
        self.champions.stop()

    def _score(self, frame: pd.DataFrame, models: ScoringModels, **extra) -> Response:
        """The scored accounts as the documented response, written straight to JSON (the
        same bytes as the response model would give, without a model per account)."""
        scored = score_frame(frame, models, self.settings, serving=self.request_serving)
        return Response(response_json(scored, models=served_models(models), **extra), media_type="application/json")

    @bentoml.api(route="/score", input_spec=ScoreRequest, output_spec=ScoredResponse)
    def score(self, accounts: list) -> Response:
        """Score accounts given as snapshot feature records (any feature may be missing)."""
        return self._score(records_frame(accounts, REQUEST.registry), self.models)

    @bentoml.api(route="/score_accounts", input_spec=ScoreAccountsRequest, output_spec=ScoreAccountsResponse)
    def score_accounts(self, account_ids: list[str]) -> ScoreAccountsResponse | Response:
        """Score the latest workspace snapshot of each account id; unknown ids are listed."""
        models = self.models
        try:
            frame, missing = self.portfolio.snapshots_of(list(dict.fromkeys(account_ids)))
        except WorkspaceUnavailable as exc:
            return unavailable(exc)
        missing = [bounded(m, self.settings.serving.echo_chars) for m in missing]  # never echo a huge id whole
        if frame.empty:
            return ScoreAccountsResponse(
                accounts=[],
                scored_at=datetime.now(UTC),
                models=ServedModels(**served_models(models)),
                not_found=missing,
            )
        return self._score(frame, models, not_found=missing)

    def _ranking(self, kind: str, limit: int, segment: str | None, owner: str | None) -> Ranking | Response:
        models = self.models
        try:
            as_of = self.portfolio.as_of
            scored = self.portfolio.scored(models)
        except WorkspaceUnavailable as exc:
            return unavailable(exc)
        if kind == "at_risk":
            rows = at_risk(scored, limit=10**9, segment=segment, owner=owner)
            return ranking(
                rows.head(limit),
                len(rows),
                as_of,
                "call list: expected MRR lost in 90 days = mrr x churn risk, sooner renewal first",
                "mrr_at_risk",
                "renewal",
                models,
            )
        rows = opportunities(scored, limit=10**9, segment=segment, owner=owner)
        return ranking(
            rows.head(limit),
            len(rows),
            as_of,
            "expansion_potential = upsell likelihood x mrr",
            "expansion_potential",
            "upsell",
            models,
        )

    @listing.get("/at-risk", response_model=Ranking, responses=UNAVAILABLE)
    def accounts_at_risk(self, limit: Limit = 20, segment: Segment = None, owner: Owner = None) -> Ranking | Response:
        """Red and yellow accounts of the active portfolio in call-list order: expected MRR lost in
        90 days (MRR x churn risk), largest first, the sooner renewal breaking ties."""
        return self._ranking("at_risk", limit, segment, owner)

    @listing.get("/opportunities", response_model=Ranking, responses=UNAVAILABLE)
    def accounts_opportunities(
        self, limit: Limit = 20, segment: Segment = None, owner: Owner = None
    ) -> Ranking | Response:
        """Accounts flagged as expansion opportunities, by expansion potential (largest first)."""
        return self._ranking("opportunities", limit, segment, owner)


def unavailable(exc: WorkspaceUnavailable) -> Response:
    """503 with the plain reason (the portfolio logs the full one, with paths, once)."""
    return JSONResponse({"error": f"workspace unavailable: {exc}"}, status_code=503)


def _champions_or_exit(settings: Settings) -> ScoringModels:
    """The playbooks checked and the champion models loaded, or this worker exits: one log
    line saying why (no traceback for a known cause), one line in `radar serve`'s failures
    file, exit status START_FAILURE_EXIT (the server restarts the worker until `radar serve`
    stops at serving.max_worker_start_failures)."""
    from serving.scoring.playbook import PlaybookError, load_playbooks
    from training.track import TrackingUnavailable

    try:
        load_playbooks(settings.serving.playbooks_file)  # a broken team file stops the start, clearly
        return load_champions(settings)
    except (NoChampion, TrackingUnavailable, PlaybookError) as exc:  # RegistryBroken is a TrackingUnavailable
        reason = str(exc)
        log.error("worker cannot start: %s", reason)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.exception("worker cannot start")
    failures = os.environ.get(START_FAILURES_ENV)
    if failures:
        with open(failures, "a", encoding="utf-8") as out:  # one short append: whole lines, even from 2 workers
            out.write(" ".join(reason.split()) + "\n")
    logging.shutdown()  # flush the log before leaving without Python's clean-up
    os._exit(START_FAILURE_EXIT)


_token = SETTINGS.serving.api_token
install_header_timeout(SETTINGS.serving.header_timeout_s)  # uvicorn has none of its own (serving.web.limits)
RadarService.add_asgi_middleware(  # outermost: no body beyond serving.max_body_bytes reaches anything
    BodyLimit, max_bytes=SETTINGS.serving.max_body_bytes, timeout_s=SETTINGS.serving.body_timeout_s
)
RadarService.add_asgi_middleware(
    BearerToken, token=_token.get_secret_value() if _token else None, access_file=access_path(SETTINGS)
)
RadarService.add_asgi_middleware(BadBody)
