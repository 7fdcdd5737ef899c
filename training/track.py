"""MLflow tracking: one experiment per target, one run per training, one registered version.

`log_training_run` records a `TrainOutcome` in a run named for what it is ("renewal
2024-01..2026-10 lightgbm", `run_name`): parameters, including the parameters of the
snapshot build that made the table (`snapshot.*`, read from the table's own metadata,
`features.snapshot_meta`, so a weekly build is logged as weekly whatever the config
says now); the headline metrics flat (the model's test figures with their intervals,
the baselines' test figures, the backtest mean and spread, the base rate); each backtest
fold as a nested run with its own figures; every metric, per segment included, as one
table (`evaluation/metrics.csv`) instead of hundreds of flat metrics; the base rate
(param, metric, version tag and model metadata), the dataset it came from (digest,
source, as-of range), the feature list with the registry's descriptions, plots, the
summary table, the per-band table of churn targets (`evaluation/renewal_bands.csv`),
warnings and the test rows — then logs the model as a pyfunc with signature and input
example, registers it under the target's model name and points the `challenger` alias
at the new version. Promotion (`training.promote`) later compares that challenger with
the champion. `experiment_url` is the link to the experiment's runs page.

Nothing here runs at import: the tracking URI is set by `configure`, from the settings.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric, Param
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo

from radar.settings import Settings, TrainingSettings
from training.dataset import TrainingTable
from training.outcome import TrainOutcome
from training.pipeline import train_and_evaluate
from training.pyfunc import ARTIFACT_KEY, ENTRY_POINT, signature_for

CHALLENGER, CHAMPION = "challenger", "champion"
TEST_SET = "test/test_set.parquet"  # the test rows as the model reads them, with labels
TEST_PREDICTIONS = "test/test_predictions.parquet"
MODEL_ARTIFACT = "model"
# Version tags read by promotion and `radar models`.
TAG_TARGET, TAG_LABEL, TAG_ID, TAG_TIME, TAG_WEIGHT = (
    "radar.target",
    "radar.label",
    "radar.id_col",
    "radar.time_col",
    "radar.weight_col",
)
TAG_TEST_RANGE, TAG_DIGEST, TAG_ASOF = "radar.test_range", "radar.dataset_digest", "radar.as_of_range"
TAG_BASE_RATE = "radar.base_rate"  # positive rate of the calibration period: the typical risk
BANDS_TABLE = "evaluation/renewal_bands.csv"  # test metrics per band of days to the next renewal
METRICS_TABLE = "evaluation/metrics.csv"  # every metric of the run: scope, model, segment, metric, value, ci
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # the UI opens on runs, not traces
_RUNTIME = ("mlflow", "lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "pyarrow", "shap")
_BAD_KEY = re.compile(r"[^\w\-. /:]")
_SCHEMA_SAMPLE = 1000
_DIGEST_CHARS = 36  # MLflow stores a dataset digest in 36 characters; the full one is a tag


@dataclass(frozen=True)
class TrackedRun:
    """Where a training run went: its experiment, run and registered model version."""

    experiment: str
    run_id: str
    model_name: str
    version: str | None  # None: logged but not registered (see `not_registered`)
    not_registered: str | None = None
    experiment_id: str = ""
    run_name: str = ""

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def configure(settings: TrainingSettings) -> MlflowClient:
    """Point MLflow (tracking and registry) at `settings.tracking_uri`; a relative sqlite
    path is resolved against the working directory and its folder created."""
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # MLflow's own "View experiment at" link opens MLflow 3's traces tab; `experiment_url` is printed instead
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class TrackingUnavailable(RuntimeError):
    """The configured tracking server does not answer."""


def check_tracking(settings: TrainingSettings, timeout: float = 10.0) -> None:
    """Fail fast when a tracking server is unreachable (MLflow itself retries for minutes);
    any HTTP answer counts as reachable. Database and file stores need no check."""
    uri = tracking_uri(settings)
    if urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as exc:
        raise TrackingUnavailable(
            f"the MLflow tracking server at {uri} does not answer ({exc}); start it or set training.tracking_uri"
        ) from exc


def tracking_uri(settings: TrainingSettings) -> str:
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


def ensure_experiment(client: MlflowClient, name: str, settings: TrainingSettings) -> str:
    """The id of experiment `name`, created if needed (artifacts: `experiment_location`)."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        if existing.tags.get(EXPERIMENT_KIND[0]) is None:  # made before the kind was set
            client.set_experiment_tag(existing.experiment_id, *EXPERIMENT_KIND)
        return existing.experiment_id
    return client.create_experiment(
        name, artifact_location=experiment_location(name, settings), tags=dict([EXPERIMENT_KIND])
    )


