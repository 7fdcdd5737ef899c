"""Float aggregates that do not depend on the order of the rows (features/exact.py)."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

from features.build import build_features
from features.contract import TABLES
from features.exact import exact_mean, exact_sum
from features.ingest import ingest_workspace
from features.sampledata import generate_workspace
from radar.settings import Settings

ORDERS = ([1e16, 1.0, -1e16, 1.0], [1.0, 1.0, 1e16, -1e16])  # float sums 1.0 and 2.0; exactly 2.0


def test_a_plain_float_sum_depends_on_the_order_and_the_exact_one_does_not():
    con = ibis.duckdb.connect()
    con.raw_sql("SET threads = 1")
    plain, exact, means = [], [], []
    for k, values in enumerate(ORDERS):
        t = con.create_table(f"t{k}", pd.DataFrame({"x": values}))
        plain.append(float(t.x.sum().execute()))
        exact.append(float(exact_sum(t.x).execute()))
        means.append(float(exact_mean(t.x, where=t.x < 1e15).execute()))
    assert plain[0] != plain[1]  # the problem: same rows, other order, other bits
    assert exact == [2.0, 2.0] and means[0] == means[1]


def test_snapshots_are_bit_identical_whatever_the_order_of_the_raw_rows(tmp_path):
    generate_workspace(tmp_path / "ws", accounts=60, years=1, seed=5)
    built = []
    for run in ("as-given", "shuffled"):
        settings = Settings(output_dir=tmp_path / run)
        ingest_workspace(tmp_path / "ws", settings)
        if run == "shuffled":
            con = ibis.duckdb.connect(str(settings.database_path))
            con.raw_sql("SELECT setseed(0.42)")
            for name in TABLES:
                if name in con.list_tables():
                    con.raw_sql(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "{name}" ORDER BY random()')
            con.disconnect()
        build_features(settings)
        frame = pd.read_parquet(settings.output_dir / "snapshots.parquet")
        built.append(frame.sort_values(["account_id", "as_of"], ignore_index=True))
    pd.testing.assert_frame_equal(built[0], built[1], check_exact=True)


@pytest.mark.parametrize("values", [[0.1, 0.2, 0.3], [1234.56, 0.01, 99.99]])
def test_exact_sums_agree_with_python_within_the_fixed_point_resolution(values):
    t = ibis.memtable({"x": values})
    assert float(exact_sum(t.x).execute()) == pytest.approx(sum(values), abs=1e-11)
