"""Tiny hand-built workspaces in a real in-memory DuckDB, for the snapshot tests."""

from __future__ import annotations

from datetime import date

import ibis
import pandas as pd
import pytest

from features.contract import TABLES
from features.snapshot import Workspace

PANDAS_TYPES = {
    "string": "string",
    "timestamp": "datetime64[us]",
    "date": "datetime64[us]",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}


def typed_frame(table: str, rows: list[dict]) -> pd.DataFrame:
    """A frame with every contract column of `table`, typed as ingest stores it."""
    spec = TABLES[table]
    frame = pd.DataFrame(rows, columns=spec.column_names)
    for col in spec.columns:
        frame[col.name] = frame[col.name].astype(PANDAS_TYPES[col.type])
        if col.type == "date":
            frame[col.name] = frame[col.name].dt.date
    return frame


def make_workspace(tables: dict[str, list[dict]], data_end: date, activity_start: date | None = None) -> Workspace:
    """A Workspace over a fresh in-memory DuckDB holding the given contract tables."""
    backend = ibis.duckdb.connect()
    present: dict[str, ibis.Table | None] = {}
    for name, spec in TABLES.items():
        if name in tables:
            frame = typed_frame(name, tables[name])
            schema = ibis.schema({c.name: _ibis_type(c.type) for c in spec.columns})
            present[name] = backend.create_table(name, frame, schema=schema)
        else:
            present[name] = None
    start = min(pd.Timestamp(r["start_date"]).date() for r in tables["subscriptions"])
    return Workspace(backend, present, start, data_end, activity_start or start)


def _ibis_type(t: str) -> str:
    return {
        "string": "string",
        "timestamp": "timestamp(6)",
        "date": "date",
        "float": "float64",
        "int": "int64",
        "bool": "boolean",
    }[t]


@pytest.fixture(scope="session")
def workspace_factory():
    return make_workspace