def experiment_url(settings: TrainingSettings, experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI's runs page of an experiment (or one run's page). A tracking server's
    own address; for a database store, the address `mlflow ui` serves at by default.
    MLflow's own link (`#/experiments/ID`) may open on the traces tab of MLflow 3."""
    uri = tracking_uri(settings)
    host = uri.rstrip("/") if urlparse(uri).scheme in ("http", "https") else "http://127.0.0.1:5000"
    page = f"{host}/#/experiments/{experiment_id}/runs"
    return f"{page}/{run_id}" if run_id else page


def ui_command(settings: TrainingSettings) -> str | None:
    """The command that serves the UI for a database store (None for a tracking server)."""
    uri = tracking_uri(settings)
    if urlparse(uri).scheme in ("http", "https", "databricks", "databricks-uc"):
        return None
    return f"mlflow ui --backend-store-uri {uri}"


def run_name(table: TrainingTable, model: str = "lightgbm", tuned: bool = False) -> str:
    """What a run is: target, as-of range (months) and model, e.g. "renewal 2024-01..2026-10
    lightgbm" ("... lightgbm tuned" after --tune); a table without time: its row count."""
    span = f"{len(table.frame):,} rows"
    if table.time_col is not None and not table.frame.empty:
        t = table.frame[table.time_col]
        if pd.api.types.is_datetime64_any_dtype(t) or t.map(lambda v: hasattr(v, "isoformat")).all():
            lo, hi = pd.Timestamp(t.min()), pd.Timestamp(t.max())
            span = f"{lo:%Y-%m}..{hi:%Y-%m}"
        else:
            span = f"{t.min()}..{t.max()}"
    return f"{table.target.name} {span} {model}" + (" tuned" if tuned else "")


def experiment_location(name: str, settings: TrainingSettings) -> str | None:
    """Where a new experiment keeps its artifacts: `artifact_location/<name>` (a folder or a
    URI such as s3://bucket/radar) when MLflow writes to a database itself (sqlite,
    postgresql+psycopg://, ...); None when a tracking server or Databricks decides."""
    if urlparse(tracking_uri(settings)).scheme in ("http", "https", "databricks", "databricks-uc"):
        return None
    location = settings.artifact_location
    if "://" in location:
        return f"{location.rstrip('/')}/{name}"
    return (Path(location).resolve() / name).as_uri()


def metric_key(name: str) -> str:
    """A metric name MLflow accepts (segment values may hold any character)."""
    return _BAD_KEY.sub("_", name)


