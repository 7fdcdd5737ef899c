"""Web sign-in sessions: server-side (starsessions), kept in the access database, ended by sign-out.

The browser holds only a random session id (cookie `radar_ui`, HttpOnly, SameSite=Lax,
path /ui); what it stands for (the user's name and the session's CSRF token) lives in
the `sessions` table until it expires (`ui.login_hours`) or the user signs out, after
which a copied cookie opens nothing. Each request reads the user again, so a removed
user or a changed role takes effect at once.

For the pages: `viewer(request)` is who is looking and which owners' accounts they may
see (`serving.web.users.Viewer`); `csrf_token(request)` the token every form posts and
`csrf_ok(request, given)` its check.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from starlette.requests import HTTPConnection
from starsessions import SessionAutoloadMiddleware, SessionMiddleware, regenerate_session_id
from starsessions.stores import SessionStore

from serving.web.access import access_path, connect, reading
from serving.web.users import OPEN, User, Viewer, find_user

COOKIE = "radar_ui"
SESSION_ID = re.compile(r"[0-9a-f]{32}")  # starsessions' ids: 16 random bytes in hex
USER, CSRF = "user", "csrf"
VIEWER = "radar_viewer"  # where the sign-in guard leaves the Viewer in the request scope's state


SAME_EXPIRY_S = 60  # a stored expiry this close to the new one is not rewritten


def _same(new: bytes, stored: str) -> bool:
    """Whether two session records differ only in starsessions' last-access time."""
    try:
        a, b = json.loads(new), json.loads(stored)
    except ValueError:
        return False
    for record in (a, b):
        if isinstance(record, dict) and isinstance(record.get("__metadata__"), dict):
            record["__metadata__"].pop("last_access", None)
    return a == b


class SqliteSessionStore(SessionStore):
    """starsessions' store over the access database's `sessions` table (several worker
    processes share it). A cookie that is not a session id reads as no session."""

    def __init__(self, path: Path):
        self.path = path

    async def read(self, session_id: str, lifetime: int) -> bytes:
        if not SESSION_ID.fullmatch(session_id or ""):
            return b""
        with reading(self.path) as con:
            row = (
                None
                if con is None
                else con.execute(
                    "SELECT data FROM sessions WHERE id = ? AND expires > ?", [session_id, time.time()]
                ).fetchone()
            )
        return row[0].encode() if row else b""

    async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
        now = time.time()
        expires = now + (ttl if ttl > 0 else lifetime or 3600)
        with reading(self.path) as con:  # starsessions saves after every page: write only what changed
            row = (
                None
                if con is None
                else con.execute("SELECT data, expires FROM sessions WHERE id = ?", [session_id]).fetchone()
            )
        if row is not None and abs(row[1] - expires) < SAME_EXPIRY_S and _same(data, row[0]):
            return session_id
        with connect(self.path) as con:
            con.execute("DELETE FROM sessions WHERE expires <= ?", [now])
            con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
                "expires = excluded.expires",
                [session_id, data.decode(), expires],
            )
        return session_id

    async def remove(self, session_id: str) -> None:
        if SESSION_ID.fullmatch(session_id or ""):
            with connect(self.path) as con:
                con.execute("DELETE FROM sessions WHERE id = ?", [session_id])


class Sessions:
    """ASGI middleware: starsessions over the access database, built on the first request
    from the service's settings (where the file is, how long a sign-in lasts); the cookie is
    Secure when the request came over HTTPS."""

    def __init__(self, app, settings_of: Callable[[], object], path: str):
        self.app, self.settings_of, self.path = app, settings_of, path
        self._built: dict[tuple, object] = {}

    def _inner(self, https: bool):
        settings = self.settings_of()
        key = (id(settings), https)
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = SessionMiddleware(
                SessionAutoloadMiddleware(self.app),
                store=SqliteSessionStore(access_path(settings)),
                lifetime=settings.ui.login_hours * 3600,
                rolling=False,
                cookie_name=COOKIE,
                cookie_path=self.path,
                cookie_same_site="lax",
                cookie_https_only=https,
            )
        return found

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        return await self._inner(scope.get("scheme") == "https")(scope, receive, send)


def signed_in_user(conn: HTTPConnection, path: Path) -> User | None:
    """The user this request's session belongs to (read again from the users table), or None."""
    name = conn.session.get(USER)
    return find_user(path, name) if isinstance(name, str) else None


def sign_in(conn: HTTPConnection, user: User) -> None:
    """Start a session for `user` under a new id (never one the browser brought)."""
    conn.session.clear()
    regenerate_session_id(conn)
    conn.session.update({USER: user.name, CSRF: secrets.token_urlsafe(32)})


def sign_out(conn: HTTPConnection) -> None:
    """End the session: its row is deleted, so a copy of the cookie opens nothing."""
    conn.session.clear()  # starsessions removes an emptied session from the store and expires the cookie


def viewer(request: HTTPConnection) -> Viewer:
    """Who is looking at the page: the signed-in user (a CSM sees their own book), a script's
    API key (every account, read only), or anyone when no sign-in is configured."""
    found = request.scope.get("state", {}).get(VIEWER)
    return found if isinstance(found, Viewer) else OPEN


def csrf_token(request: HTTPConnection) -> str:
    """The session's CSRF token for a form's hidden `csrf` field ('' without a session)."""
    if "session" not in request.scope:
        return ""
    try:
        token = request.session.get(CSRF)
    except Exception:  # the session was not loaded (a script's request): no forms
        return ""
    return token if isinstance(token, str) else ""


def csrf_ok(request: HTTPConnection, given: str | None) -> bool:
    """Whether a posted form's token is this session's (the open demo has an anonymous session with one too)."""
    token = csrf_token(request)
    return bool(token) and isinstance(given, str) and hmac.compare_digest(token.encode(), given.encode())
