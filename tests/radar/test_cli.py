"""The main job end to end through the CLI, on a tiny generated workspace."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from radar.cli import app


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_sample_data_ingest_build_features(env):
    runner = CliRunner()
    ws = env / "ws"
    result = runner.invoke(app, ["sample-data", str(ws), "--accounts", "60", "--years", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert (ws / "subscriptions.parquet").exists() and "usage_events" in result.output

    result = runner.invoke(app, ["ingest", str(ws)])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["build-features", "--from", "2026-03-31", "--to", "2026-10-31"])
    assert result.exit_code == 0, result.output
    assert "snapshots of" in result.output
    snaps = pd.read_parquet(env / "out" / "snapshots.parquet")
    assert sorted(snaps.as_of.astype(str).str[:10].unique()) == [
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
    ]
    with duckdb.connect(str(env / "out" / "radar.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM snapshots").fetchone()[0] == len(snaps)
        assert con.execute("SELECT count(*) FROM evidence").fetchone()[0] > 0
    assert "Leakage alarm" in (env / "out" / "reports" / "data_quality.md").read_text()


def test_build_features_without_ingest_says_what_to_do(env):
    result = CliRunner().invoke(app, ["build-features"])
    assert result.exit_code == 1
    assert "radar ingest" in result.output


def test_features_lists_the_registry_in_plain_language(env):
    result = CliRunner().invoke(app, ["features"])
    assert result.exit_code == 0
    assert "Active users ÷ seats, last 28 days" in result.output
    assert "adoption_rate_90d" in result.output and "1. Adoption rate" in result.output
    kinds = {line.split("│")[4].strip() for line in result.output.splitlines() if line.count("│") >= 6}
    assert {"driver", "context"} <= kinds and "13 context (shown apart)" in result.output


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    for command in ("sample-data", "ingest", "build-features", "features", "config"):
        assert command in result.output
