"""The second sample product (`radar sample-data --product ledgerly`) walked the way a data
scientist brings their own data: sample-data -> ingest -> profile (its printed mapping
pasted into radar.toml) -> build-features -> train, through the real commands.

29 accounts, as the small company of issue 13: the usage features vary once the printed
mapping is in radar.toml, the renegotiated "custom" terms are rejected without becoming
churns, the last month-end is reported as partial, and training refuses to register a
model from a test period with a handful of positives (exit 0, with its reason)."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import snapshot_meta
from features.sampledata import EVENT_TYPES
from features.sampledata.ledgerly import EVENT_NAMES
from features.snapshot import feature_registry
from radar.cli import app
from radar.settings import load_settings

TRAINING = """
[training]
bootstrap_samples = 60
tracking_uri = "sqlite:///mlruns/mlflow.db"
"""


def _run(runner: CliRunner, *args: str):
    result = runner.invoke(app, ["--config", "radar.toml", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder after sample-data, ingest, profile (mapping pasted) and build-features."""
    root = tmp_path_factory.mktemp("ledgerly")
    runner = CliRunner(env={"COLUMNS": "200"})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        (root / "radar.toml").write_text(TRAINING)
        outputs = {"sample": _run(runner, "sample-data", "ws", "--product", "ledgerly", "--accounts", "29")}
        outputs["ingest"] = _run(runner, "ingest", "ws")
        outputs["profile"] = _run(runner, "profile", "--toml", "mapping.toml")
        (root / "radar.toml").write_text((root / "mapping.toml").read_text() + TRAINING)  # pasted
        outputs["build"] = _run(runner, "build-features")
        settings = load_settings(root / "radar.toml")
        yield root, settings.model_copy(update={"output_dir": root / "out"}), outputs, runner


def test_the_product_speaks_its_own_vocabulary_and_terms(project):
    root, _, outputs, _ = project
    events = pd.read_parquet(root / "ws" / "usage_events.parquet")
    assert set(events.event_type) <= set(EVENT_NAMES.values())
    assert not set(events.event_type) & set(EVENT_TYPES)  # none of the default names
    money = events[events.event_type.isin(["invoice_created", "payment_reconciled"])]
    assert money.quantity.median() > 50 and (events[~events.index.isin(money.index)].quantity < 5000).all()
    periods = set(pd.read_parquet(root / "ws" / "subscriptions.parquet").billing_period)
    assert {"month", "quarter", "semiannual", "year"} <= periods
    assert "payment_reconciled" in outputs["profile"].output


def test_the_printed_mapping_makes_the_usage_features_vary(project):
    root, settings, _, _ = project
    mapping = tomllib.loads((root / "mapping.toml").read_text())["features"]
    assert mapping["login_events"] == ["session_started"]
    registry = feature_registry(settings)
    usage = [f.name for f in registry if f.source == "usage_events"]
    per_event = [n for n in usage if "payment_reconciled" in n]
    assert per_event, "per-event-type features of the product's own event names"
    frame = pd.read_parquet(root / "out" / "snapshots.parquet")
    varying = [c for c in usage if frame[c].nunique(dropna=True) > 1]
    assert len(varying) >= 0.8 * len(usage), sorted(set(usage) - set(varying))
    assert any("quantity" in c or "amount" in c for c in varying if "payment_reconciled" in c)


def test_rejected_custom_terms_never_become_churns(project):
    root, settings, outputs, _ = project
    with duckdb.connect(str(root / "out" / "radar.duckdb"), read_only=True) as con:
        raw = con.execute(
            "SELECT raw FROM rejects WHERE table_name = 'subscriptions' AND column_name = 'billing_period'"
        ).fetchall()
    assert raw, "the sample's renegotiated terms are rejected"
    subs = pd.read_parquet(root / "ws" / "subscriptions.parquet")
    custom = subs[subs.billing_period == "custom"]
    assert len(raw) == len(custom)
    first = custom.groupby("account_id").start_date.min()
    snaps = pd.read_parquet(root / "out" / "snapshots.parquet")
    snaps = snaps[snaps.account_id.isin(first.index)]
    horizon = timedelta(days=settings.domain.horizon_days)
    reaching = snaps[[a + horizon > first[acc] for a, acc in zip(snaps.as_of, snaps.account_id, strict=True)]]
    assert len(reaching), "snapshots whose label window reaches a rejected row"
    assert reaching.churned.isna().all() and reaching.churned_by_renewal.isna().all()
    # without the rejected lines the accounts' subscriptions stop months before the data
    # end: a churn, had the rejected rows been dropped silently
    kept = subs[(subs.billing_period != "custom") & subs.account_id.isin(first.index)]
    assert kept.end_date.notna().all() and (kept.groupby("account_id").end_date.max() < date(2023, 12, 1)).all()
    assert "billing_period" in outputs["ingest"].output


def test_the_partial_last_month_is_detected_and_recorded(project):
    root, _, outputs, _ = project
    build = " ".join(outputs["build"].output.split())
    assert "data end: 2024-01-31" in build
    assert "partial as-of date: 2024-01-31" in build
    meta = snapshot_meta.read_parquet_meta(root / "out" / "snapshots.parquet")
    assert meta["partial_as_of"] == ["2024-01-31"] and meta["data_end"] == "2024-01-31"
    assert meta["freq"] == "month" and meta["horizon_days"] == 90
    with duckdb.connect(str(root / "out" / "radar.duckdb"), read_only=True) as con:
        partial = snapshot_meta.partial_dates(con)
    ref, ref_n, n = partial[date(2024, 1, 31)]
    assert ref == date(2023, 12, 31) and n < 0.7 * ref_n


@pytest.mark.slow
def test_small_data_is_trained_but_not_registered(project):
    root, _, _, runner = project
    import mlflow

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        result = _run(runner, "train", "--target", "renewal")
    text = " ".join(result.output.split())
    assert "radar-renewal not registered" in text and "training.register_min_test_positives = 20" in text
    client = mlflow.MlflowClient(f"sqlite:///{root}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("radar-renewal").experiment_id])
    refused = [r for r in runs if "radar.not_registered" in r.data.tags]
    assert len(refused) == 1 and "register_min_test_positives" in refused[0].data.tags["radar.not_registered"]
    assert not client.search_registered_models()
