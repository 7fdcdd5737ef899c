"""`--tune` on a short history: a cross-validation grouped by account, said out loud, or
an error naming the flags and settings that help."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from radar.cli import app
from training.dataset import DatasetError
from training.pipeline import train_and_evaluate
from training.split import time_split
from training.tune import _inner_folds, tune


@pytest.fixture(scope="module")
def short(make_snapshots, make_table):
    """18 month-ends: the main split fits, but its 8 training dates (the issue's case) hold no time-aware fold."""
    return make_table(make_snapshots(n_accounts=150, n_dates=18, seed=4, base=-2.0))


@pytest.fixture(scope="module")
def fast(make_settings):
    return make_settings(bootstrap_samples=0, backtest_folds=1, lightgbm={"n_estimators": 40, "min_child_samples": 20})


def test_a_short_history_tunes_on_folds_grouped_by_account(short, fast):
    split = time_split(short.times, fast)
    assert short.frame.iloc[split.train].as_of.nunique() == 8
    notes: list[str] = []
    folds = _inner_folds(short, split, fast, notes)
    assert len(folds) == fast.training.tune_group_folds == 4
    ids = short.ids.to_numpy()
    seen_in_test = []
    for f in folds:
        assert set(f.train) | set(f.calibration) | set(f.test) <= set(split.train)  # never the judged rows
        train, cal, test = set(ids[f.train]), set(ids[f.calibration]), set(ids[f.test])
        assert not (train & test) and not (train & cal) and not (cal & test)  # no account on two sides
        seen_in_test.append(test)
    assert set().union(*seen_in_test) == set(ids[split.train])  # every account tested once
    assert "4-fold cross-validation grouped by account" in notes[0] and "8 dates are too few" in notes[0]

    best = tune(short, split, fast, trials=2)
    assert {"learning_rate", "num_leaves", "lambda_l2"} <= set(best)


def test_the_run_says_how_it_was_tuned(short, fast):
    outcome = train_and_evaluate(short, fast, tune_trials=2)
    assert outcome.params["tune_trials"] == 2 and outcome.params["tuned"]
    assert outcome.tuning.startswith("tuned by a 4-fold cross-validation grouped by account")
    assert any("grouped by account" in w for w in outcome.warnings)


def test_when_even_grouped_folds_are_impossible_the_error_names_what_to_change(short, make_settings):
    settings = make_settings(tune_group_folds=500)
    with pytest.raises(DatasetError) as err:
        tune(short, time_split(short.times, settings), settings, trials=1)
    message = str(err.value)
    assert "too short for time-aware folds" in message and "500 folds grouped by account" in message
    for remedy in ("without --tune", "radar build-features --freq week", "training.tune_group_folds (now 500"):
        assert remedy in message


def test_radar_train_tune_on_an_impossible_history_exits_1_with_the_remedy(
    short, tmp_path, empty_mlflow_db, monkeypatch
):
    (tmp_path / "mlruns").mkdir()
    shutil.copy(empty_mlflow_db, tmp_path / "mlruns" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("RADAR_TRAINING__TUNE_GROUP_FOLDS", "500")
    short.frame.to_parquet(tmp_path / "short.parquet")
    result = CliRunner().invoke(
        app,
        ["train", "--snapshots", "short.parquet", "--label", "churned", "--time-col", "as_of"]
        + ["--id-col", "account_id", "--name", "short", "--tune", "2"],
    )
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "radar build-features --freq week" in text and "training.tune_group_folds" in text
