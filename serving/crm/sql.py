"""The CRM tables in a SQL database through SQLAlchemy 2 Core: PostgreSQL (and SQLite).

One transaction: create `crm_score_history` (PRIMARY KEY (account_id, as_of)) and
`crm_accounts` (PRIMARY KEY (account_id)) if missing, NOT NULL where the contract says so;
on PostgreSQL lock `crm_accounts` against a concurrent writer; load the history rows into
a temporary staging table, count new / changed / unchanged rows against the table, then

    INSERT INTO crm_score_history SELECT ... FROM staging
    ON CONFLICT (account_id, as_of) DO UPDATE SET ... WHERE <some column IS DISTINCT FROM>

so unchanged rows are not rewritten; read the account rows, let
`serving.crm.accounts.plan_accounts` decide which change, and upsert those by account_id.
A table written before a column of `table.ADDED_LATER` existed gets it (empty) first.
Any error (a NULL in a required column halfway through, a lost connection) rolls the
whole transaction back: the previous tables stay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.crm.accounts import plan_accounts
from serving.crm.table import (
    ACCOUNTS,
    ADDED_LATER,
    HISTORY,
    LEGACY_TABLE,
    CrmTable,
    WriteReport,
    empty,
    from_legacy,
    normalise,
    to_arrow,
)

SQL_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "str": sa.Text,
    "date": sa.Date,
    "float": sa.Double,
    "int": sa.BigInteger,
    "bool": sa.Boolean,
    "timestamp": lambda: sa.DateTime(timezone=True),
}


def crm_table(metadata: sa.MetaData, table: CrmTable = HISTORY, name: str | None = None, *, temporary=False):
    columns = [sa.Column(c.name, SQL_TYPES[c.kind](), nullable=c.nullable) for c in table.columns]
    name = name or table.name
    if temporary:
        return sa.Table(name, metadata, *columns, prefixes=["TEMPORARY"])
    return sa.Table(name, metadata, *columns, sa.PrimaryKeyConstraint(*table.key, name=f"{name}_pkey"))


def _upsert_insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise ValueError(f"CRM upserts support PostgreSQL (and SQLite), not {dialect}")


def _records(rows: pd.DataFrame, table: CrmTable) -> list[dict]:
    """Python values for the driver: dates, floats (NaN as None), ints, bools, aware datetimes."""
    return to_arrow(rows, table).to_pylist()


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":  # pysqlite would commit DDL on its own: make BEGIN explicit

        @sa.event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(connection):
            connection.exec_driver_sql("BEGIN")

    return engine


def _add_columns(conn, spec: CrmTable) -> None:
    """Add the columns of `table.ADDED_LATER` a stored table lacks (empty), in the transaction."""
    stored = {c["name"] for c in sa.inspect(conn).get_columns(spec.name)}
    preparer = conn.dialect.identifier_preparer
    for c in spec.columns:
        if c.name in ADDED_LATER and c.name not in stored:
            kind = SQL_TYPES[c.kind]().compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {preparer.quote(spec.name)} ADD COLUMN {preparer.quote(c.name)} {kind}"))


def _select_frame(conn, table: sa.Table, spec: CrmTable, stored: set[str] | None = None) -> pd.DataFrame:
    """The rows of `table`; `stored` (the columns the database has) leaves out columns of
    `table.ADDED_LATER` it lacks (read empty)."""
    columns = [c for c in table.columns if stored is None or c.name in stored]
    result = conn.execute(sa.select(*columns))
    rows = pd.DataFrame(result.mappings().all(), columns=[c.name for c in columns])
    return normalise(rows, spec) if len(rows) else empty(spec)


def write_sql(
    rows: pd.DataFrame,
    url: str,
    *,
    engine: sa.Engine | None = None,
    written_at: datetime | None = None,
    change_points: int | None = None,
) -> WriteReport:
    """Upsert normalised history rows, and the account rows they make, at `url` in one transaction."""
    own = engine is None
    engine = engine or _engine(url)
    try:
        insert = _upsert_insert(engine.dialect.name)
        metadata = sa.MetaData()
        history = crm_table(metadata, HISTORY)
        accounts = crm_table(metadata, ACCOUNTS)
        stage = crm_table(metadata, HISTORY, f"{HISTORY.name}_incoming", temporary=True)
        values = [c for c in HISTORY.names if c not in HISTORY.key]
        on = sa.and_(*[stage.c[k] == history.c[k] for k in HISTORY.key])
        differs = sa.or_(*[stage.c[c].is_distinct_from(history.c[c]) for c in HISTORY.compared])
        with engine.begin() as conn:
            history.create(conn, checkfirst=True)
            accounts.create(conn, checkfirst=True)
            _add_columns(conn, HISTORY)
            _add_columns(conn, ACCOUNTS)
            if engine.dialect.name == "postgresql":  # one writer at a time: the next waits for this commit
                conn.execute(sa.text(f"LOCK TABLE {ACCOUNTS.name} IN SHARE ROW EXCLUSIVE MODE"))
            stage.create(conn)
            if len(rows):
                conn.execute(sa.insert(stage), _records(rows, HISTORY))
            inserted, updated = conn.execute(
                sa.select(
                    sa.func.count().filter(history.c.account_id.is_(None)),
                    sa.func.count().filter(sa.and_(history.c.account_id.is_not(None), differs)),
                ).select_from(stage.outerjoin(history, on))
            ).one()
            stmt = insert(history).from_select(
                HISTORY.names, sa.select(*[stage.c[c] for c in HISTORY.names]).where(sa.true())
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=list(HISTORY.key),
                set_={c: stmt.excluded[c] for c in values},
                where=sa.or_(*[history.c[c].is_distinct_from(stmt.excluded[c]) for c in HISTORY.compared]),
            )
            conn.execute(stmt)
            stage.drop(conn)
            plan = plan_accounts(_select_frame(conn, accounts, ACCOUNTS), rows, written_at, change_points)
            if len(plan.rows):
                upsert = insert(accounts)
                upsert = upsert.on_conflict_do_update(
                    index_elements=list(ACCOUNTS.key),
                    set_={c: upsert.excluded[c] for c in ACCOUNTS.names if c not in ACCOUNTS.key},
                )
                conn.execute(upsert, _records(plan.rows, ACCOUNTS))
    finally:
        if own:
            engine.dispose()
    inserted, updated = int(inserted), int(updated)
    return WriteReport(inserted, updated, len(rows) - inserted - updated, plan.changed, plan.churned, len(plan.rows))


def read_table(url: str, table: CrmTable = HISTORY) -> pd.DataFrame:
    """A stored CRM table, unordered (empty when missing; the history falls back to `crm_scores`)."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            if inspector.has_table(table.name):
                stored = {c["name"] for c in inspector.get_columns(table.name)}
                return _select_frame(conn, crm_table(sa.MetaData(), table), table, stored)
            if table is HISTORY and inspector.has_table(LEGACY_TABLE):
                legacy = sa.Table(LEGACY_TABLE, sa.MetaData(), autoload_with=conn)
                return from_legacy(pd.DataFrame(conn.execute(sa.select(legacy)).mappings().all()))
            return empty(table)
    finally:
        engine.dispose()


def read_sql(url: str, table: CrmTable = HISTORY) -> pd.DataFrame:
    """The stored CRM table ordered by key (for checks and reports)."""
    rows = read_table(url, table)
    return rows.sort_values(list(table.key), kind="stable", ignore_index=True)
