"""Batch scoring on Spark gives the local scorer's CRM table: same rows, reasons, actions
and versions, likelihoods within 1e-12. Needs pyspark and Java 17 (skips without them,
unless RADAR_REQUIRE_SPARK=1)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

SCORED_AT = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
SPARK = {"master": "local[2]", "driver_memory": "1g", "shuffle_partitions": 2}


@pytest.fixture(scope="module")
def both(served_project, tmp_path_factory, spark_required):
    """(local CRM rows, Spark result) for the latest as_of of the served project."""
    from serving.crm.spark import score_on_spark
    from serving.crm.table import crm_frame
    from serving.scoring.batch import load_snapshots
    from serving.scoring.champions import load_champions
    from serving.scoring.score import score_frame
    from training.quiet import quiet_mlflow

    root, settings = served_project
    on_spark = settings.model_copy(
        update={
            "spark": settings.spark.model_copy(update=SPARK | {"staging_dir": tmp_path_factory.mktemp("spark_score")})
        }
    )
    with quiet_mlflow():
        frame, _ = load_snapshots(settings)
        local = crm_frame(score_frame(frame, load_champions(settings), settings, scored_at=SCORED_AT), settings.serving)
        spark = score_on_spark(on_spark, scored_at=SCORED_AT)
    return local, spark, on_spark


@pytest.mark.slow
def test_spark_scoring_gives_the_local_crm_table(both):
    local, spark, on_spark = both
    crm = spark.crm
    assert len(crm) == len(local) == 250
    assert list(crm.columns) == list(local.columns)
    assert crm.account_id.tolist() == local.account_id.tolist()
    for col in ("renewal_likelihood", "upsell_likelihood", "health_score"):
        np.testing.assert_allclose(
            crm[col].to_numpy(), local[col].to_numpy(), rtol=0, atol=1e-12, equal_nan=True, err_msg=col
        )
    for col in local.columns.difference(["renewal_likelihood", "upsell_likelihood", "health_score"]):
        assert crm[col].tolist() == local[col].tolist(), col
    assert (crm.scored_at == pd.Timestamp(SCORED_AT)).all()
    assert spark.as_of == local.as_of.iloc[0]
    assert spark.lineage["renewal_model_version"] == local.renewal_model_version.iloc[0]
    assert list(on_spark.spark.staging_dir.iterdir()) == []  # the staged Parquet is removed


@pytest.mark.slow
def test_radar_score_on_spark_leaves_the_local_crm_table_unchanged(served_project, tmp_path, spark_required):
    """Through the CLI: the Spark run over the local run's CRM file finds every row equal."""
    from typer.testing import CliRunner

    from radar.cli import app

    root, _ = served_project
    shutil.copytree(root / "out", tmp_path / "out")
    env = {
        "RADAR_CONFIG_FILE": None,
        "RADAR_OUTPUT_DIR": str(tmp_path / "out"),
        "COLUMNS": "200",
        "RADAR_SPARK__DRIVER_MEMORY": "1g",
        "RADAR_SPARK__SHUFFLE_PARTITIONS": "2",
    }
    target = tmp_path / "crm.parquet"

    def score(*args):
        return CliRunner().invoke(
            app, ["--config", str(root / "radar.toml"), "score", "--to", str(target), *args], env=env
        )

    local = score("--top", "0")
    assert local.exit_code == 0, local.output
    spark = score("--engine", "spark", "--spark-master", "local[2]")
    assert spark.exit_code == 0, spark.output
    assert "scored 250 accounts" in spark.output and "on Spark (local[2])" in spark.output
    assert "0 inserted, 0 updated, 250 unchanged" in spark.output


def test_radar_score_refuses_an_unknown_engine(tmp_path):
    from typer.testing import CliRunner

    from radar.cli import app

    result = CliRunner().invoke(
        app,
        ["score", "--to", str(tmp_path / "crm.parquet"), "--engine", "flink"],
        env={"RADAR_OUTPUT_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "--engine must be local or spark" in result.output
