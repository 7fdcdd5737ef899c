"""Batch scoring on Spark gives the local scorer's CRM table: same rows, reasons, actions
and versions, likelihoods within 1e-12. Needs pyspark and Java 17 (skips without them,
unless RADAR_REQUIRE_SPARK=1)."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

SCORED_AT = datetime(2026, 1, 5, 7, 0, tzinfo=timezone.utc)
SPARK = {"master": "local[2]", "driver_memory": "1g", "shuffle_partitions": 2}


def _require_spark() -> None:
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (uv sync --extra spark)"
    if reason is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "no Java runtime (Debian package: openjdk-17-jre-headless)"
    if reason is not None:
        if os.environ.get("RADAR_REQUIRE_SPARK") == "1":
            pytest.fail(f"RADAR_REQUIRE_SPARK=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def both(served_project, tmp_path_factory):
    """(local CRM rows, Spark result) for the latest as_of of the served project."""
    _require_spark()
    from serving.batch import load_snapshots
    from serving.champions import load_champions
    from serving.crm import crm_frame
    from serving.score import score_frame
    from serving.spark_score import score_on_spark
    from training.cli import _quiet_mlflow

    root, settings = served_project
    on_spark = settings.model_copy(update={"spark": settings.spark.model_copy(update=SPARK | {
        "staging_dir": tmp_path_factory.mktemp("spark_score")})})
    with _quiet_mlflow():
        frame, _ = load_snapshots(settings)
        local = crm_frame(score_frame(frame, load_champions(settings), settings, scored_at=SCORED_AT),
                          settings.serving)
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
        np.testing.assert_allclose(crm[col].to_numpy(), local[col].to_numpy(), rtol=0, atol=1e-12,
                                   equal_nan=True, err_msg=col)
    for col in local.columns.difference(["renewal_likelihood", "upsell_likelihood", "health_score"]):
        assert crm[col].tolist() == local[col].tolist(), col
    assert (crm.scored_at == pd.Timestamp(SCORED_AT)).all()
    assert spark.as_of == local.as_of.iloc[0]
    assert spark.lineage["renewal_model_version"] == local.renewal_model_version.iloc[0]
    assert list(on_spark.spark.staging_dir.iterdir()) == []  # the staged Parquet is removed