def log_training_run(
    outcome: TrainOutcome, table: TrainingTable, settings: Settings, *, source: str | Path
) -> TrackedRun:
    """Log one training run, register its model and make that version the challenger.

    source: where the table was read from (the snapshot Parquet file or your own file).
    """
    cfg = settings.training
    client = configure(cfg)
    target = outcome.target
    experiment_id = ensure_experiment(client, target.model_name, cfg)
    test_set = _test_rows(outcome, table)
    as_of = _as_of_range(table)
    name = run_name(table, tuned=bool(outcome.params.get("tune_trials")))
    build = snapshot_build(source)
    if build and "event_types" in build and outcome.model is not None:
        # saved with the model (a copy: the caller's model is left as it was); serving
        # names these when a snapshot table lacks their columns
        typed = copy.copy(outcome.model)
        typed.metadata = {**outcome.model.metadata, "event_types": list(build["event_types"])}
        outcome = dataclasses.replace(outcome, model=typed)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        tags={TAG_TARGET: target.name, "radar.kind": "training"},
        nested=mlflow.active_run() is not None,
    ) as run:
        mlflow.log_params(_params(outcome, table, settings, as_of, build))
        flagged = outcome.model.metadata.get("categorical_flagged") if outcome.model is not None else None
        if flagged:  # high-cardinality categoricals ranking high: likely overfitting (see warnings.txt)
            mlflow.set_tag("radar.categorical_overfitting", flagged)
        _log_dataset(table, outcome, source, as_of)
        with tempfile.TemporaryDirectory() as tmp:
            _write_reports(Path(tmp), outcome, table, test_set, settings)
            mlflow.log_artifacts(tmp)
        for path in outcome.plots.values():
            mlflow.log_artifact(str(path), "plots")
        quality = Path(source).parent / "reports" / "data_quality.md"
        if quality.is_file():  # the snapshot build's data-quality report, beside its Parquet
            mlflow.log_artifact(str(quality), "reports")
        # The model before the metrics: log_model copies every metric already on the run
        # to the model, one history request per metric (slow against a server); logged
        # afterwards with the model's id, they belong to both in one request.
        model = _log_model(outcome, table, test_set)
        _log_metrics(client, run.info.run_id, headline_metrics(outcome.metrics), model.model_id)
        _log_folds(client, experiment_id, run.info.run_id, outcome, name)
        refused = not_registrable(outcome, cfg.register_min_test_positives)
        if refused is not None:
            mlflow.set_tag("radar.not_registered", refused)
            return TrackedRun(target.model_name, run.info.run_id, target.model_name, None, refused, experiment_id, name)
        # registered with its tags in one request (one per tag costs two round trips to a server)
        version = str(
            mlflow.register_model(
                model.model_uri, target.model_name, tags=_version_tags(outcome, table, run.info.run_id, as_of)
            ).version
        )
    _describe_version(client, outcome, version)
    client.set_registered_model_alias(target.model_name, CHALLENGER, version)
    return TrackedRun(target.model_name, run.info.run_id, target.model_name, version, None, experiment_id, name)


def not_registrable(outcome: TrainOutcome, minimum: int) -> str | None:
    """Why a trained model must not be registered, or None: its test period holds fewer than
    `minimum` positives, so its figures (and any promotion on them) would rest on noise."""
    label = outcome.target.label
    frame = outcome.test_predictions
    positives = int(pd.to_numeric(frame[label], errors="coerce").fillna(0).sum()) if label in frame.columns else 0
    if positives >= minimum:
        return None
    return (
        f"not registered: its test period has {positives} positive label(s) ({outcome.target.positive}), fewer "
        f"than training.register_min_test_positives = {minimum}, so its test figures are noise. Add history or "
        "accounts, use weekly snapshots (features.freq = week), or lower the setting if you accept that"
    )


