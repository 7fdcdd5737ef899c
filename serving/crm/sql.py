"""The CRM table in a SQL database through SQLAlchemy 2 Core: PostgreSQL (and SQLite).

One transaction: create `crm_scores` if missing (PRIMARY KEY (account_id, as_of), NOT
NULL where the CRM contract says so), load the rows into a temporary staging table with
the same constraints, count new / changed / unchanged rows against the table, then

    INSERT INTO crm_scores SELECT ... FROM staging
    ON CONFLICT (account_id, as_of) DO UPDATE SET ... WHERE <some column IS DISTINCT FROM>

so unchanged rows are not rewritten. Any error (a NULL in a required column halfway
through, a lost connection) rolls the whole transaction back: the previous table stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.crm.table import COLUMNS, COMPARED, KEY, NAMES, TABLE, WriteReport, to_arrow

SQL_TYPES: dict[str, Callable[[], sa.types.TypeEngine[Any]]] = {
    "str": sa.Text,
    "date": sa.Date,
    "float": sa.Double,
    "int": sa.BigInteger,
    "bool": sa.Boolean,
    "timestamp": lambda: sa.DateTime(timezone=True),
}


def crm_table(metadata: sa.MetaData, name: str = TABLE, *, temporary: bool = False) -> sa.Table:
    columns = [sa.Column(c.name, SQL_TYPES[c.kind](), nullable=c.nullable) for c in COLUMNS]
    if temporary:
        return sa.Table(name, metadata, *columns, prefixes=["TEMPORARY"])
    return sa.Table(name, metadata, *columns, sa.PrimaryKeyConstraint(*KEY, name=f"{name}_pkey"))


def _upsert_insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise ValueError(f"CRM upserts support PostgreSQL (and SQLite), not {dialect}")


def _records(rows: pd.DataFrame) -> list[dict]:
    """Python values for the driver: dates, floats (NaN as None), bools, aware datetimes."""
    return to_arrow(rows).to_pylist()


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


def write_sql(rows: pd.DataFrame, url: str, *, engine: sa.Engine | None = None) -> WriteReport:
    """Upsert normalised CRM rows into `crm_scores` at `url` in one transaction."""
    own = engine is None
    engine = engine or _engine(url)
    try:
        insert = _upsert_insert(engine.dialect.name)
        metadata = sa.MetaData()
        table = crm_table(metadata)
        stage = crm_table(metadata, f"{TABLE}_incoming", temporary=True)
        values = [c for c in NAMES if c not in KEY]
        on = sa.and_(*[stage.c[k] == table.c[k] for k in KEY])
        differs = sa.or_(*[stage.c[c].is_distinct_from(table.c[c]) for c in COMPARED])
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
            stage.create(conn)
            if len(rows):
                conn.execute(sa.insert(stage), _records(rows))
            joined = stage.outerjoin(table, on)
            inserted, changed = conn.execute(
                sa.select(
                    sa.func.count().filter(table.c.account_id.is_(None)),
                    sa.func.count().filter(sa.and_(table.c.account_id.is_not(None), differs)),
                ).select_from(joined)
            ).one()
            stmt = insert(table).from_select(NAMES, sa.select(*[stage.c[c] for c in NAMES]).where(sa.true()))
            stmt = stmt.on_conflict_do_update(
                index_elements=list(KEY),
                set_={c: stmt.excluded[c] for c in values},
                where=sa.or_(*[table.c[c].is_distinct_from(stmt.excluded[c]) for c in COMPARED]),
            )
            conn.execute(stmt)
            stage.drop(conn)
    finally:
        if own:
            engine.dispose()
    return WriteReport(int(inserted), int(changed), len(rows) - int(inserted) - int(changed))


def read_sql(url: str) -> pd.DataFrame:
    """The stored CRM table, ordered by key (for checks and reports)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = crm_table(sa.MetaData())
            result = conn.execute(sa.select(table).order_by(*[table.c[k] for k in KEY]))
            return pd.DataFrame(result.mappings().all(), columns=NAMES)
    finally:
        engine.dispose()
