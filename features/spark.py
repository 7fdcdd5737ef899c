"""The feature build on Apache Spark: the same Ibis expressions, through Ibis' PySpark backend.

Nothing here defines a feature. The contract tables are exported from the workspace as
Parquet files into a staging folder (Parquet rather than rows sent from this process, so
that Spark reads them in parallel and a cluster can read them from shared storage), the
snapshot expression of `features.snapshot` is compiled to Spark SQL, and the text step
applies the very matcher of `features.text` inside Spark (`mapInPandas`, one batch of
texts at a time on the executors). Spark writes evidence and snapshots as Parquet, which
are then loaded into the local workspace database as the DuckDB build would leave them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import ibis
import pandas as pd

from features.labels import BLACKOUTS_TABLE, workspace_blackouts
from features.snapshot import KEY, Workspace, text_rows
from features.text.evidence import EVIDENCE_SCHEMA, iter_evidence
from features.text.taxonomy import Taxonomy, load_taxonomy
from radar.settings import Settings

LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")
_SPARK_TYPES = {
    "string": "string",
    "timestamp": "timestamp_ntz",
    "int64": "bigint",
    "boolean": "boolean",
    "float64": "double",
}
EVIDENCE_DDL = ", ".join(f"{name} {_SPARK_TYPES[str(t).split('(')[0]]}" for name, t in EVIDENCE_SCHEMA.items())


class SparkUnavailable(RuntimeError):
    """Spark cannot run here (pyspark not installed, or no Java), with what to do."""


def staging_dir(settings: Settings) -> Path:
    """The folder under which each Spark build stages its files (in a subfolder of its own)."""
    return settings.spark.staging_dir or settings.output_dir / "spark"


def spark_session(settings: Settings, staging: Path):
    """A Spark session for the build: UTC, quiet, sized by `[spark]`, its warehouse under
    `staging`; local masters bind to 127.0.0.1 and run this interpreter's Python on the
    executors."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable("the Spark engine needs pyspark: uv sync --extra spark") from exc
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise SparkUnavailable("the Spark engine needs Java 17 (e.g. apt-get install openjdk-17-jre-headless)")
    cfg = settings.spark
    conf = {
        "spark.master": cfg.master,
        "spark.app.name": "account-radar build-features",
        "spark.driver.memory": cfg.driver_memory,
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.features.text_batch_rows),
        "spark.sql.warehouse.dir": str((staging / "warehouse").absolute()),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} -Duser.timezone=UTC",
    }
    if cfg.master.startswith("local"):
        conf |= {
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.pyspark.python": sys.executable,
            "spark.pyspark.driver.python": sys.executable,
        }
    if cfg.master.startswith("local"):
        # the workers are started from PYSPARK_PYTHON (else `python3` on PATH, which outside the
        # project's environment lacks its packages); the conf key alone did not reach them
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in (conf | cfg.conf).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_backend(session) -> ibis.BaseBackend:
    """Ibis' PySpark backend on `session`, with one fix: `cache()` registers the in-memory
    tables it reads (the as-of calendar) first, as the DuckDB backend does and Ibis
    12.0.0's PySpark backend does not."""
    from ibis.backends.pyspark import Backend

    class SparkBackend(Backend):
        def _create_cached_table(self, name, expr):
            self._run_pre_execute_hooks(expr)
            return super()._create_cached_table(name, expr)

    backend = SparkBackend()
    backend.register_options()  # what `ibis.pyspark` does on first use
    return backend.connect(session)


def spark_workspace(source: Workspace, session, staging: Path) -> Workspace:
    """`source`'s contract tables in Spark: each exported as Parquet under `staging`, then
    read by Spark (same names, same data span)."""
    backend = spark_backend(session)
    tables: dict[str, ibis.Table | None] = {}
    for name, table in source.tables.items():
        if table is None:
            tables[name] = None
            continue
        path = staging / "input" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path)
        tables[name] = backend.read_parquet(path.absolute(), table_name=name)
    blackouts = workspace_blackouts(source.backend)  # ingest's rejected subscription rows: the labels read them
    if blackouts is not None:
        path = staging / "input" / f"{BLACKOUTS_TABLE}.parquet"
        blackouts.to_parquet(path)
        backend.read_parquet(path.absolute(), table_name=BLACKOUTS_TABLE)
    return Workspace(backend, tables, source.data_start, source.data_end, source.activity_start)


def _match_texts(taxonomy: Taxonomy, counter) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function Spark runs on each partition of text rows: the matcher of
    `features.text.evidence`, compiled once per partition."""

    def counted(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            counter.add(len(batch))
            yield batch

    def match(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in iter_evidence(counted(batches), taxonomy):
            if len(frame):
                yield frame

    return match


def spark_evidence(
    ws: Workspace, session, settings: Settings, staging: Path, progress: Callable[[int], None] | None = None
) -> ibis.Table | None:
    """Evidence of every text of `ws` (a Spark workspace on `session`), computed on the
    executors and written as Parquet under `staging`; None when the workspace has no text."""
    rows = text_rows(ws)
    if rows is None:
        return None
    backend = ws.backend
    backend.create_view("radar_text_rows", rows, overwrite=True)
    counter = session.sparkContext.accumulator(0)
    taxonomy = load_taxonomy(extra_dir=settings.features.taxonomy_dir)
    evidence = session.table("radar_text_rows").mapInPandas(_match_texts(taxonomy, counter), EVIDENCE_DDL)
    path = staging / "evidence"
    evidence.write.mode("overwrite").parquet(str(path.absolute()))
    if progress:
        progress(counter.value)
    return backend.read_parquet(path.absolute(), table_name="evidence")


def write_snapshots(ws: Workspace, expr: ibis.Table, staging: Path) -> Path:
    """Run the snapshot expression on Spark, writing Parquet part files under `staging`."""
    path = staging / "snapshots"
    ws.backend.to_parquet(expr, path.absolute(), mode="overwrite")
    return path


def load_results(store: ibis.BaseBackend, snapshots: Path, schema: ibis.Schema, evidence: Path | None) -> None:
    """Spark's Parquet output into `store` as the tables `snapshots` (ordered by account
    and as_of, typed as `schema`) and `evidence`."""
    snaps = store.read_parquet(f"{snapshots.absolute()}/part-*.parquet")
    store.create_table("snapshots", snaps.select(*schema.names).cast(schema).order_by(KEY), overwrite=True)
    if evidence is not None:
        ev = store.read_parquet(f"{evidence.absolute()}/part-*.parquet")
        store.create_table("evidence", ev.select(*EVIDENCE_SCHEMA.names).cast(EVIDENCE_SCHEMA), overwrite=True)