def train_and_log(
    table: TrainingTable,
    settings: Settings,
    *,
    source: str | Path,
    tune_trials: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[TrainOutcome, TrackedRun]:
    """Train and evaluate `table`'s target, then log and register the run (see
    `log_training_run`). The plots live in the run's artifacts (`plots/`)."""
    with tempfile.TemporaryDirectory() as plot_dir:
        outcome = train_and_evaluate(
            table, settings, tune_trials=tune_trials, progress=progress, plot_dir=Path(plot_dir)
        )
        if progress:
            progress(f"{table.target.name}: logging to MLflow and registering {table.target.model_name}")
        tracked = log_training_run(outcome, table, settings, source=source)
    outcome.plots = {}  # the files were temporary; read them from the run
    return outcome, tracked


def _as_of_range(table: TrainingTable) -> str:
    if table.time_col is None or table.frame.empty:
        return "no time column"
    t = table.frame[table.time_col]
    fmt = (lambda v: pd.Timestamp(v).date().isoformat()) if pd.api.types.is_datetime64_any_dtype(t) else str
    return f"{fmt(t.min())}..{fmt(t.max())}"


def _test_rows(outcome: TrainOutcome, table: TrainingTable) -> pd.DataFrame:
    """The table's rows that the outcome was tested on, in the predictions' order."""
    keys = [table.id_col] + ([table.time_col] if table.time_col else [])
    preds = outcome.test_predictions
    missing = [k for k in keys if k not in preds.columns]
    if missing:
        raise ValueError(f"test_predictions lacks the key column(s) {missing} of the table")
    rows = preds[keys].merge(table.frame, on=keys, how="left", validate="one_to_one")
    return rows[[*keys, *[c for c in table.frame.columns if c not in keys]]]


def snapshot_build(source: str | Path) -> dict | None:
    """The parameters of the build that made a snapshot Parquet file (its own metadata,
    `features.snapshot_meta`); None for another file or one written before they were recorded."""
    from features.snapshot_meta import read_parquet_meta

    path = Path(str(source))
    if "://" in str(source) or path.suffix.lower() != ".parquet" or not path.is_file():
        return None
    try:
        meta = read_parquet_meta(path)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


# config values the snapshot build records itself: logged from the table when it says
_BUILD_OVERRIDES = {
    "features.freq": "freq",
    "features.windows": "windows",
    "domain.horizon_days": "horizon_days",
    "domain.max_lead_days": "max_lead_days",
    "domain.grace_days": "grace_days",
    "domain.renewal_window_mode": "renewal_window_mode",
}


def _param_text(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _params(
    outcome: TrainOutcome, table: TrainingTable, settings: Settings, as_of: str, build: dict | None = None
) -> dict:
    params = {f"model.{k}": v for k, v in outcome.params.items()}
    params.update({f"split.{k}": v for k, v in outcome.split.items()})
    params.update(
        {
            "target": outcome.target.name,
            "label": table.target.label,
            "positive": outcome.target.positive,
            "id_col": table.id_col,
            "time_col": table.time_col,
            "weight_col": table.weight_col,
            "segment_col": table.segment_col,
            "baseline_col": table.baseline_col,
            "label_end_col": table.label_end_col,
            "band_col": table.band_col,
            "base_rate": outcome.base_rate,
            "n_features": len(outcome.features),
            "n_categorical": len(outcome.categorical),
            "dataset.rows": outcome.dataset_rows,
            "dataset.digest": outcome.dataset_digest,
            "dataset.as_of_range": as_of,
            "domain.horizon_days": settings.domain.horizon_days,
            "domain.max_lead_days": settings.domain.max_lead_days,
            "domain.grace_days": settings.domain.grace_days,
            "domain.renewal_window_mode": settings.domain.renewal_window_mode,
            "features.windows": ",".join(map(str, settings.features.windows)),
            "features.freq": settings.features.freq,
        }
    )
    for k, v in settings.training.model_dump(exclude={"lightgbm", "tracking_uri", "artifact_location"}).items():
        params[f"training.{k}"] = v
    if build:  # the table's own record wins over today's config
        params.update({f"snapshot.{k}": _param_text(v) for k, v in build.items()})
        params.update({p: _param_text(build[k]) for p, k in _BUILD_OVERRIDES.items() if k in build})
        if "event_types" in build:  # names may hold commas: a JSON list
            params["snapshot.event_types"] = json.dumps(build["event_types"], ensure_ascii=False)
    else:
        params["snapshot.recorded"] = "no: the table records no build (own table or older file); config values logged"
    if outcome.tuning:
        params["tuning"] = outcome.tuning
    return {k: ("" if v is None else str(v)[:6000]) for k, v in params.items()}


def headline_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics logged flat on the run: the model's test figures with their intervals,
    the baselines' test figures, the backtest mean and spread, the base rate and what the
    split dropped. Per segment and per fold figures go to `METRICS_TABLE` and the fold runs."""
    out = {}
    for name, value in metrics.items():
        if value is None or ".segment." in name or re.match(r"fold\d+\.", name):
            continue
        parts = name.split(".")
        if parts[0] == "test" and parts[1] != "model" and name.endswith(("_ci_low", "_ci_high")):
            continue
        out[name] = value
    return out


def metrics_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Every metric of a run as one long table: scope (test, fold1, backtest, ...), model,
    segment ("" overall), metric, value, ci_low, ci_high."""
    rows: dict[tuple, dict] = {}
    for name, value in metrics.items():
        if value is None:
            continue
        m = re.fullmatch(r"(test|fold\d+|backtest)\.([^.]+)\.(?:segment\.(.+)\.)?([^.]+)", name)
        if m is None:
            scope, model, segment, metric = "run", "", "", name
        else:
            scope, model, segment, metric = m.group(1), m.group(2), m.group(3) or "", m.group(4)
        bound = ""
        for suffix in ("_ci_low", "_ci_high"):
            if metric.endswith(suffix):
                metric, bound = metric.removesuffix(suffix), suffix[1:]
        row = rows.setdefault((scope, model, segment, metric), {"value": float("nan")})
        row["value" if not bound else bound] = float(value)
    out = pd.DataFrame(
        [{"scope": k[0], "model": k[1], "segment": k[2], "metric": k[3], **v} for k, v in rows.items()],
        columns=["scope", "model", "segment", "metric", "value", "ci_low", "ci_high"],
    )
    return out


def _log_metrics(client: MlflowClient, run_id: str, metrics: dict[str, float], model_id: str | None) -> None:
    now = int(time.time() * 1000)
    entries = [
        Metric(metric_key(name), float(value), now, 0, model_id=model_id)
        for name, value in metrics.items()
        if value is not None
    ]
    for start in range(0, len(entries), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=entries[start : start + 1000])


def _log_folds(client: MlflowClient, experiment_id: str, parent_id: str, outcome: TrainOutcome, name: str) -> None:
    """Each backtest (or cross-validation) fold as a run nested under the training run,
    with the model's figures on that fold's test rows."""
    folds: dict[int, dict[str, float]] = {}
    for key, value in outcome.metrics.items():
        m = re.fullmatch(r"fold(\d+)\.model\.([^.]+)", key)
        if m and value is not None:
            folds.setdefault(int(m.group(1)), {})[m.group(2)] = float(value)
    for i, figures in sorted(folds.items()):
        ranges = outcome.fold_ranges[i - 1] if i - 1 < len(outcome.fold_ranges) else {}
        test = ranges.get("test", "")
        run = client.create_run(
            experiment_id,
            run_name=f"{name} fold {i}/{len(folds)}" + (f" test {test}" if test else ""),
            tags={
                "mlflow.parentRunId": parent_id,
                TAG_TARGET: outcome.target.name,
                "radar.kind": "fold",
                "radar.fold": str(i),
            },
        )
        params = [Param(f"split.{k}", str(v)[:6000]) for k, v in ranges.items()]
        client.log_batch(run.info.run_id, params=params)
        _log_metrics(client, run.info.run_id, figures, None)
        client.set_terminated(run.info.run_id)


def _log_dataset(table: TrainingTable, outcome: TrainOutcome, source: str | Path, as_of: str) -> None:
    """The table as a dataset input: source, digest, schema, rows and as-of range.

    A metadata-only dataset: MLflow's pandas dataset infers its schema value by value in
    Python (seconds per 10,000 snapshot rows), so the schema comes from a sample.
    """
    uri = str(source) if "://" in str(source) else Path(source).resolve().as_uri()
    with warnings.catch_warnings():
        # file:// matches two equivalent local source classes; MLflow warns and picks one.
        warnings.simplefilter("ignore", UserWarning)
        dataset_source = resolve_dataset_source(uri)
        schema = infer_signature(table.frame.head(_SCHEMA_SAMPLE)).inputs
    dataset = MetaDataset(
        dataset_source,
        name=Path(str(source)).stem,
        digest=outcome.dataset_digest[:_DIGEST_CHARS] or None,
        schema=schema,
    )
    mlflow.log_input(
        dataset,
        context="training",
        tags={
            "as_of_range": as_of,
            "rows": str(outcome.dataset_rows),
            "digest": outcome.dataset_digest,
            "label": table.target.label,
            **{f"split.{k}": v[:500] for k, v in outcome.split.items()},
        },
    )


def _write_reports(
    out: Path, outcome: TrainOutcome, table: TrainingTable, test_set: pd.DataFrame, settings: Settings
) -> None:
    features = [
        {"name": f, "description": outcome.feature_descriptions.get(f, ""), "categorical": f in outcome.categorical}
        for f in outcome.features
    ]
    (out / "features.json").write_text(json.dumps(features, indent=2))
    md = ["| feature | description | categorical |", "|---|---|---|"]
    md += [f"| `{f['name']}` | {f['description']} | {'yes' if f['categorical'] else ''} |" for f in features]
    (out / "features.md").write_text("\n".join(md) + "\n")
    outcome.summary.to_csv(out / "summary.csv", index=False)
    (out / METRICS_TABLE).parent.mkdir(parents=True, exist_ok=True)
    metrics_table(outcome.metrics).to_csv(out / METRICS_TABLE, index=False)
    (out / "warnings.txt").write_text("".join(f"{w}\n" for w in outcome.warnings))
    (out / "split.json").write_text(json.dumps(outcome.split, indent=2))
    (out / "settings.json").write_text(settings.model_dump_json(indent=2))
    if outcome.bands is not None:
        outcome.bands.to_csv(out / BANDS_TABLE, index=False)
    (out / "test").mkdir()
    test_set.to_parquet(out / TEST_SET, index=False)
    outcome.test_predictions.to_parquet(out / TEST_PREDICTIONS, index=False)


def _log_model(outcome: TrainOutcome, table: TrainingTable, test_set: pd.DataFrame) -> ModelInfo:
    # The example is raw test rows, as a caller sends them (not the prepared model input):
    # the signature then checks what serving passes, with its column types.
    example = test_set.head(5)[outcome.features].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / ARTIFACT_KEY
        outcome.model.save(saved)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(ENTRY_POINT),
            artifacts={ARTIFACT_KEY: str(saved)},
            signature=signature_for(example, outcome.model),
            input_example=example,
            pip_requirements=_requirements(),
            metadata=model_metadata(outcome),
        )
    return info


def model_metadata(outcome: TrainOutcome) -> dict:
    """What the registered model says about itself without being loaded (the MLmodel
    file's metadata): its target, label, base rate and per-event types."""
    meta = {"radar_target": outcome.target.name, "radar_label": outcome.target.label}
    if outcome.base_rate is not None:
        meta["radar_base_rate"] = outcome.base_rate
    if outcome.model is not None and "event_types" in outcome.model.metadata:  # the per-event features' types
        meta["radar_event_types"] = list(outcome.model.metadata["event_types"])
    return meta


def _requirements() -> list[str]:
    # Pinned from the running environment: inferring them would load the model in a subprocess.
    out = []
    for name in _RUNTIME:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return out


def _version_tags(outcome: TrainOutcome, table: TrainingTable, run_id: str, as_of: str) -> dict[str, str]:
    tags = {
        TAG_TARGET: outcome.target.name,
        TAG_LABEL: table.target.label,
        TAG_ID: table.id_col,
        TAG_TIME: table.time_col or "",
        TAG_WEIGHT: table.weight_col or "",
        TAG_TEST_RANGE: outcome.split.get("test", ""),
        TAG_DIGEST: outcome.dataset_digest,
        TAG_ASOF: as_of,
        "radar.run_id": run_id,
    }
    if outcome.base_rate is not None:
        tags[TAG_BASE_RATE] = f"{outcome.base_rate:.6g}"
    tags.update(
        {
            metric_key(k): f"{v:.6g}"
            for k, v in outcome.metrics.items()
            if k.startswith("test.model.") and ".segment." not in k and v is not None
        }
    )
    return tags


def _describe_version(client: MlflowClient, outcome: TrainOutcome, version: str) -> None:
    name = outcome.target.model_name
    test = outcome.metrics
    pr, roc = test.get("test.model.pr_auc"), test.get("test.model.roc_auc")
    figures = ", ".join(f"{n} {v:.3f}" for n, v in (("PR-AUC", pr), ("ROC-AUC", roc)) if v is not None)
    client.update_model_version(
        name,
        version,
        description=(
            f"{outcome.target.name}: P({outcome.target.positive}); test {outcome.split.get('test', '')}"
            + (f"; {figures}" if figures else "")
        ),
    )
    if client.get_registered_model(name).description in (None, ""):
        client.update_registered_model(
            name,
            description=(
                f"Account Radar {outcome.target.name} model: calibrated probability that an account "
                f"{outcome.target.positive}. Load by alias: models:/{name}@{CHAMPION}."
            ),
        )
