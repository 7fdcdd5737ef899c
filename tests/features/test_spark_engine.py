"""The Spark engine: the same feature definitions give the same snapshots and evidence.

A small generated workspace is ingested once and built twice, by DuckDB and by Spark in
local mode; the two `snapshots` tables (and `evidence` tables) must hold the same rows,
the same labels and the same features (floats within 1e-9). Needs pyspark (`uv sync
--extra spark`) and Java 17: without them the Spark tests skip, unless
RADAR_REQUIRE_SPARK=1 (CI), where they fail.
"""

from __future__ import annotations

import gc
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radar.settings import ConfigError, load_settings
from tests.features.test_event_features import add_foreign_events, assert_foreign_features

# first and last of 3 month-ends, labels partly known: the data ends on 2026-10-26 (the subscriptions' last
# date), so the first month-end's labels (90 days + 30 days' grace) are known and the last's are not
AS_OF = (date(2026, 5, 31), date(2026, 7, 31))
TEXT_BATCH = 200  # several batches of texts on either engine (the sample has about 1,000 texts)
SPARK = {"master": "local[2]", "driver_memory": "1g", "shuffle_partitions": 2}


@pytest.fixture(scope="module")
def builds(tmp_path_factory, spark_required):
    """(DuckDB result, Spark result, DuckDB settings, Spark settings) on one ingested workspace."""
    import duckdb

    from features.build import build_features
    from features.ingest import ingest_workspace
    from features.sampledata import generate_workspace

    root = tmp_path_factory.mktemp("spark_engine")
    generate_workspace(root / "ws", accounts=40, years=1, seed=5)
    on_duckdb = load_settings(output_dir=root / "duckdb", features={"text_batch_rows": TEXT_BATCH})
    ingest_workspace(root / "ws", on_duckdb)
    with duckdb.connect(str(on_duckdb.database_path)) as con:  # as if a subscription row of each was rejected
        con.execute(
            "INSERT INTO label_blackouts SELECT DISTINCT account_id, DATE '2020-01-01', 1 FROM subscriptions "
            "WHERE account_id LIKE '%1'"
        )
    add_foreign_events(on_duckdb.database_path)  # per-event features of names of another product's
    gc.collect()  # let ingest's DuckDB connection go before the database is copied
    (root / "spark").mkdir()
    shutil.copy(on_duckdb.database_path, root / "spark" / on_duckdb.database_name)
    on_spark = load_settings(
        output_dir=root / "spark", features={"engine": "spark", "text_batch_rows": TEXT_BATCH}, spark=SPARK
    )

    results = {}
    for name, settings in (("duckdb", on_duckdb), ("spark", on_spark)):
        result = build_features(settings, *AS_OF)
        gc.collect()
        with duckdb.connect(str(settings.database_path), read_only=True) as con:
            tables = {t: con.execute(f"SELECT * FROM {t}").df() for t in ("snapshots", "evidence")}
            types = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'snapshots' ORDER BY ordinal_position"
            ).fetchall()
        results[name] = (result, tables, types)
    return results, on_duckdb, on_spark


def _assert_same_frames(duck: pd.DataFrame, spark: pd.DataFrame, what: str) -> None:
    assert list(spark.columns) == list(duck.columns), what
    assert len(spark) == len(duck), what
    for col in duck.columns:
        a, b = duck[col], spark[col]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(dtype=float, na_value=np.nan), b.to_numpy(dtype=float, na_value=np.nan)
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{what}.{col}: missing in different rows"
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=f"{what}.{col}")
        else:
            differ = ~((a == b).fillna(False) | (a.isna() & b.isna()))
            assert not differ.any(), f"{what}.{col}: first difference {a[differ].iloc[0]!r} vs {b[differ].iloc[0]!r}"


@pytest.mark.slow
def test_spark_and_duckdb_build_identical_snapshots(builds):
    results, on_duckdb, on_spark = builds
    (duck_result, duck, duck_types), (spark_result, spark, spark_types) = results["duckdb"], results["spark"]
    assert spark_types == duck_types
    snaps = duck["snapshots"]
    assert len(snaps) > 50 and snaps.as_of.nunique() == 3
    assert snaps.churned.notna().any() and snaps.churned.isna().any()  # known and unknown labels both checked
    # churn by the next renewal: known for the accounts renewing soon, unknown for the others
    assert snaps.churned_by_renewal.notna().any() and snaps.churned_by_renewal.isna().any()
    assert snaps.next_renewal.notna().any() and snaps.next_renewal.isna().any()  # open-ended lines: none
    assert snaps.label_end_by_renewal.notna().all()
    assert spark_result.rows == duck_result.rows
    assert_foreign_features(snaps)  # compared below with every other column
    assert (on_spark.output_dir / "event_features.json").read_text() == (
        on_duckdb.output_dir / "event_features.json"
    ).read_text()
    # the accounts with a rejected subscription row (label_blackouts) have unknown labels on both engines
    blacked = snaps[snaps.account_id.str.endswith("1")]
    assert len(blacked) and blacked.churned.isna().all() and blacked.churned_by_renewal.isna().all()
    _assert_same_frames(snaps, spark["snapshots"], "snapshots")


@pytest.mark.slow
def test_spark_and_duckdb_find_the_same_evidence(builds):
    results, _, _ = builds
    (duck_result, duck, _), (spark_result, spark, _) = results["duckdb"], results["spark"]
    order = ["conversation_id", "sentence_index", "expression", "bucket", "polarity"]
    duck_ev = duck["evidence"].sort_values(order, ignore_index=True)
    spark_ev = spark["evidence"].sort_values(order, ignore_index=True)
    assert len(duck_ev) > 0 and spark_result.evidence_rows == duck_result.evidence_rows
    assert set(duck_ev.source_table) == {"feedback", "support_tickets", "touchpoints"}
    _assert_same_frames(duck_ev, spark_ev, "evidence")


@pytest.mark.slow
def test_the_spark_build_writes_the_same_outputs_and_removes_its_staging_folder(builds):
    results, on_duckdb, on_spark = builds
    from features.spark import staging_dir

    duck, spark = results["duckdb"][0], results["spark"][0]
    assert list(staging_dir(on_spark).iterdir()) == []
    pd.testing.assert_frame_equal(
        pd.read_parquet(spark.parquet), pd.read_parquet(duck.parquet), check_exact=False, rtol=1e-9, atol=1e-9
    )
    assert spark.report.read_text() == duck.report.read_text()
    assert {"spark start", "text", "snapshots", "report"} <= set(spark.seconds)


def test_the_engine_is_duckdb_unless_configured_and_nothing_else():
    assert load_settings().features.engine == "duckdb"
    assert load_settings(features={"engine": "spark"}).features.engine == "spark"
    with pytest.raises(ConfigError, match="engine"):
        load_settings(features={"engine": "flink"})


def test_build_features_refuses_an_unknown_engine(tmp_path, monkeypatch):
    from radar.cli import app

    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")  # else the shared console keeps 120 columns for later tests
    result = CliRunner().invoke(app, ["build-features", "--engine", "flink"])
    assert result.exit_code == 2
    assert "--engine must be duckdb or spark" in result.output


def test_without_java_the_spark_engine_says_what_to_install(monkeypatch, tmp_path):
    from features import spark

    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(spark.SparkUnavailable, match="Java 17|pyspark"):
        spark.spark_session(load_settings(features={"engine": "spark"}), tmp_path)
