"""API keys, one per integration: created, listed and revoked with `radar keys`, kept hashed.

A key is printed once at creation (`radar_` and 43 random URL-safe characters); the
access database keeps its SHA-256 (a key is 256 random bits: a fast hash is as safe
as a slow one, and every request checks one) and its first characters to recognise it
in `radar keys list`. Scopes: `score` may POST /score and /score_accounts; `read` may
read /accounts/* and the pages under /ui (every account, no actions). The one
`serving.api_token` keeps working as a key named `default` with both scopes.

Each request's access log line ends with `key=NAME` (`KeyInLog`), never the key itself.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from serving.web.access import AccessError, connect, reading

SCOPES = ("score", "read")
DEFAULT = "default"
PREFIX = "radar_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_KEY = 200  # longer than any key: not looked up

_request_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("radar_request_key", default=None)


@dataclass(frozen=True)
class Key:
    name: str
    scopes: frozenset[str]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def add_key(path: Path, name: str, scope: str) -> str:
    """Create a key; returns it (the only time it is seen)."""
    if not NAME.fullmatch(name or "") or name == DEFAULT:
        raise AccessError(
            f"key name {name[:80]!r} is not allowed: 1-64 letters, digits, '.', '_' or '-' "
            f"('{DEFAULT}' is serving.api_token's)"
        )
    if scope not in SCOPES:
        raise AccessError(f"scope {scope[:40]!r} is not one of {', '.join(SCOPES)}")
    key = PREFIX + secrets.token_urlsafe(32)
    with connect(path) as con:
        row = con.execute("SELECT revoked_at FROM api_keys WHERE name = ?", [name]).fetchone()
        if row is not None and row[0] is None:
            raise AccessError(f"key {name!r} exists already (revoke it first to replace it)")
        con.execute("DELETE FROM api_keys WHERE name = ?", [name])  # a revoked key's name may be reused
        con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
            [name, scope, _digest(key), key[: len(PREFIX) + 4], datetime.now(UTC).isoformat(timespec="seconds")],
        )
    return key


def revoke_key(path: Path, name: str) -> None:
    """Revoke a key: from now on it answers 401."""
    if name == DEFAULT:
        raise AccessError(f"'{DEFAULT}' is serving.api_token: unset the setting to stop it")
    with connect(path) as con:
        done = con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            [datetime.now(UTC).isoformat(timespec="seconds"), name],
        ).rowcount
        if not done:
            raise AccessError(f"no active key named {name[:80]!r}")


def list_keys(path: Path) -> list[dict]:
    with reading(path) as con:
        if con is None:
            return []
        rows = con.execute("SELECT name, scope, prefix, created_at, revoked_at FROM api_keys ORDER BY name").fetchall()
    return [dict(zip(("name", "scope", "prefix", "created_at", "revoked_at"), r)) for r in rows]


def any_keys(path: Path) -> bool:
    with reading(path) as con:
        return (
            con is not None
            and con.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None
        )


def check_key(path: Path, token: str | None, given: str) -> Key | None:
    """The key `given` is (active), or None. `token` is serving.api_token: the key `default`."""
    if not given or len(given) > MAX_KEY:
        return None
    if token is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
        return Key(DEFAULT, frozenset(SCOPES))
    if not given.startswith(PREFIX):
        return None
    with reading(path) as con:
        row = (
            None
            if con is None
            else con.execute(
                "SELECT name, scope FROM api_keys WHERE digest = ? AND revoked_at IS NULL", [_digest(given)]
            ).fetchone()
        )
    return None if row is None else Key(row[0], frozenset({row[1]}))


def bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer` header (None without one); never raises."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, given = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return given.strip().decode("latin-1")
            return ""
    return None


def note_key(name: str | None) -> None:
    """Name the key of the request being served, for its access log line."""
    _request_key.set(name)


class KeyInLog(logging.Filter):
    """Adds `key=NAME` to the access log line of a request made with a key."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = _request_key.get()
        if name is not None and isinstance(record.args, tuple):
            record.msg = f"{record.msg} key=%s"
            record.args = (*(record.args or ()), name)
        return True
