"""The end of the data and partial as-of dates (issue 13 item 3).

A tiny workspace where subscriptions stop on 2024-01-01 while usage events go on to
2024-01-31, as in the issue: by default the data end at 2024-01-01 (the earliest last
date of subscriptions and usage events), so no month-end after it is built and no line
ending then is a churn; configured later, the last month-end loses most accounts and is
reported as partial, in the console and in the build's metadata."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from features import snapshot_meta
from features.build import build_features
from features.calendar import partial_as_of
from features.ingest import ingest_workspace
from features.snapshot import resolve_data_end
from radar.cli import app
from radar.settings import Settings

STAYING = [f"A{i:02d}" for i in range(1, 5)]  # open-ended lines
STOPPING = [f"A{i:02d}" for i in range(5, 11)]  # lines ending 2024-01-01: the export's last day


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("data-end")
    ws = root / "ws"
    ws.mkdir()
    accounts = STAYING + STOPPING
    pd.DataFrame({"account_id": accounts, "name": accounts}).to_csv(ws / "accounts.csv", index=False)
    pd.DataFrame(
        {
            "subscription_id": [f"S{i}" for i in range(len(accounts))],
            "account_id": accounts,
            "product": "base",
            "start_date": "2023-01-05",
            "end_date": [None] * len(STAYING) + ["2024-01-01"] * len(STOPPING),
            "mrr": 100.0,
            "billing_period": "month",
        }
    ).to_csv(ws / "subscriptions.csv", index=False)
    events = [
        (a, datetime(2023, 1, 6, 10) + timedelta(days=7 * k), "session_started")
        for a in accounts
        for k in range(56)  # weekly, to 2024-01-26
    ] + [(a, datetime(2024, 1, 31, 9), "session_started") for a in accounts]
    pd.DataFrame(events, columns=["account_id", "occurred_at", "event_type"]).to_csv(
        ws / "usage_events.csv", index=False
    )
    return root


def _settings(root, name: str, **features) -> Settings:
    return Settings(output_dir=root / name, features=features)


@pytest.fixture(scope="module")
def default_build(folder):
    settings = _settings(folder, "default")
    ingest_workspace(folder / "ws", settings)
    return settings, build_features(settings)


@pytest.fixture(scope="module")
def late_build(folder):
    settings = _settings(folder, "late", data_end=date(2024, 1, 31))
    ingest_workspace(folder / "ws", settings)
    return settings, build_features(settings)


def test_the_end_is_the_earliest_last_date_of_subscriptions_and_events():
    ends = {"subscriptions": date(2024, 1, 1), "usage_events": date(2024, 1, 31), "feedback": date(2023, 12, 2)}
    end, source = resolve_data_end(ends)
    assert end == date(2024, 1, 1)  # sparse tables (feedback) do not set it
    assert (
        source
        == "the earliest last date of subscriptions and usage_events: subscriptions (later: usage_events 2024-01-31)"
    )
    assert resolve_data_end(ends, date(2023, 11, 30)) == (date(2023, 11, 30), "configured (features.data_end)")
    assert resolve_data_end({"subscriptions": date(2024, 1, 1)})[0] == date(2024, 1, 1)


def test_by_default_nothing_after_the_subscriptions_end_is_built_or_a_churn(default_build):
    settings, result = default_build
    assert result.meta.data_end == "2024-01-01" and "subscriptions" in result.meta.data_end_source
    assert result.as_of_dates[-1] == date(2023, 12, 31) and not result.partial
    frame = pd.read_parquet(result.parquet)
    assert (frame.churned.fillna(0) == 0).all()  # the lines ending on the last day are not churns
    meta = snapshot_meta.read_parquet_meta(result.parquet)
    assert meta["data_end"] == "2024-01-01" and meta["partial_as_of"] == []
    assert meta["freq"] == "month" and meta["horizon_days"] == settings.domain.horizon_days
    assert "churned" in meta["label_definition"] and meta["as_of_last"] == "2023-12-31"


def test_a_configured_end_past_the_subscriptions_gives_a_partial_month(late_build):
    _, result = late_build
    assert result.meta.data_end_source == "configured (features.data_end)"
    assert result.as_of_dates[-1] == date(2024, 1, 31)
    assert result.partial == {date(2024, 1, 31): (date(2023, 12, 31), 10, 4)}
    assert snapshot_meta.read_parquet_meta(result.parquet)["partial_as_of"] == ["2024-01-31"]
    with duckdb.connect(str(result.parquet.parent / "radar.duckdb"), read_only=True) as con:
        rows = con.execute(f"SELECT as_of, accounts, partial FROM {snapshot_meta.AS_OF_TABLE} ORDER BY as_of").df()
        recorded = dict(con.execute(f"SELECT key, value FROM {snapshot_meta.BUILD_TABLE}").fetchall())
    assert rows.partial.tolist() == [False] * (len(rows) - 1) + [True]
    assert rows.accounts.iloc[-1] == 4
    assert recorded["data_end"] == '"2024-01-31"'


def test_build_features_says_where_the_end_comes_from_and_which_date_is_partial(folder, monkeypatch):
    monkeypatch.chdir(folder)
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(folder / "cli"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "ws"]).exit_code == 0
    out = runner.invoke(app, ["build-features"]).output
    assert (
        "data end: 2024-01-01, the earliest last date of subscriptions and usage_events: subscriptions "
        "(later: usage_events 2024-01-31)" in out
    )
    assert "partial" not in out
    monkeypatch.setenv("RADAR_FEATURES__DATA_END", "2024-01-31")
    out = " ".join(runner.invoke(app, ["build-features"]).output.split())
    assert "data end: 2024-01-31, configured (features.data_end)" in out
    assert "partial as-of date: 2024-01-31 has 4 active accounts against 10 on 2023-12-31 (-60%" in out


def test_partial_dates_compare_with_the_last_complete_date():
    d = [date(2024, m, 1) for m in range(1, 8)]
    counts = list(zip(d, [100, 104, 60, 50, 98, 90, 82], strict=True))
    found = partial_as_of(counts, 0.3)
    # 60 and 50 both against 104 (two partial dates in a row); 98 recovers; 90 and 82 are
    # a business shrinking by less than 30% a period, never partial
    assert found == {d[2]: (d[1], 104), d[3]: (d[1], 104)}
    assert partial_as_of(counts, 0.6) == {}
    assert partial_as_of([(d[0], 10), (d[1], 0)], 0.3) == {d[1]: (d[0], 10)}  # nobody left
