"""Writing generated columns as contract tables: Arrow types derived from
`features.contract`, one Parquet or CSV file per table."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.contract import Table

ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}
FORMATS = ("parquet", "csv")


def arrow_schema(table: Table) -> pa.Schema:
    """Arrow types of the contract's columns; a number that the contract also accepts as
    a word (billing_period: "month", "quarter", "semiannual", "year") is written as the
    word, as a billing export would hold it."""
    return pa.schema(
        [
            pa.field(c.name, pa.string() if getattr(c, "words", ()) else ARROW_TYPES[c.type], nullable=not c.required)
            for c in table.columns
        ]
    )


def _column(values, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pd.Categorical):
        return pa.array(values).cast(type_)
    if isinstance(values, np.ma.MaskedArray):
        return pa.array(values.data, mask=np.ma.getmaskarray(values), type=type_)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        values = values.astype("datetime64[us]")
    return pa.array(values, type=type_, from_pandas=True)


def to_arrow(table: Table, columns: dict) -> pa.Table:
    """Columns (numpy arrays; None, NaN, NaT or a mask for nulls) in contract order; an
    optional contract column the generator does not draw is written empty."""
    required = {c.name for c in table.columns if c.required}
    missing = required - set(columns)
    extra = set(columns) - set(table.column_names)
    if missing or extra:
        raise ValueError(f"{table.name}: missing {sorted(missing)}, unexpected {sorted(extra)}")
    schema = arrow_schema(table)
    rows = len(next(iter(columns.values()))) if columns else 0
    arrays = [_column(columns[f.name], f.type) if f.name in columns else pa.nulls(rows, type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    """Timestamps in whole seconds, so CSV shows `2024-05-01 09:30:00`."""
    return pa.schema(
        [pa.field(f.name, pa.timestamp("s"), f.nullable) if pa.types.is_timestamp(f.type) else f for f in schema]
    )


def write_table(table: Table, chunks: Iterable[dict], path_stem: Path, fmt: str) -> int:
    """Write a table given as one or more column blocks to `<stem>.parquet` or
    `<stem>.csv` (ISO dates and timestamps, empty fields for nulls); returns its rows."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
    schema = arrow_schema(table)
    rows = 0
    if fmt == "parquet":
        writer = pq.ParquetWriter(path_stem.with_suffix(".parquet"), schema, compression="zstd")
    else:
        schema = _csv_schema(schema)
        writer = pacsv.CSVWriter(
            path_stem.with_suffix(".csv"), schema, write_options=pacsv.WriteOptions(quoting_style="needed")
        )
    with writer:
        for columns in chunks:
            data = to_arrow(table, columns)
            writer.write_table(data.cast(schema))
            rows += data.num_rows
    return rows
