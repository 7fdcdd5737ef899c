"""Workspaces in a database: the contract tables read where they already live.

With `workspace_url` (or `radar build-features --workspace URL`) the contract tables come
from any database Ibis connects to, already clean and named and typed as the contract
says, and the same feature expressions run there: no export to files first. The
builders' intermediate results are temporary tables in that database (the connection
needs read access and the right to create temporary tables); the text rows are
streamed out for the text-signal step and its evidence sent back as a temporary table;
the finished snapshots come back to the local output folder and database.

URLs are Ibis' (``postgres://user@host:5432/db/schema``, ``snowflake://user@account/db/schema``,
``bigquery://project/dataset``) or SQLAlchemy's: a driver suffix (``postgresql+psycopg://``)
is dropped, and ``databricks://token:TOKEN@HOST?http_path=...&catalog=...&schema=...``
becomes Ibis' Databricks connection, which has no URL form of its own.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import ibis
import ibis.expr.datatypes as dt

from features.contract import TABLES

BACKEND_EXTRAS = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "mssql": "mssql",
    "mysql": "mysql",
    "trino": "trino",
    "clickhouse": "clickhouse",
    "oracle": "oracle",
}


class DatabaseWorkspaceError(ValueError):
    """A workspace URL that cannot be used, with what to do about it."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def ibis_url(url: str) -> str:
    """The Ibis form of a connection URL: SQLAlchemy's ``dialect+driver://`` becomes ``dialect://``."""
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        raise DatabaseWorkspaceError(f"not a connection URL: {redact(url)!r} (e.g. postgres://user@host:5432/db)")
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def databricks_args(url: str) -> dict[str, str]:
    """`ibis.databricks.connect` arguments from a SQLAlchemy-style Databricks URL."""
    parts = urlsplit(url)
    args = dict(parse_qsl(parts.query))
    if parts.hostname:
        args["server_hostname"] = parts.hostname
    if parts.password:
        args["access_token"] = unquote(parts.password)
    return args


def _fits(contract_type: str, found: dt.DataType) -> bool:
    if contract_type == "timestamp":  # naive UTC: a zoned type would be cut into days in the session's zone
        return found.is_timestamp() and found.timezone is None
    return {
        "string": found.is_string(),
        "date": found.is_date(),
        "int": found.is_integer(),
        "float": found.is_numeric(),
        "bool": found.is_boolean(),
    }[contract_type]


def contract_problems(backend: ibis.BaseBackend) -> list[str]:
    """What keeps the contract tables present in `backend` from being read as such:
    missing columns and columns of the wrong type, each named (table.column: expected, found)."""
    problems = []
    present = set(backend.list_tables())
    for name in TABLES:
        if name not in present:
            continue
        schema = backend.table(name).schema()
        for col in TABLES[name].columns:
            if col.name not in schema:
                problems.append(f"{name}.{col.name}: missing (expected {col.type}; NULL where unknown)")
            elif not _fits(col.type, schema[col.name]):
                problems.append(
                    f"{name}.{col.name}: expected {col.type}"
                    f"{' without time zone (UTC)' if col.type == 'timestamp' else ''}, found {schema[col.name]}"
                )
    return problems


def open_backend(url: str) -> ibis.BaseBackend:
    """A connection to the database at `url` whose contract tables have the contract's
    columns and types (`DatabaseWorkspaceError` naming every column that has not)."""
    backend = connect(url)
    problems = contract_problems(backend)
    if problems:
        backend.disconnect()
        raise DatabaseWorkspaceError(
            f"the tables at {redact(url)} do not follow the data contract: " + "; ".join(problems)
        )
    return backend


def connect(url: str) -> ibis.BaseBackend:
    """An Ibis connection to the database at `url` (Ibis or SQLAlchemy form)."""
    target = ibis_url(url)
    dialect = urlsplit(target).scheme
    try:
        if dialect == "databricks":
            return ibis.databricks.connect(**databricks_args(url))
        return ibis.connect(target)
    except ImportError as exc:
        extra = BACKEND_EXTRAS.get(dialect, dialect)
        raise DatabaseWorkspaceError(
            f"the Ibis {dialect} backend or its driver is not installed: "
            f"uv add 'ibis-framework[duckdb,{extra}]==12.0.0'"
        ) from exc
    except Exception as exc:  # driver errors differ per database: say which URL failed
        raise DatabaseWorkspaceError(
            f"cannot connect to the workspace database {redact(url)}: {type(exc).__name__}: {exc}"
        ) from exc
