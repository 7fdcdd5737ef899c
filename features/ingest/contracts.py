"""Table contracts (pandera, Ibis backend) derived from the contract declarations.

They are the post-condition of ingest: whatever the per-row checks accepted must satisfy
the contract as a whole table (types, nulls, allowed values, ranges, unique ids). The
check runs inside DuckDB through Ibis, so it costs no memory at any table size.
"""

from __future__ import annotations

from dataclasses import replace

import ibis
import ibis.expr.datatypes as dt
import pandera.ibis as pa

from features.contract import Column, Table
from features.ingest.checks import normalised_word

IBIS_TYPES = {
    "string": dt.String,
    "timestamp": dt.Timestamp(scale=6),  # DuckDB TIMESTAMP: microseconds, naive UTC
    "date": dt.Date,
    "float": dt.Float64,
    "int": dt.Int64,
    "bool": dt.Boolean,
}


# Plausibility bounds for money and counts: a value above them is a broken export (1e300 would
# top every ranking), so its row is rejected with the reason. Overridable in radar.toml under
# [ingest.plausible_max.<table>], e.g. subscriptions = {mrr = 5e7}.
PLAUSIBLE_MAX: dict[str, dict[str, float]] = {
    "subscriptions": {"mrr": 10_000_000.0, "seats": 1_000_000.0},
}


def with_bounds(table: Table, overrides: dict[str, dict[str, float]] | None = None) -> Table:
    """`table` with the plausibility maxima (PLAUSIBLE_MAX, then `overrides`) set on its columns."""
    bounds = {**PLAUSIBLE_MAX.get(table.name, {}), **(overrides or {}).get(table.name, {})}
    unknown = sorted(set(bounds) - set(table.column_names))
    if unknown:
        raise ValueError(f"ingest.plausible_max.{table.name}: no column(s) {', '.join(unknown)}")
    columns = tuple(replace(c, max=bounds[c.name]) if c.name in bounds else c for c in table.columns)
    return replace(table, columns=columns)


def with_words(table: Table, extra: dict[str, dict[str, int]] | None = None) -> Table:
    """`table` with more words accepted for its whole-number columns, e.g.
    {"billing_period": {"semestral": 6}} (ingest.billing_period_words); they win over the contract's."""
    columns = []
    for c in table.columns:
        more = (extra or {}).get(c.name)
        if more and c.words:
            merged = dict(c.words) | {normalised_word(w): int(n) for w, n in more.items()}
            c = replace(c, words=tuple(merged.items()))
        columns.append(c)
    return replace(table, columns=tuple(columns))


class ContractViolation(AssertionError):
    """A loaded table breaks its contract: a bug in ingest, never a user error."""


def _column_schema(col: Column, key: str | None) -> pa.Column:
    checks = []
    if col.allowed:
        checks.append(pa.Check.isin(list(col.allowed)))
    if col.min is not None:
        checks.append(pa.Check.ge(col.min))
    if col.max is not None:
        checks.append(pa.Check.le(col.max))
    return pa.Column(
        IBIS_TYPES[col.type],
        checks=checks,
        nullable=not (col.required or col.default is not None),
        unique=col.name == key,
    )


def table_schema(table: Table) -> pa.DataFrameSchema:
    """The pandera schema of a loaded contract table."""
    return pa.DataFrameSchema(
        {c.name: _column_schema(c, table.key) for c in table.columns},
        name=table.name,
        strict=True,
    )


def check_loaded_table(con, table: Table, sample_rows: int | None = None) -> None:
    """Validate the loaded `table` in the DuckDB connection `con` against its contract
    (its first `sample_rows` rows only, if given: a second full pass over millions of rows
    would cost as much as the checks that made them)."""
    loaded = ibis.duckdb.from_connection(con).table(table.name)
    if sample_rows is not None:
        loaded = loaded.limit(sample_rows)
    if loaded.count().execute() == 0:
        return  # nothing to check (and pandera's Ibis checks misreport empty tables)
    try:
        table_schema(table).validate(loaded, lazy=True)
    except (pa.errors.SchemaErrors, pa.errors.SchemaError) as exc:
        raise ContractViolation(f"{table.name} breaks its contract after ingest: {exc}") from exc
