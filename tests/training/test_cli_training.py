"""`radar train`, `radar promote` and `radar models` end to end, against a temporary store."""

from __future__ import annotations

import shutil
import socket

import pytest
from typer.testing import CliRunner

from radar.cli import app

FAST = {
    "BOOTSTRAP_SAMPLES": "20",
    "BACKTEST_FOLDS": "1",
    "LIGHTGBM__N_ESTIMATORS": "60",
    "LIGHTGBM__MIN_CHILD_SAMPLES": "20",
}


@pytest.fixture
def env(tmp_path, empty_mlflow_db, monkeypatch):
    """A workspace folder as the working directory, with its own tracking store."""
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_db, tmp_path / "mlruns" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("RADAR_OUTPUT_DIR", str(tmp_path / "out"))
    for key, value in FAST.items():
        monkeypatch.setenv(f"RADAR_TRAINING__{key}", value)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_train_without_snapshots_says_to_build_features(env):
    result = run("train")
    assert result.exit_code == 1
    assert "run `radar build-features` first" in result.output and "Traceback" not in result.output


def test_an_unreachable_tracking_server_fails_before_training(env, make_snapshots, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free: nothing listens there
    monkeypatch.setenv("RADAR_TRAINING__TRACKING_URI", f"http://127.0.0.1:{port}")
    make_snapshots(n_accounts=40, n_dates=16).to_parquet(env / "mine.parquet")
    result = run("train", "--snapshots", "mine.parquet", "--label", "churned", "--name", "mine")
    assert result.exit_code == 1 and f"server at http://127.0.0.1:{port} does not answer" in result.output
    assert run("models").exit_code == 1


def test_an_unusable_table_is_a_clear_error(env, make_snapshots):
    make_snapshots(n_accounts=40, n_dates=16).to_parquet(env / "mine.parquet")
    result = run("train", "--snapshots", "mine.parquet", "--label", "nope", "--name", "mine")
    assert result.exit_code == 1 and "label column 'nope' not found" in result.output
    result = run("train", "--snapshots", "mine.parquet", "--label", "churned")
    assert result.exit_code == 1 and "--name NAME" in result.output
    assert "Traceback" not in result.output


def test_own_table_train_refuse_force_and_list(env, make_snapshots):
    """Given your own table: the first version becomes champion, an identical retrain is
    refused (it does not beat the champion by the margin), --force promotes it anyway."""
    make_snapshots(n_accounts=120, n_dates=16, seed=4).to_parquet(env / "mine.parquet")
    own = (
        "train",
        "--snapshots",
        "mine.parquet",
        "--label",
        "churned",
        "--id-col",
        "account_id",
        "--time-col",
        "as_of",
        "--name",
        "mine",
        "--promote",
    )

    first = run(*own)
    assert first.exit_code == 0, first.output
    assert "lightgbm" in first.output and "logistic" in first.output and "pr_auc" in first.output
    assert "registered radar-mine v1 as challenger" in first.output
    assert "no champion yet, so v1" in first.output and "becomes champion" in first.output

    second = run(*own)
    assert second.exit_code == 0, second.output
    text = " ".join(second.output.split())
    # the same model again: better in no resample, so refused, with the run's name and runs page
    assert "refused, v1 stays champion" in text and "better in 0% of" in text and "needs 90%" in text
    assert "logged run 'mine 2023-01..2024-04 lightgbm'" in text and "/#/experiments/" in text and "/runs" in text

    forced = run("promote", "mine", "--force", "--reason", "same model, new data window")
    assert forced.exit_code == 0, forced.output
    assert "FORCED: v2 is now champion (reason: same model, new data window)" in forced.output

    listed = run("models", "mine")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()[:1].isdigit()}
    assert "champion" in rows["2"] and "forced" in rows["2"]
    assert rows["1"].split()[1] == "previous_champion" and "promoted" in rows["1"]

    nothing = run("promote", "mine")
    assert nothing.exit_code == 1 and "no 'challenger' version" in nothing.output


def test_train_all_three_targets_on_the_workspace_snapshots(env, make_snapshot_frame):
    """Given the workspace's snapshots.parquet, `radar train` registers radar-renewal,
    radar-upsell and radar-next-renewal, each as challenger, and `radar models` lists them."""
    (env / "out").mkdir()
    make_snapshot_frame(n_accounts=60, n_dates=16, seed=5).to_parquet(env / "out" / "snapshots.parquet")
    result = run("train")
    assert result.exit_code == 0, result.output
    assert "registered radar-renewal v1 as challenger" in result.output
    assert "registered radar-upsell v1 as challenger" in result.output
    assert "registered radar-next-renewal v1 as challenger" in result.output
    assert "health_score" in result.output  # the baseline column of the summary table
    # the churn targets print their figures per band of days to the next renewal; all print the base rate
    assert result.output.count("by days to the next renewal") == 2
    assert "next_renewal: test by days to the next renewal" in result.output and "181-365" in result.output
    assert result.output.count("base rate (typical risk") == 3
    listed = run("models")
    assert all(name in listed.output for name in ("radar-renewal", "radar-upsell", "radar-next-renewal"))
    assert "challenger" in listed.output
    one = run("models", "next_renewal")  # a target's name finds its registered model
    assert one.exit_code == 0 and "radar-next-renewal" in one.output and "radar-upsell" not in one.output


def test_target_names_map_to_their_registered_models():
    from training.cli import model_name

    assert model_name("renewal") == "radar-renewal"
    assert model_name("next_renewal") == "radar-next-renewal"
    assert model_name("mine") == "radar-mine" and model_name("radar-x") == "radar-x"
