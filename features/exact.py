"""Order-independent float aggregates: the same rows give the same bits, whatever order
the engine adds them in.

DuckDB and Spark add partial sums in whatever order their threads and the input rows
come, so a float sum or mean can differ in its last bits (about 1e-16) between two
builds of the same data — enough to move a LightGBM split, and the metrics in the third
decimal. Summed in fixed point (DECIMAL(38, 12)) the total is exact, so the order does
not matter; it is converted back to float64. Twelve decimals are far below any
feature's resolution (cents, hours, shares). Integer columns need none of this.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

FIXED = dt.Decimal(38, 12)


def exact_sum(value: ibis.Value, where: ibis.Value | None = None) -> ibis.Value:
    """SUM(value) as float64, the same whatever the order of the rows."""
    return value.cast(FIXED).sum(where=where).cast("float64")


def exact_mean(value: ibis.Value, where: ibis.Value | None = None) -> ibis.Value:
    """AVG(value) as float64, the same whatever the order of the rows."""
    return value.cast(FIXED).mean(where=where).cast("float64")
