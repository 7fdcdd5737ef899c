"""People who sign in to the pages: their role, the accounts they may see, their password.

Roles: a `csm` sees and acts on the accounts whose `csm_owner` is their owner name (their
own name unless `--owner` gave another); a `leader` sees every account; an `admin`
sees every account and manages users (`radar users`). Passwords are kept as argon2id
hashes (argon2-cffi), never in clear.

`Viewer` is who is looking: the signed-in user, or a script with an API key (all
accounts, read only), or anyone when the service has neither users nor keys nor a token
(the local demo). `Viewer.sees(owner)` and `Viewer.visible(frame)` are the one place the
pages decide what a person may see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from serving.web.access import AccessError, connect, reading

ROLES = ("csm", "leader", "admin")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing a huge "password" is work an attacker could make us do

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password of anyone")  # verify against it for unknown names: same time


@dataclass(frozen=True)
class User:
    name: str
    role: str
    owner: str | None  # the csm_owner value whose accounts a csm sees


@dataclass(frozen=True)
class Viewer:
    """Who is looking at the pages, and which accounts' owners they may see."""

    name: str
    role: str  # csm, leader, admin, key (a script's API key), open (no sign-in configured)
    owners: frozenset[str] | None  # None: every account

    @property
    def sees_all(self) -> bool:
        return self.owners is None

    @property
    def may_act(self) -> bool:
        """Whether this viewer may change alerts (snooze, close, assign, note): people, not keys."""
        return self.role in ("csm", "leader", "admin", "open")

    @property
    def manages_users(self) -> bool:
        return self.role in ("admin", "open")

    def sees(self, owner: object) -> bool:
        """Whether an account with this `csm_owner` is in the viewer's book."""
        return self.owners is None or (isinstance(owner, str) and owner in self.owners)

    def visible(self, frame: pd.DataFrame | None, column: str = "csm_owner") -> pd.DataFrame | None:
        """The rows of `frame` in the viewer's book (by `column`), the frame itself when they see all."""
        if frame is None or self.owners is None:
            return frame
        if column not in frame.columns:
            return frame.iloc[0:0]
        return frame[frame[column].astype(object).isin(self.owners)]


OPEN = Viewer("anyone", "open", None)


def viewer_of(user: User) -> Viewer:
    if user.role == "csm":
        return Viewer(user.name, "csm", frozenset({user.owner or user.name}))
    return Viewer(user.name, user.role, None)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise AccessError(
            f"user name {name[:80]!r} is not allowed: 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccessError(f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def add_user(path: Path, name: str, role: str, password: str, owner: str | None = None, replace: bool = False) -> User:
    """Add a user (or, with `replace`, change an existing one's role, owner and password), in one transaction."""
    check_name(name)
    if role not in ROLES:
        raise AccessError(f"role {role[:40]!r} is not one of {', '.join(ROLES)}")
    if owner is not None and role != "csm":
        raise AccessError("--owner applies to a csm only (leaders and admins see every account)")
    if owner is not None and not 0 < len(owner) <= 200:
        raise AccessError("--owner must have 1 to 200 characters")
    digest = _hasher.hash(check_password(password))
    with connect(path) as con:
        exists = con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone()
        if exists and not replace:
            raise AccessError(f"user {name!r} exists already (use --replace to change their role or password)")
        now = _now()
        con.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
            "owner = excluded.owner, password_hash = excluded.password_hash, changed_at = excluded.changed_at",
            [name, role, owner, digest, now, now],
        )
        if exists:  # a changed role or password ends the user's sign-ins
            _end_sessions_of(con, name)
    return User(name, role, owner)


def remove_user(path: Path, name: str) -> None:
    """Remove a user and end their sign-ins."""
    with connect(path) as con:
        if con.execute("DELETE FROM users WHERE name = ?", [name]).rowcount == 0:
            raise AccessError(f"no user named {name[:80]!r}")
        _end_sessions_of(con, name)


def _end_sessions_of(con, name: str) -> None:
    """Delete a user's sign-in sessions (a session's data is JSON holding the user's name)."""
    con.execute("DELETE FROM sessions WHERE json_extract(data, '$.user') = ?", [name])


def list_users(path: Path) -> list[dict]:
    with reading(path) as con:
        if con is None:
            return []
        rows = con.execute("SELECT name, role, owner, created_at, changed_at FROM users ORDER BY name").fetchall()
    return [dict(zip(("name", "role", "owner", "created_at", "changed_at"), r)) for r in rows]


def any_users(path: Path) -> bool:
    with reading(path) as con:
        return con is not None and con.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def find_user(path: Path, name: str) -> User | None:
    with reading(path) as con:
        row = (
            None
            if con is None
            else con.execute("SELECT name, role, owner FROM users WHERE name = ?", [name]).fetchone()
        )
    return None if row is None else User(*row)


def authenticate(path: Path, name: str, password: str) -> User | None:
    """The user when `password` is theirs, else None (unknown names take as long as known ones)."""
    if len(password) > MAX_PASSWORD or len(name) > 64:
        return None
    with reading(path) as con:
        row = (
            None
            if con is None
            else con.execute("SELECT name, role, owner, password_hash FROM users WHERE name = ?", [name]).fetchone()
        )
    try:
        _hasher.verify(row[3] if row else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return None if row is None else User(row[0], row[1], row[2])
