"""The access database: users, API keys and web sign-in sessions, in one SQLite file.

Why not the workspace (DuckDB): a DuckDB file takes one writing process at a time and
`radar build-features` or `radar alerts` hold it for minutes, while every service worker
writes a session at each sign-in and reads keys on every request. SQLite in WAL mode
lets several processes read and write at once (a writer waits up to `BUSY_MS` for
another). The file sits next to the workspace (`serving.access_file`, default
`<output_dir>/access.sqlite`); every change is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from radar.settings import Settings

FILE_NAME = "access.sqlite"
BUSY_MS = 5000

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, owner TEXT, password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, changed_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        name TEXT PRIMARY KEY, scope TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL)""",
)


class AccessError(Exception):
    """A user or key command that cannot be done (unknown name, duplicate, bad role): the message says why."""


def access_path(settings: Settings) -> Path:
    """Where the access database lives: `serving.access_file`, else access.sqlite in output_dir."""
    return settings.serving.access_file or settings.output_dir / FILE_NAME


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction (committed on success, rolled back on error), closed after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None)
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")  # WAL: no sync per commit (a crash loses seconds of sign-ins)
        con.execute("BEGIN IMMEDIATE")
        try:
            for ddl in SCHEMA:
                con.execute(ddl)
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only look (None when the file does not exist yet: no users, no keys, no sessions)."""
    if not path.exists():
        yield None
        return
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_MS / 1000)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        yield con if {"users", "api_keys", "sessions"} <= tables else None
    finally:
        con.close()
