"""Batch scoring on Apache Spark: the local batch scorer's CRM table, computed on the executors.

Nothing here scores. The snapshot rows of one as_of are read from the workspace database
(as `serving.scoring.batch.load_snapshots` reads them) and exported by DuckDB as one Parquet file
under the Spark staging folder, which Spark then reads (Parquet rather than rows sent from
this process, as the Spark feature build does: executors read it in parallel, and on a
cluster from shared storage). Each partition is scored with `mapInPandas` by the very
`score_frame` + `crm_frame` of the local scorer, with one `scored_at` for the whole run.

The driver only looks up the champion versions; each executor process loads those exact
versions (not the alias, which a promotion could move mid-run) from the registry once and
keeps them in a module-level cache for every later partition it scores. On a cluster the
executors must reach the registry (an MLflow server, or a store on shared storage).

The CRM history rows (a few hundred bytes per account) are collected to the driver, the
accounts' CRM ids added there, and written with `serving.crm.write.write_scores`, which
also derives `crm_accounts` from them, so every target the local scorer supports gets
both tables exactly as from the local scorer.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from radar.settings import Settings
from serving.crm.table import COLUMNS, crm_frame, normalise, rank_calls, workspace_crm_ids
from serving.scoring.batch import SNAPSHOTS

if TYPE_CHECKING:
    from training.model import RadarModel

_SPARK_TYPES = {
    "str": "string",
    "date": "date",
    "float": "double",
    "int": "bigint",
    "bool": "boolean",
    "timestamp": "timestamp",
}
CRM_DDL = ", ".join(f"{c.name} {_SPARK_TYPES[c.kind]}" for c in COLUMNS)

_LOADED: dict[tuple[str, str, str], RadarModel] = {}  # (registry URI, model name, version) -> RadarModel, per process


@dataclass(frozen=True)
class SparkScores:
    """The CRM rows of a Spark run (ordered by account_id), the as_of scored and the models' lineage."""

    crm: pd.DataFrame
    as_of: date
    lineage: dict[str, str | None]


def _served(uri: str, name: str, version: str):
    """A champion version, loaded once per executor process."""
    from serving.scoring.score import ServedModel

    key = (uri, name, version)
    if key not in _LOADED:
        import mlflow

        from training.pyfunc import load_radar_model

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        _LOADED[key] = load_radar_model(f"models:/{name}/{version}")
    return ServedModel(_LOADED[key], name, version)


def _score_partition(
    settings: Settings, uri: str, versions: dict[str, tuple[str, str]], scored_at: datetime
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function Spark runs on each partition of snapshot rows: score_frame, then crm_frame."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from serving.scoring.score import ScoringModels, score_frame

        served = {t: _served(uri, *v) for t, v in versions.items()}
        models = ScoringModels(served["renewal"], served["upsell"], served.get("next_renewal"))
        for batch in batches:
            if len(batch):
                scored = score_frame(batch, models, settings, scored_at=scored_at)
                yield crm_frame(scored, settings.serving)

    return score


def _export_snapshots(settings: Settings, as_of: date | None, path) -> tuple[date, dict[str, str]]:
    """The snapshot rows of `as_of` (default: the latest) as one Parquet file at `path`; that
    date and the accounts' CRM ids (`workspace_crm_ids`)."""
    from serving.scoring.batch import reading_workspace, snapshot_date

    with reading_workspace(settings) as con:
        as_of = snapshot_date(con, settings, as_of)
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT * FROM {SNAPSHOTS} WHERE CAST(as_of AS DATE) = $as_of ORDER BY account_id) "
            f"TO '{path}' (FORMAT parquet)",
            {"as_of": as_of},
        )
        crm_ids = workspace_crm_ids(con)
    return as_of, crm_ids


def score_on_spark(
    settings: Settings, as_of: date | None = None, *, scored_at: datetime | None = None, session=None
) -> SparkScores:
    """Score every account of the workspace at `as_of` (default: the latest snapshot date)
    on Spark (`settings.spark`, or `session` when given) and return the CRM rows, as
    `crm_frame(score_frame(load_snapshots(...)))` would give them locally."""
    from features.spark import spark_session, staging_dir
    from serving.scoring.champions import champion_versions
    from training.outcome import TARGETS
    from training.track import tracking_uri

    stamp = scored_at or datetime.now(UTC)
    versions = champion_versions(settings)
    names = {t: (TARGETS[t].model_name, v) for t, v in versions.items()}
    lineage = {
        "renewal_model": names["renewal"][0],
        "renewal_model_version": names["renewal"][1],
        "upsell_model": names["upsell"][0],
        "upsell_model_version": names["upsell"][1],
        "next_renewal_model": names["next_renewal"][0] if "next_renewal" in names else None,
        "next_renewal_model_version": names["next_renewal"][1] if "next_renewal" in names else None,
    }
    staging = (staging_dir(settings) / f"score-{uuid.uuid4().hex[:12]}").absolute()
    spark = session
    try:
        source = staging / "input" / f"{SNAPSHOTS}.parquet"
        day, crm_ids = _export_snapshots(settings, as_of, source)
        spark = spark or spark_session(settings, staging)
        rows = spark.read.parquet(str(source)).repartition(settings.spark.shuffle_partitions)
        scored = rows.mapInPandas(_score_partition(settings, tracking_uri(settings.training), names, stamp), CRM_DDL)
        crm = scored.toPandas()
        crm["crm_id"] = crm["account_id"].map(crm_ids)  # looked up on the driver, as the local scorer does
        crm = rank_calls(normalise(crm))  # partitions ranked apart: rank the whole portfolio
    finally:
        if spark is not None and session is None:
            spark.stop()
        shutil.rmtree(staging, ignore_errors=True)
    crm = crm.sort_values(["account_id", "as_of"], kind="stable", ignore_index=True)
    return SparkScores(crm, day, lineage)
